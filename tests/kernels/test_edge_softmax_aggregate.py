"""Tests of graphlearn.kernels.edge_softmax_aggregate against a slow float64 loop."""

from __future__ import annotations

import math

import pytest
import torch
from graphlearn.kernels import csc_index, edge_softmax, edge_softmax_aggregate
from graphlearn.kernels.edge_softmax_aggregate import (
    _edge_softmax_aggregate,
    _edge_softmax_aggregate_backward,
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


def loop_softmax(logits, dst, num_dst):
    """Obviously-correct softmax over each destination's incoming edges, in float64."""
    logits = logits.double()
    alpha = torch.zeros_like(logits)
    for i in range(num_dst):
        edges = [e for e in range(logits.size(0)) if int(dst[e]) == i]
        for h in range(logits.size(1)):
            if not edges:
                continue
            scores = [float(logits[e, h]) for e in edges]
            m = max(scores)
            exps = [math.exp(s - m) for s in scores]
            for e, ex in zip(edges, exps, strict=True):
                alpha[e, h] = ex / sum(exps)
    return alpha


def loop_reference(logits, values, src, dst, num_dst, edge_weight=None):
    """out[i, h] = sum over edges e into i of w[e, h] * softmax(logits)[e, h] * values[src[e], h]."""
    alpha = loop_softmax(logits, dst, num_dst)
    values = values.double()
    out = torch.zeros(num_dst, values.size(1), values.size(2), dtype=torch.float64)
    for e in range(logits.size(0)):
        for h in range(logits.size(1)):
            w = 1.0 if edge_weight is None else float(edge_weight[e, h])
            out[int(dst[e]), h] += w * alpha[e, h] * values[int(src[e]), h]
    return out


def make_case(name, dtype=torch.float64, seed=0):
    """(logits, values, src, dst, num_dst) for one named branch."""
    gen = torch.Generator().manual_seed(seed)
    num_src, heads, channels = 6, 2, 3
    if name == "no_edges_to_some_dst":  # destinations 1, 3, 4 receive nothing
        dst = torch.tensor([0, 0, 2, 2, 2, 0])
        num_dst = 5
    elif name == "single_edge":
        dst = torch.tensor([1])
        num_dst = 3
    elif name == "many_heads":
        heads = 16
        dst = torch.randint(0, 4, (25,), generator=gen)
        num_dst = 4
    elif name == "empty":
        dst = torch.empty(0, dtype=torch.long)
        num_dst = 3
    elif name == "large_logits":  # exp overflows without the max shift
        dst = torch.randint(0, 3, (12,), generator=gen)
        num_dst = 3
    elif name == "long_segment":  # one destination with many edges: accumulation precision
        dst = torch.zeros(2000, dtype=torch.long)
        num_dst = 2
        channels = 2
    else:
        raise AssertionError(name)
    num_edges = dst.numel()
    src = torch.randint(0, num_src, (num_edges,), generator=gen)
    logits = torch.randn(num_edges, heads, generator=gen, dtype=torch.float64)
    if name == "large_logits":
        logits = logits * 1000
    values = torch.randn(num_src, heads, channels, generator=gen, dtype=torch.float64)
    if name == "long_segment":
        values = values.abs() + 1.0
    return logits.to(dtype), values.to(dtype), src, dst, num_dst


def make_weight(logits, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(logits.shape, generator=gen, dtype=torch.float64).to(logits.dtype) * 2


CASES = ["no_edges_to_some_dst", "single_edge", "many_heads", "empty", "large_logits",
         "long_segment"]


def assert_close_verbose(actual, expected, dtype):
    atol, rtol = TOLERANCE[dtype]
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
def test_matches_loop_reference_float64(case, weighted):
    logits, values, src, dst, num_dst = make_case(case)
    weight = make_weight(logits) if weighted else None
    expected = loop_reference(logits, values, src, dst, num_dst, weight)
    out = edge_softmax_aggregate(logits, values, src, dst, num_dst, weight)
    assert out.shape == (num_dst, values.size(1), values.size(2))
    assert_close_verbose(out, expected, torch.float64)
    assert_close_verbose(reference(logits, values, src, dst, num_dst, weight), expected,
                         torch.float64)


def test_destinations_without_edges_are_zero():
    logits, values, src, dst, num_dst = make_case("no_edges_to_some_dst")
    out = edge_softmax_aggregate(logits, values, src, dst, num_dst)
    assert torch.all(out[[1, 3, 4]] == 0)
    assert torch.all(out[[0, 2]] != 0)


@pytest.mark.parametrize("case", CASES)
def test_edge_softmax_matches_loop(case):
    logits, _, _, dst, num_dst = make_case(case)
    alpha = edge_softmax(logits, dst, num_dst)
    assert_close_verbose(alpha, loop_softmax(logits, dst, num_dst), torch.float64)
    sums = torch.zeros(num_dst, logits.size(1), dtype=torch.float64).index_add_(0, dst, alpha)
    has_edges = torch.zeros(num_dst, dtype=torch.bool)
    has_edges[dst] = True
    assert_close_verbose(sums[has_edges], torch.ones_like(sums[has_edges]), torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["no_edges_to_some_dst", "many_heads", "large_logits",
                                  "long_segment"])
@pytest.mark.parametrize("weighted", [False, True])
def test_low_precision_accumulates_in_fp32(dtype, case, weighted):
    """Inputs drawn in ``dtype``; the oracle sees the same (exactly upcast) values."""
    logits, values, src, dst, num_dst = make_case(case, dtype=dtype)
    weight = make_weight(logits) if weighted else None
    out = edge_softmax_aggregate(logits, values, src, dst, num_dst, weight)
    assert out.dtype == dtype
    expected = loop_reference(logits.double(), values.double(), src, dst, num_dst,
                              None if weight is None else weight.double())
    assert_close_verbose(out, expected, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_long_segment_does_not_stagnate(dtype):
    """20000 equal logits into one node: the output is the mean of the source values.

    Accumulating sequentially in the input dtype fails here (a float16 running sum of
    20000 ones stops at 2048, a bfloat16 one at 256), so this pins the fp32 accumulator.
    """
    num_edges = 20000
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(0, 50, (num_edges,), generator=gen)
    dst = torch.zeros(num_edges, dtype=torch.long)
    values = torch.randn(50, 2, 3, generator=gen).to(dtype)
    logits = torch.zeros(num_edges, 2, dtype=dtype)
    out = edge_softmax_aggregate(logits, values, src, dst, 1)
    expected = values.double()[src].mean(dim=0, keepdim=True)
    assert_close_verbose(out, expected, dtype)
    alpha = edge_softmax(logits, dst, 1)
    assert_close_verbose(alpha, torch.full((num_edges, 2), 1 / num_edges, dtype=torch.float64),
                         dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_gradients(dtype):
    logits, values, src, dst, num_dst = make_case("many_heads", dtype=dtype)
    weight = make_weight(logits)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2), dtype=torch.float64)
    leaves_lo = [t.clone().requires_grad_() for t in (logits, values, weight)]
    leaves_hi = [t.double().requires_grad_() for t in (logits, values, weight)]
    edge_softmax_aggregate(leaves_lo[0], leaves_lo[1], src, dst, num_dst, leaves_lo[2]).backward(
        grad_out.to(dtype))
    reference(leaves_hi[0], leaves_hi[1], src, dst, num_dst, leaves_hi[2]).backward(
        grad_out.to(dtype).double())
    atol, rtol = TOLERANCE[dtype]
    for lo, hi in zip(leaves_lo, leaves_hi, strict=True):
        assert lo.grad.dtype == dtype
        torch.testing.assert_close(lo.grad.double(), hi.grad, atol=2 * atol, rtol=2 * rtol)


# --------------------------------------------------------------------------- autograd, opcheck


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", ["no_edges_to_some_dst", "many_heads", "single_edge"])
def test_gradcheck_float64(case, weighted):
    logits, values, src, dst, num_dst = make_case(case)
    if case == "many_heads":  # keep gradcheck fast
        logits, values = logits[:, :4].contiguous(), values[:, :4].contiguous()
    inputs = [logits.requires_grad_(), values.requires_grad_()]
    if weighted:
        inputs.append(make_weight(logits.detach()).requires_grad_())

    def fn(*args):
        return edge_softmax_aggregate(args[0], args[1], src, dst, num_dst,
                                      args[2] if weighted else None)

    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("weighted", [False, True])
def test_opcheck_custom_op(weighted):
    logits, values, src, dst, num_dst = make_case("no_edges_to_some_dst", dtype=torch.float32)
    weight = make_weight(logits) if weighted else None
    for requires_grad in (False, True):
        args = (logits.clone().requires_grad_(requires_grad),
                values.clone().requires_grad_(requires_grad), src, dst, num_dst,
                None if weight is None else weight.clone().requires_grad_(requires_grad))
        torch.library.opcheck(_edge_softmax_aggregate, args)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2))
    torch.library.opcheck(_edge_softmax_aggregate_backward,
                          (grad_out, logits, values, src, dst, num_dst, weight))


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    logits, values, src, dst, num_dst = make_case("no_edges_to_some_dst", dtype=torch.float32)
    weight = make_weight(logits)

    def step(logits, values, weight):
        out = edge_softmax_aggregate(logits, values, src, dst, num_dst, weight)
        return (out * out).sum()

    results = []
    for fn in (step, torch.compile(step, fullgraph=True)):
        leaves = [t.clone().requires_grad_() for t in (logits, values, weight)]
        loss = fn(*leaves)
        loss.backward()
        results.append((loss, [t.grad for t in leaves]))
    (loss_e, grads_e), (loss_c, grads_c) = results
    torch.testing.assert_close(loss_c, loss_e, atol=1e-5, rtol=1e-5)
    for g_c, g_e in zip(grads_c, grads_e, strict=True):
        torch.testing.assert_close(g_c, g_e, atol=1e-5, rtol=1e-5)


