"""Accuracy against distance on the long-range path probe: Graph Mamba vs 2-layer GCN/GATv2.

Every model is trained by the same trainer (``graphlearn.fit``) on
``datasets.load("long-range-path", distance=R)`` (see :mod:`graphlearn.datasets.long_range`):
each labelled node must read the class written ``R`` hops away, so a model sits at chance
(``1 / num_classes``) once ``R`` exceeds its receptive field. GCN and GATv2 have two layers
(a 2-hop field); Graph Mamba uses non-backtracking random-walk tokens of ``max_hops = R``.

Prints one JSON line per (model, distance) with the test accuracy (mean over ``--seeds``)
and, at the end, a Markdown table::

    python benchmarks/long_range.py --distances 1 2 3 4 6 8 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

import graphlearn

MODELS = {
    "gcn": dict(name="gcn", hidden_channels=64, num_layers=2, dropout=0.0),
    "gatv2": dict(name="gatv2", hidden_channels=16, heads=4, num_layers=2, dropout=0.0,
                  attn_dropout=0.0),
    "graph-mamba": dict(name="graph-mamba", hidden_channels=32, num_layers=1, num_walks=2,
                        non_backtracking=True, expand=1, state_dim=8, dropout=0.0),
}


def run(model: str, distance: int, seed: int, args) -> float:
    spec = dict(MODELS[model])
    if model == "graph-mamba":
        spec["max_hops"] = distance
    cfg = {
        "dataset": {"name": "long-range-path",
                    "options": {"distance": distance, "num_paths": args.num_paths,
                                "num_classes": args.num_classes, "seed": 0}},
        "model": spec,
        "optim": {"name": "adam", "lr": 0.01, "weight_decay": 0.0},
        "trainer": {"max_epochs": args.epochs, "patience": args.patience},
        "seed": seed,
    }
    with tempfile.TemporaryDirectory() as out:
        result = graphlearn.fit(cfg, out=out)
    return float(result.metrics["test"]["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distances", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--num-paths", type=int, default=400)
    parser.add_argument("--num-classes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    table: dict[tuple[str, int], float] = {}
    for distance in args.distances:
        for model in args.models:
            start = time.perf_counter()
            accs = [run(model, distance, seed, args) for seed in args.seeds]
            mean = statistics.fmean(accs)
            table[model, distance] = mean
            print(json.dumps({
                "benchmark": "long_range", "model": model, "distance": distance,
                "test_accuracy": round(mean, 4),
                "std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
                "seeds": args.seeds, "chance": round(1 / args.num_classes, 4),
                "num_paths": args.num_paths, "seconds": round(time.perf_counter() - start, 1),
            }), flush=True)
    print("\n| model | " + " | ".join(f"R={d}" for d in args.distances) + " |")
    print("|---|" + "---|" * len(args.distances))
    for model in args.models:
        print(f"| {model} | " + " | ".join(f"{table[model, d]:.3f}" for d in args.distances)
              + " |")


if __name__ == "__main__":
    main()
