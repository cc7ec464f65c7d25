"""Tests of graphlearn.kernels.weighted_aggregate against a dense float64 matrix product."""

from __future__ import annotations

import pytest
import torch
from graphlearn.kernels import csc_index, weighted_aggregate
from graphlearn.kernels.weighted_aggregate import (
    _edge_dot,
    _weighted_aggregate,
    reference,
    reference_backward,
)

from graphlearn.errors import (
    DeviceError,
    DTypeError,
    InvalidArgumentError,
    KernelNotAvailableError,
    ShapeError,
)

# (atol, rtol) of each dtype against the float64 oracle; inputs are drawn in the dtype, so
# the only error left is fp32 accumulation plus the final rounding of the output.
TOLERANCE = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}


def dense_reference(values, src, dst, weight, num_dst):
    """out = A @ V with the dense float64 matrix A[i, j] = sum of w_e over edges j -> i."""
    w = torch.ones(src.numel(), dtype=torch.float64) if weight is None else weight.double()
    adj = torch.zeros(num_dst, values.size(0), dtype=torch.float64)
    adj.index_put_((dst, src), w, accumulate=True)
    return adj @ values.double()


def make_case(name, dtype=torch.float64, seed=0):
    """(values, src, dst, num_dst) for one named branch."""
    gen = torch.Generator().manual_seed(seed)
    num_src, channels = 6, 3
    if name == "no_edges_to_some_dst":  # destinations 1, 3, 4 receive nothing
        dst = torch.tensor([0, 0, 2, 2, 2, 0])
        num_dst = 5
    elif name == "single_edge":
        dst = torch.tensor([1])
        num_dst = 3
    elif name == "duplicates":  # repeated (src, dst) pairs add up
        dst = torch.tensor([0, 0, 0, 1, 1])
        num_dst = 2
    elif name == "wide":
        channels = 67
        dst = torch.randint(0, 4, (25,), generator=gen)
        num_dst = 4
    elif name == "empty":
        dst = torch.empty(0, dtype=torch.long)
        num_dst = 3
    elif name == "no_destinations":
        dst = torch.empty(0, dtype=torch.long)
        num_dst = 0
    elif name == "long_segment":  # one destination with many edges: accumulation precision
        dst = torch.zeros(2000, dtype=torch.long)
        num_dst = 2
        channels = 2
    else:
        raise AssertionError(name)
    num_edges = dst.numel()
    src = torch.randint(0, num_src, (num_edges,), generator=gen)
    if name == "duplicates":
        src = torch.tensor([3, 3, 1, 2, 2])
    values = torch.randn(num_src, channels, generator=gen, dtype=torch.float64)
    if name == "long_segment":
        values = values.abs() + 1.0
    return values.to(dtype), src, dst, num_dst


def make_weight(src, dtype, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(src.numel(), generator=gen, dtype=torch.float64) * 2 - 0.5).to(dtype)


CASES = ["no_edges_to_some_dst", "single_edge", "duplicates", "wide", "empty",
         "no_destinations", "long_segment"]


def assert_close_verbose(actual, expected, dtype):
    atol, rtol = TOLERANCE[dtype]
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    actual = actual.double()
    bad = ~torch.isclose(actual, expected, atol=atol, rtol=rtol)
    if bad.any():
        idx = bad.nonzero()[:5].tolist()
        worst = (actual - expected).abs().max().item()
        raise AssertionError(
            f"{int(bad.sum())} of {bad.numel()} elements differ ({dtype}, atol={atol}, "
            f"rtol={rtol}); worst abs error {worst:.3g}; first bad indices {idx}"
        )


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_dense_reference_float64(case, weighted):
    values, src, dst, num_dst = make_case(case)
    weight = make_weight(src, values.dtype) if weighted else None
    expected = dense_reference(values, src, dst, weight, num_dst)
    out = weighted_aggregate(values, src, dst, weight, num_dst)
    assert out.shape == (num_dst, values.size(1))
    assert out.dtype == torch.float64
    assert_close_verbose(out, expected, torch.float64)
    assert_close_verbose(reference(values, src, dst, weight, num_dst), expected, torch.float64)


