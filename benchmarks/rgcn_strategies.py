"""When does each Pigeon strategy win? RGCNConv forward+backward per strategy and width.

For each graph (the cases of ``benchmarks/rgnn.py``: real AIFB/MUTAG with random features,
FB15k-237 with inverse relations, and BGS-sized synthetic) and each (in, out) width, one
``RGCNConv`` is run with ``strategy="compact"``, ``"reorder"`` and ``"fused"``, and the
choice of ``"auto"`` is reported beside the fastest. The graph plan (unique pairs, CSC
orders) is built once before timing, as a full-batch model does. Time: median of
``--repeats`` zero-grad + forward + backward runs. Also reports the plan's counts: ``E``
edges, ``Q`` unique (source, relation) pairs, ``P`` unique (destination, relation) pairs,
which drive the cost model (compact ``Q*in*out + E*out``, reorder ``E*in + P*in*out``)::

    python benchmarks/rgcn_strategies.py --cases aifb-x16 fb15k-237 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rgnn import default_data_root, load_case  # noqa: E402

from graphlearn.nn import RGCNConv  # noqa: E402
from graphlearn.nn.conv.rgcn_conv import choose_strategy  # noqa: E402

WIDTHS = [(16, 16), (64, 16), (16, 64), (128, 128)]
STRATEGIES = ("compact", "reorder", "fused")


def time_strategy(conv, x, edge_index, edge_type, repeats, warmup) -> float:
    def step():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        conv(x, edge_index, edge_type).square().mean().backward()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["aifb-x16", "mutag-x16", "fb15k-237",
                                                       "bgs"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-fused-above", type=int, default=2_000_000,
                        help="skip the fused strategy on graphs with more edges (slow on CPU)")
    parser.add_argument("--data-root", default=default_data_root())
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for case in args.cases:
        g = load_case(case, args.data_root)
        edge_index, edge_type = g["edge_index"], g["edge_type"]
        num_edges = edge_index.size(1)
        for fin, fout in WIDTHS:
            torch.manual_seed(0)
            x = torch.randn(g["num_nodes"], fin, requires_grad=True)
            conv = RGCNConv(fin, fout, g["num_relations"])
            plan = conv.plan(edge_index, edge_type, g["num_nodes"], g["num_nodes"])
            times = {}
            for strategy in STRATEGIES:
                if strategy == "fused" and num_edges > args.skip_fused_above:
                    continue
                conv.strategy = strategy
                times[strategy] = round(time_strategy(conv, x, edge_index, edge_type,
                                                      args.repeats, args.warmup), 2)
            auto = choose_strategy(plan, fin, fout)
            fastest = min(times, key=times.get)
            print(json.dumps({
                "case": case, "in": fin, "out": fout, "ms": times, "auto": auto,
                "fastest": fastest, "auto_over_fastest": round(times[auto] / times[fastest], 3),
                "E": num_edges, "Q": int(plan.src_pair_node.numel()),
                "P": int(plan.dst_pair_node.numel()), "R": g["num_relations"],
                "torch": torch.__version__, "threads": torch.get_num_threads(),
            }), flush=True)


if __name__ == "__main__":
    main()
