"""Forward+backward time of graphlearn's grouped GEMM vs a per-type torch.mm loop and pyg-lib.

Two kinds of case, each a typed linear transform with one ``(in, out)`` weight per type:

* ``segment-*``: ``segment_matmul(x, ptr, weight)`` over rows already sorted by type
  (pyg-lib's contract). Anchors: a Python loop of ``torch.mm`` over the types (what PyG's
  ``RGCNConv`` falls back to) and, when importable, ``pyg_lib.ops.segment_matmul``.
* ``rgcn-*``: the RGCN message step ``out[dst] += c * x[src] @ W[type]`` over edges sorted by
  type, through ``gather_scatter_matmul`` (no gathered copy of ``x``). Anchors: the same loop
  of ``torch.mm`` over types, each gathering, scaling and ``index_add_``-ing its edges, and,
  when importable, ``pyg_lib.ops.segment_matmul`` on the gathered ``x[src]`` followed by one
  ``index_add_`` (what ``RGCNConv`` does with pyg-lib).

Type sizes are drawn from a Zipf-like law (a few large relations, many small ones), as in
knowledge graphs. Outputs and gradients are checked to agree before timing.

Timing: ``--warmup`` untimed runs, then ``--repeats`` timed runs of each implementation,
alternating between them; each run = zero grads + forward + backward of ``(out * g).sum()``
with gradients for ``x`` and ``weight``; the median is reported (CUDA is synchronised around
each run). On CPU graphlearn runs its plain-PyTorch reference, on CUDA its Triton kernels
(the ``graphlearn_path`` field says which). One JSON line per case::

    python benchmarks/segment_matmul.py --device cpu --repeats 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from graphlearn.kernels import gather_scatter_matmul, segment_matmul, type_ptr, use_triton

try:  # optional anchor, as in PyG (torch_geometric.typing.WITH_SEGMM)
    from pyg_lib.ops import segment_matmul as pyg_lib_segment_matmul
except ImportError:  # pragma: no cover - depends on the environment
    pyg_lib_segment_matmul = None

# name: (kind, rows M (edges for rgcn), types T, in, out, nodes N for rgcn)
CASES = {
    "segment-10k-t8-64": ("segment", 10_000, 8, 64, 64, None),
    "segment-100k-t64-64": ("segment", 100_000, 64, 64, 64, None),
    "segment-100k-t16-128": ("segment", 100_000, 16, 128, 128, None),
    "rgcn-100k-t16-64": ("rgcn", 100_000, 16, 64, 64, 10_000),
    "rgcn-500k-t90-64": ("rgcn", 500_000, 90, 64, 64, 50_000),  # FB15k-237-like relations
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def zipf_types(num_rows: int, num_types: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted type ids with Zipf-like frequencies (type t has weight 1 / (t + 1))."""
    probs = 1.0 / torch.arange(1, num_types + 1, dtype=torch.float64)
    types = torch.multinomial(probs / probs.sum(), num_rows, replacement=True, generator=gen)
    return types.sort().values


def make_inputs(kind, num_rows, num_types, k, n, num_nodes, dtype, device, seed=0):
    gen = torch.Generator().manual_seed(seed)
    types = zipf_types(num_rows, num_types, gen)
    ptr = type_ptr(types, num_types)
    weight = torch.randn(num_types, k, n, generator=gen) / k**0.5
    inputs = {"ptr": ptr, "weight": weight}
    if kind == "segment":
        inputs["x"] = torch.randn(num_rows, k, generator=gen)
    else:
        inputs["x"] = torch.randn(num_nodes, k, generator=gen)
        inputs["src"] = torch.randint(0, num_nodes, (num_rows,), generator=gen)
        inputs["dst"] = torch.randint(0, num_nodes, (num_rows,), generator=gen)
        deg = torch.bincount(inputs["dst"], minlength=num_nodes).clamp(min=1)
        inputs["scale"] = 1.0 / deg[inputs["dst"]].float()  # mean aggregation
    out = {}
    for key, t in inputs.items():
        t = t.to(device)
        out[key] = t.to(dtype) if t.is_floating_point() else t
    return out


