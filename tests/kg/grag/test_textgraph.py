"""`graphlearn.kg.grag.TextGraph`: storage, every constructor, subgraphs and errors."""

from collections import Counter

import networkx as nx
import pytest
import torch
from graphlearn.kg import KnowledgeGraph
from graphlearn.kg.grag import TextGraph, parse_graph_string
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDFS

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

EX = Namespace("http://example.org/")
TRIPLES = [("alice", "knows", "bob"), ("bob", "lives in", "paris"), ("carol", "parent of", "alice"),
           ("alice", "knows", "bob"), ("bob", "likes", "bob")]


def _graph() -> TextGraph:
    return TextGraph.from_triples(TRIPLES, nodes=["dave"])


def test_storage_and_triples():
    g = _graph()
    assert g.node_text == ["dave", "alice", "bob", "paris", "carol"]
    assert g.num_nodes == 5 and g.num_edges == 5
    assert g.edges.dtype == torch.long and g.edges.shape == (5, 2)
    assert g.edges.tolist() == [[1, 2], [2, 3], [4, 1], [1, 2], [2, 2]]
    assert g.edge_index.shape == (2, 5) and torch.equal(g.edge_index, g.edges.t())
    assert g.edge_text == ["knows", "lives in", "parent of", "knows", "likes"]
    assert g.triples() == TRIPLES  # parallel edge and self-loop kept, in order
    assert g.node_id("paris") == 3 and "carol" in g and "zoe" not in g
    assert g.degree().tolist() == [0, 3, 5, 1, 1]  # a self-loop counts twice
    assert repr(g) == "TextGraph(nodes=5, edges=5)"


def test_any_text_is_allowed():
    odd = ["", " padded ", "line\nbreak", "tab\tstop", "日本語", "a -> b", '"q"', "\\"]
    g = TextGraph.from_triples([(odd[i], odd[-1 - i], odd[(i + 3) % len(odd)]) for i in range(len(odd))])
    assert set(g.node_text) == set(odd)
    assert Counter(g.triples()) == Counter((odd[i], odd[-1 - i], odd[(i + 3) % len(odd)])
                                           for i in range(len(odd)))


def test_empty_graph():
    g = TextGraph([])
    assert g.num_nodes == 0 and g.num_edges == 0 and g.edges.shape == (0, 2)
    assert g.triples() == [] and TextGraph.from_triples([]).num_nodes == 0


def test_constructor_errors():
    with pytest.raises(InvalidArgumentError, match=r"node_text\[0\] and node_text\[2\] are both 'a'"):
        TextGraph(["a", "b", "a"])
    with pytest.raises(DTypeError, match=r"node_text\[1\] is int"):
        TextGraph(["a", 3])
    with pytest.raises(DTypeError, match="list of str"):
        TextGraph("abc")
    with pytest.raises(ShapeError, match=r"shape \(E, 2\).*\(2, 3\)"):
        TextGraph(["a", "b"], torch.zeros(2, 3, dtype=torch.long), ["r", "r"])
    with pytest.raises(ShapeError, match="edge_text has 1"):
        TextGraph(["a", "b"], [[0, 1], [1, 0]], ["r"])
    with pytest.raises(IndexOutOfRangeError, match="node id 2 outside"):
        TextGraph(["a", "b"], [[0, 2]], ["r"])
    with pytest.raises(DTypeError, match="integer node ids"):
        TextGraph(["a", "b"], torch.tensor([[0.0, 1.0]]), ["r"])
    with pytest.raises(DataFormatError, match=r"triples\[1\]"):
        TextGraph.from_triples([("a", "r", "b"), ("a", "r")])
    with pytest.raises(DTypeError, match=r"triples\[0\] has tail 3"):
        TextGraph.from_triples([("a", "r", 3)])
    with pytest.raises(DTypeError, match=r"nodes\[0\]"):
        TextGraph.from_triples([], nodes=[None])
    with pytest.raises(IndexOutOfRangeError, match="no node has text 'alicee'.*closest: 'alice'"):
        _graph().node_id("alicee")


