"""Tests of graphlearn.kernels.selective_scan: reference vs a naive recurrence, packing, Triton.

The oracle is a per-element, step-by-step Python loop in float64 (autograd through it gives
the gradients); the reference is checked against it, and the Triton kernels (run by the
interpreter on CPU, ``TRITON_INTERPRET=1`` from ``tests/conftest.py``) against the reference.
Sizes are toy sizes: the interpreter executes every program in Python.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from graphlearn.kernels import selective_scan
from graphlearn.kernels.selective_scan import reference, reference_backward

from graphlearn.errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError

try:  # the Triton tests skip without triton; the reference tests still run
    from graphlearn.kernels import triton_scan as ts
except ImportError:
    ts = None

GRAD_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


# ----------------------------------------------------------------------------- helpers


def make_inputs(b=2, d=4, n=3, length=5, b_layout="bnl", c_layout="bnl", groups=2,
                has_d=True, has_z=True, has_bias=True, dtype=torch.float64, seed=0):
    """A dict of op inputs; ``*_layout`` is ``bnl``, ``bgnl`` or ``dn``.

    ``groups`` is the group count of a ``bgnl`` tensor, or a pair (for ``B``, for ``C``).
    """
    gen = torch.Generator().manual_seed(seed)
    groups_b, groups_c = groups if isinstance(groups, tuple) else (groups, groups)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype)

    def bc(layout, g):
        return {"bnl": (b, n, length), "bgnl": (b, g, n, length), "dn": (d, n)}[layout]

    return {
        "u": rnd(b, d, length),
        "delta": rnd(b, d, length, scale=0.5),
        "A": -torch.rand(d, n, generator=gen, dtype=torch.float64).to(dtype) - 0.1,
        "B": rnd(*bc(b_layout, groups_b)),
        "C": rnd(*bc(c_layout, groups_c)),
        "D": rnd(d) if has_d else None,
        "z": rnd(b, d, length) if has_z else None,
        "delta_bias": rnd(d, scale=0.5) if has_bias else None,
    }


def naive(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Element by element, step by step: ``(out, last_state)`` (differentiable)."""
    batch, dim, length = u.shape
    state = A.size(1)

    def coef(M, bi, d, n, t):
        if M.dim() == 2:
            return M[d, n]
        if M.dim() == 3:
            return M[bi, n, t]
        return M[bi, d // (dim // M.size(1)), n, t]

    out = [[[None] * length for _ in range(dim)] for _ in range(batch)]
    last = [[[None] * state for _ in range(dim)] for _ in range(batch)]
    for bi in range(batch):
        for d in range(dim):
            h = [u.new_zeros(()) for _ in range(state)]
            for t in range(length):
                dl = delta[bi, d, t] + (delta_bias[d] if delta_bias is not None else 0)
                if delta_softplus:
                    dl = torch.log1p(torch.exp(dl))
                y = u.new_zeros(())
                for n in range(state):
                    h[n] = torch.exp(dl * A[d, n]) * h[n] + dl * coef(B, bi, d, n, t) * u[bi, d, t]
                    y = y + coef(C, bi, d, n, t) * h[n]
                if D is not None:
                    y = y + D[d] * u[bi, d, t]
                if z is not None:
                    y = y * z[bi, d, t] * torch.sigmoid(z[bi, d, t])
                out[bi][d][t] = y
            last[bi][d] = h
    out_t = torch.stack([torch.stack([torch.stack(r) for r in row]) for row in out]) if length \
        else u.new_zeros(u.shape)
    last_t = torch.stack([torch.stack([torch.stack(r) for r in row]) for row in last])
    return out_t, last_t


def leaves(inputs):
    return {k: (v.detach().clone().requires_grad_(True) if v is not None else None)
            for k, v in inputs.items()}


def grads_of(fn, inputs, grad_out, grad_last):
    """Run ``fn(**inputs) -> (out, last)`` and return out, last and every input's gradient."""
    x = leaves(inputs)
    out, last = fn(**x)
    loss = (out * grad_out).sum() + (last * grad_last).sum()
    tensors = [v for v in x.values() if v is not None]
    gs = iter(torch.autograd.grad(loss, tensors, allow_unused=True))
    return out.detach(), last.detach(), {k: (next(gs) if v is not None else None)
                                         for k, v in x.items()}


def op(ptr=None, softplus=True):
    def run(**x):
        return selective_scan(**x, delta_softplus=softplus, return_last_state=True, ptr=ptr)

    return run


def assert_grads_close(ga, gb, **tol):
    for name in GRAD_NAMES:
        if ga[name] is None:
            assert gb[name] is None, name
            continue
        torch.testing.assert_close(ga[name], gb[name], msg=lambda m, n=name: f"grad {n}: {m}",
                                   **tol)


# ----------------------------------------------------------------------------- reference


LAYOUTS = [("bnl", "bnl"), ("bgnl", "bgnl"), ("dn", "dn"), ("dn", "bgnl"), ("bnl", "dn")]
OPTIONS = [  # (D, z, delta_bias, softplus)
    (True, True, True, True),
    (False, False, False, False),
    (True, False, True, False),
    (False, True, False, True),
]


@pytest.mark.parametrize("layouts", LAYOUTS, ids="-".join)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "".join("DZbs"[i] if f else "_"
                                                                    for i, f in enumerate(o)))
