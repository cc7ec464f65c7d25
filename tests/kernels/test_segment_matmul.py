"""Tests of graphlearn.kernels.segment_matmul (reference and Triton) against a float64 loop.

The Triton kernels run on CPU under ``TRITON_INTERPRET=1`` (set in ``tests/conftest.py``)
with 16-wide blocks, so the toy cases below already reach types spanning several row tiles,
tail tiles in rows, ``in`` and ``out``, empty types and programs past the last real tile.
"""

from __future__ import annotations

import pytest
import torch
from graphlearn.kernels import gather_scatter_matmul, segment_matmul, type_ptr
from graphlearn.kernels.segment_matmul import (
    _gather_scatter_matmul,
    _gather_scatter_matmul_backward,
    reference_gather_scatter_matmul,
    reference_gather_scatter_matmul_backward,
    reference_segment_matmul,
)

from graphlearn.errors import DeviceError, DTypeError, IndexOutOfRangeError, ShapeError

# (atol, rtol) of each dtype against the float64 oracle; inputs are drawn in the dtype, so
# the only error left is fp32 accumulation plus the final rounding of the output.
TOLERANCE = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}

# Rows per type, and (in, out), of each named case. Blocks are 16 wide under the interpreter.
CASES = {
    "mixed": ([5, 0, 19, 3], (20, 24)),  # a 2-tile type with a tail; 2 tiles in in and out
    "empty_types": ([0, 4, 0, 6, 0], (7, 5)),  # leading, inner and trailing empty types
    "single_type": ([9], (16, 17)),
    "all_in_one_type": ([0, 0, 21, 0], (5, 3)),
    "no_rows": ([0, 0, 0], (6, 4)),  # M = 0
    "many_types": ([3, 0, 1, 40, 2, 0, 5, 1, 17, 0, 2, 1], (6, 5)),  # the CPU tiled route
}
MODES = ["neither", "gather", "scatter", "both"]
NUM_X_GATHERED, NUM_OUT = 11, 7


def make_case(name, mode="neither", dtype=torch.float64, seed=0, with_scale=False):
    """Inputs ``(x, weight, ptr, gather_index, scatter_index, num_out, scale)`` of one case."""
    counts, (k, n) = CASES[name]
    gen = torch.Generator().manual_seed(seed)
    num_types, num_rows = len(counts), sum(counts)
    ptr = type_ptr(torch.repeat_interleave(torch.arange(num_types), torch.tensor(counts)),
                   num_types)
    gather = scatter = None
    num_x = num_rows
    if mode in ("gather", "both"):
        num_x = NUM_X_GATHERED
        gather = torch.randint(0, num_x, (num_rows,), generator=gen)
    num_out = None
    if mode in ("scatter", "both"):
        num_out = NUM_OUT
        scatter = torch.randint(0, num_out - 1, (num_rows,), generator=gen)  # last row unused
    x = torch.randn(num_x, k, generator=gen, dtype=torch.float64).to(dtype)
    weight = torch.randn(num_types, k, n, generator=gen, dtype=torch.float64).to(dtype)
    scale = None
    if with_scale:
        scale = (torch.rand(num_rows, generator=gen, dtype=torch.float64) * 2 - 0.5).to(dtype)
    return x, weight, ptr, gather, scatter, num_out, scale


def loop_reference(x, weight, ptr, gather=None, scatter=None, num_out=None, scale=None):
    """Row by row in float64: ``out[s(m)] += c_m * x[g(m)] @ weight[t(m)]``.

    ``t(m)`` is found by scanning ``ptr``. Differentiable, so its autograd gradients are
    the oracle for the op's hand-written backward.
    """
    bounds = ptr.tolist()
    num_rows = gather.numel() if gather is not None else x.size(0)
    x, weight = x.double(), weight.double()
    contributions, targets = [], []
    for m in range(num_rows):
        t = next(t for t in range(weight.size(0)) if bounds[t] <= m < bounds[t + 1])
        src = int(gather[m]) if gather is not None else m
        row = x[src] @ weight[t]
        if scale is not None:
            row = row * scale[m].double()
        contributions.append(row)
        targets.append(int(scatter[m]) if scatter is not None else m)
    out = torch.zeros(num_out if scatter is not None else num_rows, weight.size(2),
                      dtype=torch.float64)
    if not contributions:  # keep the (zero) output on the graph so backward gives zeros
        return out + 0 * (x.sum() + weight.sum() + (0 if scale is None else scale.sum()))
    return out.index_add(0, torch.tensor(targets), torch.stack(contributions))