def test_compile_dynamic_shapes():
    torch._dynamo.reset()
    fn = torch.compile(edge_softmax_aggregate, fullgraph=True, dynamic=True, backend="aot_eager")
    for case in ("no_edges_to_some_dst", "many_heads"):
        logits, values, src, dst, num_dst = make_case(case, dtype=torch.float32)
        torch.testing.assert_close(fn(logits, values, src, dst, num_dst),
                                   edge_softmax_aggregate(logits, values, src, dst, num_dst))


# --------------------------------------------------------------------------- input checks


@pytest.fixture
def inputs():
    return make_case("no_edges_to_some_dst", dtype=torch.float32)


def test_dtype_errors(inputs):
    logits, values, src, dst, num_dst = inputs
    with pytest.raises(DTypeError, match="floating-point"):
        edge_softmax_aggregate(logits.long(), values, src, dst, num_dst)
    with pytest.raises(DTypeError, match="share one"):
        edge_softmax_aggregate(logits, values.double(), src, dst, num_dst)
    with pytest.raises(DTypeError, match="torch.long"):
        edge_softmax_aggregate(logits, values, src.int(), dst, num_dst)


def test_shape_errors(inputs):
    logits, values, src, dst, num_dst = inputs
    with pytest.raises(ShapeError, match=r"logits \(E, H\)"):
        edge_softmax_aggregate(logits[:, 0], values, src, dst, num_dst)
    with pytest.raises(ShapeError, match="same H"):
        edge_softmax_aggregate(logits, values[:, :1], src, dst, num_dst)
    with pytest.raises(ShapeError, match="src and dst"):
        edge_softmax_aggregate(logits, values, src[:-1], dst, num_dst)
    with pytest.raises(ShapeError, match="edge_weight"):
        edge_softmax_aggregate(logits, values, src, dst, num_dst, logits[:, :1])
    with pytest.raises(ShapeError, match="num_dst"):
        edge_softmax_aggregate(logits, values, src, dst, -1)