def test_reference_matches_naive_recurrence(layouts, options):
    has_d, has_z, has_bias, softplus = options
    inputs = make_inputs(b_layout=layouts[0], c_layout=layouts[1], has_d=has_d, has_z=has_z,
                         has_bias=has_bias)
    gen = torch.Generator().manual_seed(1)
    grad_out = torch.randn(inputs["u"].shape, generator=gen, dtype=torch.float64)
    grad_last = torch.randn((2, 4, 3), generator=gen, dtype=torch.float64)

    def naive_fn(**x):
        return naive(**x, delta_softplus=softplus)

    out_n, last_n, g_n = grads_of(naive_fn, inputs, grad_out, grad_last)
    out_r, last_r = reference(**inputs, delta_softplus=softplus)
    assert out_r.dtype == last_r.dtype == torch.float64
    torch.testing.assert_close(out_r, out_n, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(last_r, last_n, rtol=1e-10, atol=1e-12)
    g_r = dict(zip(GRAD_NAMES, reference_backward(grad_out, grad_last, **inputs,
                                                  delta_softplus=softplus, ptr=None), strict=True))
    assert_grads_close(g_r, g_n, rtol=1e-9, atol=1e-11)


def test_reference_matches_naive_different_group_counts():
    """B and C may be grouped differently (2 and 4 groups here; 1 and 4 with a shared B)."""
    for b_layout, groups in (("bgnl", (2, 4)), ("bnl", (1, 4))):
        inputs = make_inputs(d=4, b_layout=b_layout, c_layout="bgnl", groups=groups)
        gen = torch.Generator().manual_seed(1)
        grad_out = torch.randn(inputs["u"].shape, generator=gen, dtype=torch.float64)
        grad_last = torch.randn((2, 4, 3), generator=gen, dtype=torch.float64)
        out_n, last_n, g_n = grads_of(lambda **x: naive(**x, delta_softplus=True), inputs,
                                      grad_out, grad_last)
        out_r, last_r, g_r = grads_of(op(), inputs, grad_out, grad_last)
        torch.testing.assert_close(out_r, out_n, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(last_r, last_n, rtol=1e-10, atol=1e-12)
        assert_grads_close(g_r, g_n, rtol=1e-9, atol=1e-11)


def test_gradcheck_reference_op():
    inputs = make_inputs(b=1, d=2, n=2, length=3, b_layout="bgnl", c_layout="bnl")
    names = [k for k, v in inputs.items() if v is not None]

    def fn(*args):
        return selective_scan(**dict(zip(names, args, strict=True)), delta_softplus=True,
                              return_last_state=True)

    args = [v.clone().requires_grad_(True) for v in inputs.values() if v is not None]
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6)

    ptr = torch.tensor([0, 1, 1, 3])

    def fn_packed(*args):
        return selective_scan(**dict(zip(names, args, strict=True)), delta_softplus=True,
                              return_last_state=True, ptr=ptr)

    assert torch.autograd.gradcheck(fn_packed, args, eps=1e-6, atol=1e-6)


def test_gradient_of_out_only():
    """The last state unused: autograd passes no gradient for it."""
    x = leaves(make_inputs())
    selective_scan(**x, delta_softplus=True).sum().backward()
    ref = reference_backward(torch.ones_like(x["u"]), None, **make_inputs(),
                             delta_softplus=True, ptr=None)
    torch.testing.assert_close(x["u"].grad, ref[0])
    torch.testing.assert_close(x["A"].grad, ref[2])


# ----------------------------------------------------------------------------- packing


def _split(inputs, ptr):
    """Each packed sequence of ``inputs`` (batch 1) as its own batch-of-one input dict."""
    out = []
    for lo, hi in zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True):
        seq = {}
        for k, v in inputs.items():
            if v is None or k in ("A", "D", "delta_bias") or (k in "BC" and v.dim() == 2):
                seq[k] = v
            else:
                seq[k] = v[..., lo:hi]
        out.append(seq)
    return out


