"""Forward+backward time of graphlearn's GATv2Conv vs torch_geometric's, in one process.

Cases: Cora (read with ``graphlearn.datasets.load('cora')``; a synthetic graph of Cora's
size, 2708 nodes / 10556 edges / 1433 features, if that fails) and synthetic graphs of
10k and 100k nodes (10 edges per node, 64 features), all with heads=8, out_channels=8 and
self-loops added, in train mode with attention dropout 0 so both layers compute the same
thing. Before timing, the PyG layer is converted with ``GATv2Conv.from_pyg`` and outputs and
gradients are checked to agree.

Timing: ``--warmup`` untimed runs, then ``--repeats`` timed runs of each layer, alternating
between the two, each run = zero grads + forward + backward of ``(out * g).sum()``; the
median is reported (CUDA is synchronised around each run). Peak memory is
``torch.cuda.max_memory_allocated`` per layer on CUDA; on CPU it is not measured (both
layers share one process, so RSS high-water marks cannot be told apart) and is ``null``.

Prints one JSON line per case::

    python benchmarks/gatv2.py --device cpu --repeats 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch_geometric
from torch_geometric.nn import GATv2Conv as PyGGATv2Conv

from graphlearn.nn import GATv2Conv

HEADS, OUT_CHANNELS = 8, 8


def synthetic_graph(num_nodes: int, num_edges: int, num_features: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, num_features, generator=gen)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    return x, edge_index


def cora_graph(data_root: str | None):
    """Cora through graphlearn.datasets, or a synthetic graph of its size."""
    try:
        from graphlearn.datasets import load

        data = load("cora", root=data_root, download=False).data
        return data.x.float(), data.edge_index, "graphlearn.datasets.load('cora')"
    except Exception as exc:  # noqa: BLE001 - any failure means: fall back, and say so
        print(f"# cora not loaded ({type(exc).__name__}: {exc}); using a synthetic graph of "
              f"the same size", file=sys.stderr)
        x, edge_index = synthetic_graph(2708, 10556, 1433)
        return x, edge_index, "synthetic (Cora-sized)"


def default_data_root() -> str | None:
    if os.environ.get("GRAPHLEARN_DATA"):
        return os.environ["GRAPHLEARN_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(conv, x, edge_index, grad):
    def step():
        conv.zero_grad(set_to_none=True)
        out = conv(x, edge_index)
        (out * grad).sum().backward()
        return out

    return step


def check_agreement(ours, pyg, x, edge_index) -> float:
    """Largest ``max|a - b| / max(1, max|b|)`` over the output and each parameter gradient;
    raises if they disagree."""
    grad = torch.randn(x.size(0), HEADS * OUT_CHANNELS, device=x.device, generator=None)
    outs, grads = [], []
    for conv in (ours, pyg):
        out = make_step(conv, x, edge_index, grad)()
        outs.append(out.detach())
        grads.append({n: p.grad.detach().clone() for n, p in conv.named_parameters()})
    pairs = [(outs[0], outs[1])] + [(grads[0][n], grads[1][n]) for n in grads[1]]
    # each tensor against its own scale: parameter gradients sum over every edge, so on large
    # graphs their absolute rounding differences grow with the graph
    diff = max((a - b).abs().max().item() / max(1.0, b.abs().max().item()) for a, b in pairs)
    if diff > 1e-4:
        raise SystemExit(f"graphlearn and PyG disagree: max scaled diff {diff:.3g}")
    return diff


def time_case(name, x, edge_index, device, repeats, warmup, source):
    torch.manual_seed(0)
    pyg = PyGGATv2Conv(x.size(1), OUT_CHANNELS, heads=HEADS).to(device).train()
    ours = GATv2Conv.from_pyg(pyg)
    x, edge_index = x.to(device), edge_index.to(device)
    max_diff = check_agreement(ours, pyg, x, edge_index)

    grad = torch.randn(x.size(0), HEADS * OUT_CHANNELS, device=device)
    steps = {"graphlearn": make_step(ours, x, edge_index, grad),
             "pyg": make_step(pyg, x, edge_index, grad)}
    for _ in range(warmup):
        for step in steps.values():
            step()
    sync(device)

    times = {k: [] for k in steps}
    for _ in range(repeats):
        for key, step in steps.items():  # alternate to spread drift over both
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[key].append((time.perf_counter() - start) * 1e3)

    peak = {k: None for k in steps}
    if device.type == "cuda":
        for key, step in steps.items():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            step()
            sync(device)
            peak[key] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)

    ours_ms, pyg_ms = statistics.median(times["graphlearn"]), statistics.median(times["pyg"])
    return {
        "case": name,
        "device": str(device),
        "graphlearn_ms": round(ours_ms, 3),
        "pyg_ms": round(pyg_ms, 3),
        "ratio_pyg_over_graphlearn": round(pyg_ms / ours_ms, 3),
        "graphlearn_peak_mb": peak["graphlearn"],
        "pyg_peak_mb": peak["pyg"],
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "not measured on cpu",
        "num_nodes": x.size(0),
        "num_edges": edge_index.size(1),
        "in_channels": x.size(1),
        "heads": HEADS,
        "out_channels": OUT_CHANNELS,
        "repeats": repeats,
        "max_abs_diff": max_diff,
        "source": source,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per layer")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per layer")
    parser.add_argument("--cases", nargs="+", default=["cora", "synthetic-10k", "synthetic-100k"],
                        choices=["cora", "synthetic-10k", "synthetic-100k"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--data-root", default=default_data_root(),
                        help="folder holding planetoid/cora/raw (default: $GRAPHLEARN_DATA)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    for case in args.cases:
        if case == "cora":
            x, edge_index, source = cora_graph(args.data_root)
        else:
            num_nodes = 10_000 if case == "synthetic-10k" else 100_000
            x, edge_index = synthetic_graph(num_nodes, 10 * num_nodes, 64)
            source = "synthetic (uniform random edges)"
        result = time_case(case, x, edge_index, device, args.repeats, args.warmup, source)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