def implementations(kind: str, inp: dict) -> dict:
    """name -> fn(x, weight) -> out, for graphlearn and the anchors available here."""
    ptr, bounds = inp["ptr"], inp["ptr"].tolist()  # the loop needs host bounds, as in PyG

    if kind == "segment":
        def graphlearn(x, w):
            return segment_matmul(x, ptr, w)

        def loop(x, w):
            return torch.cat([x[bounds[t]:bounds[t + 1]] @ w[t] for t in range(w.size(0))])

        def pyg_lib(x, w):
            return pyg_lib_segment_matmul(x, ptr, w)
    else:
        src, dst, scale = inp["src"], inp["dst"], inp["scale"]
        num_nodes = inp["x"].size(0)

        def graphlearn(x, w):
            return gather_scatter_matmul(x, w, ptr, src, dst, num_nodes, scale)

        def loop(x, w):
            out = x.new_zeros(num_nodes, w.size(2))
            for t in range(w.size(0)):
                lo, hi = bounds[t], bounds[t + 1]
                if hi > lo:
                    msg = (x[src[lo:hi]] @ w[t]) * scale[lo:hi, None]
                    out = out.index_add(0, dst[lo:hi], msg)
            return out

        def pyg_lib(x, w):
            msg = pyg_lib_segment_matmul(x[src], ptr, w) * scale[:, None]
            return x.new_zeros(num_nodes, w.size(2)).index_add(0, dst, msg)

    impls = {"graphlearn": graphlearn, "loop": loop}
    if pyg_lib_segment_matmul is not None:
        impls["pyg_lib"] = pyg_lib
    return impls


def make_step(fn, x, w, grad):
    def step():
        x.grad = w.grad = None
        out = fn(x, w)
        (out * grad).sum().backward()
        return out

    return step


def check_agreement(impls, x, w, grad) -> float:
    """Max abs difference of outputs and gradients against the loop; raises on disagreement."""
    results = {}
    for name, fn in impls.items():
        out = make_step(fn, x, w, grad)()
        results[name] = [out.detach().float(), x.grad.float(), w.grad.float()]
    diff, size = 0.0, 1.0
    for tensors in results.values():
        for got, want in zip(tensors, results["loop"], strict=True):
            diff = max(diff, (got - want).abs().max().item() if got.numel() else 0.0)
            size = max(size, want.abs().max().item() if want.numel() else 0.0)
    tol = 1e-3 if x.dtype == torch.float32 else 5e-2
    if diff > tol * size:
        raise SystemExit(f"implementations disagree: max abs diff {diff:.3g} (scale {size:.3g})")
    return diff


def time_case(name, spec, dtype, device, repeats, warmup):
    kind, num_rows, num_types, k, n, num_nodes = spec
    inp = make_inputs(kind, num_rows, num_types, k, n, num_nodes, dtype, device)
    x = inp["x"].requires_grad_()
    w = inp["weight"].requires_grad_()
    out_rows = num_rows if kind == "segment" else num_nodes
    grad = torch.randn(out_rows, n, device=device).to(dtype)
    impls = implementations(kind, inp)
    max_diff = check_agreement(impls, x, w, grad)

    steps = {key: make_step(fn, x, w, grad) for key, fn in impls.items()}
    for _ in range(warmup):
        for step in steps.values():
            step()
    sync(device)
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():  # alternate to spread drift over all
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[key].append((time.perf_counter() - start) * 1e3)
    ms = {key: statistics.median(v) for key, v in times.items()}
    pyg_lib_ms = ms.get("pyg_lib")
    counts = inp["ptr"].diff()
    return {
        "case": name,
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "graphlearn_path": "triton" if use_triton("graphlearn::gather_scatter_matmul", x,
                                                  has_triton=True) else "reference",
        "graphlearn_ms": round(ms["graphlearn"], 3),
        "loop_ms": round(ms["loop"], 3),
        "pyg_lib_ms": round(pyg_lib_ms, 3) if pyg_lib_ms is not None else None,
        "ratio_loop_over_graphlearn": round(ms["loop"] / ms["graphlearn"], 3),
        "ratio_pyg_lib_over_graphlearn": (round(pyg_lib_ms / ms["graphlearn"], 3)
                                          if pyg_lib_ms is not None else None),
        "pyg_lib": "available" if pyg_lib_segment_matmul is not None else "not installed",
        "kind": kind,
        "rows": num_rows,
        "types": num_types,
        "largest_type_rows": int(counts.max()),
        "empty_types": int((counts == 0).sum()),
        "in_channels": k,
        "out_channels": n,
        "num_nodes": num_nodes,
        "repeats": repeats,
        "max_abs_diff": max_diff,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per implementation")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per implementation")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.cases:
        result = time_case(name, CASES[name], dtype, device, args.repeats, args.warmup)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
