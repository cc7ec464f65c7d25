"""Graph Mamba scaling: time and peak memory per training epoch against graph size.

Synthetic graphs of ``--sizes`` nodes (default 10k, 100k, 1M; ``--degree`` undirected
edges per node drawn uniformly at random, 16 features, 2 classes) are trained full-batch for
``--repeats`` timed epochs (after ``--warmup`` untimed ones): forward, backward and an Adam
step. Each (size, model) runs in a fresh worker process so its peak memory is its own:
``torch.cuda.max_memory_allocated`` on CUDA, the process's peak RSS above its RSS after the
graph was built on CPU. The anchor is PyG's ``GCN`` (2 layers, same width) in the same
worker setup, with the ratio printed. At the end, the log-log slope of time and memory
against the number of nodes is fitted per model: a slope near 1 is linear growth.

Graph Mamba runs in its CPU-sized configuration (random-walk tokens of hop lengths 2, 1, 0,
``--walks`` walks, GCN local encoder, one bidirectional Mamba, expand 1, state 8)::

    python benchmarks/mamba.py --device cpu --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def worker(args) -> None:
    import torch.nn.functional as F
    from torch_geometric.nn.models import GCN
    from torch_geometric.utils import to_undirected

    from graphlearn.models import GraphMambaNetwork

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    n = args.size
    edges = torch.randint(0, n, (2, args.degree * n), generator=gen)
    edge_index = to_undirected(edges, num_nodes=n).to(device)
    x = torch.randn(n, 16, generator=gen).to(device)
    y = torch.randint(0, 2, (n,), generator=gen).to(device)
    torch.manual_seed(0)
    if args.model == "graph-mamba":
        model = GraphMambaNetwork(16, 2, hidden_channels=args.hidden, num_layers=1, max_hops=2,
                                  num_walks=args.walks, expand=1, state_dim=8, dropout=0.0)
    else:
        model = GCN(16, args.hidden, num_layers=2, out_channels=2)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    base = _current_rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def epoch():
        opt.zero_grad()
        F.cross_entropy(model(x, edge_index), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        epoch()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
            else _rss_mb() - base)
    print(json.dumps({"epoch_s": statistics.median(times), "peak_mb": round(peak, 1),
                      "num_edges": int(edge_index.size(1))}))


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main(argv: list[str] | None = None) -> None:
    from rgnn import run_worker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", default=["graph-mamba", "gcn"])
    parser.add_argument("--degree", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--walks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    results: dict[str, list[tuple[int, dict]]] = {m: [] for m in args.models}
    for size in args.sizes:
        row = {}
        for model in args.models:
            cmd = [sys.executable, __file__, "--worker", "--size", str(size), "--model", model,
                   "--device", args.device, "--degree", str(args.degree), "--hidden",
                   str(args.hidden), "--walks", str(args.walks), "--repeats", str(args.repeats),
                   "--warmup", str(args.warmup), "--threads", str(args.threads)]
            row[model] = run_worker(cmd, args.timeout)
            if row[model]["status"] == "ok":
                results[model].append((size, row[model]))
        out = {"benchmark": "mamba_scaling", "device": args.device, "num_nodes": size,
               "threads": args.threads or torch.get_num_threads(),
               **{f"{m}_{k}": v for m, r in row.items() for k, v in r.items()}}
        if all(row[m]["status"] == "ok" for m in ("graph-mamba", "gcn") if m in row) and \
                {"graph-mamba", "gcn"} <= set(row):
            out["time_ratio_vs_gcn"] = round(row["graph-mamba"]["epoch_s"] / row["gcn"]["epoch_s"], 2)
        print(json.dumps(out), flush=True)
    for model, points in results.items():
        if len(points) >= 2:
            sizes = [s for s, _ in points]
            print(json.dumps({
                "benchmark": "mamba_scaling", "model": model, "device": args.device,
                "loglog_slope_time": round(slope(sizes, [r["epoch_s"] for _, r in points]), 3),
                "loglog_slope_memory": round(slope(sizes, [max(r["peak_mb"], 1e-3)
                                                           for _, r in points]), 3),
            }), flush=True)


if __name__ == "__main__":
    main()
