"""`graphlearn.kg.convert`: RDF (four syntaxes), networkx and PyG round trips; RDF datasets."""

import gzip
import warnings

import networkx as nx
import pytest
import torch
from graphlearn.kg import KnowledgeGraph, LinkPredictionDataset
from graphlearn.kg.convert import (
    DEFAULT_BASE,
    from_networkx,
    from_pyg,
    from_rdf,
    label_to_term,
    load_rdf_dataset,
    split_triples,
    term_to_label,
    to_networkx,
    to_pyg,
    to_rdf,
)
from rdflib import BNode, Graph, Literal, Namespace, URIRef

from graphlearn import datasets
from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    EmptyGraphError,
    InvalidArgumentError,
    ShapeError,
)

EX = Namespace("http://example.org/")

# labels a TSV file cannot hold or an IRI cannot contain as they are
ENTITIES = ["alice", "bob smith", "Zürich", 'say "hi"', "a#b", "line\nbreak", "tab\tstop",
            "  padded ", "http://example.org/x", "http://example.org/Zürich", "urn:graphlearn:tricky",
            "100%", "/m/027rn", "_:not_a_bnode", "ex:alice", "<angle>", "a&b", "'single'", "日本語",
            "emoji 🙂", "", "%41"]
# relations must end in an XML name for RDF/XML (see to_rdf); other syntaxes take anything
RELATIONS = ["knows", "has part", "relé✓x", "http://example.org/rel#p", "a#b", "x%y", "_1",
             "quote\"d"]
ODD_RELATIONS = ["123", "ends with space ", "ends%", "new\nline"]


def _awkward_kg(relations=RELATIONS) -> KnowledgeGraph:
    triples = [(ENTITIES[i % len(ENTITIES)], relations[i % len(relations)],
                ENTITIES[(5 * i + 3) % len(ENTITIES)]) for i in range(3 * len(ENTITIES))]
    return KnowledgeGraph.from_triples({"train": triples[::2], "test": triples[1::2]},
                                       entities=ENTITIES)


def _same(kg: KnowledgeGraph, back: KnowledgeGraph) -> None:
    assert set(back.labeled_triples("train")) == {t for s in kg.splits for t in kg.labeled_triples(s)}
    assert set(back.entities) == set(kg.entities)
    assert set(back.relations) == set(kg.relations)


@pytest.mark.parametrize(
    ("fmt", "ext", "relations"),
    [("turtle", "ttl", RELATIONS + ODD_RELATIONS), ("nt", "nt", RELATIONS + ODD_RELATIONS),
     ("xml", "rdf", RELATIONS), ("pretty-xml", "owl", RELATIONS),
     ("json-ld", "jsonld", RELATIONS + ODD_RELATIONS)],
)
def test_rdf_file_round_trip(tmp_path, fmt, ext, relations):
    kg = _awkward_kg(relations)
    path = tmp_path / f"graph.{ext}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rdflib's N-Triples encoding notice
        to_rdf(kg).serialize(path, format=fmt)
    back = from_rdf(path)
    _same(kg, back)
    assert back.name == path.name
    # parsing is deterministic: same file, same ids
    again = from_rdf(path)
    assert again.entities == back.entities and torch.equal(again.splits["train"],
                                                           back.splits["train"])


def test_rdf_gzip_and_explicit_format(tmp_path):
    kg = _awkward_kg()
    text = to_rdf(kg).serialize(format="turtle")
    gz = tmp_path / "graph.ttl.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    _same(kg, from_rdf(gz))
    odd = tmp_path / "graph.data"
    odd.write_text(text)
    with pytest.raises(DataFormatError, match="format="):
        from_rdf(odd)
    _same(kg, from_rdf(odd, format="turtle"))


def test_in_memory_round_trip_and_split_selection():
    kg = _awkward_kg(RELATIONS + ODD_RELATIONS)
    _same(kg, from_rdf(to_rdf(kg)))
    only_test = from_rdf(to_rdf(kg, "test"))
    assert set(only_test.labeled_triples("train")) == set(kg.labeled_triples("test"))
    assert len(to_rdf(kg, ["train", "test"])) == len(to_rdf(kg))


