"""`graphlearn.kg.predict` and `graphlearn kg predict` on a tiny trained UMLS run."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from graphlearn.kg.predict import format_predictions, load_run, predict

from graphlearn.errors import DataNotFoundError, IndexOutOfRangeError, InvalidArgumentError

UMLS = ("kg/transductive/umls/train.txt", "kg/transductive/umls/valid.txt",
        "kg/transductive/umls/test.txt")
_RUNS: dict = {}


@pytest.fixture
def umls_run(data_root, tmp_path_factory):
    """A 3-epoch DistMult run on UMLS, trained once per session."""
    root = data_root(*UMLS)
    if "umls" not in _RUNS:
        import graphlearn

        out = tmp_path_factory.mktemp("runs") / "distmult-umls"
        graphlearn.fit(model="distmult", dataset="umls", epochs=3, seed=0, root=str(root), out=out,
                       **{"trainer.batch_size": 512, "trainer.progress_bar": False})
        _RUNS["umls"] = out
    return _RUNS["umls"]


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "graphlearn.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=240)


def _known_tails(graph, head: str, relation: str) -> set[str]:
    return {t for h, r, t in graph.labeled_triples("train") if h == head and r == relation}


def test_predict_tails_sorted_and_filtered(umls_run):
    loaded = load_run(umls_run)
    graph = loaded.dataset.stage("test").graph
    head, relation = "acquired_abnormality", "location_of"
    known = _known_tails(graph, head, relation)
    assert known  # the query has training answers to filter

    rows = predict(umls_run, head=head, relation=relation, k=7)
    assert [r["rank"] for r in rows] == list(range(1, 8))
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    for r in rows:
        assert graph.entities[r["id"]] == r["label"] and not r["known"]
        assert r["label"] not in known

    # the same scores as the model gives, best non-known first
    task = loaded.task
    with torch.no_grad():
        all_scores = task.score_all(torch.tensor([graph.entity_id(head)]),
                                    torch.tensor([graph.relation_id(relation)]), "tail")[0]
    assert rows[0]["score"] == pytest.approx(float(all_scores[rows[0]["id"]]))
    allowed = torch.tensor([e not in known for e in graph.entities])
    assert rows[0]["score"] == pytest.approx(float(all_scores[allowed].max()))

    # unfiltered: known answers are ranked too and marked; removing them gives the filtered list
    every = predict(loaded, head=head, relation=relation, k=graph.num_entities, filter=False)
    assert len(every) == graph.num_entities
    assert {r["label"] for r in every if r["known"]} == known
    assert [r["label"] for r in every if not r["known"]][:7] == [r["label"] for r in rows]


def test_predict_heads_and_k_cap(umls_run):
    loaded = load_run(umls_run)
    graph = loaded.dataset.graph
    rows = predict(loaded, tail="acquired_abnormality", relation="isa", k=1000)
    known = {h for h, r, t in graph.labeled_triples("train")
             if t == "acquired_abnormality" and r == "isa"}
    assert len(rows) == graph.num_entities - len(known)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    text = format_predictions(rows[:3]).splitlines()
    assert len(text) == 3 and text[0].split()[:2] == ["1", rows[0]["label"]]


def test_predict_errors(umls_run, tmp_path):
    loaded = load_run(umls_run)
    with pytest.raises(IndexOutOfRangeError, match="closest: 'acquired_abnormality'"):
        predict(loaded, head="acquired_abnormalty", relation="isa")
    with pytest.raises(IndexOutOfRangeError, match="relation 'is_a'"):
        predict(loaded, head="acquired_abnormality", relation="is_a")
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        predict(loaded, relation="isa")
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        predict(loaded, head="a", tail="b", relation="isa")
    with pytest.raises(InvalidArgumentError, match="k must be"):
        predict(loaded, head="acquired_abnormality", relation="isa", k=0)
    with pytest.raises(DataNotFoundError, match="config.yaml"):
        load_run(tmp_path)


def test_checkpoint_is_weights_only_and_moved_run_loads(umls_run, tmp_path):
    summary = json.loads((umls_run / "summary.json").read_text())
    torch.load(summary["checkpoint"], map_location="cpu", weights_only=True)  # no pickled code
    # a moved run: the recorded absolute checkpoint path is gone, the file name is kept
    moved = tmp_path / "runs" / "moved"
    shutil.copytree(umls_run, moved, symlinks=True)
    summary["checkpoint"] = "/nonexistent/checkpoints/" + os.path.basename(summary["checkpoint"])
    (moved / "summary.json").write_text(json.dumps(summary))
    # and a dataset root relative to the folder the run was started from
    cfg = yaml.safe_load((moved / "config.yaml").read_text())
    data = tmp_path / "data"
    os.symlink(cfg["dataset"]["root"], data)
    cfg["dataset"]["root"] = "data"
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg))
    loaded = load_run(moved)
    assert loaded.checkpoint == moved / "checkpoints" / os.path.basename(summary["checkpoint"])
    a = predict(loaded, head="acquired_abnormality", relation="location_of", k=5)
    b = predict(umls_run, head="acquired_abnormality", relation="location_of", k=5)
    assert a == b
    # no summary.json: checkpoints/last.ckpt
    (moved / "summary.json").unlink()
    assert load_run(moved).checkpoint == moved / "checkpoints" / "last.ckpt"


def test_cli_predict_text_json_and_errors(umls_run, tmp_path):
    res = _cli("kg", "predict", "--run", str(umls_run), "--head", "acquired_abnormality",
               "--relation", "location_of", "-k", "4", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4
    parsed = [line.split() for line in lines]
    assert [int(p[0]) for p in parsed] == [1, 2, 3, 4]
    scores = [float(p[2]) for p in parsed]
    assert scores == sorted(scores, reverse=True)
    api = predict(umls_run, head="acquired_abnormality", relation="location_of", k=4)
    assert [p[1] for p in parsed] == [r["label"] for r in api]

    res = _cli("kg", "predict", "--run", str(umls_run), "--tail", "acquired_abnormality",
               "--relation", "isa", "-k", "3", "--no-filter", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows == predict(umls_run, tail="acquired_abnormality", relation="isa", k=3,
                           filter=False)
    assert set(rows[0]) == {"rank", "label", "id", "score", "known"}

    res = _cli("kg", "predict", "--run", str(umls_run), "--head", "acquired_abnormalty",
               "--relation", "location_of", cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("graphlearn: error: ")
    assert "'acquired_abnormalty'" in err[0] and "closest: 'acquired_abnormality'" in err[0]
    assert "Traceback" not in res.stderr and res.stdout == ""


class _TableTask:
    """A stand-in for a trained task: scores every (anchor, relation, candidate) from a table."""

    def __init__(self, num_entities: int, num_relations: int):
        gen = torch.Generator().manual_seed(0)
        self.table = torch.randn(num_entities, num_relations, num_entities, generator=gen)
        self.stages = []

    def eval(self):
        return self

    def score_all(self, anchors, relations, side, stage="test"):
        self.stages.append(stage)
        if side == "tail":
            return self.table[anchors, relations]
        return self.table[:, relations, anchors].T


def test_inductive_labels_come_from_the_test_graph():
    from graphlearn.kg import KnowledgeGraph, LinkPredictionDataset
    from graphlearn.kg.predict import LoadedRun

    from graphlearn.data.dataset import DatasetInfo, TaskKind
    from graphlearn.errors import ShapeError

    train = KnowledgeGraph.from_triples({"train": [("a", "r", "b"), ("b", "s", "c")],
                                         "valid": [("a", "s", "c")]}, name="g")
    test = KnowledgeGraph.from_triples({"train": [("x", "r", "y"), ("x", "r", "z"), ("w", "s", "x")],
                                        "test": [("y", "s", "z")]}, relations=train.relations,
                                       name="g_ind")
    info = DatasetInfo(name="g", task=TaskKind.LINK_PREDICTION, description="", metric="mrr",
                       splits="", url="", citation="", license="")
    ds = LinkPredictionDataset(info, train, test_graph=test)
    task = _TableTask(test.num_entities, test.num_relations)
    run = LoadedRun(task=task, dataset=ds, checkpoint=None, run_dir=None)
    rows = predict(run, head="x", relation="r", k=10)
    assert task.stages == ["test"]
    # the known tails y, z (facts of the test graph) are filtered; 'x' and 'w' remain
    assert sorted(r["label"] for r in rows) == ["w", "x"]
    every = predict(run, head="x", relation="r", k=10, filter=False)
    assert {r["label"] for r in every if r["known"]} == {"y", "z"}
    expected = sorted(range(4), key=lambda e: -float(task.table[test.entity_id("x"), 0, e]))
    assert [r["id"] for r in every] == expected
    heads = predict(run, tail="x", relation="s", k=10)
    assert "w" not in {r["label"] for r in heads} and len(heads) == 3
    with pytest.raises(IndexOutOfRangeError, match="'a' is not in knowledge graph 'g_ind'"):
        predict(run, head="a", relation="r")  # a training entity is not a test-graph entity
    # a model built for another entity count (an embedding model on inductive data)
    run.task = _TableTask(train.num_entities, train.num_relations)
    with pytest.raises(ShapeError, match="expected"):
        predict(run, head="x", relation="r")
