"""GRAG indexing and retrieval at 100k and 1M nodes on CPU: graphlearn vs PyG's ``k_hop_subgraph``.

**Graph.** FB15k-237 (all 310,116 train/valid/test triples, 14,541 entities, 237 relations)
with the Freebase entity ids (``/m/027rn``) as node texts and the relation paths
(``/film/film/genre``) as edge texts, grown to ``N`` nodes: ``C = ceil(N / 14541)`` copies of
the graph, the node texts of copy ``c > 0`` suffixed ``#c``; a fixed random 10% of the base
triples (``--rewire``) is rewired across copies: triple ``(h, r, t)`` of copy ``c`` becomes
``(h@c, r, t@(c + s) mod C)`` with one random shift ``s`` in ``[1, C)`` per base triple, so
every node keeps its in- and out-degree and its relations exactly and the copies form one
connected graph. The last copy is cut to the first entities in FB15k-237's id order (edges to
cut entities dropped), so there are exactly ``N`` nodes and about 21 edges per node
(2.16M edges at 100k, 21.4M at 1M).

**Index.** ``GraphIndex.build(graph, encoder, num_hops=--num-hops,
edge_embedding=--edge-embedding)``: the encoder (``minilm``: the packaged all-MiniLM-L6-v2,
384-d; ``hashing``: ``HashingEncoder()``, 256-d, lexical) embeds every node text and the
edge texts, each ego-graph is pooled, and a faiss index is built. Reported per phase from
``GraphIndex.timings``: node-text encoding, edge-text encoding, ego-graph pooling, faiss
(flat, then HNSW built from the same ego embeddings), the total, and the peak RSS
(``VmHWM``, reset through ``/proc/self/clear_refs``) of the build; the size of each file
written by ``index.save(dir)``; ``GraphIndex.load`` time (checksums verified).

**Retrieval.** ``--queries`` questions built from random edges ``(h, r, t)`` as
``"what is the <last two path parts of r> of <text of h>?"`` (e.g. "what is the film genre
of /m/0abc#3?"), asked one at a time on the loaded index after ``--warmup`` other questions;
the encoder's cache is off, so every call embeds its question. Reported p50/p95/p99 of:
``retrieve(index, q, k=5)`` (GRAG: embed, faiss top-5 ego-graphs, merge them into one
induced subgraph, gather embeddings and scores), ``index.search(q, 5)`` (embed + faiss),
the faiss search alone (a precomputed question vector), the merge alone (``k_hop_nodes`` +
``induced_edges`` + ``subgraph`` on given roots) and ``Retrieval.description``; and the
first ``retrieve`` after ``load`` (it builds the cached adjacency). ``root_hit`` is the share
of questions whose entity ``h`` is in the retrieved subgraph (a sanity check of the
retrieval, not a QA metric).

**Anchor** (same process, same graph, same embeddings): PyG's
``torch_geometric.utils.k_hop_subgraph`` on the edge index with both directions, which is how
GRAG's and G-Retriever's reference code cut ego-graphs. (a) pooling: one ``k_hop_subgraph``
per root plus the mean of its members' embeddings, timed on ``--anchor-roots`` random roots
and extrapolated linearly to all ``N`` roots (its cost per root is one pass over every edge,
so it is flat in the root); the vectors are checked against graphlearn's. (b) retrieve: the
same question embedding and faiss search, then one ``k_hop_subgraph`` call on the 5 roots and
the same subgraph assembly, on ``--anchor-queries`` questions; node and edge sets are checked
equal to graphlearn's.

**Encoder sample** (``--encode-sample K``): no build; the encoder embeds ``K`` random node
texts of the ``N``-node graph (and ``--probe-triples`` triple texts), and the node-text
encoding time for ``N`` nodes is extrapolated (``"extrapolated": true``). Used where a full
MiniLM build does not fit the time budget on one core.

One JSON line per (size, encoder) with device, thread and version metadata; a table at the
end::

    python benchmarks/grag.py --sizes 100000 --encoder minilm --threads 1
    python benchmarks/grag.py --sizes 1000000 --encoder hashing --threads 1
    python benchmarks/grag.py --sizes 1000000 --encoder minilm --encode-sample 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

K = 5  # ego-graphs merged per question


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--encoder", choices=("minilm", "hashing"), default="minilm")
    p.add_argument("--edge-embedding", choices=("relation", "triple"), default="relation")
    p.add_argument("--index", nargs="+", choices=("flat", "hnsw"), default=["flat", "hnsw"])
    p.add_argument("--num-hops", type=int, default=1)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--anchor-roots", type=int, default=100)
    p.add_argument("--anchor-queries", type=int, default=100)
    p.add_argument("--add-triples", type=int, default=100,
                   help="triples added to the loaded flat index to time GraphIndex.add")
    p.add_argument("--encode-sample", type=int, default=0,
                   help="only time the encoder on this many node texts and extrapolate")
    p.add_argument("--probe-triples", type=int, default=0,
                   help="also time the encoder on this many triple texts")
    p.add_argument("--rewire", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where indexes are saved (default: a temp "
                                                   "folder, removed afterwards)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="benchmarks/results/grag-cpu.jsonl")
    p.add_argument("--note", default="")
    return p.parse_args(argv)


def default_data_root() -> str | None:
    if os.environ.get("GRAPHLEARN_DATA"):
        return os.environ["GRAPHLEARN_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


# ----------------------------------------------------------------------------- graph
def fb15k237(data_root: str | None):
    """``(triples (T, 3) int64 [h, r, t], entity ids, relation paths)``, all three splits."""
    from graphlearn import datasets

    kg = datasets.load("fb15k-237", root=data_root, download=False).graph
    return kg.triples().numpy(), list(kg.entities), list(kg.relations)


def grow(base, num_nodes: int, rewire: float, seed: int):
    """FB15k-237 grown to ``num_nodes`` nodes (module docstring); returns the TextGraph and
    a description of what was built."""
    import numpy as np
    import torch
    from graphlearn.kg.grag import TextGraph

    triples, entities, relations = base
    n0, t0 = len(entities), len(triples)
    copies = math.ceil(num_nodes / n0)
    rng = np.random.default_rng(seed)
    shift = np.zeros(t0, np.int64)
    moved = np.zeros(t0, bool)
    if copies > 1:
        moved = rng.random(t0) < rewire
        shift[moved] = rng.integers(1, copies, int(moved.sum()))
    copy = np.repeat(np.arange(copies), t0)
    heads = copy * n0 + np.tile(triples[:, 0], copies)
    tails = ((copy + np.tile(shift, copies)) % copies) * n0 + np.tile(triples[:, 2], copies)
    rels = np.tile(triples[:, 1], copies)
    keep = (heads < num_nodes) & (tails < num_nodes)
    node_text = [e if c == 0 else f"{e}#{c}" for c in range(copies) for e in entities]
    graph = TextGraph(node_text[:num_nodes], torch.from_numpy(np.stack([heads[keep],
                                                                        tails[keep]], 1)),
                      [relations[r] for r in rels[keep].tolist()])
    info = {"base": "FB15k-237 train+valid+test", "base_nodes": n0, "base_edges": t0,
            "copies": copies, "rewired_fraction": round(float(moved.mean()), 4) if copies > 1
            else 0.0, "nodes": graph.num_nodes, "edges": graph.num_edges,
            "relations": len(set(rels[keep].tolist())),
            "edges_per_node": round(graph.num_edges / graph.num_nodes, 2)}
    return graph, info


def questions(graph, count: int, seed: int) -> list[tuple[str, int]]:
    """``(question, head node id)`` from random edges, e.g. 'what is the film genre of /m/0x?'."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for e in rng.choice(graph.num_edges, size=count, replace=False).tolist():
        h = int(graph.edges[e, 0])
        parts = [p for p in graph.edge_text[e].split("/") if p and "." not in p]
        phrase = " ".join(parts[-2:]).replace("_", " ")
        out.append((f"what is the {phrase} of {graph.node_text[h]}?", h))
    return out


