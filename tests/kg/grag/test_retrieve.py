"""`graphlearn.kg.grag.retrieve`: GRAG retrieval and the text-RAG / k-hop baselines."""

import pytest
import torch
from graphlearn.kg.grag import (
    GraphIndex,
    HashingEncoder,
    Retrieval,
    TextGraph,
    describe,
    khop_baseline,
    parse_description,
    retrieve,
    text_rag,
)

from graphlearn.errors import (
    DTypeError,
    EmptyGraphError,
    IndexOutOfRangeError,
    InvalidArgumentError,
)

TOPIC = [
    ("volcano eruption", "produces", "lava flow"),
    ("magma chamber", "feeds", "volcano eruption"),
    ("volcano eruption", "releases", "volcanic ash cloud"),
]
QUESTION = "Which volcano eruption produces a lava flow fed by the magma chamber, and what ash?"
SYLLABLES = ["ka", "bo", "ri", "tu", "me", "zo", "pi", "la", "ne", "gu", "so", "wy"]
RELATIONS = ["likes", "owns", "is near", "part of", "sells"]


def planted_graph(num_noise: int = 300, seed: int = 0) -> TextGraph:
    """A noise graph of made-up words with a topic cluster whose texts share words with
    QUESTION, joined to the noise by one edge."""
    g = torch.Generator().manual_seed(seed)
    names = set()
    while len(names) < num_noise:
        idx = torch.randint(0, len(SYLLABLES), (6,), generator=g).tolist()
        names.add("".join(SYLLABLES[i] for i in idx[:3]) + " " +
                  "".join(SYLLABLES[i] for i in idx[3:]))
    names = sorted(names)
    triples = []
    for _ in range(3 * num_noise):
        h, t = torch.randint(0, num_noise, (2,), generator=g).tolist()
        r = RELATIONS[int(torch.randint(0, len(RELATIONS), (1,), generator=g))]
        triples.append((names[h], r, names[t]))
    triples += TOPIC + [("magma chamber", "is near", names[0])]
    return TextGraph.from_triples(triples)


@pytest.fixture(scope="module")
def index() -> GraphIndex:
    return GraphIndex.build(planted_graph(), HashingEncoder(256), num_hops=1)


def test_retrieve_returns_the_planted_subgraph(index):
    r = retrieve(index, QUESTION, k=2)
    assert isinstance(r, Retrieval) and r.method == "grag"
    topic_nodes = {x for h, _, t in TOPIC for x in (h, t)}
    assert topic_nodes <= set(r.graph.node_text)
    assert set(TOPIC) <= set(r.triples())
    assert r.num_nodes <= len(topic_nodes) + 4  # little noise comes along
    # the best ego-graph is centred in the topic cluster
    assert index.graph.node_text[int(r.ego_roots[0])] in topic_nodes
    assert r.ego_scores.shape == (2,) and torch.all(r.ego_scores[:-1] >= r.ego_scores[1:])
    # the merged subgraph is the k-hop subgraph of the retrieved roots, with its index ids
    expected, kept = index.graph.k_hop_subgraph(r.ego_roots, 1)
    assert r.graph.triples() == expected.triples() and torch.equal(r.node_ids, kept)
    assert [index.graph.node_text[i] for i in r.node_ids.tolist()] == r.graph.node_text
    assert [index.graph.triples()[e] for e in r.edge_ids.tolist()] == r.triples()
    # scores are cosine similarities of member embeddings to the question
    q = index.encode_question(QUESTION)
    torch.testing.assert_close(r.question_embedding, q)
    torch.testing.assert_close(r.node_scores, index.node_embeddings[r.node_ids] @ q)
    torch.testing.assert_close(r.edge_scores, index.edge_embeddings[r.edge_ids] @ q)
    assert r.node_embeddings.shape == (r.num_nodes, 256)
    assert r.edge_embeddings.shape == (r.num_edges, 256)