def test_device_errors(inputs):
    logits, values, src, dst, num_dst = inputs
    with pytest.raises(DeviceError, match="values is on meta"):
        edge_softmax_aggregate(logits, values.to("meta"), src, dst, num_dst)
    with pytest.raises(DeviceError, match="edge_weight"):
        edge_softmax_aggregate(logits, values, src, dst, num_dst, logits.to("meta"))


# --------------------------------------------------------------------------- dispatch


def test_triton_mode_on_cpu_needs_the_interpreter(inputs, monkeypatch):
    # triton reads TRITON_INTERPRET when it is imported (its own tl helpers are jitted
    # then), so import it under the interpreter before unsetting the variable here
    pytest.importorskip("graphlearn.kernels.triton_traversal")
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelNotAvailableError, match="need CUDA tensors"):
        edge_softmax_aggregate(*inputs)


def test_invalid_kernel_mode_raises(inputs, monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "fast")
    with pytest.raises(InvalidArgumentError, match="reference, triton"):
        edge_softmax_aggregate(*inputs)


@pytest.mark.parametrize("mode", ["reference", "auto", "AUTO", ""])
def test_reference_and_auto_modes_agree(inputs, monkeypatch, mode):
    expected = reference(*inputs)
    monkeypatch.setenv("GRAPHLEARN_KERNELS", mode)
    torch.testing.assert_close(edge_softmax_aggregate(*inputs), expected)