def test_label_terms():
    assert label_to_term("http://example.org/a") == URIRef("http://example.org/a")
    assert label_to_term("has part") == URIRef(DEFAULT_BASE + "has%20part")
    # a label that already looks minted is minted again, so decoding cannot confuse them
    assert term_to_label(label_to_term(DEFAULT_BASE + "x")) == DEFAULT_BASE + "x"
    assert term_to_label(label_to_term("x y", base="http://ex.org/k/"), base="http://ex.org/k/") == "x y"
    assert term_to_label(BNode("b1")) == "_:b1"
    assert term_to_label(Literal(3)) == '"3"^^<http://www.w3.org/2001/XMLSchema#integer>'
    with pytest.raises(InvalidArgumentError, match="base"):
        to_rdf(KnowledgeGraph.from_triples([("a", "r", "b")]), base="not an iri")


def test_custom_base_round_trip(tmp_path):
    kg = _awkward_kg()
    g = to_rdf(kg, base="http://example.org/kg/")
    assert URIRef("http://example.org/kg/bob%20smith") in set(g.all_nodes())
    _same(kg, from_rdf(g, base="http://example.org/kg/"))


def _literal_graph() -> Graph:
    g = Graph()
    g.add((EX.alice, EX.knows, EX.bob))
    g.add((EX.alice, EX.age, Literal(42)))
    g.add((EX.bob, EX.name, Literal("Bob", lang="en")))
    g.add((EX.bob, EX.note, Literal('multi\nline "quoted"')))
    return g


def test_literals_skipped_by_default_or_kept_as_entities(tmp_path):
    g = _literal_graph()
    kg = from_rdf(g)
    assert kg.labeled_triples("train") == [("http://example.org/alice", "http://example.org/knows",
                                            "http://example.org/bob")]
    kept = from_rdf(g, literals="entities")
    assert kept.splits["train"].size(0) == 4
    assert '"42"^^<http://www.w3.org/2001/XMLSchema#integer>' in kept.entities
    assert '"Bob"@en' in kept.entities
    # the same through a file
    path = tmp_path / "lit.ttl"
    g.serialize(path, format="turtle")
    assert set(from_rdf(path, literals="entities").labeled_triples("train")) == set(
        kept.labeled_triples("train"))
    with pytest.raises(InvalidArgumentError, match="literals"):
        from_rdf(g, literals="drop")


def test_only_literals_is_empty():
    g = Graph()
    g.add((EX.alice, EX.age, Literal(42)))
    with pytest.raises(EmptyGraphError, match="literals='entities'"):
        from_rdf(g)
    with pytest.raises(EmptyGraphError):
        from_rdf(Graph())


def test_blank_nodes_get_stable_labels(tmp_path):
    text = """@prefix ex: <http://example.org/> .
ex:a ex:p [ ex:q ex:c ; ex:r [ ex:q ex:d ] ] .
_:x ex:p ex:a .
"""
    path = tmp_path / "b.ttl"
    path.write_text(text)
    first, second = from_rdf(path), from_rdf(path)
    assert first.entities == second.entities
    assert torch.equal(first.splits["train"], second.splits["train"])
    bnodes = [e for e in first.entities if e.startswith("_:")]
    assert len(bnodes) == 3
    # the labels depend on the content, not on the syntax it was written in
    nt = tmp_path / "b.nt"
    Graph().parse(path).serialize(nt, format="nt", encoding="utf-8")
    assert set(from_rdf(nt).entities) == set(first.entities)
    # and survive a round trip (as ordinary labels)
    _same(first, from_rdf(to_rdf(first)))