def test_from_knowledge_graph_keeps_every_entity():
    kg = KnowledgeGraph.from_triples({"train": [("a", "r", "b")], "test": [("b", "s", "c")]},
                                     entities=["z", "a", "b", "c"])
    g = TextGraph.from_knowledge_graph(kg)
    assert g.node_text == ["z", "a", "b", "c"]
    assert g.triples() == [("a", "r", "b"), ("b", "s", "c")]
    assert TextGraph.from_knowledge_graph(kg, split="test").triples() == [("b", "s", "c")]
    assert TextGraph.from_knowledge_graph(kg, split=["train"]).num_edges == 1
    with pytest.raises(InvalidArgumentError, match="no split 'valid'"):
        TextGraph.from_knowledge_graph(kg, split="valid")


def test_from_tsv(tmp_path):
    path = tmp_path / "kb.txt"
    path.write_text("alice\tknows\tbob\n\nbob\tlives in\tparis\n", encoding="utf-8")
    assert TextGraph.from_tsv(path).triples() == [("alice", "knows", "bob"), ("bob", "lives in", "paris")]
    path.write_text("alice\tknows\tbob\nbob\tlives in\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"kb\.txt:2: expected 3 tab-separated fields"):
        TextGraph.from_tsv(path)
    with pytest.raises(DataNotFoundError):
        TextGraph.from_tsv(tmp_path / "missing.txt")


def test_graph_string():
    s = "(cannabis; synonym of; marijuana)(legal; causes; more available) (marijuana; capable of; good thing)"
    g = TextGraph.from_graph_string(s)
    assert g.triples() == [("cannabis", "synonym of", "marijuana"), ("legal", "causes", "more available"),
                           ("marijuana", "capable of", "good thing")]
    assert g.num_nodes == 5
    assert parse_graph_string("") == [] and parse_graph_string("  ") == []
    assert parse_graph_string("(a;b;c)") == [("a", "b", "c")]


@pytest.mark.parametrize(("text", "pattern"), [
    ("(a; b; c)x(d; e; f)", r"position 9: expected '\(' but found 'x'"),
    ("(a; b; c)(d; e; f", r"position 9: this '\(' is never closed"),
    ("(a; b)(c; d; e)", r"position 0: the triple '\(a; b\)' has 2"),
    ("(a; b; c; d)", "has 4 ';'-separated"),
    ("(a; ; c)", "has an empty field"),
    ("(a; (b; c)", r"position 4: '\(' inside a triple"),
    ("a; b; c", r"position 0: expected '\('"),
])
def test_graph_string_errors_name_fragment_and_position(text, pattern):
    with pytest.raises(DataFormatError, match=pattern):
        TextGraph.from_graph_string(text)


def test_from_rdf_uses_labels_and_local_names(tmp_path):
    rdf = Graph()
    rdf.add((EX.alice, EX.knows, EX.bob))
    rdf.add((EX.alice, RDFS.label, Literal("Alice", lang="en")))
    rdf.add((EX.alice, RDFS.label, Literal("Alicia", lang="es")))
    rdf.add((EX.bob, RDFS.label, Literal("Bob")))
    rdf.add((EX.bob, URIRef("http://example.org/ns#age"), Literal(42)))
    rdf.add((EX.knows, RDFS.label, Literal("is acquainted with")))
    rdf.add((EX.dave, RDFS.label, Literal("Dave")))  # only a label: an isolated node
    rdf.add((EX.bob, EX.friend, BNode("b0")))
    g = TextGraph.from_rdf(rdf)
    triples = Counter(g.triples())
    assert triples[("Alice", "is acquainted with", "Bob")] == 1
    assert triples[("Bob", "age", "42")] == 1
    assert {"Alice", "Bob", "42", "Dave"} <= set(g.node_text)
    assert sum(1 for h, r, t in g.triples() if r == "friend" and t.startswith("_:")) == 1
    assert g.num_edges == 3 and g.num_nodes == 5
    path = tmp_path / "g.ttl"
    rdf.serialize(path, format="turtle")
    assert Counter(TextGraph.from_rdf(path).triples()) == triples


def test_from_rdf_keeps_resources_with_the_same_label_apart():
    rdf = Graph()
    rdf.add((EX.paris_fr, RDFS.label, Literal("Paris")))
    rdf.add((EX.paris_tx, RDFS.label, Literal("Paris")))
    rdf.add((EX.alice, EX.visited, EX.paris_fr))
    rdf.add((EX.alice, EX.visited, EX.paris_tx))
    g = TextGraph.from_rdf(rdf)
    assert g.num_nodes == 3
    assert sorted(t for _, _, t in g.triples()) == [f"Paris <{EX.paris_fr}>", f"Paris <{EX.paris_tx}>"]
    with pytest.raises(InvalidArgumentError, match="rdflib Graph or a file path"):
        TextGraph.from_rdf(42)


def test_networkx_round_trip_and_plain_graphs():
    g = _graph()
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.MultiDiGraph) and nxg.number_of_nodes() == 5
    assert nxg.number_of_edges() == 5
    back = TextGraph.from_networkx(nxg)
    assert back.node_text == g.node_text and Counter(back.triples()) == Counter(g.triples())
    plain = nx.DiGraph()
    plain.add_edge("x", "y", relation="r")
    plain.add_node("z", text="Zed")
    assert TextGraph.from_networkx(plain).triples() == [("x", "r", "y")]
    assert TextGraph.from_networkx(plain).node_text == ["x", "y", "Zed"]
    keyed = nx.MultiDiGraph()
    keyed.add_edge("x", "y", key="rel")
    assert TextGraph.from_networkx(keyed).triples() == [("x", "rel", "y")]
    bad = nx.Graph()
    bad.add_edge("x", "y")
    with pytest.raises(DataFormatError, match="has no 'relation' attribute"):
        TextGraph.from_networkx(bad)
    clash = nx.Graph()
    clash.add_node(1, text="same")
    clash.add_node(2, text="same")
    with pytest.raises(DataFormatError, match="both have text 'same'"):
        TextGraph.from_networkx(clash)


