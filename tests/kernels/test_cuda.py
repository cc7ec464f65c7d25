"""The compiled Triton kernels on a CUDA device against the float64 reference.

The rest of ``tests/kernels`` runs the Triton code under ``TRITON_INTERPRET=1`` at toy sizes;
this module is the check that the kernels *compile* and agree with the reference at sizes
that fill a GPU (many blocks, long sequences, tails in every dimension). Every test here needs
a CUDA device and is reported as skipped elsewhere; run it on a GPU machine with the
interpreter off::

    TRITON_INTERPRET=0 pytest -q tests/kernels/test_cuda.py

Each case draws fresh random inputs, poisons nothing it does not overwrite, and compares the
relative error ``||fast - ref|| / ||ref||`` of the output and of every gradient with the
float64 reference computed on the same device (``GRAPHLEARN_KERNELS=reference``).
"""

from __future__ import annotations

import os

import pytest
import torch
from graphlearn.kernels import (
    csc_index,
    edge_softmax_aggregate,
    gather_scatter_matmul,
    segment_matmul,
    selective_scan,
    type_ptr,
    weighted_aggregate,
)

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1",
                       reason="run with TRITON_INTERPRET=0: this module checks compiled kernels"),
]

# Relative-norm error bounds: fp32 dots may run in tf32 (about 3e-4); half types round the
# output and the gathered operands.
REL_TOL = {torch.float32: 2e-3, torch.float16: 5e-3, torch.bfloat16: 3e-2}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    assert torch.isfinite(a).all(), "non-finite values in the fast path's result"
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def run_both(fn, inputs: dict, grad_names, monkeypatch, dtype):
    """``fn(**inputs)`` in Triton (``dtype``) and in the float64 reference; outputs and grads."""

    def once(mode, cast):
        monkeypatch.setenv("GRAPHLEARN_KERNELS", mode)
        x = {k: (cast(v).detach().requires_grad_(k in grad_names)
                 if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
             for k, v in inputs.items()}
        out = fn(**x)
        gen = torch.Generator(device="cuda").manual_seed(7)
        grad_out = torch.randn(out.shape, generator=gen, device="cuda", dtype=torch.float64)
        out.backward(grad_out.to(out.dtype))
        torch.cuda.synchronize()
        return out.detach(), {k: x[k].grad for k in grad_names if x.get(k) is not None}

    out_t, g_t = once("triton", lambda v: v.to(dtype))
    out_r, g_r = once("reference", lambda v: v.to(dtype).double())
    tol = REL_TOL[dtype]
    assert out_t.dtype == dtype
    errors = {"out": rel_err(out_t, out_r)}
    errors.update({f"grad {k}": rel_err(g_t[k], g_r[k]) for k in g_r})
    bad = {k: v for k, v in errors.items() if not v <= tol}
    assert not bad, f"relative errors over {tol}: {bad} (all: {errors})"
    return errors


def _gen(seed):
    return torch.Generator(device="cuda").manual_seed(seed)


# --------------------------------------------------------------------- grouped GEMM template


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["segment", "gather-scatter-scale"])
@pytest.mark.parametrize("shape", [(64, 64), (100, 37), (16, 256)])
def test_gather_scatter_matmul(dtype, mode, shape, monkeypatch):
    k, n = shape
    gen = _gen(0)
    counts = torch.tensor([0, 1, 517, 3000, 0, 129, 64, 4099, 2, 0], device="cuda")
    num_types = counts.numel()
    rows = int(counts.sum())
    ptr = type_ptr(torch.repeat_interleave(torch.arange(num_types, device="cuda"), counts),
                   num_types)
    inputs = {"ptr": ptr}
    if mode == "segment":
        inputs["x"] = torch.randn(rows, k, generator=gen, device="cuda")
        fn = segment_matmul
    else:
        num_x, num_out = 3000, 2500
        inputs.update(
            x=torch.randn(num_x, k, generator=gen, device="cuda"),
            gather_index=torch.randint(0, num_x, (rows,), generator=gen, device="cuda"),
            scatter_index=torch.randint(0, num_out, (rows,), generator=gen, device="cuda"),
            num_out=num_out,
            scale=torch.rand(rows, generator=gen, device="cuda"),
        )
        fn = gather_scatter_matmul
    inputs["weight"] = torch.randn(num_types, k, n, generator=gen, device="cuda") / k ** 0.5
    run_both(fn, inputs, ("x", "weight", "scale"), monkeypatch, dtype)


# --------------------------------------------------------------------- traversal template