def test_malformed_files(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://example.org/> .\nex:a ex:p ex:b\nex:c ex:d .\n")
    with pytest.raises(DataFormatError) as info:
        from_rdf(bad)
    message = str(info.value)
    assert str(bad) in message and "turtle" in message and "Bad syntax" in message
    xml = tmp_path / "bad.rdf"
    xml.write_text("<rdf:RDF><unclosed></rdf:RDF>")
    with pytest.raises(DataFormatError, match="bad.rdf"):
        from_rdf(xml)
    js = tmp_path / "bad.jsonld"
    js.write_text("{not json")
    with pytest.raises(DataFormatError, match="bad.jsonld"):
        from_rdf(js)
    with pytest.raises(DataNotFoundError):
        from_rdf(tmp_path / "missing.ttl")
    with pytest.raises(InvalidArgumentError):
        from_rdf(42)


def test_quads_are_read_as_their_union(tmp_path):
    path = tmp_path / "g.nq"
    path.write_text("<http://e/a> <http://e/p> <http://e/b> <http://e/g1> .\n"
                    "<http://e/b> <http://e/p> <http://e/c> .\n")
    assert from_rdf(path).splits["train"].size(0) == 2


# ---------------------------------------------------------------------------- networkx
def test_networkx_round_trip_keeps_ids_and_isolated_entities():
    kg = KnowledgeGraph.from_triples(
        {"train": [("a", "r", "b"), ("b", "s", "c"), ("a", "s", "b")], "valid": [("c", "r", "a")]},
        entities=["iso", "a", "b", "c", "iso2"], relations=["s", "r", "unused"], name="toy")
    g = to_networkx(kg)
    assert isinstance(g, nx.MultiDiGraph)
    assert list(g.nodes) == kg.entities
    assert g.number_of_edges() == 4
    assert g.edges["a", "b", "s"] == {"relation": "s", "split": "train"}
    assert g.edges["c", "a", "r"]["split"] == "valid"
    back = from_networkx(g)
    assert back.entities == kg.entities and back.relations == kg.relations
    assert back.name == "toy"
    for split in kg.splits:  # same ids; networkx orders edges by node, not by insertion
        assert sorted(back.splits[split].tolist()) == sorted(kg.splits[split].tolist())
    assert to_networkx(kg, "valid").number_of_edges() == 1


def test_from_plain_networkx_graphs():
    g = nx.DiGraph()
    g.add_edge(1, 2, relation="r")
    g.add_edge(2, 3, relation="r", split="test")
    g.add_node("lonely")
    kg = from_networkx(g)
    assert kg.entities == ["1", "2", "3", "lonely"]
    assert kg.labeled_triples("test") == [("2", "r", "3")]
    m = nx.MultiDiGraph()
    m.add_edge("a", "b", key="likes")  # a string key names the relation
    assert from_networkx(m).labeled_triples("train") == [("a", "likes", "b")]
    with pytest.raises(DataFormatError, match="default_relation"):
        from_networkx(nx.path_graph(3))
    kg = from_networkx(nx.path_graph(3), default_relation="next")
    assert kg.labeled_triples("train") == [("0", "next", "1"), ("1", "next", "2")]
    clash = nx.Graph()
    clash.add_nodes_from([1, "1"])
    with pytest.raises(DataFormatError, match="same str"):
        from_networkx(clash)


# ---------------------------------------------------------------------------- PyG
def test_pyg_round_trip():
    kg = _awkward_kg()
    data = to_pyg(kg, "train")
    t = kg.splits["train"]
    assert data.edge_index.shape == (2, t.size(0)) and data.edge_type.shape == (t.size(0),)
    assert torch.equal(data.edge_index, t[:, [0, 2]].T) and torch.equal(data.edge_type, t[:, 1])
    assert data.num_nodes == kg.num_entities
    assert data.entities == kg.entities and data.relations == kg.relations
    back = from_pyg(data)
    assert back.entities == kg.entities and back.relations == kg.relations
    assert torch.equal(back.splits["train"], t)
    every = to_pyg(kg, None)
    assert every.edge_type.numel() == kg.triples().size(0)


def test_from_pyg_default_labels_and_errors():
    from torch_geometric.data import Data

    data = Data(edge_index=torch.tensor([[0, 1], [1, 3]]), edge_type=torch.tensor([0, 2]),
                num_nodes=5)
    kg = from_pyg(data, split="test")
    assert kg.entities == ["0", "1", "2", "3", "4"] and kg.relations == ["0", "1", "2"]
    assert kg.labeled_triples("test") == [("0", "0", "1"), ("1", "2", "3")]
    named = from_pyg(data, entities=list("abcde"), relations=["p", "q", "r"])
    assert named.labeled_triples("train")[1] == ("b", "r", "d")
    with pytest.raises(InvalidArgumentError, match="edge_type"):
        from_pyg(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    with pytest.raises(ShapeError, match="edge_type"):
        from_pyg(Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([0, 1]),
                      num_nodes=2))


# ---------------------------------------------------------------------------- datasets
def _ring_graph(n_entities=60, n_relations=4, extra=200, seed=0) -> KnowledgeGraph:
    gen = torch.Generator().manual_seed(seed)
    triples = [(f"e{i}", f"r{i % n_relations}", f"e{(i + 1) % n_entities}") for i in range(n_entities)]
    h = torch.randint(0, n_entities, (extra,), generator=gen).tolist()
    r = torch.randint(0, n_relations, (extra,), generator=gen).tolist()
    t = torch.randint(0, n_entities, (extra,), generator=gen).tolist()
    triples += [(f"e{a}", f"r{b}", f"e{c}") for a, b, c in zip(h, r, t, strict=True)]
    return KnowledgeGraph.from_triples(sorted(set(triples)))


def _rdf_file(tmp_path, kg=None):
    path = tmp_path / "graph.ttl"
    to_rdf(kg or _ring_graph()).serialize(path, format="turtle")
    return path


def _info(name="graph"):
    from graphlearn.data.dataset import DatasetInfo, TaskKind

    return DatasetInfo(name=name, task=TaskKind.LINK_PREDICTION, description="", metric="mrr",
                       splits="", url="", citation="", license="")


def test_split_properties():
    kg = _ring_graph()
    triples = kg.splits["train"]
    s = split_triples(triples, seed=3, valid_fraction=0.2, test_fraction=0.2)
    rows = {k: {tuple(t) for t in v.tolist()} for k, v in s.items()}
    assert rows["train"] | rows["valid"] | rows["test"] == {tuple(t) for t in triples.tolist()}
    assert sum(len(v) for v in rows.values()) == triples.size(0)  # disjoint
    assert len(rows["valid"]) > 0 and len(rows["test"]) > 0
    train_ents = {e for h, _, t in rows["train"] for e in (h, t)}
    train_rels = {r for _, r, _ in rows["train"]}
    for split in ("valid", "test"):
        for h, r, t in rows[split]:
            assert h in train_ents and t in train_ents and r in train_rels
    again = split_triples(triples, seed=3, valid_fraction=0.2, test_fraction=0.2)
    assert all(torch.equal(again[k], s[k]) for k in s)
    other = split_triples(triples, seed=4, valid_fraction=0.2, test_fraction=0.2)
    assert not torch.equal(other["test"], s["test"])
    none = split_triples(triples, valid_fraction=0.0, test_fraction=0.0)
    assert none["valid"].shape == (0, 3) and torch.equal(none["train"], triples)


def test_split_moves_unseen_entities_back_to_train():
    # a star: every leaf occurs in one triple only, so no leaf triple can be held out
    triples = torch.tensor([[0, 0, i] for i in range(1, 30)])
    s = split_triples(triples, seed=0, valid_fraction=0.3, test_fraction=0.3)
    assert s["valid"].size(0) == 0 and s["test"].size(0) == 0 and s["train"].size(0) == 29


@pytest.mark.parametrize("fractions", [(-0.1, 0.1), (0.1, 1.0), (0.6, 0.5)])
def test_split_fraction_errors(fractions):
    with pytest.raises(InvalidArgumentError, match="fraction"):
        split_triples(torch.zeros(4, 3, dtype=torch.long), valid_fraction=fractions[0],
                      test_fraction=fractions[1])


def test_load_rdf_dataset(tmp_path):
    path = _rdf_file(tmp_path)
    ds = load_rdf_dataset(path, _info(), split_seed=1, valid_fraction=0.15, test_fraction=0.15)
    assert isinstance(ds, LinkPredictionDataset) and not ds.inductive
    g = ds.graph
    sizes = {k: v.size(0) for k, v in g.splits.items()}
    assert sum(sizes.values()) == _ring_graph().splits["train"].size(0)
    assert sizes["valid"] > 0 and sizes["test"] > 0
    known = set(g.splits["train"][:, [0, 2]].flatten().tolist())
    assert set(g.triples("valid", "test")[:, [0, 2]].flatten().tolist()) <= known
    again = load_rdf_dataset(path, _info(), split_seed=1, valid_fraction=0.15, test_fraction=0.15)
    assert all(torch.equal(again.graph.splits[k], g.splits[k]) for k in g.splits)


def test_datasets_load_accepts_rdf_and_tsv_paths(tmp_path):
    path = _rdf_file(tmp_path)
    ds = datasets.load(str(path), split_seed=2, test_fraction=0.2)
    assert isinstance(ds, LinkPredictionDataset) and ds.info.name == "graph.ttl"
    assert ds.graph.splits["test"].size(0) > 0
    folder = tmp_path / "tsv"
    _ring_graph().to_tsv(folder)
    ds = datasets.load(str(folder))
    assert isinstance(ds, LinkPredictionDataset)
    assert ds.graph.entities == _ring_graph().entities
    with pytest.raises(DataFormatError, match="no options"):
        datasets.load(str(folder), split_seed=1)
    with pytest.raises(InvalidArgumentError, match="'nonsense'"):
        datasets.load(str(path), nonsense=1)