def test_to_pyg():
    data = _graph().to_pyg()
    assert data.num_nodes == 5 and data.edge_index.shape == (2, 5)
    assert data.node_text[1] == "alice" and data.edge_text[4] == "likes"


def test_subgraph_is_induced():
    g = _graph()
    sub, kept = g.subgraph([2, 1, 1])
    assert kept.tolist() == [1, 2]
    assert sub.node_text == ["alice", "bob"]
    assert sub.triples() == [("alice", "knows", "bob"), ("alice", "knows", "bob"), ("bob", "likes", "bob")]
    mask = torch.tensor([False, False, True, True, False])
    sub, kept = g.subgraph(mask)
    assert kept.tolist() == [2, 3] and sub.triples() == [("bob", "lives in", "paris"), ("bob", "likes", "bob")]
    empty, kept = g.subgraph([])
    assert empty.num_nodes == 0 and kept.numel() == 0
    with pytest.raises(IndexOutOfRangeError, match="node id 9"):
        g.subgraph([0, 9])
    with pytest.raises(ShapeError, match=r"shape \(5,\)"):
        g.subgraph(torch.tensor([True, False]))


def test_k_hop_subgraph_directions():
    g = _graph()  # carol -> alice -> bob -> paris
    sub, kept = g.k_hop_subgraph([g.node_id("alice")], 1)
    assert set(sub.node_text) == {"alice", "bob", "carol"}
    sub, _ = g.k_hop_subgraph(g.node_id("alice"), 1, direction="out")
    assert set(sub.node_text) == {"alice", "bob"}
    sub, _ = g.k_hop_subgraph(g.node_id("alice"), 1, direction="in")
    assert set(sub.node_text) == {"alice", "carol"}
    sub, _ = g.k_hop_subgraph(g.node_id("carol"), 2, direction="out")
    assert set(sub.node_text) == {"carol", "alice", "bob"}
    sub, _ = g.k_hop_subgraph(g.node_id("carol"), 0)
    assert sub.node_text == ["carol"] and sub.num_edges == 0
    with pytest.raises(InvalidArgumentError, match="direction"):
        g.k_hop_subgraph(0, 1, direction="up")
    with pytest.raises(InvalidArgumentError, match="num_hops"):
        g.k_hop_subgraph(0, -1)
