r"""Weighted sum aggregation over edges: a COO sparse-dense matrix product (SpMM).

For edges :math:`e = (j \to i)` given as ``src[e] = j``, ``dst[e] = i`` with optional weights
:math:`w_e` (all ones when absent) and source values :math:`\mathbf{v}_j \in \mathbb{R}^C`:

.. math::
    \mathbf{out}_i = \sum_{e \,:\, \mathrm{dst}[e] = i} w_e \, \mathbf{v}_{\mathrm{src}[e]},

*i.e.* :math:`\mathbf{out} = \mathbf{A}\mathbf{V}` with the sparse matrix
:math:`A_{ij} = \sum_{e:(j \to i)} w_e` (duplicate edges add up). This is the propagation
step :math:`\mathbf{S}\mathbf{X}` of GCN-style layers once the edge weights hold the
normalised adjacency. Destinations with no incoming edge get zeros.

Shapes:
    - ``values``: ``(|V_src|, C)``, floating point
    - ``src``, ``dst``: ``(|E|,)``, long, ids into ``values`` and the output
    - ``weight``: ``(|E|,)``, same dtype as ``values``, or ``None``
    - output: ``(num_dst, C)``

Half-precision inputs are accumulated in float32 and the output is cast back.

Two implementations (dispatch: :func:`~graphlearn.kernels.use_triton`): :func:`reference`
(gather, scale, ``index_add_``; the oracle and the CPU path) and the Triton traversal of
:mod:`graphlearn.kernels.triton_traversal` (CUDA, or ``GRAPHLEARN_KERNELS=triton`` with
``TRITON_INTERPRET=1``): one program per destination sums its incoming edges, with no
``(|E|, C)`` message tensor and no atomics. The gradient w.r.t. ``values`` is the same
traversal over the transposed graph (one program per source) and the gradient w.r.t.
``weight`` a per-edge dot product, so both are deterministic. The Triton path sorts the
edges on every call unless a precomputed :func:`~graphlearn.kernels.csc_index` is passed as
``csc=``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, ShapeError

from ._dispatch import use_triton
from .csc import CSCIndex, check_csc

__all__ = ["csr_aggregate", "weighted_aggregate", "reference", "reference_backward"]

OP_NAME = "graphlearn::weighted_aggregate"
EDGE_DOT_OP = "graphlearn::edge_dot"


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def reference(
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
    num_dst: int,
) -> Tensor:
    """Plain-PyTorch oracle of :func:`weighted_aggregate` (gather, scale, ``index_add_``)."""
    acc = _acc_dtype(values.dtype)
    msg = values.to(acc).index_select(0, src)
    if weight is not None:
        msg = msg * weight.to(acc).unsqueeze(-1)
    out = torch.zeros((num_dst, values.size(1)), dtype=acc, device=values.device)
    return out.index_add_(0, dst, msg).to(values.dtype)


def reference_backward(
    grad_out: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    r"""Gradients of :func:`reference` w.r.t. ``values`` and ``weight``.

    With :math:`g_i = \partial L/\partial \mathbf{out}_i`:
    :math:`\partial L/\partial \mathbf{v}_j = \sum_{e:\mathrm{src}[e]=j} w_e\, g_{\mathrm{dst}[e]}`
    (the transposed product :math:`\mathbf{A}^\top g`) and
    :math:`\partial L/\partial w_e = \langle g_{\mathrm{dst}[e]}, \mathbf{v}_{\mathrm{src}[e]} \rangle`.
    """
    acc = _acc_dtype(values.dtype)
    g_dst = grad_out.to(acc).index_select(0, dst)  # (E, C)
    scaled = g_dst * weight.to(acc).unsqueeze(-1) if weight is not None else g_dst
    d_values = torch.zeros(values.shape, dtype=acc, device=values.device).index_add_(0, src, scaled)
    d_weight = None
    if weight is not None:
        d_weight = (g_dst * values.to(acc).index_select(0, src)).sum(-1).to(weight.dtype)
    return d_values.to(values.dtype), d_weight


def _check(values: Tensor, src: Tensor, dst: Tensor, weight: Tensor | None, num_dst: int) -> None:
    if not isinstance(values, Tensor) or not values.is_floating_point():
        got = values.dtype if isinstance(values, Tensor) else type(values).__name__
        raise DTypeError(f"{OP_NAME}: values must be a floating-point tensor, got {got}")
    if weight is not None and weight.dtype != values.dtype:
        raise DTypeError(
            f"{OP_NAME}: weight ({weight.dtype}) and values ({values.dtype}) must share one "
            f"floating-point dtype; convert with weight.to(values.dtype)"
        )
    if src.dtype != torch.long or dst.dtype != torch.long:
        raise DTypeError(
            f"{OP_NAME}: src and dst must be torch.long, got {src.dtype}, {dst.dtype}; convert "
            f"with .long()"
        )
    if values.dim() != 2:
        raise ShapeError(
            f"{OP_NAME}: expected values of shape (N, C), got {tuple(values.shape)}"
            + (" (use values.view(-1, 1) for one channel)" if values.dim() == 1 else "")
        )
    if src.dim() != 1 or dst.shape != src.shape:
        raise ShapeError(
            f"{OP_NAME}: src and dst must be 1-D of one length (num_edges,), got "
            f"{tuple(src.shape)} and {tuple(dst.shape)}"
        )
    if weight is not None and weight.shape != src.shape:
        raise ShapeError(
            f"{OP_NAME}: weight must have shape {tuple(src.shape)}, one entry per edge, got "
            f"{tuple(weight.shape)}"
        )
    if num_dst < 0:
        raise ShapeError(f"{OP_NAME}: num_dst must be >= 0, got {num_dst}")
    for name, t in (("src", src), ("dst", dst), ("weight", weight)):
        if t is not None and t.device != values.device:
            raise DeviceError(
                f"{OP_NAME}: {name} is on {t.device} but values is on {values.device}; move all "
                f"inputs to one device"
            )


# The four optional tensors are a CSCIndex taken apart (custom ops take no NamedTuples):
# dst_perm, dst_ptr, src_perm, src_ptr. The Triton path needs them (and builds them when
# absent); on the CPU, a given index turns the aggregation into a CSR sparse-dense product.


def csr_aggregate(values: Tensor, src: Tensor, weight: Tensor | None, num_dst: int,
                  dst_perm: Tensor, dst_ptr: Tensor) -> Tensor:
    """:func:`reference` as a CSR sparse-dense product over a precomputed edge order.

    The CPU route when the caller passes ``csc=``: ``torch.sparse.mm`` streams each
    destination's row instead of materialising an ``(|E|, C)`` message tensor and scattering
    it (5-7x faster than :func:`reference` on graphs with a million edges, on par on small
    ones). Same numbers up to summation order.
    """
    acc = _acc_dtype(values.dtype)
    if weight is None:
        w = torch.ones(src.numel(), dtype=acc, device=values.device)
    else:
        w = weight.to(acc).index_select(0, dst_perm)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we test what we use
        warnings.simplefilter("ignore", UserWarning)
        adj = torch.sparse_csr_tensor(dst_ptr, src.index_select(0, dst_perm), w,
                                      (num_dst, values.size(0)), check_invariants=False)
    return torch.sparse.mm(adj, values.to(acc)).to(values.dtype)


@torch.library.custom_op(OP_NAME, mutates_args=())
def _weighted_aggregate(
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
    num_dst: int,
    dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None,
    src_perm: Tensor | None = None,
    src_ptr: Tensor | None = None,
) -> Tensor:
    if use_triton(OP_NAME, values, has_triton=True):
        from . import triton_traversal

        return triton_traversal.gather_aggregate(values, src, num_dst, weight, dst_perm, dst_ptr,
                                                 dst)
    if dst_perm is not None and values.device.type == "cpu" and src.numel() > 0:
        return csr_aggregate(values, src, weight, num_dst, dst_perm, dst_ptr)
    return reference(values, src, dst, weight, num_dst)


@_weighted_aggregate.register_fake
def _(values, src, dst, weight, num_dst, dst_perm=None, dst_ptr=None, src_perm=None,
      src_ptr=None):
    return values.new_empty((num_dst, values.size(1)))


def _setup_context(ctx, inputs, output):
    values, src, dst, weight, num_dst, *csc = inputs
    ctx.num_src = values.size(0)
    ctx.has_weight = weight is not None
    ctx.save_for_backward(values, src, dst, weight, *csc)


def _backward(ctx, grad_out):
    # The gradient w.r.t. values is the transposed product A^T g: the same op with src and
    # dst swapped (and the two edge orders swapped), so it reuses the forward kernel and is
    # itself differentiable (double backward works). The gradient w.r.t. weight is a
    # per-edge dot product (an SDDMM), an op whose backward is this op again.
    values, src, dst, weight, dst_perm, dst_ptr, src_perm, src_ptr = ctx.saved_tensors
    grad_out = grad_out.contiguous()
    d_values = d_weight = None
    if ctx.needs_input_grad[0]:
        d_values = _weighted_aggregate(grad_out, dst, src, weight, ctx.num_src,
                                       src_perm, src_ptr, dst_perm, dst_ptr)
    if ctx.has_weight and ctx.needs_input_grad[3]:
        d_weight = _edge_dot(grad_out, values, src, dst, dst_perm, dst_ptr, src_perm, src_ptr)
    return d_values, None, None, d_weight, None, None, None, None, None


_weighted_aggregate.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op(EDGE_DOT_OP, mutates_args=())
def _edge_dot(
    a: Tensor,
    b: Tensor,
    src: Tensor,
    dst: Tensor,
    dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None,
    src_perm: Tensor | None = None,
    src_ptr: Tensor | None = None,
) -> Tensor:
    """``out[e] = <a[dst[e]], b[src[e]]>`` for ``a`` ``(M, C)``, ``b`` ``(N, C)``: ``(|E|,)``."""
    if use_triton(EDGE_DOT_OP, a, has_triton=True):
        from . import triton_traversal

        return triton_traversal.edge_dot(a, b, src, dst)
    acc = _acc_dtype(a.dtype)
    return (a.to(acc).index_select(0, dst) * b.to(acc).index_select(0, src)).sum(-1).to(a.dtype)


@_edge_dot.register_fake
def _(a, b, src, dst, dst_perm=None, dst_ptr=None, src_perm=None, src_ptr=None):
    return a.new_empty(src.shape)


def _edge_dot_setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _edge_dot_backward(ctx, grad):
    # d<a_dst, b_src>/da = sum over edges into each row of grad_e * b_src (an aggregation
    # by dst), and symmetrically for b by src.
    a, b, src, dst, dst_perm, dst_ptr, src_perm, src_ptr = ctx.saved_tensors
    grad = grad.contiguous()
    d_a = d_b = None
    if ctx.needs_input_grad[0]:
        d_a = _weighted_aggregate(b, src, dst, grad, a.size(0), dst_perm, dst_ptr, src_perm,
                                  src_ptr)
    if ctx.needs_input_grad[1]:
        d_b = _weighted_aggregate(a, dst, src, grad, b.size(0), src_perm, src_ptr, dst_perm,
                                  dst_ptr)
    return d_a, d_b, None, None, None, None, None, None


_edge_dot.register_autograd(_edge_dot_backward, setup_context=_edge_dot_setup_context)


def weighted_aggregate(
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
    num_dst: int,
    *,
    csc: CSCIndex | None = None,
) -> Tensor:
    """Sum ``weight[e] * values[src[e]]`` into row ``dst[e]`` of a ``(num_dst, C)`` output.

    See the module docstring for the formula and shapes. Differentiable in ``values`` and
    ``weight``; registered as ``torch.ops.graphlearn.weighted_aggregate`` so it runs under
    ``torch.compile`` without graph breaks.

    Args:
        csc (CSCIndex, optional): ``csc_index(src, dst, values.size(0), num_dst)``, built once
            for a graph used many times, so the Triton path does not sort the edges on every
            call (forward and backward); on the CPU it turns the aggregation into a CSR
            sparse-dense product (:func:`csr_aggregate`). (default: :obj:`None`)
    """
    _check(values, src, dst, weight, num_dst)
    parts = check_csc(OP_NAME, csc, src.numel(), values.size(0), num_dst, values.device)
    return _weighted_aggregate(values, src, dst, weight, num_dst, *parts)