# --------------------------------------------------------------------------- Triton path
# GRAPHLEARN_KERNELS=triton runs the traversal kernels on CPU tensors under TRITON_INTERPRET=1
# (set by tests/conftest.py). The interpreter is slow, so the graphs are toys; small_blocks
# shrinks the launch heuristics so toy graphs still reach the multi-block branches (several
# edge blocks per destination, so the online-softmax rescaling, and several channel blocks).


@pytest.fixture
def triton_mode(monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_KERNELS", "triton")


@pytest.fixture
def small_blocks(monkeypatch):
    from graphlearn.kernels import triton_traversal

    monkeypatch.setattr(triton_traversal, "_block_e", lambda num_edges, num_segments: 4)
    monkeypatch.setattr(triton_traversal, "_block_c", lambda channels: 4)


def make_toy(name, dtype=torch.float64, seed=0):
    """(logits, values, src, dst, num_dst): toy graphs for the interpreted Triton path."""
    gen = torch.Generator().manual_seed(seed)
    num_src, heads, channels = 5, 2, 6
    if name == "unsorted_duplicates":  # random order, repeated (src, dst) pairs, dst 5 empty
        dst = torch.randint(0, 5, (30,), generator=gen)
        src = torch.randint(0, num_src, (30,), generator=gen)
        src[:4], dst[:4] = 2, 1
        num_dst = 6
    elif name == "no_edges_to_some_dst":
        dst = torch.tensor([3, 0, 3, 0, 3, 0])
        src = torch.tensor([0, 4, 4, 1, 2, 0])
        num_dst = 5
    elif name == "single_edge":
        dst, src, num_dst, heads = torch.tensor([1]), torch.tensor([3]), 3, 1
    elif name == "empty":
        dst = src = torch.empty(0, dtype=torch.long)
        num_dst = 3
    elif name == "one_long_segment":  # 40 edges into one node, 10 edge blocks of 4
        dst = torch.zeros(40, dtype=torch.long)
        src = torch.randint(0, num_src, (40,), generator=gen)
        num_dst, heads, channels = 2, 1, 16
    else:
        raise AssertionError(name)
    logits = torch.randn(dst.numel(), heads, generator=gen, dtype=torch.float64) * 3
    values = torch.randn(num_src, heads, channels, generator=gen, dtype=torch.float64)
    return logits.to(dtype), values.to(dtype), src, dst, num_dst


TOY_CASES = ["unsorted_duplicates", "no_edges_to_some_dst", "single_edge", "empty",
             "one_long_segment"]


def run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out, csc=None):
    leaves = [t.clone().requires_grad_() for t in (logits, values)]
    if weight is not None:
        leaves.append(weight.clone().requires_grad_())
    out = edge_softmax_aggregate(leaves[0], leaves[1], src, dst, num_dst,
                                 leaves[2] if weight is not None else None, csc=csc)
    out.backward(grad_out.to(out.dtype))
    return out.detach(), [t.grad for t in leaves]


