"""RDF entity-classification datasets: counts, PyG equality, splits, hetero view, bad input."""

import csv
import gzip
import io
import re
import sys
import tarfile
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from graphlearn import datasets
from graphlearn.data.dataset import NodeClassificationDataset, TaskKind
from graphlearn.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

rdf = datasets.rdf

# Counted by hand from the raw files (see test_counts_from_the_raw_lines for the graph and
# the TSV line counts for the labels).
EXPECTED = {
    "aifb": dict(folder="aifb", nodes=8285, predicates=45, triples=29043, classes=4,
                 train=140, test=36, str_collisions=1),
    "mutag-rdf": dict(folder="mutag", nodes=23644, predicates=23, triples=74227, classes=2,
                      train=272, test=68, str_collisions=0),
}
SWRC = "http://swrc.ontoware.org/ontology#"
RESEARCH_TOPIC = f"{SWRC}ResearchTopic"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _root(data_root, name: str) -> Path:
    """The data root holding ``name``'s four raw files, through the ``data_root`` fixture."""
    folder = f"rdf/{EXPECTED[name]['folder']}"
    return data_root(*(f"{folder}/{f}" for f in datasets.info(name).raw_files))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHLEARN_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def loaded():
    """Each real dataset parsed once per module (``validation="none"``)."""
    cache: dict[str, rdf.EntityClassificationDataset] = {}

    def get(data_root, name: str) -> rdf.EntityClassificationDataset:
        if name not in cache:
            cache[name] = datasets.load(name, root=_root(data_root, name), download=False)
        return cache[name]

    return get


