"""`graphlearn.kg.grag.prune`: GRAG's soft pruning gates, the pruning rule and training."""

import pytest
import torch
from graphlearn.kg.grag import (
    GraphIndex,
    HashingEncoder,
    PruningExample,
    SoftPruner,
    TextGraph,
    khop_baseline,
    make_pruning_examples,
    pruning_labels,
    pruning_loss,
    retrieve,
    train_pruner,
)

from graphlearn.errors import (
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

TRIPLES = [("alice", "knows", "bob"), ("bob", "lives in", "paris"),
           ("carol", "parent of", "alice"), ("alice", "likes", "paris"),
           ("paris", "capital of", "france")]


@pytest.fixture(scope="module")
def toy():
    index = GraphIndex.build(TextGraph.from_triples(TRIPLES, nodes=["dave"]), HashingEncoder(32))
    return index, retrieve(index, "where does bob live?", k=10)


def test_gates_shapes_and_range(toy):
    _, r = toy
    torch.manual_seed(0)
    pruner = SoftPruner(32, hidden_channels=16)
    assert repr(pruner) == "SoftPruner(32, hidden_channels=16, num_layers=2, distance='abs')"
    node_gate, edge_gate = pruner(r)
    assert node_gate.shape == (r.num_nodes,) and edge_gate.shape == (r.num_edges,)
    assert torch.all((node_gate > 0) & (node_gate < 1)) and torch.all((edge_gate > 0) &
                                                                      (edge_gate < 1))
    # tensors in, same gates out; a per-row question equals the broadcast one
    same = pruner(r.node_embeddings, r.edge_embeddings, r.question_embedding)
    torch.testing.assert_close(same[0], node_gate)
    rows = r.question_embedding.expand(r.num_nodes, -1)
    node_logit, _ = pruner.logits(r.node_embeddings, r.edge_embeddings, rows,
                                  r.question_embedding)
    torch.testing.assert_close(node_logit.sigmoid(), node_gate)
    # the gate depends on the distance only: a member equal to the question gets the gate of 0
    diff = SoftPruner(32, num_layers=1, distance="difference")
    g1, _ = diff(r.question_embedding[None], r.edge_embeddings, r.question_embedding)
    torch.testing.assert_close(g1, diff.node_mlp(torch.zeros(1, 32)).sigmoid().view(-1))


class FixedGates(SoftPruner):
    """A pruner whose gates are given, to test the pruning rule alone."""

    def __init__(self, node_gate, edge_gate):
        super().__init__(32)
        self.fixed = (torch.tensor(node_gate), torch.tensor(edge_gate))

    def forward(self, retrieval, *args):
        return self.fixed


def test_prune_rule(toy):
    index, r = toy
    text = r.graph.node_text
    assert r.num_nodes == 6 and r.num_edges == 5
    node_gate = [0.1] * 6
    node_gate[text.index("dave")] = 0.9  # relevant on its own: kept, isolated
    node_gate[text.index("bob")] = 0.7
    edge_gate = [0.2] * 5
    triples = r.triples()
    edge_gate[triples.index(("bob", "lives in", "paris"))] = 0.8  # keeps its endpoints
    pruned = FixedGates(node_gate, edge_gate).prune(r, threshold=0.5)
    assert pruned.method == "pruned"
    assert pruned.triples() == [("bob", "lives in", "paris")]
    assert set(pruned.graph.node_text) == {"bob", "paris", "dave"}
    # bob -knows- alice and alice -likes-> paris have low gates: dropped, though paris and
    # bob are kept (the result is not an induced subgraph)
    assert pruned.graph.node_text[int(pruned.roots[0])] == "dave"  # highest gate first
    assert [index.graph.node_text[i] for i in pruned.node_ids.tolist()] == pruned.graph.node_text
    assert [index.graph.triples()[e] for e in pruned.edge_ids.tolist()] == pruned.triples()
    torch.testing.assert_close(pruned.edge_gates, torch.tensor([0.8]))
    assert pruned.node_scores.shape == (3,) and pruned.edge_embeddings.shape == (1, 32)
    everything = FixedGates([0.9] * 6, [0.9] * 5).prune(r, threshold=0.5)
    assert sorted(everything.triples()) == sorted(r.triples())
    nothing = FixedGates([0.1] * 6, [0.1] * 5).prune(r, threshold=0.5)
    assert nothing.num_nodes == 0 and nothing.description.startswith("# Graph: 0 nodes")


def test_pruning_labels(toy):
    _, r = toy
    nodes, edges = pruning_labels(r, ["paris"], [("bob", "lives in", "paris")])
    assert nodes.tolist() == [float(t == "paris") for t in r.graph.node_text]
    assert edges.tolist() == [float(t == ("bob", "lives in", "paris")) for t in r.triples()]
    assert pruning_labels(r, "paris")[0].sum() == 1  # one answer as a str


def test_bad_inputs(toy):
    index, r = toy
    pruner = SoftPruner(32)
    for bad in (1.5, -0.1, "0.5"):
        with pytest.raises(InvalidArgumentError, match="threshold"):
            pruner.prune(r, threshold=bad)
    with pytest.raises(DTypeError, match="Retrieval"):
        pruner.prune("not a retrieval")
    with pytest.raises(ShapeError, match=r"\(rows, 32\)"):
        pruner(torch.ones(3, 8), torch.ones(2, 32), torch.ones(32))
    with pytest.raises(ShapeError, match="question embedding"):
        pruner(torch.ones(3, 32), torch.ones(2, 32), torch.ones(2, 32))
    with pytest.raises(InvalidArgumentError, match="no question embedding"):
        pruner(khop_baseline(index, "bob"))
    with pytest.raises(InvalidArgumentError, match="distance"):
        SoftPruner(32, distance="cosine")
    with pytest.raises(InvalidArgumentError, match="in_channels"):
        SoftPruner(0)
    with pytest.raises(InvalidArgumentError, match="no pruning examples"):
        train_pruner(pruner, [])
    with pytest.raises(DTypeError, match="PruningExample"):
        train_pruner(pruner, [r])
    with pytest.raises(InvalidArgumentError, match="retriever"):
        make_pruning_examples(index, [], retriever="bm25")
    example = PruningExample.from_retrieval(r, ["paris"])
    with pytest.raises(InvalidArgumentError, match="pos_weight"):
        train_pruner(pruner, [example], pos_weight=-1.0)


@pytest.fixture
def one_thread():
    """Tiny matrix products gain nothing from a thread pool, and on a busy CPU the pool's
    hand-offs make them ~100x slower; run the training test on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_lowers_the_loss_on_pathquestion(data_root, one_thread):
    root = data_root("textgraph/pathquestion/PQ-2H.txt", "textgraph/pathquestion/2H-kb.txt")
    from graphlearn.datasets import load

    ds = load("pathquestion", root=root, variant="PQ-2H", download=False)
    index = GraphIndex.build(ds.graph, HashingEncoder(128), num_hops=2)
    train_qa = ds.split("train")[:160]
    examples = make_pruning_examples(index, train_qa, k=3)
    assert len(examples) == 160
    positives = sum(float(ex.node_labels.sum()) for ex in examples)
    path_edges = sum(float(ex.edge_labels.sum()) for ex in examples)
    assert positives > 80 and path_edges > 80  # answers and gold paths are mostly retrieved
    torch.manual_seed(0)
    pruner = SoftPruner(128, hidden_channels=64)
    before = pruning_loss(pruner, examples)
    history = train_pruner(pruner, examples, epochs=8, lr=1e-2, seed=0)
    after = pruning_loss(pruner, examples)
    assert len(history) == 8 and history[-1] < history[0]
    assert after < 0.8 * before, (before, after, history)
    # the trained gates rank gold-path edges above the other edges on held-out questions
    held_out = make_pruning_examples(index, ds.split("val")[:60], k=3)
    with torch.no_grad():
        gold, other = [], []
        for ex in held_out:
            _, edge_gate = pruner(ex.node_embeddings, ex.edge_embeddings, ex.question_embedding)
            gold += edge_gate[ex.edge_labels == 1].tolist()
            other += edge_gate[ex.edge_labels == 0].tolist()
    assert sum(gold) / len(gold) > sum(other) / len(other)
    # the k-hop baseline also yields labelled examples
    khop = make_pruning_examples(index, train_qa[:5], retriever="khop")
    assert all(float(ex.node_labels.sum()) >= 1 for ex in khop)  # 2 hops reach the answer


# ---------------------------------------------------------------------------- message passing
CHAIN = [("a", "r0", "b"), ("b", "r1", "c"), ("c", "r2", "d"), ("d", "r3", "e")]


@pytest.fixture(scope="module")
def chain():
    index = GraphIndex.build(TextGraph.from_triples(CHAIN), HashingEncoder(32))
    return index, khop_baseline(index, "a", 4, question="what is after a?")


def test_message_passing_repr_and_compat():
    assert repr(SoftPruner(32, num_steps=2)) == ("SoftPruner(32, hidden_channels=128, "
                                                 "num_layers=2, distance='abs', num_steps=2)")
    assert repr(SoftPruner(32, product=True)).endswith("distance='abs', product=True)")
    assert repr(SoftPruner(32)) == ("SoftPruner(32, hidden_channels=128, num_layers=2, "
                                    "distance='abs')")
    # the GRAG pruner has no message-passing weights
    assert SoftPruner(32).node_out is None and len(SoftPruner(32).node_updates) == 0
    # PruningExample still takes its five original fields
    ex = PruningExample(torch.ones(2, 4), torch.ones(1, 4), torch.ones(4), torch.ones(2),
                        torch.ones(1))
    assert ex.edges is None


@pytest.mark.parametrize("num_steps", [1, 2, 3])
def test_message_passing_receptive_field(chain, num_steps):
    """With T rounds, an edge's gate depends on the edges within T hops (in the line graph)
    and on nothing farther."""
    _, r = chain
    assert r.triples() == CHAIN  # edge e sits e hops (line graph) from edge 0
    torch.manual_seed(0)
    pruner = SoftPruner(32, hidden_channels=32, num_steps=num_steps, product=True).eval()
    torch.testing.assert_close(pruner(r.node_embeddings, r.edge_embeddings,
                                      r.question_embedding, edges=r.graph.edges)[1],
                               pruner(r)[1])  # a Retrieval brings its edges
    pruner = pruner.double()  # the logits see far edges weakly: compare them in float64
    x, y, q = r.node_embeddings, r.edge_embeddings, r.question_embedding
    with torch.no_grad():
        base = pruner.logits(x, y, q, edges=r.graph.edges)[1]
        for far in range(1, 4):
            moved = y.clone()
            moved[far] = -moved[far]
            change = (pruner.logits(x, moved, q, edges=r.graph.edges)[1][0] - base[0]).abs()
            if far <= num_steps:
                assert change > 1e-9, (far, change)
            else:
                assert change == 0, (far, change)


def test_message_passing_batches_as_disjoint_union(chain, toy):
    """Logits of two subgraphs batched as their disjoint union equal the separate ones."""
    torch.manual_seed(0)
    pruner = SoftPruner(32, hidden_channels=8, num_steps=2).eval()
    rs = [chain[1], toy[1]]
    one = [pruner.logits(r.node_embeddings, r.edge_embeddings, r.question_embedding,
                         edges=r.graph.edges) for r in rs]
    x = torch.cat([r.node_embeddings for r in rs])
    y = torch.cat([r.edge_embeddings for r in rs])
    qx = torch.cat([r.question_embedding.expand(r.num_nodes, -1) for r in rs])
    qy = torch.cat([r.question_embedding.expand(r.num_edges, -1) for r in rs])
    edges = torch.cat([rs[0].graph.edges, rs[1].graph.edges + rs[0].num_nodes])
    node, edge = pruner.logits(x, y, qx, qy, edges)
    torch.testing.assert_close(node, torch.cat([o[0] for o in one]))
    torch.testing.assert_close(edge, torch.cat([o[1] for o in one]))


def test_message_passing_bad_inputs(chain):
    _, r = chain
    pruner = SoftPruner(32, num_steps=1)
    with pytest.raises(InvalidArgumentError, match="needs the subgraph's edges"):
        pruner(r.node_embeddings, r.edge_embeddings, r.question_embedding)
    with pytest.raises(ShapeError, match=r"\(4, 2\)"):
        pruner(r.node_embeddings, r.edge_embeddings, r.question_embedding,
               edges=r.graph.edges[:2])
    with pytest.raises(IndexOutOfRangeError, match="outside"):
        pruner(r.node_embeddings, r.edge_embeddings, r.question_embedding,
               edges=r.graph.edges + 10)
    with pytest.raises(InvalidArgumentError, match="num_steps"):
        SoftPruner(32, num_steps=-1)
    with pytest.raises(InvalidArgumentError, match="product"):
        SoftPruner(32, product="yes")
    no_edges = PruningExample(r.node_embeddings, r.edge_embeddings, r.question_embedding,
                              torch.zeros(r.num_nodes), torch.zeros(r.num_edges))
    with pytest.raises(InvalidArgumentError, match="has none"):
        train_pruner(pruner, [no_edges])
    assert PruningExample.from_retrieval(r, ["b"]).edges.tolist() == r.graph.edges.tolist()


def test_message_passing_pruner_learns_paths_on_pathquestion(data_root, one_thread):
    """On PQ-2H, gates with 2 rounds of message passing rank the gold-path edges of a GRAG
    retrieval above the rest far more often than GRAG's per-member gates trained the same
    way (the benchmark's finding, benchmarks/grag_quality.py, in miniature)."""
    root = data_root("textgraph/pathquestion/PQ-2H.txt", "textgraph/pathquestion/2H-kb.txt")
    from graphlearn.datasets import load

    ds = load("pathquestion", root=root, variant="PQ-2H", download=False)
    index = GraphIndex.build(ds.graph, HashingEncoder(128), num_hops=1)
    examples = make_pruning_examples(index, ds.split("train")[:300], k=5)
    held_out = make_pruning_examples(index, ds.split("val")[:60], k=5)

    def top_ranked(pruner):
        """Fraction of held-out questions whose gold edges are all among the top
        (number of gold edges + 2) edge gates."""
        hits = []
        with torch.no_grad():
            for ex in held_out:
                _, gate = pruner.logits(ex.node_embeddings, ex.edge_embeddings,
                                        ex.question_embedding, edges=ex.edges)
                gold = int(ex.edge_labels.sum())
                if 0 < gold < gate.numel():
                    top = gate.topk(min(gold + 2, gate.numel())).indices
                    hits.append(float(ex.edge_labels[top].sum() == gold))
        return sum(hits) / len(hits)

    scores = {}
    for steps in (0, 2):
        torch.manual_seed(0)
        pruner = SoftPruner(128, hidden_channels=64, num_steps=steps)
        history = train_pruner(pruner, examples, epochs=8, lr=1e-2, seed=0)
        assert history[-1] < history[0]
        scores[steps] = top_ranked(pruner)
    assert scores[2] > 0.8 and scores[2] > scores[0] + 0.2, scores
