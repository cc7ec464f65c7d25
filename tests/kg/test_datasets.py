"""The registered knowledge-graph datasets, loaded from the real files (`$GRAPHLEARN_DATA`).

Without the files these tests skip; with ``GRAPHLEARN_REQUIRE_DATA=1`` they fail instead
(see ``tests/conftest.py``). All of them read local files only (``download=False``).
"""

from pathlib import Path

import pytest
import torch
from graphlearn.kg import LinkPredictionDataset

from graphlearn import datasets
from graphlearn.data.dataset import TaskKind

TRANSDUCTIVE = ["umls", "fb15k-237", "wn18rr"]
REDGNN = ["family", "umls-redgnn", "wn18rr-redgnn"]
INDUCTIVE = [f"{family}_v{v}" for family in ("fb237", "wn18rr", "nell") for v in range(1, 5)]
# entities shared by a GraIL training graph and its "_ind" test graph, as the files have them
INDUCTIVE_OVERLAP = {"wn18rr_v3": 8, "nell_v3": 3, "nell_v4": 1}


def _load(data_root, name: str) -> tuple[LinkPredictionDataset, Path]:
    info = datasets.info(name)
    root = data_root(*(f"{info.raw_dir}/{f}" for f in info.raw_files))
    ds = datasets.load(name, root=root, download=False)
    return ds, root / info.raw_dir


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").split("\n") if line.strip())


@pytest.mark.parametrize("name", TRANSDUCTIVE + REDGNN)
def test_transductive_sizes_match_stats_and_files(data_root, name):
    ds, folder = _load(data_root, name)
    info = datasets.info(name)
    assert isinstance(ds, LinkPredictionDataset) and ds.task is TaskKind.LINK_PREDICTION
    assert not ds.inductive and ds.test_graph is None
    g = ds.graph
    stats = info.stats
    assert g.num_entities == stats["entities"] and g.num_relations == stats["relations"]
    for split in ("facts", "train", "valid", "test"):
        if split in stats:
            assert g.splits[split].size(0) == stats[split], split
            assert g.splits[split].size(0) == _lines(folder / f"{split}.txt"), split
        else:
            assert split not in g.splits
    # every entity and relation is used, and valid/test entities are known
    assert set(g.triples()[:, [0, 2]].flatten().tolist()) == set(range(g.num_entities))
    assert ds.split_sizes() == {"train": stats["train"], "val": stats["valid"],
                                "test": stats["test"]}


def test_umls_first_triple_and_stage_filters(data_root):
    ds, folder = _load(data_root, "umls")
    first = folder.joinpath("train.txt").read_text().split("\n")[0].split("\t")
    assert ds.graph.labeled_triples("train")[0] == tuple(first)
    val, test = ds.stage("val"), ds.stage("test")
    assert val.filter.size(0) == 5216 + 652 and test.filter.size(0) == 5216 + 652 + 661
    assert torch.equal(test.facts, ds.graph.splits["train"])


def test_family_has_facts_split(data_root):
    ds, folder = _load(data_root, "family")
    g = ds.graph
    assert list(g.splits) == ["facts", "train", "valid", "test"]
    # entities.txt / relations.txt fix the id order
    assert g.entities[:3] == [x for x in folder.joinpath("entities.txt").read_text().split("\n")
                              if x.strip()][:3]
    st = ds.stage("train")
    assert torch.equal(st.facts, g.splits["facts"]) and torch.equal(st.queries, g.splits["train"])
    # inference reasons over every known triple, as RED-GNN's test graph (facts + train)
    known = torch.cat([g.splits["facts"], g.splits["train"]])
    for name in ("val", "test"):
        assert torch.equal(ds.stage(name).facts, known)
    assert ds.stage("test").filter.size(0) == sum(v.size(0) for v in g.splits.values())


@pytest.mark.parametrize("name", INDUCTIVE)
def test_inductive_split_is_entity_disjoint_with_shared_relations(data_root, name):
    ds, folder = _load(data_root, name)
    assert ds.inductive
    train, test = ds.graph, ds.test_graph
    base = name.replace("wn18rr", "WN18RR")
    for graph, sub in ((train, base), (test, f"{base}_ind")):
        for split in ("train", "valid", "test"):
            assert graph.splits[split].size(0) == _lines(folder / sub / f"{split}.txt")
    assert test.relations == train.relations
    # the test graph's triples use only relations seen in training triples
    assert set(test.triples()[:, 1].tolist()) <= set(train.triples()[:, 1].tolist())
    shared = set(train.entities) & set(test.entities)
    assert len(shared) == INDUCTIVE_OVERLAP.get(name, 0)
    stage = ds.stage("test")
    assert stage.graph is test and torch.equal(stage.facts, test.splits["train"])
    assert torch.equal(stage.queries, test.splits["test"])
    assert ds.stage("val").graph is train


def test_fb237_v1_counts(data_root):
    ds, _ = _load(data_root, "fb237_v1")
    assert (ds.graph.num_entities, ds.graph.num_relations) == (1594, 180)
    assert ds.test_graph.num_entities == 1093
    assert {k: v.size(0) for k, v in ds.test_graph.splits.items()} == {"train": 1993, "valid": 206,
                                                                      "test": 205}
