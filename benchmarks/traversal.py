"""Fused edge softmax + aggregation: graphlearn's traversal op vs PyG's composition, in one process.

Both sides compute GAT-style attention aggregation from per-edge logits ``(|E|, H)`` and
source values ``(|V|, H, C)``:

* graphlearn: ``graphlearn.kernels.edge_softmax_aggregate`` (the reference path on CPU, the
  Triton traversal on CUDA: online softmax fused with the aggregation, deterministic
  backward), once sorting the edges inside every call and once (``graphlearn_csc``) with a
  ``csc_index`` built outside the timed region, as a layer reusing one graph would;
* PyG: ``torch_geometric.utils.softmax(logits, dst, num_nodes=N)`` then
  ``torch_geometric.utils.scatter(values[src] * alpha[..., None], dst, reduce='sum')``, the
  composition GATConv/GATv2Conv run (it materialises the ``(|E|, H, C)`` messages).

Outputs and gradients are checked to agree before timing. Cases: Cora (via
``graphlearn.datasets``; a synthetic graph of Cora's size if that fails) and a synthetic graph
of 100k nodes with 10 edges per node, self-loops added to both, ``--heads`` x ``--channels``
per node. Each timed run is forward + backward of ``(out * g).sum()`` w.r.t. logits and
values; ``--warmup`` untimed runs, then the median of ``--repeats`` runs, alternating between
the implementations. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, ``null`` on
CPU. One JSON line per case::

    python benchmarks/traversal.py --device cpu --repeats 10
    python benchmarks/traversal.py --device cuda --dtype bfloat16
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
from graphlearn.kernels import csc_index, edge_softmax_aggregate, use_triton
from torch_geometric.utils import add_remaining_self_loops, scatter, softmax

OP = "graphlearn::edge_softmax_aggregate"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def default_data_root() -> str | None:
    if os.environ.get("GRAPHLEARN_DATA"):
        return os.environ["GRAPHLEARN_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def graph(case: str, data_root: str | None) -> tuple[int, torch.Tensor, str]:
    if case == "cora":
        try:
            from graphlearn.datasets import load

            data = load("cora", root=data_root, download=False).data
            return data.num_nodes, data.edge_index, "graphlearn.datasets.load('cora')"
        except Exception as exc:  # noqa: BLE001 - any failure means: fall back, and say so
            print(f"# cora not loaded ({type(exc).__name__}: {exc}); using a synthetic graph "
                  f"of the same size", file=sys.stderr)
            gen = torch.Generator().manual_seed(0)
            return 2708, torch.randint(0, 2708, (2, 10556), generator=gen), "synthetic (Cora-sized)"
    n = {"synthetic-100k": 100_000}[case]
    gen = torch.Generator().manual_seed(0)
    return n, torch.randint(0, n, (2, 10 * n), generator=gen), "synthetic (uniform random edges)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pyg_softmax_aggregate(logits, values, src, dst, num_nodes):
    alpha = softmax(logits, dst, num_nodes=num_nodes)  # (E, H)
    return scatter(values.index_select(0, src) * alpha.unsqueeze(-1), dst, dim=0,
                   dim_size=num_nodes, reduce="sum")


def make_step(fn, leaves, grad):
    def step():
        for t in leaves:
            t.grad = None
        out = fn(*leaves)
        (out * grad).sum().backward()
        return out

    return step


def time_case(case, n, edge_index, source, args, device, dtype):
    edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=n)
    edge_index = edge_index.to(device)
    src, dst = edge_index[0], edge_index[1]
    gen = torch.Generator(device=device).manual_seed(0)
    heads, channels = args.heads, args.channels
    logits = torch.randn(src.numel(), heads, device=device, generator=gen).to(dtype)
    values = torch.randn(n, heads, channels, device=device, generator=gen).to(dtype)
    grad = torch.randn(n, heads, channels, device=device, generator=gen).to(dtype)
    leaves = [logits.requires_grad_(), values.requires_grad_()]
    csc = csc_index(src, dst, n, n)
    fns = {
        "graphlearn": lambda lo, v: edge_softmax_aggregate(lo, v, src, dst, n),
        "graphlearn_csc": lambda lo, v: edge_softmax_aggregate(lo, v, src, dst, n, csc=csc),
        "pyg": lambda lo, v: pyg_softmax_aggregate(lo, v, src, dst, n),
    }
    steps = {k: make_step(fn, leaves, grad) for k, fn in fns.items()}

    # agreement: outputs and both gradients, against PyG
    results = {}
    for key, step in steps.items():
        out = step()
        results[key] = [out.detach().float()] + [t.grad.float() for t in leaves]
    max_diff = 0.0
    for key in ("graphlearn", "graphlearn_csc"):
        for ours, theirs in zip(results[key], results["pyg"], strict=True):
            max_diff = max(max_diff, float((ours - theirs).abs().max()))
    scale = max(1.0, float(results["pyg"][0].abs().max()))
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    if max_diff > tol * scale:
        raise SystemExit(f"{case}: graphlearn and PyG disagree: max abs diff {max_diff:.3g}")

    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {k: [] for k in steps}
    for _ in range(args.repeats):
        for key, step in steps.items():  # alternate to spread drift over all
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

    ms = {k: statistics.median(v) for k, v in times.items()}
    return {
        "case": case,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "path": "triton" if use_triton(OP, values, has_triton=True) else "reference",
        "graphlearn_ms": round(ms["graphlearn"], 3),
        "graphlearn_csc_ms": round(ms["graphlearn_csc"], 3),
        "pyg_ms": round(ms["pyg"], 3),
        "ratio_pyg_over_graphlearn": round(ms["pyg"] / ms["graphlearn"], 3),
        "ratio_pyg_over_graphlearn_csc": round(ms["pyg"] / ms["graphlearn_csc"], 3),
        "graphlearn_peak_mb": peak["graphlearn"],
        "graphlearn_csc_peak_mb": peak["graphlearn_csc"],
        "pyg_peak_mb": peak["pyg"],
        "num_nodes": n,
        "num_edges": int(src.numel()),
        "heads": heads,
        "channels": channels,
        "repeats": args.repeats,
        "max_abs_diff": max_diff,
        "source": source,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per implementation")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per implementation")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--channels", type=int, default=8, help="channels per head")
    parser.add_argument("--cases", nargs="+", default=["cora", "synthetic-100k"],
                        choices=["cora", "synthetic-100k"])
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--data-root", default=default_data_root(),
                        help="folder holding planetoid/cora/raw (default: $GRAPHLEARN_DATA)")
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if args.threads:
        torch.set_num_threads(args.threads)
    for case in args.cases:
        n, edge_index, source = graph(case, args.data_root)
        print(json.dumps(time_case(case, n, edge_index, source, args, device, dtype)), flush=True)


if __name__ == "__main__":
    main()