def _check_packed_equals_alone(ptr, b_layout, c_layout, dtype, tol):
    length = int(ptr[-1])
    inputs = make_inputs(b=1, d=4, n=3, length=length, b_layout=b_layout, c_layout=c_layout,
                         dtype=dtype)
    gen = torch.Generator().manual_seed(2)
    grad_out = torch.randn((1, 4, length), generator=gen, dtype=torch.float64).to(dtype)
    num_seqs = ptr.numel() - 1
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    grad_last = torch.randn((num_seqs, 4, 3), generator=gen, dtype=torch.float64).to(acc)
    out_p, last_p, g_p = grads_of(op(ptr), inputs, grad_out, grad_last)
    assert last_p.shape == (num_seqs, 4, 3)
    acc_grads = {k: torch.zeros_like(v) if v is not None else None for k, v in inputs.items()}
    for i, (seq, lo, hi) in enumerate(zip(_split(inputs, ptr), ptr[:-1].tolist(),
                                          ptr[1:].tolist(), strict=True)):
        out_s, last_s, g_s = grads_of(op(), seq, grad_out[..., lo:hi], grad_last[i:i + 1])
        torch.testing.assert_close(out_p[..., lo:hi], out_s, **tol)
        torch.testing.assert_close(last_p[i:i + 1], last_s, **tol)
        if hi == lo:
            assert not last_s.any()  # an empty sequence keeps the zero state
        for k, g in g_s.items():
            if g is None:
                continue
            if k in ("A", "D", "delta_bias") or (k in "BC" and g.dim() == 2):
                acc_grads[k] += g
            else:
                acc_grads[k][..., lo:hi] = g
    assert_grads_close(g_p, acc_grads, **tol)


PTRS = [torch.tensor([0, 3, 4, 4, 8]), torch.tensor([0, 0, 1]), torch.tensor([0, 5])]


@pytest.mark.parametrize("ptr", PTRS, ids=lambda p: "-".join(map(str, p.tolist())))
@pytest.mark.parametrize("layouts", [("bnl", "bgnl"), ("dn", "bnl")], ids="-".join)
def test_packed_equals_each_sequence_alone_reference(ptr, layouts):
    _check_packed_equals_alone(ptr, *layouts, torch.float64, dict(rtol=1e-10, atol=1e-12))