# --------------------------------------------------------------------------------------
# Real data: counts


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stats(data_root, loaded, name):
    ds, exp = loaded(data_root, name), EXPECTED[name]
    data = ds.data
    assert isinstance(ds, NodeClassificationDataset) and ds.task is TaskKind.NODE_CLASSIFICATION
    assert data.num_nodes == exp["nodes"] and len(ds.node_names) == exp["nodes"]
    assert data.num_edges == 2 * exp["triples"]
    assert ds.num_relations == data.num_relations == 2 * exp["predicates"]
    assert len(ds.relations) == exp["predicates"]
    assert ds.num_classes == len(ds.classes) == exp["classes"]
    assert ds.num_features == 0 and getattr(data, "x", None) is None
    assert data.edge_index.dtype == data.edge_type.dtype == data.y.dtype == torch.long
    assert int(data.edge_type.min()) == 0 and int(data.edge_type.max()) == ds.num_relations - 1
    assert (data.train_idx.numel(), data.test_idx.numel()) == (exp["train"], exp["test"])
    assert int((data.y >= 0).sum()) == exp["train"] + exp["test"]
    assert torch.equal((data.y >= 0), data.train_mask | data.test_mask)
    assert not (data.train_mask & data.test_mask).any()
    assert ds.split_sizes() == {"train": exp["train"], "val": exp["train"], "test": exp["test"]}
    stats = ds.info.stats
    assert (stats["num_nodes"], stats["num_edges"], stats["num_relations"], stats["num_triples"],
            stats["num_classes"], stats["num_train"], stats["num_test"], stats["num_features"]) == (
        exp["nodes"], 2 * exp["triples"], 2 * exp["predicates"], exp["triples"], exp["classes"],
        exp["train"], exp["test"], 0)
    assert repr(ds) == (f"EntityClassificationDataset({name!r}, nodes={exp['nodes']}, "
                        f"edges={2 * exp['triples']}, relations={2 * exp['predicates']}, "
                        f"classes={exp['classes']}, validation='none')")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_from_the_raw_lines(data_root, loaded, name):
    """Triples, predicates and terms counted from the text, without rdflib."""
    root, exp = _root(data_root, name), EXPECTED[name]
    path = root / "rdf" / exp["folder"] / f"{exp['folder']}_stripped.nt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = {line.strip() for line in f if line.strip()}
    terms, predicates = set(), set()
    for line in lines:
        subject, predicate, rest = line.split(" ", 2)
        terms.update((subject, rest.removesuffix(" .")))
        predicates.add(predicate)
    assert (len(lines), len(predicates), len(terms)) == (
        exp["triples"], exp["predicates"], exp["nodes"])
    ds = loaded(data_root, name)
    assert {f"<{p}>" for p in ds.relations} == predicates


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edges_come_in_inverse_pairs_and_sorted(data_root, loaded, name):
    ds = loaded(data_root, name)
    ei, et, n, r = ds.data.edge_index, ds.data.edge_type, ds.data.num_nodes, ds.num_relations
    key = (ei[0] * n + ei[1]) * r + et
    assert bool((key[1:] > key[:-1]).all())  # sorted by (source, destination, type), no repeats
    forward = et % 2 == 0
    inverse = torch.stack([ei[1, forward], ei[0, forward]])
    inverse_key = (inverse[0] * n + inverse[1]) * r + et[forward] + 1
    assert torch.equal(inverse_key.sort().values, key[~forward])
    # relations are numbered by descending number of triples
    counts = torch.bincount(et[forward] // 2, minlength=r // 2)
    assert bool((counts[1:] <= counts[:-1]).all())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_labels_follow_the_tsv_files(data_root, loaded, name):
    ds, exp = loaded(data_root, name), EXPECTED[name]
    folder = _root(data_root, name) / "rdf" / exp["folder"]
    info = datasets.info(name)
    column = {"aifb": ("person", "label_affiliation"), "mutag-rdf": ("bond", "label_mutagenic")}
    entity, label = column[name]
    for split, file in (("train", info.raw_files[2]), ("test", info.raw_files[3])):
        with open(folder / file, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        index = ds.data[f"{split}_idx"]
        assert index.tolist() == [ds.node_index(row[entity]) for row in rows]  # file order
        names = [ds.classes[c] for c in ds.data.y[index].tolist()]
        if name == "mutag-rdf":  # "1.0" in the split files, "1" in completeDataset.tsv
            assert ds.classes == ["0", "1"]
            assert names == [str(int(float(row[label]))) for row in rows]
        else:
            assert names == [row[label] for row in rows]
    with pytest.raises(InvalidArgumentError, match="is not an entity of"):
        ds.node_index("http://example.org/nope")


def test_terms_keep_their_rdf_identity(data_root, loaded):
    """AIFB has an IRI and a literal that print alike; both stay nodes with their own edges."""
    ds = loaded(data_root, "aifb")
    names = ds.node_names
    iri = names.index(f"<{RESEARCH_TOPIC}>")
    literal = names.index(f'"{RESEARCH_TOPIC}"^^<http://www.w3.org/2001/XMLSchema#string>')
    degree = torch.bincount(ds.data.edge_index[0], minlength=ds.data.num_nodes)
    assert degree[iri] > 0 and degree[literal] > 0
    assert any(n.startswith("_:ub1bL") for n in names)  # blank nodes keep the file's label
    assert len(set(names)) == len(names)


# --------------------------------------------------------------------------------------
# Real data: equality with PyG's Entities


def _pandas_stand_in() -> types.ModuleType:
    """``pandas.read_csv`` as far as ``Entities.process`` uses it.

    Columns whose cells all read as numbers become int or float, as pandas infers them
    (MUTAG's labels are ``0``/``1`` in completeDataset.tsv and ``1.0``/``0.0`` in the split
    files, matched by value).
    """
    number = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

    def column(cells):
        if cells and all(re.fullmatch(r"[+-]?\d+", c) for c in cells):
            return np.array([int(c) for c in cells], dtype=object)
        if cells and all(number.fullmatch(c) for c in cells):
            return np.array([float(c) for c in cells], dtype=object)
        return np.array(cells, dtype=object)

    def read_csv(path, sep=","):
        with open(path, newline="", encoding="utf-8") as f:
            header, *rows = [row for row in csv.reader(f, delimiter=sep) if row]
        return {h: types.SimpleNamespace(values=column([r[i] for r in rows]))
                for i, h in enumerate(header)}

    module = types.ModuleType("pandas")
    module.read_csv = read_csv
    return module


@pytest.fixture(scope="module")
def pyg_entities(tmp_path_factory):
    """PyG's own ``Entities(root, NAME)`` processed from the shared raw files, with the
    node, relation and label numbering it chose (read from ``process``'s locals: PyG draws
    them from set iteration order, which changes with the string hash seed).

    PyG's ``process`` reads the TSVs with pandas, which graphlearn does not depend on; when
    it is not installed, :func:`_pandas_stand_in` takes its place for the duration.
    """
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser
    from torch_geometric.datasets import Entities

    cache = {}

    def get(data_root, name: str):
        if name in cache:
            return cache[name]
        folder = EXPECTED[name]["folder"]
        source = _root(data_root, name) / "rdf" / folder
        root = tmp_path_factory.mktemp(f"pyg-{folder}")
        raw = root / folder / "raw"  # Entities.raw_dir
        raw.mkdir(parents=True)
        for file in datasets.info(name).raw_files:
            (raw / file).symlink_to(source / file)  # present raw files: no download

        captured = {}

        def profile(frame, event, arg):
            if event != "return":
                return
            if frame.f_code is Entities.process.__code__:
                captured["process"] = dict(frame.f_locals)
            elif frame.f_code is W3CNTriplesParser.parse.__code__:
                captured["bnodes"] = dict(frame.f_locals["self"]._bnode_ids)

        with pytest.MonkeyPatch.context() as mp:
            try:
                import pandas  # noqa: F401
            except ImportError:
                mp.setitem(sys.modules, "pandas", _pandas_stand_in())
            previous = sys.getprofile()
            sys.setprofile(profile)
            try:
                dataset = Entities(str(root), folder.upper())
            finally:
                sys.setprofile(previous)
        assert {"nodes", "nodes_dict", "relations_dict", "labels_dict"} <= set(
            captured.get("process", {})), "Entities.process changed: its numbering is not visible"
        cache[name] = (dataset[0], captured["process"], captured.get("bnodes", {}))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_equals_pyg_entities(data_root, loaded, pyg_entities, name):
    """Our tensors are PyG's, tensor for tensor, once PyG's random numbering is mapped."""
    from rdflib.term import URIRef

    ours, exp = loaded(data_root, name), EXPECTED[name]
    pyg, local, bnodes = pyg_entities(data_root, name)
    n, r = ours.data.num_nodes, ours.num_relations
    assert pyg.num_nodes == n
    assert int(pyg.edge_type.max()) + 1 == r
    assert pyg.edge_index.shape == ours.data.edge_index.shape

    # Nodes: the same terms. Map ours to PyG's ids through PyG's own key, str(term).
    labels = {bnode: label for label, bnode in bnodes.items()}
    pyg_names = [rdf.node_name(term, labels) for term in local["nodes"]]
    assert sorted(pyg_names) == sorted(ours.node_names)
    our_id = {name_: i for i, name_ in enumerate(ours.node_names)}
    to_pyg = torch.empty(n, dtype=torch.long)
    for term, name_ in zip(local["nodes"], pyg_names, strict=True):
        to_pyg[our_id[name_]] = local["nodes_dict"][str(term)]
    # PyG gives terms that print alike one id; AIFB has one such pair, MUTAG none.
    assert n - to_pyg.unique().numel() == exp["str_collisions"]

    # Relations: PyG's id of each of our predicates; equal wherever counts do not tie.
    rel_to_pyg = torch.tensor([local["relations_dict"][URIRef(iri)] for iri in ours.relations])
    counts = torch.bincount(ours.data.edge_type[ours.data.edge_type % 2 == 0] // 2)
    untied = [i for i, c in enumerate(counts.tolist()) if (counts == c).sum() == 1]
    assert rel_to_pyg[untied].tolist() == untied
    type_to_pyg = torch.stack([2 * rel_to_pyg, 2 * rel_to_pyg + 1], dim=1).view(-1)

    # Edges: map, sort by PyG's key, compare exactly.
    src, dst = to_pyg[ours.data.edge_index]
    typ = type_to_pyg[ours.data.edge_type]
    perm = ((src * n + dst) * r + typ).argsort(stable=True)
    assert torch.equal(torch.stack([src[perm], dst[perm]]), pyg.edge_index)
    assert torch.equal(typ[perm], pyg.edge_type)

    # Splits and labels.
    assert torch.equal(to_pyg[ours.data.train_idx], pyg.train_idx)
    assert torch.equal(to_pyg[ours.data.test_idx], pyg.test_idx)
    label_to_pyg = {}
    for key, value in local["labels_dict"].items():
        canonical = (str(int(float(key))) if float(key).is_integer() else repr(float(key))) \
            if isinstance(key, (int, float, np.number)) else str(key)
        label_to_pyg[ours.classes.index(canonical)] = value
    class_map = torch.tensor([label_to_pyg[c] for c in range(ours.num_classes)])
    assert torch.equal(class_map[ours.data.y[ours.data.train_idx]], pyg.train_y)
    assert torch.equal(class_map[ours.data.y[ours.data.test_idx]], pyg.test_y)
    if name == "mutag-rdf":  # numeric classes: PyG's set order is 0, 1 as well
        assert torch.equal(ours.data.y[ours.data.train_idx], pyg.train_y)


# --------------------------------------------------------------------------------------
# Validation splits, options, registry


def test_validation_splits(data_root, fresh_cache):
    root = _root(data_root, "aifb")
    official = datasets.load("aifb", root=root, download=False).data
    rgcn = datasets.load("aifb", root=root, download=False, validation="rgcn").data
    assert torch.equal(rgcn.val_idx, official.train_idx[:28])
    assert torch.equal(rgcn.train_idx, official.train_idx[28:])
    strat = datasets.load("aifb", root=root, download=False, validation="stratified").data
    again = datasets.load("aifb", root=root, download=False, validation="stratified",
                          validation_seed=0).data
    other = datasets.load("aifb", root=root, download=False, validation="stratified",
                          validation_seed=1).data
    assert torch.equal(strat.val_idx, again.val_idx)
    assert not torch.equal(strat.val_idx, other.val_idx)
    assert strat.val_idx.numel() == 28 and strat.train_idx.numel() == 112
    for data in (rgcn, strat):
        assert not (data.train_mask & data.val_mask).any()
        assert torch.equal(data.train_mask | data.val_mask, official.train_mask)
        assert torch.equal(data.test_mask, official.test_mask)
        assert torch.equal(data.val_mask.nonzero().view(-1), data.val_idx.sort().values)
    # stratified: every class keeps its share (+-1)
    full = torch.bincount(official.y[official.train_idx], minlength=4).float()
    held = torch.bincount(strat.y[strat.val_idx], minlength=4).float()
    assert bool(((held - 0.2 * full).abs() <= 1).all())
    assert torch.equal(official.val_mask, official.train_mask)


@pytest.mark.parametrize("options, match", [
    (dict(validation="random"), r"validation of dataset 'aifb' must be one of 'none', 'rgcn'"),
    (dict(validation_seed="0"), r"validation_seed of dataset 'aifb' must be an integer"),
    (dict(hetero=True), r"does not take option\(s\) 'hetero'; it takes: download, validation"),
])
def test_bad_options(tmp_path, options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        datasets.load("aifb", root=tmp_path, download=False, **options)


def test_registry_names_and_alias():
    assert {"aifb", "mutag-rdf", "bgs", "am"} <= set(datasets.names())
    assert "rdf-mutag" not in datasets.names()
    assert datasets.info("rdf-mutag") is datasets.info("mutag-rdf") is datasets.info("MUTAG_RDF")
    assert datasets.info("mutag").task is TaskKind.GRAPH_CLASSIFICATION  # the TU dataset
    for name, archive in (("aifb", "aifb"), ("mutag-rdf", "mutag"), ("bgs", "bgs"), ("am", "am")):
        info = datasets.info(name)
        assert info.url == f"https://data.dgl.ai/dataset/{archive}.tgz"  # PyG Entities.url
        assert info.raw_dir == f"rdf/{archive}" and info.raw_files[0] == f"{archive}_stripped.nt.gz"
        assert info.task is TaskKind.NODE_CLASSIFICATION and info.metric == "accuracy"
        assert "Ristoski" in info.citation and "1703.06103" in info.citation
    assert datasets.info("bgs").raw_files[1:] == (
        "completeDataset_lith.tsv", "trainingSet(lith).tsv", "testSet(lith).tsv")


def test_cli_datasets_info(capsys):
    from graphlearn.cli.main import main

    assert main(["datasets", "info", "aifb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("aifb: AIFB institute knowledge graph")
    assert "num_relations=90" in out and "https://data.dgl.ai/dataset/aifb.tgz" in out


def test_loading_does_not_write_into_the_data_root(data_root, fresh_cache):
    root = _root(data_root, "aifb")
    before = _snapshot(root / "rdf" / "aifb")
    first = datasets.load("aifb", root=root, download=False)
    second = datasets.load("aifb", root=root, download=False)  # from the processed cache
    assert _snapshot(root / "rdf" / "aifb") == before
    assert len(list((fresh_cache / "processed").glob("rdf-aifb-*.pt"))) == 1
    assert torch.equal(first.data.edge_index, second.data.edge_index)
    assert first.node_names == second.node_names and first.classes == second.classes


# --------------------------------------------------------------------------------------
# Heterogeneous view


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hetero_view_preserves_nodes_and_edges(data_root, loaded, name):
    ds = loaded(data_root, name)
    data = ds.data
    hetero = rdf.to_hetero(ds)
    assert isinstance(hetero, HeteroData)
    assert sum(hetero[t].num_nodes for t in hetero.node_types) == data.num_nodes
    assert sum(hetero[e].edge_index.size(1) for e in hetero.edge_types) == data.num_edges
    node_ids = torch.cat([hetero[t].node_id for t in hetero.node_types])
    assert torch.equal(node_ids.sort().values, torch.arange(data.num_nodes))
    edge_ids = torch.cat([hetero[e].edge_id for e in hetero.edge_types])
    assert torch.equal(edge_ids.sort().values, torch.arange(data.num_edges))
    for src, rel, dst in hetero.edge_types:
        store = hetero[src, rel, dst]
        back = torch.stack([hetero[src].node_id[store.edge_index[0]],
                            hetero[dst].node_id[store.edge_index[1]]])
        assert torch.equal(back, data.edge_index[:, store.edge_id])
        types = data.edge_type[store.edge_id].unique()
        assert types.numel() == 1
        iri = ds.relations[int(types) // 2]
        assert hetero.relation_iri[rel] == iri and rel.startswith("rev_") == bool(types % 2)
        assert "." not in rel and "." not in src  # usable as ModuleDict keys
    for t in hetero.node_types:
        assert torch.equal(hetero[t].y, data.y[hetero[t].node_id])
        assert torch.equal(hetero[t].train_mask, data.train_mask[hetero[t].node_id])
    literals = [i for i, n in enumerate(ds.node_names) if n.startswith('"')]
    assert hetero["literal"].num_nodes == len(literals)
    assert hetero.node_type_iri["literal"] is None


def test_hetero_types_aifb(data_root, loaded):
    hetero = rdf.to_hetero(loaded(data_root, "aifb"))
    # every labelled person is typed Person (swrc:Person is their most populous class)
    labelled = [t for t in hetero.node_types if bool((hetero[t].y >= 0).any())]
    assert labelled == ["Person"] and hetero.node_type_iri["Person"] == f"{SWRC}Person"
    assert int((hetero["Person"].y >= 0).sum()) == 176
    # three predicates end in "type": qualified by their namespaces
    assert {"rdf_type", "ontology_type", "merge_type"} <= set(hetero.relation_iri)


def _write_graph(folder: Path, text: str, name: str = "aifb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_stripped.nt.gz"
    with gzip.open(path, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.write_text("\r\n".join("\t".join(r) for r in [header, *rows]) + "\r\n")


EX = "http://example.org/"
TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
TINY = "\n".join([
    f"<{EX}alice> {TYPE} <{EX}Person> .",
    f"<{EX}alice> {TYPE} <{EX}Student> .",
    f"<{EX}bob> {TYPE} <{EX}Person> .",
    f"<{EX}carol> {TYPE} <{EX}Student> .",
    f"<{EX}alice> <{EX}knows> <{EX}bob> .",
    f"<{EX}bob> <{EX}knows> _:b1 .",
    f'_:b1 <{EX}name> "Dan"@en .',
    f'<{EX}carol> <{EX}name> "Carol" .',
    f"<{EX}alice> <{SWRC}affiliation> <{EX}group1> .",  # a label predicate: dropped
    f"<{EX}alice> <{EX}knows> <{EX}bob> .",  # duplicate: counts once
    "# a comment",
    "",
])


def _tiny_root(tmp_path: Path, graph: str = TINY, train=None, test=None, complete=None) -> Path:
    folder = tmp_path / "root" / "rdf" / "aifb"
    _write_graph(folder, graph)
    header = ["person", "id", "label_affiliation"]
    train = train if train is not None else [[f"{EX}alice", "1", "g1"], [f"{EX}carol", "2", "g2"]]
    test = test if test is not None else [[f"{EX}bob", "3", "g1"]]
    complete = complete if complete is not None else [[r[0], r[1], r[2]] for r in train + test]
    _write_tsv(folder / "trainingSet.tsv", header, train)
    _write_tsv(folder / "testSet.tsv", header, test)
    _write_tsv(folder / "completeDataset.tsv", ["id", "person", "label_affiliation"],
               [[r[1], r[0], r[2]] for r in complete])
    return tmp_path / "root"


def test_tiny_graph_end_to_end(tmp_path, fresh_cache):
    ds = datasets.load("aifb", root=_tiny_root(tmp_path), download=False)
    data = ds.data
    assert ds.node_names == [f"<{EX}alice>", f"<{EX}Person>", f"<{EX}Student>", f"<{EX}bob>",
                             f"<{EX}carol>", "_:b1", '"Dan"@en', '"Carol"']  # first appearance
    # 4 x type, 2 x knows, 2 x name (ties by IRI); the affiliation triple is gone
    assert ds.relations == [f"{TYPE[1:-1]}", f"{EX}knows", f"{EX}name"]
    assert data.num_edges == 16 and ds.num_relations == 6
    assert ds.classes == ["g1", "g2"] and data.y.tolist() == [0, -1, -1, 0, 1, -1, -1, -1]
    assert data.train_idx.tolist() == [0, 4] and data.test_idx.tolist() == [3]
    tensors = rdf.read_entities(tmp_path / "root" / "rdf" / "aifb", "aifb")
    assert int(tensors["num_dropped"]) == 1 and int(tensors["num_triples"]) == 8

    hetero = rdf.to_hetero(ds)
    # alice is a Person and a Student; both classes have 2 instances: the smaller IRI wins
    assert hetero.node_types == ["Person", "Student", "literal", "untyped"]
    assert hetero["Person"].node_id.tolist() == [0, 3]  # alice, bob
    assert hetero["Student"].node_id.tolist() == [4]  # carol
    assert hetero["literal"].node_id.tolist() == [6, 7]
    assert hetero["untyped"].node_id.tolist() == [1, 2, 5]  # the classes and the blank node
    assert torch.equal(hetero["Person", "knows", "Person"].edge_index, torch.tensor([[0], [1]]))
    assert hetero["Person", "rev_knows", "Person"].edge_index.tolist() == [[1], [0]]
    assert hetero.node_type_iri == {"Person": f"{EX}Person", "Student": f"{EX}Student",
                                    "literal": None, "untyped": None}


def test_to_hetero_needs_the_dataset(tmp_path, fresh_cache):
    ds = datasets.load("aifb", root=_tiny_root(tmp_path), download=False)
    with pytest.raises(InvalidArgumentError, match="needs an EntityClassificationDataset"):
        rdf.to_hetero(ds.data)


# --------------------------------------------------------------------------------------
# Missing files and downloads


@pytest.mark.parametrize("name", ["bgs", "am"])
def test_missing_graph_is_named(data_root, fresh_cache, name):
    root = data_root(f"rdf/{name}")
    graph = f"{name}_stripped.nt.gz"
    if (root / "rdf" / name / graph).exists():
        pytest.skip(f"this data root has {graph}")
    with pytest.raises(DataNotFoundError) as info:
        datasets.load(name, root=root, download=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"missing 1 raw file(s): {graph}." in msg
    assert str(root / "rdf" / name) in msg
    assert f"https://data.dgl.ai/dataset/{name}.tgz" in msg and "extract" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_offline_download_failure_is_named(data_root, fresh_cache, monkeypatch):
    root = data_root("rdf/bgs")
    if (root / "rdf" / "bgs" / "bgs_stripped.nt.gz").exists():
        pytest.skip("this data root has bgs_stripped.nt.gz")
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)
    urls = []

    def offline(url, folder, filename=None):
        urls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(rdf, "download_url", offline)
    with pytest.raises(DataNotFoundError, match=r"bgs_stripped.nt.gz\..*failed.*unreachable"):
        datasets.load("bgs", root=root)
    assert urls == ["https://data.dgl.ai/dataset/bgs.tgz"]


def test_download_extracts_the_archive(tmp_path, fresh_cache, monkeypatch):
    """The fetch path, offline: a fake download serves a DGL-style archive (BGS: its label
    files carry the generic names and are stored under the (lith) names)."""
    source = _tiny_root(tmp_path) / "rdf" / "aifb"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for archived, file in (("bgs_stripped.nt.gz", "aifb_stripped.nt.gz"),
                               ("completeDataset.tsv", "completeDataset.tsv"),
                               ("trainingSet.tsv", "trainingSet.tsv"),
                               ("testSet.tsv", "testSet.tsv"), ("edges.npz", "testSet.tsv")):
            tar.add(source / file, arcname=archived)
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)

    def serve(url, folder, filename=None):
        assert url == "https://data.dgl.ai/dataset/bgs.tgz"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bgs.tgz").write_bytes(buffer.getvalue())
        return folder / "bgs.tgz"

    monkeypatch.setattr(rdf, "download_url", serve)
    # the TSV columns of the tiny files are AIFB's; rename them for BGS
    monkeypatch.setitem(rdf._SOURCES, "bgs", rdf._SOURCES["bgs"].__class__(
        "bgs", "person", "label_affiliation", rdf.LABEL_PREDICATES["aifb"], tsv_suffix="(lith)",
        stats=rdf._SOURCES["bgs"].stats))
    ds = datasets.load("bgs", root=tmp_path / "empty-root")
    assert ds.data.num_nodes == 8
    cached = fresh_cache / "raw" / "rdf" / "bgs"
    assert sorted(p.name for p in cached.iterdir()) == [
        "bgs_stripped.nt.gz", "completeDataset_lith.tsv", "testSet(lith).tsv",
        "trainingSet(lith).tsv"]


# --------------------------------------------------------------------------------------
# Malformed input


@pytest.mark.parametrize("line, match", [
    (f"<{EX}a> <{EX}p> .", r"Unrecognised object type|Failed to eat"),
    (f'"lit" <{EX}p> <{EX}a> .', "Subject must be uriref or nodeID"),
    (f"<{EX}a> <{EX}p> <{EX}b> . trailing", "Trailing garbage|Failed to eat"),
    (f"<{EX}a> <{EX}p> <{EX}b>", r"Failed to eat"),
])
def test_malformed_ntriples_names_file_and_line(tmp_path, fresh_cache, line, match):
    lines = TINY.splitlines()
    lines.insert(2, line)
    root = _tiny_root(tmp_path, graph="\n".join(lines))
    with pytest.raises(DataFormatError, match=match) as info:
        datasets.load("aifb", root=root, download=False)
    msg = str(info.value)
    assert msg.startswith(f"{root / 'rdf' / 'aifb' / 'aifb_stripped.nt.gz'}, line 3: ")
    assert line[:20] in msg


def test_bad_utf8_names_the_line(tmp_path, fresh_cache):
    lines = TINY.encode().splitlines()
    lines.insert(4, f'<{EX}a> <{EX}p> "caf'.encode() + b'\xe9" .')
    root = _tiny_root(tmp_path, graph="")
    _write_graph(root / "rdf" / "aifb", b"\n".join(lines))
    with pytest.raises(DataFormatError, match=r"aifb_stripped.nt.gz, line 5: not valid UTF-8"):
        datasets.load("aifb", root=root, download=False)


@pytest.mark.parametrize("payload, match", [
    (b"<html>404</html>", "cannot be read as gzip-compressed N-Triples"),
    (gzip.compress(TINY.encode())[:60], "cannot be read as gzip-compressed N-Triples"),
    (gzip.compress(b"# only a comment\n"), "holds no triples"),
])
def test_unreadable_graph_file(tmp_path, fresh_cache, payload, match):
    root = _tiny_root(tmp_path)
    (root / "rdf" / "aifb" / "aifb_stripped.nt.gz").write_bytes(payload)
    with pytest.raises(DataFormatError, match=match) as info:
        datasets.load("aifb", root=root, download=False)
    assert "aifb_stripped.nt.gz" in str(info.value)


def test_tsv_missing_column(tmp_path, fresh_cache):
    root = _tiny_root(tmp_path)
    path = root / "rdf" / "aifb" / "trainingSet.tsv"
    _write_tsv(path, ["person", "id", "label"], [[f"{EX}alice", "1", "g1"]])
    with pytest.raises(DataFormatError) as info:
        datasets.load("aifb", root=root, download=False)
    msg = str(info.value)
    assert msg.startswith(f"{path}, line 1: the header has no column 'label_affiliation'")
    assert "'person', 'id', 'label'" in msg


@pytest.mark.parametrize("train, complete, match", [
    ([[f"{EX}alice", "1"]], None, r"trainingSet.tsv, line 2: 2 tab-separated field\(s\)"),
    ([[f"{EX}alice", "1", "g1"], [f"{EX}zoe", "2", "g2"]], None,
     r"trainingSet.tsv, line 3: entity 'http://example.org/zoe' does not occur"),
    ([[f"{EX}alice", "1", "g9"]], [[f"{EX}alice", "1", "g1"]],
     r"trainingSet.tsv, line 2: label 'g9' is not among the 1 classes of completeDataset.tsv"),
    ([[f"{EX}alice", "1", "g1"], [f"{EX}bob", "2", "g1"]], None,
     r"testSet.tsv, line 2: entity 'http://example.org/bob' is labelled twice"),
    ([[f"{EX}alice", "1", ""]], None, r"trainingSet.tsv, line 2: column 'label_affiliation' is empty"),
])
def test_tsv_bad_rows_name_file_and_line(tmp_path, fresh_cache, train, complete, match):
    complete = complete or [[f"{EX}alice", "1", "g1"], [f"{EX}bob", "3", "g1"]]
    root = _tiny_root(tmp_path, train=train, complete=complete)
    with pytest.raises(DataFormatError, match=match):
        datasets.load("aifb", root=root, download=False)


def test_cache_is_only_tensors(tmp_path, fresh_cache):
    """The processed cache is read back with weights_only=True: plain tensors, no pickles."""
    datasets.load("aifb", root=_tiny_root(tmp_path), download=False)
    (path,) = (fresh_cache / "processed").glob("rdf-aifb-*.pt")
    cached = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in cached.values())