# ----------------------------------------------------------------------------- helpers
def make_encoder(name: str):
    from graphlearn.kg.grag import HashingEncoder, SentenceTransformerEncoder

    if name == "hashing":
        return HashingEncoder()
    return SentenceTransformerEncoder(device="cpu")


def percentiles(seconds: list[float]) -> dict:
    import numpy as np

    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": len(seconds)}


def timed(fn, items) -> tuple[list[float], list]:
    times, results = [], []
    for item in items:
        start = time.perf_counter()
        results.append(fn(item))
        times.append(time.perf_counter() - start)
    return times, results


def folder_sizes(folder: Path) -> dict:
    sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return {"files_mb": {k: round(v / 2**20, 2) for k, v in sizes.items()},
            "total_mb": round(sum(sizes.values()) / 2**20, 1)}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def metadata(args) -> dict:
    import faiss
    import numpy as np
    import scipy
    import torch
    import torch_geometric

    import graphlearn

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        git = ["git", "-C", str(Path(__file__).parent)]
        commit = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=False).stdout.strip()
        commit += "+dirty" if dirty else ""
    except OSError:
        commit = ""
    versions = {"graphlearn": graphlearn.__version__, "torch": torch.__version__,
                "torch_geometric": torch_geometric.__version__, "faiss": faiss.__version__,
                "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version()}
    if args.encoder == "minilm":
        import sentence_transformers

        versions["sentence_transformers"] = sentence_transformers.__version__
    return {"device": "cpu", "cpu": cpu, "cores": os.cpu_count(), "threads": args.threads,
            "versions": versions, "commit": commit,
            "command": "python " + shlex.join(sys.argv)}


# ----------------------------------------------------------------------------- anchor
def both_directions(graph):
    import torch

    ei = graph.edge_index
    return torch.cat([ei, ei.flip(0)], 1)


def anchor_pooling(index, ei_both, roots) -> tuple[list[float], object]:
    """PyG: one ``k_hop_subgraph`` per root, then the mean of the members' embeddings."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.utils import k_hop_subgraph

    n, e = index.num_nodes, index.num_edges
    x = index.node_embeddings
    out, times = [], []
    for v in roots:
        start = time.perf_counter()
        subset, _, _, mask = k_hop_subgraph(int(v), index.num_hops, ei_both, num_nodes=n)
        eids = mask[:e].nonzero().view(-1)
        total = x.index_select(0, subset).sum(0) + index.edge_embeddings_of(eids).sum(0)
        out.append(F.normalize(total / (subset.numel() + eids.numel()), dim=0))
        times.append(time.perf_counter() - start)
    return times, torch.stack(out)


def anchor_merge(index, ei_both, roots):
    """PyG: one ``k_hop_subgraph`` on the retrieved roots, then the same subgraph assembly."""
    from torch_geometric.utils import k_hop_subgraph

    subset, _, _, mask = k_hop_subgraph(roots, index.num_hops, ei_both,
                                        num_nodes=index.num_nodes)
    edge_ids = mask[:index.num_edges].nonzero().view(-1)
    return subset, edge_ids, index.subgraph(subset, edge_ids)


def anchor_retrieve(index, ei_both, question: str):
    """:func:`retrieve` with PyG's ``k_hop_subgraph`` in place of graphlearn's merge."""
    from graphlearn.kg.grag.retrieve import _assemble, _query

    question, k, q = _query(index, question, K)
    ego_scores, ego_roots = index.search(q, k)
    node_ids, edge_ids, graph = anchor_merge(index, ei_both, ego_roots)
    return _assemble(index, question, q, node_ids, edge_ids, graph, ego_roots=ego_roots,
                     ego_scores=ego_scores, method="grag")


def ours_merge(index, roots):
    node_ids = index.k_hop_nodes(roots)
    edge_ids = index.induced_edges(node_ids)
    return node_ids, edge_ids, index.subgraph(node_ids, edge_ids)


# ----------------------------------------------------------------------------- cases
def encode_sample(args, graph, info: dict, encoder) -> dict:
    """Encoder throughput on a sample of node texts, extrapolated to the whole graph."""
    import numpy as np
    from graphlearn.kg.grag import triple_texts

    rng = np.random.default_rng(args.seed)
    sample = rng.choice(graph.num_nodes, size=min(args.encode_sample, graph.num_nodes),
                        replace=False)
    texts = [graph.node_text[i] for i in sample.tolist()]
    start = time.perf_counter()
    encoder.encode(texts, progress=True)
    seconds = time.perf_counter() - start
    rate = len(texts) / seconds
    out = {"encode_sample": len(texts), "encode_sample_s": round(seconds, 2),
           "node_texts_per_s": round(rate, 1),
           "encode_nodes_s": round(graph.num_nodes / rate, 1), "extrapolated": True}
    if args.probe_triples:
        edges = rng.choice(graph.num_edges, size=args.probe_triples, replace=False)
        tt = triple_texts(graph, edges)
        start = time.perf_counter()
        encoder.encode(tt, progress=True)
        trate = len(tt) / (time.perf_counter() - start)
        out.update(triple_texts_per_s=round(trate, 1),
                   encode_triples_s_extrapolated=round(graph.num_edges / trate, 1))
    return out


def probe_triples(args, graph, encoder) -> dict:
    import numpy as np
    from graphlearn.kg.grag import triple_texts

    rng = np.random.default_rng(args.seed + 1)
    edges = rng.choice(graph.num_edges, size=min(args.probe_triples, graph.num_edges),
                       replace=False)
    tt = triple_texts(graph, edges)
    encoder.clear_cache()
    start = time.perf_counter()
    encoder.encode(tt, progress=False)
    rate = len(tt) / (time.perf_counter() - start)
    return {"probe_triples": len(tt), "triple_texts_per_s": round(rate, 1),
            "encode_triples_s_extrapolated": round(graph.num_edges / rate, 1)}


def build_case(args, graph, encoder, workdir: Path) -> tuple[dict, dict]:
    """Build flat, then HNSW from the same embeddings; save both. Returns results and the
    saved folders by index type."""
    from graphlearn.kg.grag import GraphIndex
    from rgnn import peak_rss_mb, reset_peak_rss, rss_mb

    res: dict = {}
    gc.collect()
    rss0 = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    index = GraphIndex.build(graph, encoder, num_hops=args.num_hops,
                             edge_embedding=args.edge_embedding, index_type="flat",
                             progress=True)
    build_s = time.perf_counter() - start
    timings = {k: round(v, 2) for k, v in index.timings.items()}
    res["build"] = {"timings_s": timings, "total_s": round(build_s, 2),
                    "rss_before_mb": round(rss0, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
                    "edge_table_rows": int(index.edge_text_embeddings.size(0)),
                    "dim": index.dim}
    print(f"# built flat in {build_s:.1f} s {timings}; peak RSS {peak_rss_mb():.0f} MB",
          file=sys.stderr, flush=True)
    folders = {}
    for kind in args.index:
        if kind == "flat":
            ix, faiss_s = index, timings["faiss"]
        else:
            start = time.perf_counter()
            ix = GraphIndex(graph, encoder, node_embeddings=index.node_embeddings,
                            edge_embeddings=index.edge_text_embeddings,
                            ego_embeddings=index.ego_embeddings, num_hops=index.num_hops,
                            edge_embedding=index.edge_embedding, index_type="hnsw",
                            edge_text_ids=index.edge_text_ids, progress=True)
            faiss_s = round(time.perf_counter() - start, 2)
            print(f"# hnsw faiss index in {faiss_s:.1f} s", file=sys.stderr, flush=True)
        total = timings["total"] - timings["faiss"] + faiss_s
        start = time.perf_counter()
        folder = ix.save(workdir / f"index-{kind}")
        save_s = time.perf_counter() - start
        res[kind] = {"faiss_build_s": faiss_s, "build_total_s": round(total, 2),
                     "peak_rss_mb": round(peak_rss_mb(), 1), "save_s": round(save_s, 2),
                     **folder_sizes(folder)}
        folders[kind] = folder
        del ix
    del index
    gc.collect()
    return res, folders


def query_case(args, folder: Path, encoder, qs, ei_both, anchor: bool) -> dict:
    """Load an index and time retrieval one question at a time."""
    import torch
    from graphlearn.kg.grag import GraphIndex, retrieve
    from rgnn import peak_rss_mb, reset_peak_rss, rss_mb

    gc.collect()
    rss0 = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    index = GraphIndex.load(folder, encoder=encoder)
    load_s = time.perf_counter() - start
    out = {"load_s": round(load_s, 2), "load_peak_rss_mb": round(peak_rss_mb(), 1),
           "load_rss_before_mb": round(rss0, 1)}
    encoder.cache_size = 0  # every call embeds its question
    encoder.clear_cache()
    warm, timed_qs = qs[:args.warmup], qs[args.warmup:]
    texts = [q for q, _ in timed_qs]
    start = time.perf_counter()
    retrieve(index, warm[0][0], k=K)
    out["first_retrieve_ms"] = round((time.perf_counter() - start) * 1e3, 1)
    for q, _ in warm[1:]:
        _ = retrieve(index, q, k=K).description
    vectors = [index.encode_question(q) for q in texts]
    t_ret, rets = timed(lambda q: retrieve(index, q, k=K), texts)
    t_search, _ = timed(lambda q: index.search(q, K), texts)
    t_faiss, found = timed(lambda v: index.search(v, K), vectors)
    t_encode, _ = timed(index.encode_question, texts)
    roots = [r for _, r in found]
    t_merge, merged = timed(lambda r: ours_merge(index, r), roots)
    t_desc, _ = timed(lambda r: r.description, rets)
    hits = [h in set(r.node_ids.tolist()) for r, (_, h) in zip(rets, timed_qs, strict=True)]
    out.update({
        "retrieve": percentiles(t_ret), "search": percentiles(t_search),
        "faiss_search": percentiles(t_faiss), "encode_question": percentiles(t_encode),
        "merge": percentiles(t_merge), "description": percentiles(t_desc),
        "subgraph_nodes_median": float(torch.tensor([r.num_nodes for r in rets]).median()),
        "subgraph_edges_median": float(torch.tensor([r.num_edges for r in rets]).median()),
        "subgraph_edges_max": max(r.num_edges for r in rets),
        "root_hit": round(sum(hits) / len(hits), 3)})
    if anchor:
        out["anchor"] = anchor_case(args, index, ei_both, texts, roots, merged, t_merge, t_ret)
    if args.add_triples and index.index_type == "flat":
        out["add"] = add_case(args, index)
    return out


def anchor_case(args, index, ei_both, texts, roots, merged, t_merge, t_ret) -> dict:
    """PyG k_hop_subgraph for the merge step (retrieve) and for pooling (build)."""
    import numpy as np
    import torch

    m = min(args.anchor_queries, len(roots))
    t_pyg, pyg = timed(lambda r: anchor_merge(index, ei_both, r), roots[:m])
    same = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
               for a, b in zip(pyg, merged[:m], strict=True))
    t_ret_pyg, _ = timed(lambda q: anchor_retrieve(index, ei_both, q), texts[:m])
    rng = np.random.default_rng(args.seed + 2)
    sample = rng.choice(index.num_nodes, size=min(args.anchor_roots, index.num_nodes),
                        replace=False)
    t_pool, vectors = anchor_pooling(index, ei_both, sample.tolist())
    diff = float((vectors - index.ego_embeddings[torch.from_numpy(sample)]).abs().max())
    per_root = float(np.mean(t_pool))
    return {"merge_pyg": percentiles(t_pyg), "merge_ours_same_queries": percentiles(t_merge[:m]),
            "retrieve_pyg": percentiles(t_ret_pyg),
            "retrieve_ours_same_queries": percentiles(t_ret[:m]),
            "same_nodes_and_edges": same, "pooling_roots_sampled": len(sample),
            "pooling_ms_per_root": round(per_root * 1e3, 3),
            "pooling_s_extrapolated": round(per_root * index.num_nodes, 1),
            "pooling_max_abs_diff": diff}


def add_case(args, index) -> dict:
    """Time ``GraphIndex.add`` of new triples: half join existing entities to new ones."""
    import numpy as np

    rng = np.random.default_rng(args.seed + 3)
    rels = sorted(set(index.graph.edge_text[:1000]))
    triples = []
    for i in range(args.add_triples):
        h = index.graph.node_text[int(rng.integers(index.num_nodes))]
        t = f"added entity {i:04d}" if i % 2 == 0 else index.graph.node_text[int(
            rng.integers(index.num_nodes))]
        triples.append((h, rels[int(rng.integers(len(rels)))], t))
    start = time.perf_counter()
    update = index.add(triples)
    seconds = time.perf_counter() - start
    new = index.graph.node_id(triples[0][2])  # its own ego vector must come back first
    ok = index.search(index.ego_embeddings[new], 1)[1].tolist() == [new]
    return {"triples": len(triples), "new_nodes": len(update.new_nodes),
            "updated_ego_graphs": len(update.updated), "add_s": round(seconds, 2),
            "timings_s": {k: round(v, 3) for k, v in index.timings.items()},
            "new_ego_vector_found": ok}


def run_size(args, base, size: int, meta: dict, workdir: Path) -> dict:
    start = time.perf_counter()
    graph, info = grow(base, size, args.rewire, args.seed)
    info["grow_s"] = round(time.perf_counter() - start, 2)
    print(f"# graph: {info}", file=sys.stderr, flush=True)
    row = {"case": f"fb15k-237-grown-{size}", "encoder": args.encoder,
           "edge_embedding": args.edge_embedding, "num_hops": args.num_hops, "k": K,
           "graph": info, **meta, "loadavg_start": loadavg()}
    encoder = make_encoder(args.encoder)
    row["encoder_name"] = encoder.name
    if args.encode_sample:
        row["encode"] = encode_sample(args, graph, info, encoder)
        row["loadavg_end"] = loadavg()
        return row
    if args.probe_triples:
        row["encode_probe"] = probe_triples(args, graph, encoder)
        encoder.clear_cache()
    res, folders = build_case(args, graph, encoder, workdir)
    row.update(res)
    qs = questions(graph, args.queries + args.warmup, args.seed)
    ei_both = both_directions(graph)
    for i, kind in enumerate(args.index):
        row[kind].update(query_case(args, folders[kind], make_encoder(args.encoder), qs,
                                    ei_both, anchor=i == 0))
        print(f"# {kind}: retrieve p50 {row[kind]['retrieve']['p50_ms']} ms",
              file=sys.stderr, flush=True)
    row["loadavg_end"] = loadavg()
    return row


# ----------------------------------------------------------------------------- report
def table(rows: list[dict]) -> str:
    lines = ["| nodes | edges | encoder | index | encode s | pool s | faiss s | build s | "
             "peak RSS MB | disk MB | load s | retrieve p50/p95 ms | search p50/p95 ms | "
             "merge p50 ms (PyG) | pooling s (PyG, extrap.) |",
             "|" + "---|" * 15]
    for r in rows:
        g = r["graph"]
        if "encode" in r:
            e = r["encode"]
            lines.append(f"| {g['nodes']:,} | {g['edges']:,} | {r['encoder']} | - | "
                         f"{e['encode_nodes_s']} (extrap. from {e['encode_sample']:,}) | - | - | "
                         f"- | - | - | - | - | - | - | - |")
            continue
        b = r["build"]
        enc = round(b["timings_s"]["encode_nodes"] + b["timings_s"]["encode_edges"], 1)
        anchor = next((r[k]["anchor"] for k in ("flat", "hnsw") if k in r and "anchor" in r[k]),
                      None)
        for kind in ("flat", "hnsw"):
            if kind not in r:
                continue
            x = r[kind]
            pyg_merge = pyg_pool = "-"
            if anchor is not None:
                pyg_merge = (f"{x['merge']['p50_ms']} ({anchor['merge_pyg']['p50_ms']})")
                pyg_pool = (f"{b['timings_s']['pool']} ({anchor['pooling_s_extrapolated']})")
            lines.append(
                f"| {g['nodes']:,} | {g['edges']:,} | {r['encoder']} | {kind} | {enc} | "
                f"{b['timings_s']['pool']} | {x['faiss_build_s']} | {x['build_total_s']} | "
                f"{max(b['peak_rss_mb'], x['peak_rss_mb']):.0f} | {x['total_mb']} | "
                f"{x['load_s']} | {x['retrieve']['p50_ms']}/{x['retrieve']['p95_ms']} | "
                f"{x['search']['p50_ms']}/{x['search']['p95_ms']} | {pyg_merge} | {pyg_pool} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy, torch and faiss are imported
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    meta = metadata(args)
    if args.note:
        meta["note"] = args.note
    base = fb15k237(args.data_root or default_data_root())
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="grag-bench-"))
        try:
            start = time.perf_counter()
            row = run_size(args, base, size, meta, workdir)
            row["wall_s"] = round(time.perf_counter() - start, 1)
        finally:
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        rows.append(row)
        with open(out_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
