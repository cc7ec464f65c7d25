"""CPU training steps with glibc's default allocator vs :func:`keep_freed_memory`.

``graphlearn fit`` calls :func:`graphlearn.train.allocator.keep_freed_memory` at start, which
stops glibc from unmapping (and the kernel from re-faulting) every large tensor of every step.
The anchor is the same step under glibc's defaults, which is what PyTorch, PyG and PyKEEN run
with. Each (case, mode) runs in its own subprocess (the setting is process-wide); time is the
median step after warm-up, memory the process's peak RSS (``VmHWM``). Cases:

- ``complex-1n-wn18rr``: a 1-N ComplEx step (dim 64, reciprocal, N3, fused Adam) on 1,024
  random queries against WN18RR's 40,943 entities (``configs/complex-wn18rr.yaml``'s shape);
- ``rotate-ns-fb15k237``: a negative-sampling RotatE step (dim 256, 128 candidates per
  query, batch 256, per-candidate path) over FB15k-237's 14,541 entities;
- ``gcn-100k``: a 2-layer GCN step (64 channels) on a random graph of 100k nodes and 1M edges.

::

    python benchmarks/cpu_allocator.py --threads 1 --out benchmarks/results/cpu-allocator-cpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys

from kg_negative_sampling import median_ms
from rgnn import peak_rss_mb, run_worker

CASES = ("complex-1n-wn18rr", "rotate-ns-fb15k237", "gcn-100k")


def _step_fn(case: str):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    if case == "complex-1n-wn18rr":
        from graphlearn.kg.task import build_kg_model

        E, R, B = 40943, 11, 1024
        m = build_kg_model("complex", E, R, dim=64, reciprocal=True, regularizer="n3",
                           regularizer_weight=0.1, init_scale=1e-3)
        opt = torch.optim.Adam(m.parameters(), lr=0.03, fused=True)

        def step():
            h, r, t = (torch.randint(0, n, (B,)) for n in (E, R, E))
            loss = (F.cross_entropy(m.score_all(h, r, "tail"), t)
                    + F.cross_entropy(m.score_all(t, r, "head"), h)) / 2
            opt.zero_grad()
            (loss + m.regularization(h, r, t)).backward()
            opt.step()
        return step
    if case == "rotate-ns-fb15k237":
        from graphlearn.kg.model import KGModel
        from graphlearn.kg.task import build_kg_model

        E, R, B, k = 14541, 237, 256, 128
        m = build_kg_model("rotate", E, R, dim=256, gamma=12.0)
        opt = torch.optim.Adam(m.parameters(), lr=0.001, fused=True)

        def step():
            a, r = torch.randint(0, E, (B,)), torch.randint(0, R, (B,))
            scores = KGModel._score_candidates(m, a, r, torch.randint(0, E, (B, 1 + k)), "tail")
            loss = -F.logsigmoid(scores[:, 0]).mean() - F.logsigmoid(-scores[:, 1:]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step
    if case == "gcn-100k":
        from torch_geometric.nn import GCN

        n, e = 100_000, 1_000_000
        x = torch.randn(n, 64)
        edge_index = torch.randint(0, n, (2, e))
        y = torch.randint(0, 8, (n,))
        m = GCN(64, 64, 2, 8)
        opt = torch.optim.Adam(m.parameters(), lr=0.01)

        def step():
            opt.zero_grad()
            F.cross_entropy(m(x, edge_index), y).backward()
            opt.step()
        return step
    raise ValueError(case)


def worker(case: str, keep: bool, steps: int, threads: int | None) -> dict:
    import torch

    from graphlearn.train.allocator import keep_freed_memory

    if threads:
        torch.set_num_threads(threads)
    applied = keep_freed_memory() if keep else False
    step_ms = median_ms(_step_fn(case), steps)
    return {"case": case, "keep_freed_memory": keep, "applied": applied, "step_ms": step_ms,
            "peak_rss_mb": peak_rss_mb(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="append JSON lines here")
    p.add_argument("--worker", nargs=2, metavar=("CASE", "KEEP"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1] == "1", args.steps, args.threads)))
        return
    print(f"{'case':20} {'glibc ms':>9} {'kept ms':>8} {'speedup':>8} {'RSS MB glibc/kept':>18}")
    for case in args.cases:
        rows = {}
        for keep in (False, True):
            cmd = [sys.executable, __file__, "--worker", case, str(int(keep)),
                   "--steps", str(args.steps)] + (["--threads", str(args.threads)]
                                                 if args.threads else [])
            rows[keep] = run_worker(cmd, timeout=3600)
            if rows[keep]["status"] != "ok":
                sys.exit(f"{case} (keep_freed_memory={keep}): {rows[keep]['status']}")
        row = {"case": case, "glibc_ms": rows[False]["step_ms"], "kept_ms": rows[True]["step_ms"],
               "speedup": rows[False]["step_ms"] / rows[True]["step_ms"],
               "glibc_peak_rss_mb": rows[False]["peak_rss_mb"],
               "kept_peak_rss_mb": rows[True]["peak_rss_mb"], "applied": rows[True]["applied"],
               "torch": rows[True]["torch"], "threads": rows[True]["threads"]}
        print(f"{case:20} {row['glibc_ms']:9.1f} {row['kept_ms']:8.1f} {row['speedup']:8.2f} "
              f"{row['glibc_peak_rss_mb']:8.0f} / {row['kept_peak_rss_mb']:.0f}", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