@pytest.mark.parametrize("mode", ["reference", "triton"])
def test_all_sequences_empty(mode, monkeypatch):
    if mode == "triton":
        pytest.importorskip("triton")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", mode)
    x = leaves(make_inputs(b=1, length=0))
    out, last = selective_scan(**x, return_last_state=True, ptr=torch.tensor([0, 0, 0]))
    assert out.shape == (1, 4, 0)
    assert last.shape == (2, 4, 3) and not last.any()
    (out.sum() + last.sum()).backward()
    for k, v in x.items():
        if v is not None:
            assert v.grad is not None and not v.grad.any(), k


# ----------------------------------------------------------------------------- Triton


@pytest.fixture
def triton_mode(monkeypatch):
    """Select the Triton path; the test fails if the Triton forward was never called."""
    if ts is None:
        pytest.skip("triton is not installed")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    calls = {"forward": 0, "backward": 0}

    def counted(name):
        fn = getattr(ts, name)

        def wrapper(*args):
            calls[name] += 1
            return fn(*args)

        return wrapper

    monkeypatch.setattr(ts, "forward", counted("forward"))
    monkeypatch.setattr(ts, "backward", counted("backward"))
    yield calls
    assert calls["forward"] > 0, "the Triton forward never ran"


@pytest.fixture
def small_blocks(monkeypatch):
    """Several channel blocks per group and a state buffer that forces sliced launches."""
    if ts is None:
        pytest.skip("triton is not installed")
    monkeypatch.setattr(ts, "MAX_BLOCK_D", 2)
    monkeypatch.setattr(ts, "BUFFER_BUDGET", 64)


TRITON_CASES = {  # name: (make_inputs kwargs, ptr)
    "batch": (dict(b=2, d=6, n=5, length=7), None),
    "grouped": (dict(b=2, d=6, n=4, length=6, b_layout="bgnl", c_layout="bgnl", groups=3),
                None),
    "const-bc": (dict(b=2, d=5, n=3, length=6, b_layout="dn", c_layout="dn", has_z=False),
                 None),
    "groups-2-3": (dict(b=2, d=6, n=3, length=4, b_layout="bgnl", c_layout="bgnl",
                        groups=(2, 3)), None),
    "mixed-groups": (dict(b=1, d=4, n=3, length=5, b_layout="bgnl", c_layout="dn",
                          has_bias=False), None),
    "packed": (dict(b=1, d=6, n=4, length=9, c_layout="bgnl", groups=2),
               torch.tensor([0, 3, 3, 4, 9])),
    "packed-const": (dict(b=1, d=4, n=3, length=6, b_layout="dn", has_d=False),
                     torch.tensor([0, 1, 6])),
}


def _triton_vs_reference(name, monkeypatch, softplus=True):
    kwargs, ptr = TRITON_CASES[name]
    inputs = make_inputs(dtype=torch.float32, **kwargs)
    gen = torch.Generator().manual_seed(3)
    grad_out = torch.randn(inputs["u"].shape, generator=gen)
    rows = inputs["u"].size(0) if ptr is None else ptr.numel() - 1
    grad_last = torch.randn((rows, kwargs["d"], kwargs["n"]), generator=gen)
    out_t, last_t, g_t = grads_of(op(ptr, softplus), inputs, grad_out, grad_last)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "reference")
    out_r, last_r, g_r = grads_of(op(ptr, softplus), inputs, grad_out, grad_last)
    assert out_t.dtype == torch.float32 and last_t.dtype == torch.float32
    tol = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_t, out_r, **tol)
    torch.testing.assert_close(last_t, last_r, **tol)
    assert_grads_close(g_t, g_r, **tol)


@pytest.mark.parametrize("name", list(TRITON_CASES))
def test_triton_matches_reference(name, triton_mode, monkeypatch):
    _triton_vs_reference(name, monkeypatch)
    assert triton_mode == {"forward": 1, "backward": 1}


