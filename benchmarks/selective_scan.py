"""Mamba-1 selective scan: graphlearn's reference and Triton kernels (and mamba-ssm as an anchor).

Two shapes of work, both with ``delta_softplus``, ``D``, ``z`` and ``delta_bias`` and
input-dependent ``B``/``C`` of shape ``(batch, state, length)``:

* ``graph-mamba``: many short sequences, as Graph-Mamba scans node neighbourhoods
  (``--batch`` sequences of ``--short-length`` steps, ``--dim`` channels, ``--state`` states).
* ``packed``: a few long variable-length sequences packed with ``ptr`` (``--graphs`` graphs of
  uniformly random sizes in ``[--min-nodes, --max-nodes]``), batch of one.

Each case times the forward alone and forward + backward of ``(out * g).sum()`` (median of
``--repeats`` runs after ``--warmup``) for the reference (``GRAPHLEARN_KERNELS=reference``)
and, on CUDA, for the Triton kernels (``GRAPHLEARN_KERNELS=triton``, outputs and gradients
checked against the reference first), the anchor ``autograd_loop`` (the time loop of
mamba-ssm's pure-PyTorch reference, differentiated by autograd; every device), and mamba-ssm's
``selective_scan_fn`` if it imports
(``"mamba_ssm": "missing"`` otherwise; it has no ``ptr``, so for the packed case it is timed
on the same tokens as one sequence, which mixes sequences: a speed anchor only). One JSON line
per (case, pass)::

    python benchmarks/selective_scan.py --device cpu            # reference only, < 1 min
    python benchmarks/selective_scan.py --device cuda --batch 10000 --graphs 64 \\
        --min-nodes 200 --max-nodes 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import torch
from graphlearn.kernels import selective_scan


def make_case(case: str, args, device: torch.device, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(0)
    if case == "graph-mamba":
        batch, length, ptr = args.batch, args.short_length, None
    else:
        sizes = torch.randint(args.min_nodes, args.max_nodes + 1, (args.graphs,), generator=gen)
        batch, length = 1, int(sizes.sum())
        ptr = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)]).to(device)
    d, n = args.dim, args.state

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype)

    inputs = {
        "u": rnd(batch, d, length), "delta": rnd(batch, d, length, scale=0.5),
        "A": -torch.rand(d, n, generator=gen).to(device) - 0.1,  # float32 weights, as Mamba
        "B": rnd(batch, n, length), "C": rnd(batch, n, length),
        "D": torch.randn(d, generator=gen).to(device), "z": rnd(batch, d, length),
        "delta_bias": (torch.randn(d, generator=gen) * 0.5).to(device),
    }
    return inputs, ptr, {"batch": batch, "length": length, "dim": d, "state": n,
                         "num_seqs": batch if ptr is None else args.graphs}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, inputs: dict, grad: torch.Tensor, backward: bool, repeats: int, warmup: int,
          device: torch.device, budget_s: float = 20.0) -> float:
    """Median milliseconds of ``repeats`` runs after ``warmup``; a slow runner (the
    autograd loop on long sequences takes seconds per run) stops early once it has spent
    ``budget_s`` and has at least one timed run."""
    leaves = {k: v.detach().requires_grad_(backward) for k, v in inputs.items()}
    times = []
    started = time.perf_counter()
    for i in range(warmup + repeats):
        if times and time.perf_counter() - started > budget_s:
            break
        if i < warmup and i > 0 and time.perf_counter() - started > budget_s / 4:
            continue  # one warm-up is enough for a runner this slow
        for v in leaves.values():
            v.grad = None
        sync(device)
        t0 = time.perf_counter()
        if backward:
            (fn(**leaves) * grad).sum().backward()
        else:
            with torch.no_grad():
                fn(**leaves)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


@contextlib.contextmanager
def kernel_mode(mode: str | None):
    """Set ``GRAPHLEARN_KERNELS`` for forward *and* backward (the op dispatches in both)."""
    old = os.environ.get("GRAPHLEARN_KERNELS")
    if mode is not None:
        os.environ["GRAPHLEARN_KERNELS"] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GRAPHLEARN_KERNELS", None)
        else:
            os.environ["GRAPHLEARN_KERNELS"] = old


def graphlearn_scan(ptr):
    def run(**x):
        return selective_scan(**x, delta_softplus=True, ptr=ptr)

    return run


def mamba_anchor():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None

    def run(**x):
        return selective_scan_fn(x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"],
                                 x["delta_bias"], delta_softplus=True)

    return run


def autograd_loop(ptr):
    """The anchor on every device: the scan as a time loop differentiated by autograd.

    This is the algorithm of mamba-ssm's pure-PyTorch ``selective_scan_ref`` (discretise all
    steps up front, loop over time, autograd keeps every step's tensors), written here so it
    runs without mamba-ssm; with ``ptr`` it runs on the packed sequence with the state
    zeroed at each sequence start.
    """

    def run(u, delta, A, B, C, D, z, delta_bias):
        dl = torch.nn.functional.softplus(delta.float() + delta_bias.float().view(1, -1, 1))
        dA = torch.exp(dl.unsqueeze(-1) * A.float().view(1, A.size(0), 1, A.size(1)))
        dBu = (dl * u.float()).unsqueeze(-1) * B.float().transpose(1, 2).unsqueeze(1)
        keep = torch.ones(u.size(-1), device=u.device)
        if ptr is not None:
            keep[ptr[:-1]] = 0.0
        h = u.new_zeros((u.size(0), u.size(1), A.size(1)), dtype=torch.float32)
        ys = []
        for t in range(u.size(-1)):
            h = dA[:, :, t] * h * keep[t] + dBu[:, :, t]
            ys.append((h * C[:, :, t].float().unsqueeze(1)).sum(-1))
        y = torch.stack(ys, dim=-1) + u.float() * D.float().view(1, -1, 1)
        return (y * torch.nn.functional.silu(z.float())).to(u.dtype)

    return run


def check(fn, inputs: dict, grad: torch.Tensor, dtype: torch.dtype) -> float:
    """Max relative difference of Triton's outputs and gradients from the reference's."""
    results = []
    for mode in ("triton", "reference"):
        leaves = {k: v.detach().requires_grad_(True) for k, v in inputs.items()}
        with kernel_mode(mode):
            out = fn(**leaves)
            (out * grad).sum().backward()
        results.append([out.detach()] + [leaves[k].grad for k in inputs])
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    worst = 0.0
    for a, b in zip(*results, strict=True):
        scale = float(b.abs().max().clamp_min(1.0))
        diff = float((a.float() - b.float()).abs().max())
        assert diff <= tol * scale, f"mismatch: {diff} > {tol} * {scale}"
        worst = max(worst, diff / scale)
    return worst


def profile(fn, inputs: dict, grad: torch.Tensor, case: str, path: str) -> None:
    """Kernel-by-kernel device time of one Triton forward+backward (after a warm-up run)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    leaves = {k: v.detach().requires_grad_(True) for k, v in inputs.items()}
    with kernel_mode("triton"):
        (fn(**leaves) * grad).sum().backward()
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            (fn(**leaves) * grad).sum().backward()
            torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_device_time_total", row_limit=15)
    with open(path, "a") as f:
        f.write(f"== {case}\n{table}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--cases", nargs="+", default=["graph-mamba", "packed"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--state", type=int, default=16)
    parser.add_argument("--batch", type=int, default=None,
                        help="graph-mamba sequences (default 10000 on CUDA, 500 on CPU)")
    parser.add_argument("--short-length", type=int, default=8)
    parser.add_argument("--graphs", type=int, default=None,
                        help="packed sequences (default 64 on CUDA, 4 on CPU)")
    parser.add_argument("--min-nodes", type=int, default=None)
    parser.add_argument("--max-nodes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="append a torch.profiler table of one Triton forward+backward "
                             "per case (CUDA) to FILE")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    # CPU defaults keep the whole run under a minute on two cores
    defaults = dict(repeats=10 if cuda else 3, warmup=3 if cuda else 1,
                    batch=10_000 if cuda else 500, graphs=64 if cuda else 4,
                    min_nodes=200 if cuda else 20, max_nodes=2000 if cuda else 80)
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    anchor = mamba_anchor() if cuda else None
    for case in args.cases:
        inputs, ptr, shape = make_case(case, args, device, dtype)
        grad = torch.randn(inputs["u"].shape, generator=torch.Generator().manual_seed(1)).to(
            device=device, dtype=dtype)
        ours = graphlearn_scan(ptr)
        runners = {"reference": (ours, "reference"), "triton": (ours, "triton") if cuda else None,
                   "mamba_ssm": (anchor, None) if anchor is not None else None,
                   "autograd_loop": (autograd_loop(ptr), None)}
        max_rel_diff = None
        if cuda:
            max_rel_diff = check(ours, inputs, grad, dtype)
        if cuda and args.profile:
            profile(ours, inputs, grad, case, args.profile)
        for backward in (False, True):
            t = {}
            for name, runner in runners.items():
                if runner is None:
                    continue
                fn, mode = runner
                with kernel_mode(mode):
                    t[name] = timed(fn, inputs, grad, backward, args.repeats, args.warmup,
                                    device)
            row = {
                "case": case, "pass": "forward+backward" if backward else "forward",
                "device": str(device), "dtype": args.dtype,
                "reference_ms": round(t["reference"], 3),
                "triton_ms": round(t["triton"], 3) if "triton" in t else "not run (CPU)",
                "ratio_reference_over_triton": (round(t["reference"] / t["triton"], 3)
                                                if "triton" in t else None),
                "mamba_ssm_ms": (round(t["mamba_ssm"], 3) if "mamba_ssm" in t
                                 else "missing" if cuda else "not run (CPU)"),
                "ratio_mamba_ssm_over_triton": (round(t["mamba_ssm"] / t["triton"], 3)
                                                if "mamba_ssm" in t and "triton" in t else None),
                "autograd_loop_ms": round(t["autograd_loop"], 3),
                "ratio_autograd_loop_over_reference": round(t["autograd_loop"] / t["reference"],
                                                            3),
                **shape, "max_rel_diff_triton_vs_reference": max_rel_diff,
                "repeats": args.repeats, "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