def _graph(num_nodes, num_edges, seed):
    gen = _gen(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=gen, device="cuda")
    # a skewed in-degree: a few hubs take a large share of the edges, some nodes get none
    hub = torch.rand(num_edges, generator=gen, device="cuda") < 0.3
    dst = torch.where(hub, torch.randint(0, 8, (num_edges,), generator=gen, device="cuda"),
                      torch.randint(0, num_nodes - 50, (num_edges,), generator=gen,
                                    device="cuda"))
    return src, dst


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("heads,channels", [(1, 64), (8, 8), (4, 33)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_csc", [False, True])
def test_edge_softmax_aggregate(dtype, heads, channels, weighted, with_csc, monkeypatch):
    num_nodes, num_edges = 5000, 60000
    src, dst = _graph(num_nodes, num_edges, 1)
    gen = _gen(2)
    inputs = {
        "logits": torch.randn(num_edges, heads, generator=gen, device="cuda") * 3,
        "values": torch.randn(num_nodes, heads, channels, generator=gen, device="cuda"),
        "src": src, "dst": dst, "num_dst": num_nodes,
        "edge_weight": (torch.rand(num_edges, heads, generator=gen, device="cuda")
                        if weighted else None),
    }
    csc = csc_index(src, dst, num_nodes, num_nodes) if with_csc else None

    def fn(**x):
        return edge_softmax_aggregate(**x, csc=csc)

    run_both(fn, inputs, ("logits", "values", "edge_weight"), monkeypatch, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels", [1, 64, 129])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_csc", [False, True])
def test_weighted_aggregate(dtype, channels, weighted, with_csc, monkeypatch):
    num_nodes, num_edges = 5000, 60000
    src, dst = _graph(num_nodes, num_edges, 3)
    gen = _gen(4)
    inputs = {
        "values": torch.randn(num_nodes, channels, generator=gen, device="cuda"),
        "src": src, "dst": dst,
        "weight": torch.rand(num_edges, generator=gen, device="cuda") if weighted else None,
        "num_dst": num_nodes,
    }
    csc = csc_index(src, dst, num_nodes, num_nodes) if with_csc else None

    def fn(**x):
        return weighted_aggregate(**x, csc=csc)

    run_both(fn, inputs, ("values", "weight"), monkeypatch, dtype)


# --------------------------------------------------------------------- selective scan

SCAN_CASES = {  # name: (batch, dim, state, length, B/C layout, ptr lengths)
    "mamba-block": (4, 256, 16, 1024, "bnl", None),
    "long": (1, 64, 16, 8192, "bnl", None),
    "grouped": (2, 96, 8, 300, "bgnl", None),
    "const-bc": (3, 48, 4, 77, "dn", None),
    "graph-tokens": (512, 64, 8, 9, "bnl", None),
    "packed": (1, 64, 16, None, "bnl", [1, 5, 0, 300, 2047, 13, 1, 900]),
}


def _scan_inputs(name, seed):
    batch, dim, state, length, layout, lengths = SCAN_CASES[name]
    ptr = None
    if lengths is not None:
        ptr = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda")
        length = sum(lengths)
    gen = _gen(seed)

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, device="cuda") * scale

    bc_shape = {"bnl": (batch, state, length), "bgnl": (batch, 3, state, length),
                "dn": (dim, state)}[layout]
    inputs = {
        "u": rnd(batch, dim, length), "delta": rnd(batch, dim, length, scale=0.5),
        "A": -torch.rand(dim, state, generator=gen, device="cuda") - 0.1,
        "B": rnd(*bc_shape), "C": rnd(*bc_shape), "D": rnd(dim), "z": rnd(batch, dim, length),
        "delta_bias": rnd(dim, scale=0.5),
    }
    return inputs, ptr


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", list(SCAN_CASES))
def test_selective_scan(name, dtype, monkeypatch):
    inputs, ptr = _scan_inputs(name, 5)

    def fn(**x):
        return selective_scan(**x, delta_softplus=True, ptr=ptr)

    run_both(fn, inputs, tuple(inputs), monkeypatch, dtype)


def test_selective_scan_last_state_and_determinism(monkeypatch):
    inputs, ptr = _scan_inputs("packed", 6)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")
    x = {k: v.detach().requires_grad_() for k, v in inputs.items()}
    runs = []
    for _ in range(2):
        out, last = selective_scan(**x, delta_softplus=True, return_last_state=True, ptr=ptr)
        grads = torch.autograd.grad(out.square().sum() + last.sum(), list(x.values()))
        runs.append((out, last, grads))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    for a, b in zip(runs[0][2], runs[1][2], strict=True):
        assert torch.equal(a, b), "the Triton backward is not deterministic"
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "reference")
    ref_out, ref_last = selective_scan(**{k: v.double() for k, v in inputs.items()},
                                       delta_softplus=True, return_last_state=True, ptr=ptr)
    assert rel_err(runs[0][0], ref_out) < 1e-4 and rel_err(runs[0][1], ref_last) < 1e-4