@pytest.mark.parametrize("name", ["grouped", "packed", "packed-const"])
def test_triton_matches_reference_small_blocks_sliced(name, triton_mode, small_blocks,
                                                      monkeypatch):
    _triton_vs_reference(name, monkeypatch, softplus=False)
    assert triton_mode == {"forward": 1, "backward": 1}


@pytest.mark.parametrize("ptr", [torch.tensor([0, 3, 3, 4, 9]), torch.tensor([0, 9]), None],
                         ids=["packed", "one-long", "batch"])
@pytest.mark.parametrize("budget", [16, 64, 300])
def test_triton_slices_cover_everything(small_blocks, ptr, budget, monkeypatch):
    """The launch plan covers every (sequence, channel block) exactly once, within budget."""
    monkeypatch.setattr(ts, "BUFFER_BUDGET", budget)
    b = 1 if ptr is not None else 5
    inputs = make_inputs(b=b, d=6, n=4, length=9, c_layout="bgnl", groups=2)
    plan = ts._Plan(inputs["u"], inputs["A"], inputs["B"], inputs["C"], ptr)
    offsets = ptr if ptr is not None else torch.arange(b + 1) * 9
    slices = ts._slices(plan, ptr)
    tile = plan.block_d * plan.block_n
    fits = int(offsets[-1]) * plan.nblk * tile <= budget
    assert (len(slices) == 1) == fits
    covered = torch.zeros(plan.num_seqs, plan.nblk, dtype=torch.long)
    for s0, s1, k0, k1, pos0, positions in slices:
        covered[s0:s1, k0:k1] += 1
        assert pos0 == int(offsets[s0]) and positions == int(offsets[s1] - offsets[s0])
        assert positions * (k1 - k0) * tile <= ts.BUFFER_BUDGET or (s1 - s0, k1 - k0) == (1, 1)
    assert (covered == 1).all()
    if ptr is None and budget == 300:  # whole sequences fit: channel blocks are not split
        assert len(slices) > 1 and all(sl[2:4] == (0, plan.nblk) for sl in slices)


def test_triton_packed_equals_each_sequence_alone(triton_mode):
    _check_packed_equals_alone(torch.tensor([0, 2, 2, 3, 7]), "bnl", "bgnl", torch.float32,
                               dict(rtol=1e-4, atol=1e-5))