def assert_close_verbose(actual, expected, dtype, what="output", factor=1.0):
    atol, rtol = TOLERANCE[dtype]
    atol, rtol = atol * factor, rtol * factor
    assert actual.shape == expected.shape, f"{what}: {tuple(actual.shape)} != {tuple(expected.shape)}"
    actual, expected = actual.double(), expected.double()
    bad = ~torch.isclose(actual, expected, atol=atol, rtol=rtol)
    if bad.any():
        idx = bad.nonzero()[:5].tolist()
        worst = (actual - expected).abs().max().item()
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} elements differ ({dtype}, atol={atol}, "
            f"rtol={rtol}); worst abs error {worst:.3g}; first bad indices {idx}"
        )


def assert_grads_close(grads, expected, dtype, factor=1.0):
    """Compare ``[d x, d weight(, d scale)]`` pairwise, naming the failing gradient."""
    assert len(grads) == len(expected)
    for name, got, want in zip(("d x", "d weight", "d scale"), grads, expected, strict=False):
        assert got.dtype == dtype, f"{name}: dtype {got.dtype}, expected {dtype}"
        assert_close_verbose(got, want, dtype, name, factor)


def forward_and_grads(fn, inputs, grad_dtype=None, grad_seed=1):
    """Output and ``[d x, d weight(, d scale)]`` of ``fn`` under one fixed ``grad_out``.

    ``grad_out`` is drawn in ``grad_dtype`` (default: the output's dtype), so an oracle run
    in float64 sees exactly the gradient a low-precision run sees.
    """
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    leaves = [x.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()]
    if scale is not None:
        leaves.append(scale.detach().clone().requires_grad_())
    out = fn(leaves[0], leaves[1], ptr, gather, scatter, num_out,
             leaves[2] if scale is not None else None)
    gen = torch.Generator().manual_seed(grad_seed)
    grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    grad_out = grad_out.to(grad_dtype or out.dtype).to(out.dtype)
    out.backward(grad_out)
    return out.detach(), [leaf.grad for leaf in leaves]


def oracle(inputs):
    """Output and gradients of :func:`loop_reference` on the float64 upcast of ``inputs``."""
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    up = (x.double(), weight.double(), ptr, gather, scatter, num_out,
          None if scale is None else scale.double())
    return forward_and_grads(loop_reference, up, grad_dtype=x.dtype)


@pytest.fixture(autouse=True)
def one_thread():
    """Toy tensors: one intra-op thread, so a busy machine's OpenMP barriers cost nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def triton_mode(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")


# --------------------------------------------------------------------------- reference


@pytest.fixture(params=["loop", "tiled"])
def cpu_route(request, monkeypatch):
    """Force the reference's per-type loop or its tiled batched-GEMM route."""
    import importlib

    module = importlib.import_module("graphlearn.kernels.segment_matmul")  # not the function
    monkeypatch.setattr(module, "_TILED_MIN_TYPES", 10**9 if request.param == "loop" else 1)
    return request.param


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_scale", [False, True])
def test_reference_matches_loop_float64(case, mode, with_scale, cpu_route):
    inputs = make_case(case, mode, with_scale=with_scale)
    expected_out, expected_grads = oracle(inputs)
    assert_close_verbose(reference_gather_scatter_matmul(*inputs), expected_out, torch.float64)
    out, grads = forward_and_grads(gather_scatter_matmul, inputs)  # CPU, auto: the reference
    assert_close_verbose(out, expected_out, torch.float64)
    assert_grads_close(grads, expected_grads, torch.float64)


def test_scattered_rows_without_pairs_are_zero():
    x, weight, ptr, gather, scatter, num_out, _ = make_case("mixed", "both")
    out = gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out)
    assert out.shape == (NUM_OUT, weight.size(2))
    assert torch.all(out[-1] == 0)


def test_segment_matmul_is_pyg_lib_contract():
    x, weight, ptr, *_ = make_case("empty_types", dtype=torch.float32)
    expected = torch.cat([x[lo:hi] @ weight[t] for t, (lo, hi) in
                          enumerate(zip(ptr[:-1].tolist(), ptr[1:].tolist(), strict=True))])
    torch.testing.assert_close(segment_matmul(x, ptr, weight), expected)
    torch.testing.assert_close(reference_segment_matmul(x, ptr, weight), expected)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_reference_float64(mode):
    x, weight, ptr, gather, scatter, num_out, scale = make_case("mixed", mode, with_scale=True)
    x, weight = x[:, :3].contiguous(), weight[:, :3, :2].contiguous()
    leaves = [t.requires_grad_() for t in (x, weight, scale)]

    def fn(x, weight, scale):
        return gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out, scale)

    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradcheck(
        lambda x, w, c: reference_gather_scatter_matmul(x, w, ptr, gather, scatter, num_out, c),
        leaves)