def test_matches_torch_sparse_mm():
    values, src, dst, num_dst = make_case("wide")
    weight = make_weight(src, values.dtype)
    adj = torch.sparse_coo_tensor(torch.stack([dst, src]), weight, (num_dst, values.size(0)))
    torch.testing.assert_close(weighted_aggregate(values, src, dst, weight, num_dst),
                               torch.sparse.mm(adj, values))


def test_destinations_without_edges_are_zero():
    values, src, dst, num_dst = make_case("no_edges_to_some_dst")
    out = weighted_aggregate(values, src, dst, None, num_dst)
    assert torch.all(out[[1, 3, 4]] == 0)
    assert torch.all(out[[0, 2]] != 0)
    empty = weighted_aggregate(values, src[:0], dst[:0], None, 3)
    assert empty.shape == (3, values.size(1)) and torch.all(empty == 0)


def test_unit_weights_equal_no_weight():
    values, src, dst, num_dst = make_case("wide")
    torch.testing.assert_close(
        weighted_aggregate(values, src, dst, torch.ones_like(src, dtype=values.dtype), num_dst),
        weighted_aggregate(values, src, dst, None, num_dst))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["no_edges_to_some_dst", "duplicates", "wide", "long_segment"])
@pytest.mark.parametrize("weighted", [False, True])
def test_low_precision_accumulates_in_fp32(dtype, case, weighted):
    """Inputs drawn in ``dtype``; the oracle sees the same (exactly upcast) values."""
    values, src, dst, num_dst = make_case(case, dtype=dtype)
    weight = make_weight(src, dtype) if weighted else None
    out = weighted_aggregate(values, src, dst, weight, num_dst)
    assert out.dtype == dtype
    expected = dense_reference(values.double(), src, dst,
                               None if weight is None else weight.double(), num_dst)
    # long segments sum ~2000 terms of size ~2: scale atol with the output magnitude
    scale = max(1.0, float(expected.abs().max())) if case == "long_segment" else 1.0
    atol, rtol = TOLERANCE[dtype]
    bad = ~torch.isclose(out.double(), expected, atol=atol * scale, rtol=rtol)
    assert not bad.any(), f"{int(bad.sum())} mismatches, worst {(out.double() - expected).abs().max()}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_long_segment_does_not_stagnate(dtype):
    """20000 unit-weight edges into one node: the output is the sum of the gathered values.

    A running sum in float16 stops growing at 2048 (bfloat16: 256) for unit steps, so this
    pins the fp32 accumulator; only the final rounding to ``dtype`` remains.
    """
    num_edges = 20000
    src = torch.zeros(num_edges, dtype=torch.long)
    dst = torch.zeros(num_edges, dtype=torch.long)
    values = torch.ones(1, 2, dtype=dtype)
    out = weighted_aggregate(values, src, dst, None, 1)
    torch.testing.assert_close(out.double(), torch.full((1, 2), 20000.0, dtype=torch.float64),
                               atol=0, rtol=TOLERANCE[dtype][1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_gradients(dtype):
    values, src, dst, num_dst = make_case("wide", dtype=dtype)
    weight = make_weight(src, dtype)
    grad_out = torch.randn(num_dst, values.size(1), dtype=torch.float64).to(dtype)
    lo = [t.clone().requires_grad_() for t in (values, weight)]
    hi = [t.double().requires_grad_() for t in (values, weight)]
    weighted_aggregate(lo[0], src, dst, lo[1], num_dst).backward(grad_out)
    reference(hi[0], src, dst, hi[1], num_dst).backward(grad_out.double())
    atol, rtol = TOLERANCE[dtype]
    for a, b in zip(lo, hi, strict=True):
        assert a.grad.dtype == dtype
        torch.testing.assert_close(a.grad.double(), b.grad, atol=4 * atol, rtol=4 * rtol)


# --------------------------------------------------------------------------- autograd, opcheck


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", ["no_edges_to_some_dst", "duplicates", "single_edge"])
def test_gradcheck_float64(case, weighted):
    values, src, dst, num_dst = make_case(case)
    inputs = [values.requires_grad_()]
    if weighted:
        inputs.append(make_weight(src, values.dtype).requires_grad_())

    def fn(*args):
        return weighted_aggregate(args[0], src, dst, args[1] if weighted else None, num_dst)

    assert torch.autograd.gradcheck(fn, inputs)
    # the backward reuses the op (transposed), so second derivatives exist as well
    assert torch.autograd.gradgradcheck(fn, inputs)


def test_gradients_match_dense_autograd():
    values, src, dst, num_dst = make_case("wide")
    weight = make_weight(src, values.dtype)
    grad_out = torch.randn(num_dst, values.size(1), dtype=torch.float64)
    v1, w1 = values.clone().requires_grad_(), weight.clone().requires_grad_()
    weighted_aggregate(v1, src, dst, w1, num_dst).backward(grad_out)
    v2, w2 = values.clone().requires_grad_(), weight.clone().requires_grad_()
    dense_reference(v2, src, dst, w2, num_dst).backward(grad_out)
    torch.testing.assert_close(v1.grad, v2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)
    d_values, d_weight = reference_backward(grad_out, values, src, dst, weight)
    torch.testing.assert_close(d_values, v2.grad)
    torch.testing.assert_close(d_weight, w2.grad)
    d_values, d_weight = reference_backward(grad_out, values, src, dst, None)
    torch.testing.assert_close(d_values, dense_reference(
        torch.eye(values.size(0), dtype=torch.float64), src, dst, None, num_dst).t() @ grad_out)
    assert d_weight is None


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", ["no_edges_to_some_dst", "empty"])
def test_opcheck_custom_op(weighted, case):
    values, src, dst, num_dst = make_case(case, dtype=torch.float32)
    weight = make_weight(src, values.dtype) if weighted else None
    for requires_grad in (False, True):
        args = (values.clone().requires_grad_(requires_grad), src, dst,
                None if weight is None else weight.clone().requires_grad_(requires_grad), num_dst)
        torch.library.opcheck(_weighted_aggregate, args)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    values, src, dst, num_dst = make_case("no_edges_to_some_dst", dtype=torch.float32)
    weight = make_weight(src, values.dtype)

    def step(values, weight):
        out = weighted_aggregate(values, src, dst, weight, num_dst)
        return (out * out).sum()

    results = []
    for fn in (step, torch.compile(step, fullgraph=True)):
        leaves = [t.clone().requires_grad_() for t in (values, weight)]
        loss = fn(*leaves)
        loss.backward()
        results.append((loss, [t.grad for t in leaves]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e, atol=1e-5, rtol=1e-5)
    for g_c, g_e in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(g_c, g_e, atol=1e-5, rtol=1e-5)


def test_compile_dynamic_shapes():
    torch._dynamo.reset()
    fn = torch.compile(weighted_aggregate, fullgraph=True, dynamic=True, backend="aot_eager")
    for case in ("no_edges_to_some_dst", "wide"):
        values, src, dst, num_dst = make_case(case, dtype=torch.float32)
        torch.testing.assert_close(fn(values, src, dst, None, num_dst),
                                   weighted_aggregate(values, src, dst, None, num_dst))


# --------------------------------------------------------------------------- input checks


@pytest.fixture
def inputs():
    values, src, dst, num_dst = make_case("no_edges_to_some_dst", dtype=torch.float32)
    return values, src, dst, make_weight(src, values.dtype), num_dst


def test_dtype_errors(inputs):
    values, src, dst, weight, num_dst = inputs
    with pytest.raises(DTypeError, match="floating-point"):
        weighted_aggregate(values.long(), src, dst, None, num_dst)
    with pytest.raises(DTypeError, match="share one"):
        weighted_aggregate(values, src, dst, weight.double(), num_dst)
    with pytest.raises(DTypeError, match="torch.long"):
        weighted_aggregate(values, src.int(), dst, weight, num_dst)
    with pytest.raises(DTypeError, match="torch.long"):
        weighted_aggregate(values, src, dst.float(), weight, num_dst)


def test_shape_errors(inputs):
    values, src, dst, weight, num_dst = inputs
    with pytest.raises(ShapeError, match=r"values of shape \(N, C\).*view\(-1, 1\)"):
        weighted_aggregate(values[:, 0], src, dst, weight, num_dst)
    with pytest.raises(ShapeError, match="src and dst"):
        weighted_aggregate(values, src[:-1], dst, weight, num_dst)
    with pytest.raises(ShapeError, match="src and dst"):
        weighted_aggregate(values, src.view(2, -1), dst.view(2, -1), None, num_dst)
    with pytest.raises(ShapeError, match="weight must have shape"):
        weighted_aggregate(values, src, dst, weight[:-1], num_dst)
    with pytest.raises(ShapeError, match="num_dst"):
        weighted_aggregate(values, src, dst, weight, -1)


def test_device_errors(inputs):
    values, src, dst, weight, num_dst = inputs
    with pytest.raises(DeviceError, match="src is on meta"):
        weighted_aggregate(values, src.to("meta"), dst, weight, num_dst)
    with pytest.raises(DeviceError, match="weight is on meta"):
        weighted_aggregate(values, src, dst, weight.to("meta"), num_dst)


def test_errors_are_builtin_subclasses(inputs):
    values, src, dst, weight, num_dst = inputs
    with pytest.raises(TypeError):
        weighted_aggregate(values.long(), src, dst, None, num_dst)
    with pytest.raises(ValueError):
        weighted_aggregate(values, src, dst, weight, -1)


# --------------------------------------------------------------------------- dispatch


def test_triton_mode_on_cpu_needs_the_interpreter(inputs, monkeypatch):
    # triton reads TRITON_INTERPRET when it is imported (its own tl helpers are jitted
    # then), so import it under the interpreter before unsetting the variable here
    pytest.importorskip("graphlearn.kernels.triton_traversal")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelNotAvailableError, match="need CUDA tensors"):
        weighted_aggregate(*inputs)


def test_invalid_kernel_mode_raises(inputs, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "fast")
    with pytest.raises(InvalidArgumentError, match="reference, triton"):
        weighted_aggregate(*inputs)


@pytest.mark.parametrize("mode", ["reference", "auto", "AUTO", ""])
def test_reference_and_auto_modes_agree(inputs, monkeypatch, mode):
    expected = reference(*inputs)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", mode)
    torch.testing.assert_close(weighted_aggregate(*inputs), expected)


# --------------------------------------------------------------------------- Triton path
# GRAPHLEARN_KERNELS=triton runs the traversal kernels on CPU tensors under TRITON_INTERPRET=1
# (set by tests/conftest.py). The interpreter is slow, so the graphs are toys; small_blocks
# shrinks the launch heuristics so toy graphs still reach the multi-block branches.


@pytest.fixture
def triton_mode(monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")


@pytest.fixture
def small_blocks(monkeypatch):
    from graphlearn.kernels import triton_traversal

    monkeypatch.setattr(triton_traversal, "_block_e", lambda num_edges, num_segments: 4)
    monkeypatch.setattr(triton_traversal, "_block_c", lambda channels: 4)


def make_toy(name, dtype=torch.float64, seed=0):
    """(values, src, dst, num_dst): toy graphs for the interpreted Triton path."""
    gen = torch.Generator().manual_seed(seed)
    num_src, channels = 6, 10  # 3 channel blocks of 4, the last one a tail
    if name == "unsorted_duplicates":  # random order, repeated (src, dst) pairs, dst 4 empty
        dst = torch.randint(0, 4, (30,), generator=gen)
        src = torch.randint(0, num_src, (30,), generator=gen)
        src[:4], dst[:4] = 5, 2
        num_dst = 5
        # source 0 sends nothing, so its gradient row must come back zero
        src = torch.where(src == 0, 1, src)
    elif name == "no_edges_to_some_dst":
        dst = torch.tensor([2, 0, 2, 0, 2, 0])
        src = torch.tensor([0, 4, 4, 1, 2, 0])
        num_dst = 5
    elif name == "single_edge":
        dst, src, num_dst = torch.tensor([1]), torch.tensor([3]), 3
    elif name == "empty":
        dst = src = torch.empty(0, dtype=torch.long)
        num_dst = 3
    elif name == "no_destinations":
        dst = src = torch.empty(0, dtype=torch.long)
        num_dst = 0
    elif name == "one_long_segment":  # 40 edges into one node: 10 edge blocks of 4
        dst = torch.zeros(40, dtype=torch.long)
        src = torch.randint(0, num_src, (40,), generator=gen)
        num_dst, channels = 2, 16
    else:
        raise AssertionError(name)
    values = torch.randn(num_src, channels, generator=gen, dtype=torch.float64)
    return values.to(dtype), src, dst, num_dst


TOY_CASES = ["unsorted_duplicates", "no_edges_to_some_dst", "single_edge", "empty",
             "no_destinations", "one_long_segment"]


def run_forward_backward(values, src, dst, num_dst, weight, grad_out, csc=None):
    leaves = [values.clone().requires_grad_()]
    if weight is not None:
        leaves.append(weight.clone().requires_grad_())
    out = weighted_aggregate(leaves[0], src, dst, leaves[1] if weight is not None else None,
                             num_dst, csc=csc)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), [t.grad for t in leaves]


def expected_forward_backward(values, src, dst, num_dst, weight, grad_out):
    """The reference in float64 on the (exactly upcast) inputs: output and all gradients."""
    w = None if weight is None else weight.double()
    out = reference(values.double(), src, dst, w, num_dst)
    d_values, d_weight = reference_backward(grad_out.double(), values.double(), src, dst, w)
    return out, [d_values] + ([d_weight] if weight is not None else [])


@pytest.mark.parametrize("case", TOY_CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("precomputed", [False, True])
def test_triton_matches_reference_float64(triton_mode, small_blocks, case, weighted,
                                          precomputed):
    values, src, dst, num_dst = make_toy(case)
    weight = make_weight(src, values.dtype) if weighted else None
    csc = csc_index(src, dst, values.size(0), num_dst) if precomputed else None
    grad_out = torch.randn(num_dst, values.size(1), dtype=torch.float64,
                           generator=torch.Generator().manual_seed(2))
    out, grads = run_forward_backward(values, src, dst, num_dst, weight, grad_out, csc)
    expected, expected_grads = expected_forward_backward(values, src, dst, num_dst, weight,
                                                         grad_out)
    assert_close_verbose(out, expected, torch.float64)
    assert_close_verbose(out, dense_reference(values, src, dst, weight, num_dst), torch.float64)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert_close_verbose(grad, expected_grad, torch.float64)


def test_triton_default_blocks_match_reference(triton_mode):
    """The launch heuristics as shipped (one edge block per destination here)."""
    values, src, dst, num_dst = make_toy("unsorted_duplicates")
    weight = make_weight(src, values.dtype)
    grad_out = torch.randn(num_dst, values.size(1), dtype=torch.float64)
    out, grads = run_forward_backward(values, src, dst, num_dst, weight, grad_out)
    expected, expected_grads = expected_forward_backward(values, src, dst, num_dst, weight,
                                                         grad_out)
    assert_close_verbose(out, expected, torch.float64)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert_close_verbose(grad, expected_grad, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["unsorted_duplicates", "one_long_segment"])
def test_triton_low_precision(triton_mode, small_blocks, dtype, case):
    """Inputs drawn in ``dtype``, fp32 accumulation: within the dtype's tolerance of float64."""
    values, src, dst, num_dst = make_toy(case, dtype=dtype)
    weight = make_weight(src, dtype)
    grad_out = torch.randn(num_dst, values.size(1), dtype=torch.float64).to(dtype)
    out, grads = run_forward_backward(values, src, dst, num_dst, weight, grad_out)
    expected, expected_grads = expected_forward_backward(values, src, dst, num_dst, weight,
                                                         grad_out)
    assert out.dtype == dtype
    # sums of up to 40 terms of size ~1: scale atol with the output magnitude
    atol, rtol = TOLERANCE[dtype]
    for got, want in zip([out, *grads], [expected, *expected_grads], strict=True):
        assert got.dtype == dtype
        scale = max(1.0, float(want.abs().max()))
        torch.testing.assert_close(got.double(), want, atol=atol * scale, rtol=rtol)


def test_triton_backward_is_deterministic(triton_mode, small_blocks):
    values, src, dst, num_dst = make_toy("unsorted_duplicates", dtype=torch.float32)
    weight = make_weight(src, values.dtype)
    grad_out = torch.randn(num_dst, values.size(1))
    first = run_forward_backward(values, src, dst, num_dst, weight, grad_out)
    second = run_forward_backward(values, src, dst, num_dst, weight, grad_out)
    assert torch.equal(first[0], second[0])
    for a, b in zip(first[1], second[1], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("precomputed", [False, True])
def test_triton_double_backward(triton_mode, precomputed):
    """The backward is built from the op itself and an SDDMM op, so it differentiates again."""
    values, src, dst, num_dst = make_toy("no_edges_to_some_dst")
    values = values[:, :2].contiguous().requires_grad_()
    weight = make_weight(src, values.dtype).requires_grad_()
    csc = csc_index(src, dst, values.size(0), num_dst) if precomputed else None

    def fn(v, w):
        return weighted_aggregate(v, src, dst, w, num_dst, csc=csc)

    grad_out = torch.randn(num_dst, 2, dtype=torch.float64, requires_grad=True)
    grads = torch.autograd.grad(fn(values, weight), (values, weight), grad_out,
                                create_graph=True)
    second = torch.autograd.grad(sum((g * g).sum() for g in grads), (values, weight, grad_out))
    v2, w2, g2 = (t.detach().clone().requires_grad_() for t in (values, weight, grad_out))
    grads_ref = torch.autograd.grad(dense_reference(v2, src, dst, w2, num_dst), (v2, w2), g2,
                                    create_graph=True)
    second_ref = torch.autograd.grad(sum((g * g).sum() for g in grads_ref), (v2, w2, g2))
    for got, want in zip(second, second_ref, strict=True):
        assert_close_verbose(got, want.detach(), torch.float64)


def test_triton_opcheck_with_csc(triton_mode):
    values, src, dst, num_dst = make_toy("no_edges_to_some_dst", dtype=torch.float32)
    weight = make_weight(src, values.dtype)
    csc = tuple(csc_index(src, dst, values.size(0), num_dst))
    torch.library.opcheck(_weighted_aggregate, (values.clone().requires_grad_(), src, dst,
                                                weight.clone().requires_grad_(), num_dst, *csc))
    grad_out = torch.randn(num_dst, values.size(1))
    torch.library.opcheck(_edge_dot, (grad_out, values, src, dst, *csc))


def test_csc_of_another_graph_is_rejected(inputs):
    values, src, dst, weight, num_dst = inputs
    with pytest.raises(ShapeError, match="csc.src_ptr must have shape"):
        weighted_aggregate(values, src, dst, weight, num_dst,
                           csc=csc_index(src, dst, values.size(0) + 1, num_dst))
    with pytest.raises(DTypeError, match="csc.dst_perm must be a torch.long"):
        csc = csc_index(src, dst, values.size(0), num_dst)
        weighted_aggregate(values, src, dst, weight, num_dst,
                           csc=csc._replace(dst_perm=csc.dst_perm.int()))


# --------------------------------------------------------------------------- CPU CSR route


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_csr_route_matches_dense_reference(case, weighted, dtype):
    """On the CPU a precomputed index routes through torch.sparse.mm: same numbers."""
    values, src, dst, num_dst = make_case(case, dtype=dtype)
    values = values.requires_grad_()
    weight = make_weight(src, dtype).requires_grad_() if weighted else None
    csc = csc_index(src, dst, values.size(0), num_dst)
    out = weighted_aggregate(values, src, dst, weight, num_dst, csc=csc)
    expected = dense_reference(values.detach().double(), src, dst,
                               None if weight is None else weight.detach().double(), num_dst)
    assert out.dtype == dtype
    assert_close_verbose(out.detach(), expected, dtype)
    if out.numel():
        g = torch.randn_like(out)
        grads = torch.autograd.grad(out, [t for t in (values, weight) if t is not None], g)
        ref_inputs = [values.detach().clone().requires_grad_()]
        if weight is not None:
            ref_inputs.append(weight.detach().clone().requires_grad_())
        ref = reference(ref_inputs[0], src, dst, ref_inputs[1] if weighted else None, num_dst)
        ref_grads = torch.autograd.grad(ref, ref_inputs, g, allow_unused=True)
        for a, b in zip(grads, ref_grads, strict=True):
            if b is not None:
                assert_close_verbose(a.detach(), b.detach().double(), dtype)


def test_csr_route_gradcheck():
    values, src, dst, num_dst = make_case("duplicates")
    weight = make_weight(src, values.dtype)
    csc = csc_index(src, dst, values.size(0), num_dst)
    torch.autograd.gradcheck(
        lambda v, w: weighted_aggregate(v, src, dst, w, num_dst, csc=csc),
        (values.requires_grad_(), weight.requires_grad_()))