def test_triton_backward_is_deterministic(triton_mode):
    inputs = make_inputs(b=1, d=4, n=3, length=6, b_layout="bgnl", dtype=torch.float32)
    ptr = torch.tensor([0, 2, 6])
    grad_out = torch.randn(inputs["u"].shape, generator=torch.Generator().manual_seed(4))
    grad_last = torch.ones(2, 4, 3)
    first = grads_of(op(ptr), inputs, grad_out, grad_last)[2]
    second = grads_of(op(ptr), inputs, grad_out, grad_last)[2]
    for k in GRAD_NAMES:
        assert torch.equal(first[k], second[k]), k


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_triton_dtypes(dtype, triton_mode, monkeypatch):
    inputs = make_inputs(b=2, d=4, n=3, length=5, c_layout="bgnl", dtype=dtype)
    inputs["A"] = inputs["A"].float()  # weights in float32, activations in dtype (as Mamba)
    out_t, last_t = selective_scan(**inputs, delta_softplus=True, return_last_state=True)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "reference")
    out_r, last_r = selective_scan(**inputs, delta_softplus=True, return_last_state=True)
    assert out_t.dtype == dtype
    assert last_t.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    tol = {torch.float64: (1e-10, 1e-12), torch.float16: (2e-3, 2e-3),
           torch.bfloat16: (1.6e-2, 1.6e-2)}[dtype]
    torch.testing.assert_close(out_t, out_r, rtol=tol[0], atol=tol[1] * max(
        1.0, float(out_r.abs().max())))
    torch.testing.assert_close(last_t, last_r, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- validation


def _bad(**overrides):
    inputs = make_inputs(dtype=torch.float32)
    inputs.update(overrides)
    ptr = inputs.pop("ptr", None)
    return lambda: selective_scan(**inputs, ptr=ptr)


@pytest.mark.parametrize("overrides, error, match", [
    (dict(u=torch.randn(4, 5)), ShapeError, "u must be"),
    (dict(delta=torch.randn(2, 4, 6)), ShapeError, "delta must have u's shape"),
    (dict(z=torch.randn(2, 4, 4)), ShapeError, "z must have u's shape"),
    (dict(A=torch.randn(3, 3)), ShapeError, "A must be"),
    (dict(B=torch.randn(2, 4, 5)), ShapeError, "B must be"),
    (dict(C=torch.randn(2, 3, 3, 5)), ShapeError, "groups dividing dim"),
    (dict(B=torch.randn(4, 2)), ShapeError, "B must be"),
    (dict(D=torch.randn(3)), ShapeError, "D must be"),
    (dict(delta_bias=torch.randn(4, 1)), ShapeError, "delta_bias must be"),
    (dict(ptr=torch.tensor([0, 2, 5])), ShapeError, "batch == 1"),
    (dict(A=-torch.rand(4, 3, dtype=torch.complex64)), DTypeError, "complex A"),
    (dict(u=torch.ones(2, 4, 5, dtype=torch.long)), DTypeError, "floating point"),
    (dict(A=torch.randn(4, 3, device="meta")), DeviceError, "A is on meta"),
    (dict(B="not a tensor"), DTypeError, "must be a tensor"),
])
def test_invalid_inputs(overrides, error, match):
    with pytest.raises(error, match=match):
        _bad(**overrides)()


@pytest.mark.parametrize("ptr, error, match", [
    (torch.tensor([0, 2, 5], dtype=torch.int32), DTypeError, "torch.long"),
    (torch.tensor([[0, 5]]), DTypeError, "1-D"),
    (torch.tensor([1, 5]), InvalidArgumentError, "start at 0"),
    (torch.tensor([0, 4]), InvalidArgumentError, "end at length=5"),
    (torch.tensor([0, 3, 2, 5]), InvalidArgumentError, "never decrease"),
    (torch.tensor([0]), InvalidArgumentError, "ptr must"),
])
def test_invalid_ptr(ptr, error, match):
    inputs = make_inputs(b=1, dtype=torch.float32)
    with pytest.raises(error, match=match):
        selective_scan(**inputs, ptr=ptr)


def test_mixed_float_dtypes_are_accepted():
    """As in mamba-ssm, weights may be float32 while activations are half precision."""
    inputs = make_inputs(dtype=torch.bfloat16)
    inputs["A"], inputs["D"] = inputs["A"].float(), inputs["D"].float()
    out = selective_scan(**inputs, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    ref = selective_scan(**{k: v.float() for k, v in inputs.items()}, delta_softplus=True)
    torch.testing.assert_close(out.float(), ref, rtol=1.6e-2, atol=1.6e-2 * math.sqrt(
        float(ref.abs().max())))


@pytest.mark.parametrize("mode", ["reference", "triton"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_softplus_matches_torch(mode, dtype, monkeypatch):
    """With A = 0 and B = C = u = 1 the output is the running sum of softplus(delta)."""
    if mode == "triton":
        pytest.importorskip("triton")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", mode)
    x = torch.tensor([-40.0, -10.0, -1e-3, 0.0, 3.0, 19.9, 20.5, 50.0], dtype=dtype)
    ones = torch.ones(1, 1, x.numel(), dtype=dtype)
    out = selective_scan(ones, x.view(1, 1, -1), torch.zeros(1, 1, dtype=dtype), ones, ones,
                         delta_softplus=True)
    expected = F.softplus(x.double()).cumsum(0).to(dtype)
    torch.testing.assert_close(out.view(-1), expected)
    terms = out.view(-1).double().diff()  # each softplus alone, tiny ones included
    torch.testing.assert_close(terms[:2].to(dtype), F.softplus(x[1:3]), rtol=1e-5, atol=0)