def test_description_starts_from_the_most_similar_node(index):
    r = retrieve(index, QUESTION, k=2)
    best = r.graph.node_text[int(r.node_scores.argmax())]
    assert int(r.roots[0]) == int(r.node_scores.argmax())
    lines = [line for line in r.description.split("\n") if not line.startswith("#")]
    assert lines[0] == best
    assert r.description == describe(r.graph, roots=r.roots)
    assert sorted(parse_description(r.description).triples()) == sorted(r.triples())


def test_text_rag_baseline(index):
    r = text_rag(index, QUESTION, k=3)
    assert r.method == "text_rag" and r.num_edges == 3
    assert set(r.triples()) == set(TOPIC)  # the three planted facts rank first
    assert set(r.graph.node_text) == {x for h, _, t in TOPIC for x in (h, t)}
    assert r.ego_roots.numel() == 0
    scores = index.edge_embeddings @ index.encode_question(QUESTION)
    assert set(r.edge_ids.tolist()) == set(torch.topk(scores, 3).indices.tolist())
    assert text_rag(index, QUESTION, k=10_000).num_edges == index.num_edges


def test_khop_baseline(index):
    r = khop_baseline(index, "magma chamber")
    assert r.method == "khop" and r.node_scores is None and r.question is None
    root = index.graph.node_id("magma chamber")
    expected, kept = index.graph.k_hop_subgraph(root, 1)
    assert r.triples() == expected.triples() and torch.equal(r.node_ids, kept)
    assert r.graph.node_text[int(r.roots[0])] == "magma chamber"
    assert r.description.split("\n")[2] == "magma chamber"
    two = khop_baseline(index, "magma chamber", 2, question=QUESTION)
    assert two.num_nodes > r.num_nodes and two.node_scores.shape == (two.num_nodes,)
    assert two.graph.node_text[int(two.roots[0])] == "magma chamber"
    assert sorted(two.roots.tolist()) == list(range(two.num_nodes))  # no repeats
    zero = khop_baseline(index, "magma chamber", 0)
    assert zero.graph.node_text == ["magma chamber"] and zero.num_edges == 0
    with pytest.raises(IndexOutOfRangeError, match="closest: 'magma chamber'"):
        khop_baseline(index, "magma chamberr")
    with pytest.raises(InvalidArgumentError, match="num_hops"):
        khop_baseline(index, "magma chamber", -1)


def test_k_is_capped_and_small_graphs_work():
    g = TextGraph.from_triples([("paris", "capital of", "france")], nodes=["alone"])
    index = GraphIndex.build(g, HashingEncoder(32))
    r = retrieve(index, "capital of france", k=50)
    assert r.ego_roots.numel() == 3 and r.num_nodes == 3
    r = retrieve(index, "alone", k=1)
    assert r.graph.node_text == ["alone"] and r.num_edges == 0
    assert text_rag(index, "alone", k=1).num_edges == 1


def test_bad_inputs(index):
    for bad in ("", "   ", "\n\t"):
        with pytest.raises(InvalidArgumentError, match="question is empty"):
            retrieve(index, bad)
        with pytest.raises(InvalidArgumentError, match="question is empty"):
            text_rag(index, bad)
    for bad in (0, -3, True, 2.0):
        with pytest.raises(InvalidArgumentError, match="k must be an int >= 1"):
            retrieve(index, QUESTION, k=bad)
        with pytest.raises(InvalidArgumentError, match="k must be an int >= 1"):
            text_rag(index, QUESTION, k=bad)
    with pytest.raises(DTypeError, match="question must be a str"):
        retrieve(index, ["a question"])
    with pytest.raises(DTypeError, match="GraphIndex"):
        retrieve("not an index", QUESTION)
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        khop_baseline(index, "magma chamber", question=" ")
    empty = GraphIndex.build(TextGraph(["x"]), HashingEncoder(8))
    empty.graph = TextGraph([])  # an index emptied behind its back
    with pytest.raises(EmptyGraphError):
        retrieve(empty, QUESTION)