def expected_forward_backward(logits, values, src, dst, num_dst, weight, grad_out):
    """The reference in float64 on the (exactly upcast) inputs: output and all gradients."""
    w = None if weight is None else weight.double()
    out = reference(logits.double(), values.double(), src, dst, num_dst, w)
    d_logits, d_values, d_weight = reference_backward(
        grad_out.double(), logits.double(), values.double(), src, dst, num_dst, w)
    return out, [d_logits, d_values] + ([d_weight] if weight is not None else [])


@pytest.mark.parametrize("case", TOY_CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("precomputed", [False, True])
def test_triton_matches_reference_float64(triton_mode, small_blocks, case, weighted,
                                          precomputed):
    logits, values, src, dst, num_dst = make_toy(case)
    weight = make_weight(logits) if weighted else None
    csc = csc_index(src, dst, values.size(0), num_dst) if precomputed else None
    grad_out = torch.randn(num_dst, values.size(1), values.size(2), dtype=torch.float64,
                           generator=torch.Generator().manual_seed(2))
    out, grads = run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out, csc)
    expected, expected_grads = expected_forward_backward(logits, values, src, dst, num_dst,
                                                         weight, grad_out)
    assert out.shape == expected.shape
    assert_close_verbose(out, expected, torch.float64)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert grad.shape == expected_grad.shape
        assert_close_verbose(grad, expected_grad, torch.float64)


def test_triton_default_blocks_match_reference(triton_mode):
    """The launch heuristics as shipped (one edge block per destination here)."""
    logits, values, src, dst, num_dst = make_toy("unsorted_duplicates")
    weight = make_weight(logits)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2), dtype=torch.float64)
    out, grads = run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out)
    expected, expected_grads = expected_forward_backward(logits, values, src, dst, num_dst,
                                                         weight, grad_out)
    assert_close_verbose(out, expected, torch.float64)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert_close_verbose(grad, expected_grad, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", ["unsorted_duplicates", "one_long_segment"])
def test_triton_low_precision(triton_mode, small_blocks, dtype, case):
    """Inputs drawn in ``dtype``, fp32 accumulation: within the dtype's tolerance of float64."""
    logits, values, src, dst, num_dst = make_toy(case, dtype=dtype)
    weight = make_weight(logits)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2), dtype=torch.float64).to(dtype)
    out, grads = run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out)
    expected, expected_grads = expected_forward_backward(logits, values, src, dst, num_dst,
                                                         weight, grad_out)
    assert out.dtype == dtype
    assert_close_verbose(out, expected, dtype)
    atol, rtol = TOLERANCE[dtype]
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert grad.dtype == dtype
        # gradients round the output-dtype grad_out and sum several rounded products
        torch.testing.assert_close(grad.double(), expected_grad, atol=2 * atol, rtol=2 * rtol)


def test_triton_backward_is_deterministic(triton_mode, small_blocks):
    logits, values, src, dst, num_dst = make_toy("unsorted_duplicates", dtype=torch.float32)
    weight = make_weight(logits)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2))
    first = run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out)
    second = run_forward_backward(logits, values, src, dst, num_dst, weight, grad_out)
    assert torch.equal(first[0], second[0])
    for a, b in zip(first[1], second[1], strict=True):
        assert torch.equal(a, b)


def test_triton_large_and_infinite_logits(triton_mode, small_blocks):
    """Logits of 1e4 do not overflow; a block of -inf logits is skipped without NaNs; a
    destination whose logits are all -inf gets zeros (the reference gives NaN there)."""
    dst = torch.tensor([0] * 9 + [1, 1])
    src = torch.arange(11) % 4
    logits = torch.randn(11, 1, dtype=torch.float64) * 1e4
    logits[:4] = float("-inf")  # the whole first edge block of destination 0
    logits[9:] = float("-inf")  # every edge of destination 1
    values = torch.randn(4, 1, 3, dtype=torch.float64)
    out = edge_softmax_aggregate(logits, values, src, dst, 2)
    expected = reference(logits[:9], values, src[:9], dst[:9], 1)
    assert_close_verbose(out[:1], expected, torch.float64)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    leaves = [t.clone().requires_grad_() for t in (logits, values)]
    edge_softmax_aggregate(leaves[0], leaves[1], src, dst, 2).sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in leaves)


