"""The DGL side of benchmarks/rgnn.py: the same graphs and two-layer models, in DGL 2.1.

Runs in the separate environment ``benchmarks/dgl_env.sh`` builds (torch 2.2.1, dgl 2.1.0),
on graphs ``benchmarks/rgnn.py --export DIR`` saved. Peers: ``RelGraphConv`` (presorted edges,
per-relation mean through ``norm``, self-loop and bias: R-GCN's layer) for ``rgcn``,
``GATv2Conv`` (DGL has no relational attention layer; the closest peer) for ``rgat``, and
``HGTConv`` (presorted) for ``hgt``. Featureless graphs get a learned 16-dim embedding as
input (DGL's R-GCN entity-classification example does the same). Time and memory are
measured as in rgnn.py: one subprocess per (case, model), median of zero-grad + forward +
backward, high-water RSS above the RSS after building. One JSON line per (case, model)::

    bash benchmarks/dgl_env.sh --cases aifb-x16 mutag-x16
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

# Shared with the graphlearn side (rgnn.py imports only the standard library and torch at
# module level, so it loads in the DGL environment too); this file's folder is on sys.path.
from rgnn import HIDDEN, peak_rss_mb, reset_peak_rss, rss_mb  # noqa: E402


def worker(args) -> dict:
    import dgl
    from dgl.nn import GATv2Conv, HGTConv, RelGraphConv

    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.load(Path(args.graphs) / f"{args.case}.pt", weights_only=True)
    src, dst = g["edge_index"]
    num_nodes, num_rels = g["num_nodes"], g["num_relations"]
    etype, order = torch.sort(g["edge_type"], stable=True)  # presorted by type
    graph = dgl.graph((src[order], dst[order]), num_nodes=num_nodes)
    torch.manual_seed(0)
    emb = None
    x = g["x"]
    if x is None:
        emb = torch.nn.Embedding(num_nodes, HIDDEN)

    if args.model == "rgcn":
        key = dst[order] * num_rels + etype
        _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
        norm = (1.0 / counts.float())[inverse].unsqueeze(1)
        layers = torch.nn.ModuleList([RelGraphConv(HIDDEN, HIDDEN, num_rels, self_loop=True)
                                      for _ in range(2)])

        def forward(h):
            h = torch.relu(layers[0](graph, h, etype, norm, presorted=True))
            return layers[1](graph, h, etype, norm, presorted=True)
    elif args.model == "rgat":
        layers = torch.nn.ModuleList([GATv2Conv(HIDDEN, HIDDEN, 1, allow_zero_in_degree=True)
                                      for _ in range(2)])

        def forward(h):
            h = torch.relu(layers[0](graph, h).flatten(1))
            return layers[1](graph, h).flatten(1)
    else:
        ntype = g["node_type"]
        num_ntypes = int(ntype.max()) + 1
        layers = torch.nn.ModuleList([HGTConv(HIDDEN, HIDDEN, 1, num_ntypes, num_rels,
                                              dropout=0.0) for _ in range(2)])

        def forward(h):
            h = torch.relu(layers[0](graph, h, ntype, etype, presorted=True))
            return layers[1](graph, h, ntype, etype, presorted=True)

    params = list(layers.parameters()) + (list(emb.parameters()) if emb is not None else [])

    def step():
        for p in params:
            p.grad = None
        h = emb.weight if emb is not None else x
        forward(h).square().mean().backward()

    base = rss_mb()
    reset_peak_rss()  # so the peak below is this run's, not the graph building's
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    peak = peak_rss_mb() - base
    return {"ms": round(statistics.median(times), 2), "peak_mb": round(peak, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", required=True, help="folder of rgnn.py --export")
    parser.add_argument("--cases", nargs="+", default=None)
    parser.add_argument("--models", nargs="+", default=["rgcn", "rgat", "hgt"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="only cpu is supported here")
    parser.add_argument("--data-root", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    import dgl

    cases = args.cases or sorted(p.stem for p in Path(args.graphs).glob("*.pt"))
    for case in cases:
        for model in args.models:
            cmd = [sys.executable, __file__, "--worker", "--graphs", args.graphs, "--case", case,
                   "--model", model, "--repeats", str(args.repeats), "--warmup",
                   str(args.warmup)] + (["--threads", str(args.threads)] if args.threads else [])
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                if proc.returncode == 0:
                    result = {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}
                else:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    result = {"status": f"failed: {lines[-1] if lines else proc.returncode}"}
            except subprocess.TimeoutExpired:
                result = {"status": f"timeout (> {args.timeout} s)"}
            print(json.dumps({"case": case, "model": model, "device": "cpu", "dgl": result,
                              "torch": torch.__version__, "dgl_version": dgl.__version__,
                              "threads": args.threads or torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