def test_reference_backward_skips_unrequested_gradients():
    inputs = make_case("mixed", "both", with_scale=True)
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    grad_out = torch.ones(num_out, weight.size(2), dtype=torch.float64)
    d_x, d_w, d_scale = reference_gather_scatter_matmul_backward(
        grad_out, x, weight, ptr, gather, scatter, scale, needs_x=False, needs_scale=False)
    assert d_x is None and d_scale is None and d_w.shape == weight.shape


@pytest.mark.parametrize("with_scale", [False, True])
def test_opcheck_custom_ops(with_scale):
    x, weight, ptr, gather, scatter, num_out, scale = make_case(
        "mixed", "both", dtype=torch.float32, with_scale=with_scale)
    requires_grad = with_scale  # one case each way keeps this test short
    args = (x.clone().requires_grad_(requires_grad),
            weight.clone().requires_grad_(requires_grad), ptr, gather, scatter, num_out,
            None if scale is None else scale.clone().requires_grad_(requires_grad))
    torch.library.opcheck(_gather_scatter_matmul, args)
    grad_out = torch.randn(num_out, weight.size(2))
    needs = (True, True, True) if with_scale else (False, True, False)
    torch.library.opcheck(_gather_scatter_matmul_backward,
                          (grad_out, x, weight, ptr, gather, scatter, scale, *needs))


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    x, weight, ptr, gather, scatter, num_out, scale = make_case(
        "mixed", "both", dtype=torch.float32, with_scale=True)
    x_seg = torch.randn(ptr[-1].item(), x.size(1))

    def step(x, weight, scale, x_seg):
        h = gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out, scale)
        y = segment_matmul(x_seg, ptr, weight)
        return (h * h).sum() + y.square().sum()

    results = []
    for fn in (step, torch.compile(step, fullgraph=True)):
        leaves = [t.clone().requires_grad_() for t in (x, weight, scale, x_seg)]
        loss = fn(*leaves)
        loss.backward()
        results.append((loss, [t.grad for t in leaves]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e, atol=1e-5, rtol=1e-5)
    for g_c, g_e in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(g_c, g_e, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- low precision


@pytest.mark.parametrize("impl", ["reference", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["neither", "both"])
def test_low_precision_matches_float64_oracle(impl, dtype, mode, monkeypatch):
    """Inputs drawn in ``dtype``; the oracle sees the same (exactly upcast) values."""
    if impl == "triton":
        pytest.importorskip("triton")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", impl)
    inputs = make_case("mixed", mode, dtype=dtype, with_scale=True)
    out, grads = forward_and_grads(gather_scatter_matmul, inputs)
    expected_out, expected_grads = oracle(inputs)
    assert out.dtype == dtype
    assert_close_verbose(out, expected_out, dtype)
    # The oracle sees the same grad_out, so only accumulation and the rounding of the result
    # (and of scale * grad, which feeds d weight) remain.
    assert_grads_close(grads, expected_grads, dtype, factor=2.0)


@pytest.mark.parametrize("impl", ["reference", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_long_segment_accumulates_in_fp32(impl, dtype, monkeypatch):
    """2100 rows of ones in one type: ``d weight`` is exactly 2100 per entry.

    A running sum in float16 stops at 2048 (bfloat16: 256), so this pins the fp32
    accumulator of the per-type reduction.
    """
    if impl == "triton":
        pytest.importorskip("triton")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", impl)
    num_rows = 2100
    x = torch.ones(num_rows, 4, dtype=dtype)
    weight = torch.full((2, 4, 3), 0.5, dtype=dtype, requires_grad=True)
    ptr = torch.tensor([0, 0, num_rows])
    out = gather_scatter_matmul(x, weight, ptr, scatter_index=torch.zeros(num_rows, dtype=torch.long),
                                num_out=1)
    assert_close_verbose(out, torch.full((1, 3), 2.0 * num_rows, dtype=torch.float64), dtype)
    out.sum().backward()
    expected = torch.stack([torch.zeros(4, 3), torch.full((4, 3), float(num_rows))]).double()
    assert_close_verbose(weight.grad, expected, dtype, "d weight")


# --------------------------------------------------------------------------- Triton


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_scale", [False, True])
def test_triton_matches_reference(case, mode, with_scale, triton_mode, monkeypatch):
    inputs = make_case(case, mode, dtype=torch.float32, with_scale=with_scale)
    out, grads = forward_and_grads(gather_scatter_matmul, inputs)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "reference")
    ref_out, ref_grads = forward_and_grads(gather_scatter_matmul, inputs)
    expected_out, expected_grads = oracle(inputs)
    assert_close_verbose(out, ref_out, torch.float32)
    assert_close_verbose(out, expected_out, torch.float32)
    assert_grads_close(grads, ref_grads, torch.float32)
    assert_grads_close(grads, expected_grads, torch.float32)


def test_triton_gradcheck_float64(triton_mode):
    counts = torch.tensor([2, 0, 3])
    ptr = type_ptr(torch.repeat_interleave(torch.arange(3), counts), 3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(5, generator=gen, dtype=torch.float64, requires_grad=True)
    gather, scatter = torch.tensor([0, 3, 3, 1, 0]), torch.tensor([2, 0, 2, 1, 1])

    def fn(x, weight, scale):
        return gather_scatter_matmul(x, weight, ptr, gather, scatter, 3, scale)

    assert torch.autograd.gradcheck(fn, (x, weight, scale))


def test_triton_segment_matmul_host_ptr(triton_mode):
    x, weight, ptr, *_ = make_case("mixed", dtype=torch.float32)
    torch.testing.assert_close(segment_matmul(x, ptr, weight),
                               reference_segment_matmul(x, ptr, weight))


def test_triton_non_contiguous_inputs(triton_mode):
    x, weight, ptr, gather, scatter, num_out, scale = make_case("mixed", "both",
                                                                dtype=torch.float32)
    x_t = x.t().contiguous().t()  # column-major view
    w_t = weight.transpose(1, 2).contiguous().transpose(1, 2)
    torch.testing.assert_close(
        gather_scatter_matmul(x_t, w_t, ptr, gather, scatter, num_out),
        reference_gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out))


def test_row_tile_table_needs_no_host_values():
    """The tile table is built by torch ops alone: it runs on ``meta`` tensors (no values)."""
    triton_gemm = pytest.importorskip("graphlearn.kernels.triton_gemm")
    counts = [5, 0, 19, 3, 0]
    ptr = type_ptr(torch.repeat_interleave(torch.arange(5), torch.tensor(counts)), 5)
    tile_type, tile_start = triton_gemm._row_tiles(ptr.to("meta"), 27, 16)
    assert tile_type.device.type == "meta" and tile_type.shape == (min(2 + 5, 27),)

    tile_type, tile_start = triton_gemm._row_tiles(ptr, 27, 16)
    covered = []
    for t, start in zip(tile_type.tolist(), tile_start.tolist(), strict=True):
        end = ptr[t + 1].item()
        if start >= end:  # a program past the last real tile
            continue
        assert ptr[t].item() <= start  # a tile never straddles two types
        covered.extend(range(start, min(start + 16, end)))
    assert covered == list(range(27))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_does_not_synchronise():
    inputs = make_case("mixed", "both", dtype=torch.float32, with_scale=True)
    inputs = [t.cuda() if isinstance(t, torch.Tensor) else t for t in inputs]
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    leaves = [t.clone().requires_grad_() for t in (x, weight, scale)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = gather_scatter_matmul(leaves[0], leaves[1], ptr, gather, scatter, num_out,
                                    leaves[2])
        out.backward(torch.ones_like(out))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    expected = reference_gather_scatter_matmul(x.cpu(), weight.cpu(), ptr.cpu(), gather.cpu(),
                                               scatter.cpu(), num_out, scale.cpu())
    torch.testing.assert_close(out.cpu(), expected, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- dispatch


def test_auto_mode_on_cpu_uses_the_reference(monkeypatch):
    triton_gemm = pytest.importorskip("graphlearn.kernels.triton_gemm")

    def fail(*args, **kwargs):
        raise AssertionError("the Triton path ran for CPU tensors in auto mode")

    monkeypatch.setattr(triton_gemm, "gather_scatter_matmul_forward", fail)
    monkeypatch.setattr(triton_gemm, "gather_scatter_matmul_backward", fail)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "auto")
    forward_and_grads(gather_scatter_matmul, make_case("mixed", "both", dtype=torch.float32))


def test_triton_mode_runs_the_triton_kernels(triton_mode, monkeypatch):
    triton_gemm = pytest.importorskip("graphlearn.kernels.triton_gemm")
    calls = []
    for name in ("gather_scatter_matmul_forward", "gather_scatter_matmul_backward"):
        real = getattr(triton_gemm, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(triton_gemm, name, spy)
    forward_and_grads(gather_scatter_matmul, make_case("single_type", dtype=torch.float32))
    assert calls == ["gather_scatter_matmul_forward", "gather_scatter_matmul_backward"]


# --------------------------------------------------------------------------- input checks


@pytest.fixture
def inputs():
    return make_case("mixed", "both", dtype=torch.float32, with_scale=True)


def test_dtype_errors(inputs):
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    with pytest.raises(DTypeError, match="floating-point"):
        gather_scatter_matmul(x.long(), weight, ptr, gather, scatter, num_out)
    with pytest.raises(DTypeError, match=r"weight \(torch.float64\)"):
        gather_scatter_matmul(x, weight.double(), ptr, gather, scatter, num_out)
    with pytest.raises(DTypeError, match="ptr must be torch.long"):
        gather_scatter_matmul(x, weight, ptr.int(), gather, scatter, num_out)
    with pytest.raises(DTypeError, match="gather_index must be torch.long"):
        gather_scatter_matmul(x, weight, ptr, gather.int(), scatter, num_out)
    with pytest.raises(DTypeError, match="scale must be floating point"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out, scale.long())
    with pytest.raises(TypeError):  # DTypeError is a TypeError too
        segment_matmul(x.long(), ptr, weight)


def test_shape_errors(inputs):
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    with pytest.raises(ShapeError, match=r"x \(N, in\)"):
        gather_scatter_matmul(x[:, 0], weight, ptr, gather)
    with pytest.raises(ShapeError, match="same in"):
        gather_scatter_matmul(x[:, :3], weight, ptr, gather)
    with pytest.raises(ShapeError, match=r"ptr must have shape \(T \+ 1,\) = \(5,\)"):
        gather_scatter_matmul(x, weight, ptr[:-1], gather)
    with pytest.raises(ShapeError, match="scatter_index must have shape"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter[:-1], num_out)
    with pytest.raises(ShapeError, match="scale must have shape"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out, scale[:-1])
    with pytest.raises(ShapeError, match="needs num_out"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter)
    with pytest.raises(ShapeError, match="non-decreasing"):
        gather_scatter_matmul(x, weight, torch.tensor([0, 9, 5, 26, 27]), gather)
    with pytest.raises(ShapeError, match=r"end at the number of rows \(27\)"):
        gather_scatter_matmul(x, weight, torch.tensor([0, 5, 5, 24, 26]), gather)
    with pytest.raises(ValueError):  # ShapeError is a ValueError too
        segment_matmul(x, ptr, weight)


def test_index_range_errors(inputs):
    x, weight, ptr, gather, scatter, num_out, _ = inputs
    with pytest.raises(IndexOutOfRangeError, match=r"gather_index must lie in \[0, 11\)"):
        gather_scatter_matmul(x, weight, ptr, gather + 100)
    with pytest.raises(IndexOutOfRangeError, match=r"scatter_index must lie in \[0, 2\)"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter, 2)


def test_device_errors(inputs):
    x, weight, ptr, gather, scatter, num_out, scale = inputs
    with pytest.raises(DeviceError, match="weight is on meta"):
        gather_scatter_matmul(x, weight.to("meta"), ptr, gather)
    with pytest.raises(DeviceError, match="scale is on meta"):
        gather_scatter_matmul(x, weight, ptr, gather, scatter, num_out, scale.to("meta"))


def test_tiled_route_plan_cache_follows_in_place_edits(cpu_route):
    """The memoised tile plan is invalidated when the same ptr tensor is edited in place."""
    counts = torch.tensor([3, 0, 5, 2, 1, 4, 0, 2, 6, 1])
    ptr = type_ptr(torch.repeat_interleave(torch.arange(10), counts), 10)
    x = torch.randn(int(counts.sum()), 4, dtype=torch.float64)
    weight = torch.randn(10, 4, 3, dtype=torch.float64)
    first = segment_matmul(x, ptr, weight)
    torch.testing.assert_close(first, loop_reference(x, weight, ptr))
    ptr[1:-1] = ptr[1:-1].roll(1).sort().values  # same tensor, new type boundaries
    ptr[1] = 0
    torch.testing.assert_close(segment_matmul(x, ptr, weight), loop_reference(x, weight, ptr))