def test_triton_empty_graph_gradients_are_zero(triton_mode):
    logits, values, src, dst, num_dst = make_toy("empty")
    weight = make_weight(logits)
    out, grads = run_forward_backward(logits, values, src, dst, num_dst, weight,
                                      torch.ones(num_dst, values.size(1), values.size(2)))
    assert torch.equal(out, torch.zeros_like(out))
    assert grads[0].shape == (0, values.size(1)) and grads[2].shape == (0, values.size(1))
    assert torch.equal(grads[1], torch.zeros_like(values))


def test_triton_opcheck_with_csc(triton_mode):
    logits, values, src, dst, num_dst = make_toy("no_edges_to_some_dst", dtype=torch.float32)
    weight = make_weight(logits)
    csc = tuple(csc_index(src, dst, values.size(0), num_dst))
    args = (logits.clone().requires_grad_(), values.clone().requires_grad_(), src, dst,
            num_dst, weight.clone().requires_grad_(), *csc)
    torch.library.opcheck(_edge_softmax_aggregate, args)
    grad_out = torch.randn(num_dst, values.size(1), values.size(2))
    torch.library.opcheck(_edge_softmax_aggregate_backward,
                          (grad_out, logits, values, src, dst, num_dst, weight, *csc))


def test_csc_of_another_graph_is_rejected(inputs):
    logits, values, src, dst, num_dst = inputs
    with pytest.raises(ShapeError, match="csc.dst_ptr must have shape"):
        edge_softmax_aggregate(logits, values, src, dst, num_dst,
                               csc=csc_index(src, dst, values.size(0), num_dst + 1))
    with pytest.raises(ShapeError, match="csc must be the CSCIndex"):
        edge_softmax_aggregate(logits, values, src, dst, num_dst, csc=(src, dst))


# --------------------------------------------------------------------------- CPU CSR route


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_csr_route_matches_reference(weighted, dtype):
    """On the CPU a precomputed index routes through torch.sparse.mm: same numbers."""
    from graphlearn.kernels import csc_index

    gen = torch.Generator().manual_seed(0)
    num_src, num_dst, heads, channels = 9, 6, 2, 5
    src = torch.randint(0, num_src, (30,), generator=gen)
    dst = torch.randint(0, num_dst - 1, (30,), generator=gen)  # the last destination: no edges
    logits = torch.randn(30, heads, generator=gen, dtype=torch.float64).to(dtype)
    values = torch.randn(num_src, heads, channels, generator=gen, dtype=torch.float64).to(dtype)
    weight = torch.rand(30, heads, generator=gen, dtype=torch.float64).to(dtype) if weighted else None
    leaves = [t.clone().requires_grad_() for t in (logits, values)]
    ref_leaves = [t.clone().requires_grad_() for t in (logits, values)]
    csc = csc_index(src, dst, num_src, num_dst)
    out = edge_softmax_aggregate(*leaves, src, dst, num_dst, weight, csc=csc)
    ref = edge_softmax_aggregate(*ref_leaves, src, dst, num_dst, weight)
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(out.double(), ref.double(), atol=atol, rtol=rtol)
    assert torch.all(out[-1] == 0)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, leaves, g)
    ref_grads = torch.autograd.grad(ref, ref_leaves, g)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a.double(), b.double(), atol=4 * atol, rtol=4 * rtol)


def test_csr_route_gradcheck():
    from graphlearn.kernels import csc_index

    gen = torch.Generator().manual_seed(1)
    src, dst = torch.randint(0, 5, (12,), generator=gen), torch.randint(0, 4, (12,), generator=gen)
    logits = torch.randn(12, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    values = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(12, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    csc = csc_index(src, dst, 5, 4)
    assert torch.autograd.gradcheck(
        lambda e, v, w: edge_softmax_aggregate(e, v, src, dst, 4, w, csc=csc),
        (logits, values, weight))
