r"""The Triton traversal template: one program per destination walks its incoming edges.

Edges arrive as COO ``(src, dst)``; the host orders them once by destination (CSC) and, for
gradients w.r.t. source features, by source (see :mod:`graphlearn.kernels.csc`). A program
owns one output row (and one head, and one block of channels), loops over that row's edges
in blocks of ``BLOCK_E``, gathers the source rows it needs, and writes its output once. No
program writes where another does, so there are no atomics and every result is
deterministic (the summation order is fixed by the stable sort and the block sizes). This
is the destination-major traversal of Pigeon-style graph kernels: the ``(|E|, H, C)``
message tensor a scatter formulation builds is never materialised.

Kernels:

* :func:`_softmax_aggregate_fwd_kernel`: online softmax (running max :math:`m`, running sum
  :math:`\ell`, the accumulator rescaled by :math:`e^{m_{old} - m_{new}}` as the max grows,
  as in FlashAttention, arXiv:2205.14135) fused with
  :math:`\mathbf{out}_i = \sum_j w_{ij}\,\alpha_{ij}\,\mathbf{v}_j`.
* :func:`_softmax_aggregate_bwd_edge_kernel`: per destination, recomputes the softmax
  statistics, then :math:`\partial L/\partial e` and :math:`\partial L/\partial w` of each
  incoming edge, and the coefficients :math:`a_{ij} = w_{ij}\alpha_{ij}` for the next kernel.
* :func:`_gather_aggregate_kernel`: :math:`\mathbf{out}_i = \sum_{k} c_k\,\mathbf{x}_{idx_k}`
  over a segment of a sorted edge list: the forward of ``weighted_aggregate`` (by
  destination) and every gradient w.r.t. source features (by source, over the transposed
  graph).
* :func:`_edge_dot_kernel`: :math:`d_e = \langle \mathbf{a}_{dst_e}, \mathbf{b}_{src_e}\rangle`
  (an SDDMM), the gradient w.r.t. the weights of ``weighted_aggregate``.

All kernels accumulate in float32 (float64 for float64 inputs) and store in the input dtype.
Inputs are made contiguous by the host functions. This module imports triton at import
time; the op modules import it only when the Triton path runs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .csc import segment_order

__all__ = [
    "edge_dot",
    "gather_aggregate",
    "softmax_aggregate_backward",
    "softmax_aggregate_forward",
]


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _softmax_aggregate_fwd_kernel(
    # pointers
    out_ptr, logits_ptr, values_ptr, weight_ptr, src_ptr, perm_ptr, seg_ptr,
    # sizes, strides (logits and weight are contiguous (E, H), values (N, H, C), out (M, H, C))
    H, C, stride_vn, stride_vh, stride_on, stride_oh,
    # meta-parameters
    HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """One program per (destination i, head h, channel block): online softmax + aggregation.

    ``out[i, h, c] = sum_k w[e_k, h] * softmax(logits[e_., h])_k * values[src[e_k], h, c]`` over
    the edges ``e_k = perm[k]``, ``seg[i] <= k < seg[i + 1]``; zeros where there are none.
    """
    i = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    offs_c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    start = tl.load(seg_ptr + i)
    end = tl.load(seg_ptr + i + 1)

    m = tl.full([], float("-inf"), ACC)  # running max
    den = tl.zeros([], ACC)  # running sum of exp(logit - m)
    acc = tl.zeros([BLOCK_E, BLOCK_C], ACC)  # running sum of w * exp(logit - m) * v, per lane
    for k0 in range(start, end, BLOCK_E):
        offs_k = k0 + tl.arange(0, BLOCK_E)
        mask_k = offs_k < end
        e = tl.load(perm_ptr + offs_k, mask=mask_k, other=0)
        x = tl.load(logits_ptr + e * H + h, mask=mask_k, other=float("-inf")).to(ACC)
        m_new = tl.maximum(m, tl.max(x, 0))
        # a block of -inf logits leaves m at -inf: shift by 0 then, so no inf - inf appears
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        scale = tl.exp(m - m_use)
        p = tl.exp(x - m_use)  # 0 on masked lanes
        den = den * scale + tl.sum(p, 0)
        if HAS_WEIGHT:
            p = p * tl.load(weight_ptr + e * H + h, mask=mask_k, other=0.0).to(ACC)
        j = tl.load(src_ptr + e, mask=mask_k, other=0)
        v = tl.load(values_ptr + j[:, None] * stride_vn + h * stride_vh + offs_c[None, :],
                    mask=mask_k[:, None] & mask_c[None, :], other=0.0).to(ACC)
        acc = acc * scale + p[:, None] * v
        m = m_new
    out = tl.sum(acc, 0) / tl.where(den > 0, den, 1.0)
    tl.store(out_ptr + i * stride_on + h * stride_oh + offs_c,
             out.to(out_ptr.dtype.element_ty), mask=mask_c)


@triton.jit
def _softmax_aggregate_bwd_edge_kernel(
    # pointers: outputs, scratch, inputs
    d_logits_ptr, d_weight_ptr, coef_ptr, pd_ptr,
    grad_ptr, logits_ptr, values_ptr, weight_ptr, src_ptr, perm_ptr, seg_ptr,
    # sizes, strides ((E, H) tensors are contiguous; values (N, H, C), grad (M, H, C))
    H, C, stride_vn, stride_vh, stride_gn, stride_gh,
    # meta-parameters
    HAS_WEIGHT: tl.constexpr, ACC: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    r"""One program per (destination i, head h): the per-edge gradients of its incoming edges.

    With :math:`p = \mathrm{softmax}(e)`, :math:`\delta_k = \langle g_i, v_{src_k}\rangle`
    and :math:`s_i = \sum_k w_k p_k \delta_k`:
    ``d_weight[k] = p_k delta_k``, ``d_logits[k] = p_k (w_k delta_k - s_i)`` and
    ``coef[k] = w_k p_k`` (the weights of the source-major ``d_values`` pass).
    Pass 1 recomputes the softmax statistics; pass 2 gathers ``values`` once, writes
    ``p * delta`` to the fp32 scratch ``pd`` and sums ``s_i``; pass 3 reads ``pd`` back.
    """
    i = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    start = tl.load(seg_ptr + i)
    end = tl.load(seg_ptr + i + 1)

    # pass 1: softmax statistics, online
    m = tl.full([], float("-inf"), ACC)
    den = tl.zeros([], ACC)
    for k0 in range(start, end, BLOCK_E):
        offs_k = k0 + tl.arange(0, BLOCK_E)
        mask_k = offs_k < end
        e = tl.load(perm_ptr + offs_k, mask=mask_k, other=0)
        x = tl.load(logits_ptr + e * H + h, mask=mask_k, other=float("-inf")).to(ACC)
        m_new = tl.maximum(m, tl.max(x, 0))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        den = den * tl.exp(m - m_use) + tl.sum(tl.exp(x - m_use), 0)
        m = m_new
    m = tl.where(m == float("-inf"), 0.0, m)
    inv_den = tl.where(den > 0, 1.0 / tl.where(den > 0, den, 1.0), 0.0)

    # pass 2: delta = <g_i, v_src>, s_i = sum w p delta
    s = tl.zeros([], ACC)
    for k0 in range(start, end, BLOCK_E):
        offs_k = k0 + tl.arange(0, BLOCK_E)
        mask_k = offs_k < end
        e = tl.load(perm_ptr + offs_k, mask=mask_k, other=0)
        x = tl.load(logits_ptr + e * H + h, mask=mask_k, other=float("-inf")).to(ACC)
        p = tl.exp(x - m) * inv_den
        j = tl.load(src_ptr + e, mask=mask_k, other=0)
        delta = tl.zeros([BLOCK_E], ACC)
        for c0 in range(0, C, BLOCK_C):
            offs_c = c0 + tl.arange(0, BLOCK_C)
            mask_c = offs_c < C
            g = tl.load(grad_ptr + i * stride_gn + h * stride_gh + offs_c, mask=mask_c,
                        other=0.0).to(ACC)
            v = tl.load(values_ptr + j[:, None] * stride_vn + h * stride_vh + offs_c[None, :],
                        mask=mask_k[:, None] & mask_c[None, :], other=0.0).to(ACC)
            delta += tl.sum(v * g[None, :], 1)
        pd = p * delta
        if HAS_WEIGHT:
            w = tl.load(weight_ptr + e * H + h, mask=mask_k, other=0.0).to(ACC)
            s += tl.sum(w * pd, 0)
            tl.store(coef_ptr + e * H + h, (w * p).to(coef_ptr.dtype.element_ty), mask=mask_k)
        else:
            s += tl.sum(pd, 0)
            tl.store(coef_ptr + e * H + h, p.to(coef_ptr.dtype.element_ty), mask=mask_k)
        tl.store(pd_ptr + e * H + h, pd, mask=mask_k)
    # pass 3 reads what other threads of this program stored in pass 2
    tl.debug_barrier()

    # pass 3: d_logits = w pd - p s, d_weight = pd
    for k0 in range(start, end, BLOCK_E):
        offs_k = k0 + tl.arange(0, BLOCK_E)
        mask_k = offs_k < end
        e = tl.load(perm_ptr + offs_k, mask=mask_k, other=0)
        x = tl.load(logits_ptr + e * H + h, mask=mask_k, other=float("-inf")).to(ACC)
        p = tl.exp(x - m) * inv_den
        pd = tl.load(pd_ptr + e * H + h, mask=mask_k, other=0.0)
        if HAS_WEIGHT:
            w = tl.load(weight_ptr + e * H + h, mask=mask_k, other=0.0).to(ACC)
            d_x = w * pd - p * s
            tl.store(d_weight_ptr + e * H + h, pd.to(d_weight_ptr.dtype.element_ty), mask=mask_k)
        else:
            d_x = pd - p * s
        tl.store(d_logits_ptr + e * H + h, d_x.to(d_logits_ptr.dtype.element_ty), mask=mask_k)


@triton.jit
def _gather_aggregate_kernel(
    # pointers
    out_ptr, x_ptr, coef_ptr, idx_ptr, perm_ptr, seg_ptr,
    # sizes, strides (coef is contiguous (E, H); x is (N, H, C), out (M, H, C))
    H, C, stride_xn, stride_xh, stride_on, stride_oh,
    # meta-parameters
    HAS_COEF: tl.constexpr, ACC: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """One program per (row i, head h, channel block): a weighted sum over one segment.

    ``out[i, h, c] = sum_k coef[e_k, h] * x[idx[e_k], h, c]`` over ``e_k = perm[k]``,
    ``seg[i] <= k < seg[i + 1]`` (``coef`` all ones when absent); zeros for empty segments.
    """
    i = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    offs_c = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    start = tl.load(seg_ptr + i)
    end = tl.load(seg_ptr + i + 1)

    acc = tl.zeros([BLOCK_E, BLOCK_C], ACC)
    for k0 in range(start, end, BLOCK_E):
        offs_k = k0 + tl.arange(0, BLOCK_E)
        mask_k = offs_k < end
        e = tl.load(perm_ptr + offs_k, mask=mask_k, other=0)
        j = tl.load(idx_ptr + e, mask=mask_k, other=0)
        v = tl.load(x_ptr + j[:, None] * stride_xn + h * stride_xh + offs_c[None, :],
                    mask=mask_k[:, None] & mask_c[None, :], other=0.0).to(ACC)
        if HAS_COEF:
            v = v * tl.load(coef_ptr + e * H + h, mask=mask_k, other=0.0).to(ACC)[:, None]
        acc += v
    tl.store(out_ptr + i * stride_on + h * stride_oh + offs_c,
             tl.sum(acc, 0).to(out_ptr.dtype.element_ty), mask=mask_c)


@triton.jit
def _edge_dot_kernel(
    # pointers
    out_ptr, a_ptr, b_ptr, src_ptr, dst_ptr,
    # sizes, strides (a is (M, C), b is (N, C), both with unit channel stride)
    E, C, stride_an, stride_bn,
    # meta-parameters
    ACC: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_C: tl.constexpr,
):
    """One program per block of edges: ``out[e] = <a[dst[e]], b[src[e]]>``."""
    offs_e = tl.program_id(0).to(tl.int64) * BLOCK_E + tl.arange(0, BLOCK_E)
    mask_e = offs_e < E
    i = tl.load(dst_ptr + offs_e, mask=mask_e, other=0)
    j = tl.load(src_ptr + offs_e, mask=mask_e, other=0)
    acc = tl.zeros([BLOCK_E, BLOCK_C], ACC)
    for c0 in range(0, C, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)
        mask = mask_e[:, None] & (offs_c < C)[None, :]
        a = tl.load(a_ptr + i[:, None] * stride_an + offs_c[None, :], mask=mask, other=0.0)
        b = tl.load(b_ptr + j[:, None] * stride_bn + offs_c[None, :], mask=mask, other=0.0)
        acc += a.to(ACC) * b.to(ACC)
    tl.store(out_ptr + offs_e, tl.sum(acc, 1).to(out_ptr.dtype.element_ty), mask=mask_e)


# ----------------------------------------------------------------------------- launch heuristics


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _block_c(channels: int) -> int:
    return min(triton.next_power_of_2(max(channels, 1)), 64)


def _block_e(num_edges: int, num_segments: int) -> int:
    """Edges per loop step: the average segment length rounded up to a power of 2, in [8, 64].

    Both counts are host integers, so this needs no synchronisation; it takes at most four
    values, so at most four compiled variants per kernel.
    """
    mean = -(-num_edges // max(num_segments, 1))
    return min(max(triton.next_power_of_2(max(mean, 1)), 8), 64)


def _num_warps(block_e: int, block_c: int) -> int:
    tile = block_e * block_c
    return 1 if tile <= 256 else 2 if tile <= 1024 else 4


def _order(index: Tensor, num_segments: int, perm: Tensor | None,
           ptr: Tensor | None) -> tuple[Tensor, Tensor]:
    if perm is None or ptr is None:
        return segment_order(index, num_segments)
    return perm.contiguous(), ptr.contiguous()


# ----------------------------------------------------------------------------- host functions


def softmax_aggregate_forward(
    logits: Tensor, values: Tensor, src: Tensor, dst: Tensor, num_dst: int,
    edge_weight: Tensor | None = None, dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None,
) -> Tensor:
    """Triton forward of :func:`graphlearn.kernels.edge_softmax_aggregate` (inputs checked)."""
    num_edges, heads = logits.shape
    channels = values.size(2)
    out = torch.empty((num_dst, heads, channels), dtype=values.dtype, device=values.device)
    if out.numel() == 0:
        return out
    perm, ptr = _order(dst, num_dst, dst_perm, dst_ptr)
    logits, values, src = logits.contiguous(), values.contiguous(), src.contiguous()
    weight = edge_weight.contiguous() if edge_weight is not None else logits
    block_e, block_c = _block_e(num_edges, num_dst), _block_c(channels)
    grid = (num_dst, heads, triton.cdiv(channels, block_c))
    _softmax_aggregate_fwd_kernel[grid](
        out, logits, values, weight, src, perm, ptr,
        heads, channels, values.stride(0), values.stride(1), out.stride(0), out.stride(1),
        HAS_WEIGHT=edge_weight is not None, ACC=_acc(values.dtype),
        BLOCK_E=block_e, BLOCK_C=block_c, num_warps=_num_warps(block_e, block_c),
    )
    return out


def softmax_aggregate_backward(
    grad_out: Tensor, logits: Tensor, values: Tensor, src: Tensor, dst: Tensor, num_dst: int,
    edge_weight: Tensor | None = None, dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None, src_perm: Tensor | None = None,
    src_ptr: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Triton backward of :func:`graphlearn.kernels.edge_softmax_aggregate`.

    Returns ``(d_logits, d_values, d_weight)`` (``d_weight`` is ``None`` without weights).
    Two passes, both deterministic: destination-major for the per-edge gradients, then
    source-major over the transposed graph for ``d_values[j] = sum_i a_ij g_i``.
    """
    num_edges, heads = logits.shape
    num_src, _, channels = values.shape
    acc = torch.float64 if values.dtype == torch.float64 else torch.float32
    d_logits = torch.empty_like(logits, memory_format=torch.contiguous_format)
    d_weight = torch.empty_like(d_logits) if edge_weight is not None else None
    coef = torch.empty((num_edges, heads), dtype=acc, device=logits.device)
    if d_logits.numel() and num_dst:
        perm, ptr = _order(dst, num_dst, dst_perm, dst_ptr)
        logits, values, src = logits.contiguous(), values.contiguous(), src.contiguous()
        grad_out = grad_out.contiguous()
        weight = edge_weight.contiguous() if edge_weight is not None else logits
        pd = torch.empty((num_edges, heads), dtype=acc, device=logits.device)
        block_e, block_c = _block_e(num_edges, num_dst), _block_c(channels)
        _softmax_aggregate_bwd_edge_kernel[(num_dst, heads)](
            d_logits, d_weight if d_weight is not None else d_logits, coef, pd,
            grad_out, logits, values, weight, src, perm, ptr,
            heads, channels, values.stride(0), values.stride(1),
            grad_out.stride(0), grad_out.stride(1),
            HAS_WEIGHT=edge_weight is not None, ACC=_acc(values.dtype),
            BLOCK_E=block_e, BLOCK_C=block_c, num_warps=_num_warps(block_e, block_c),
        )
    else:  # no (edge, head) pair, or edges with nowhere to go: nothing flows back to them
        d_logits.zero_()
        coef.zero_()
        if d_weight is not None:
            d_weight.zero_()
    d_values = gather_aggregate(grad_out, dst, num_src, coef, src_perm, src_ptr, src)
    return d_logits, d_values, d_weight


def gather_aggregate(
    x: Tensor, idx: Tensor, num_out: int, coef: Tensor | None = None,
    perm: Tensor | None = None, ptr: Tensor | None = None, segment: Tensor | None = None,
) -> Tensor:
    """``out[i] = sum over edges e of segment i of coef[e] * x[idx[e]]``.

    Args:
        x (Tensor): ``(N, H, C)`` or ``(N, C)`` rows to gather.
        idx (Tensor): ``(|E|,)`` long, the row of ``x`` each edge reads.
        num_out (int): Number of output rows (segments).
        coef (Tensor, optional): ``(|E|, H)`` (or ``(|E|,)`` for 2-D ``x``) edge multipliers.
        perm, ptr (Tensor, optional): The segment order of the edges from
            :func:`~graphlearn.kernels.csc.segment_order`; built from ``segment`` if absent.
        segment (Tensor, optional): ``(|E|,)`` long, the output row of each edge.

    Returns:
        Tensor: ``(num_out, H, C)`` (or ``(num_out, C)``) in the dtype of ``x``.
    """
    squeeze = x.dim() == 2
    x3 = x.unsqueeze(1) if squeeze else x
    heads, channels = x3.size(1), x3.size(2)
    out = torch.empty((num_out, heads, channels), dtype=x.dtype, device=x.device)
    if out.numel():
        perm, ptr = _order(segment, num_out, perm, ptr)
        x3, idx = x3.contiguous(), idx.contiguous()
        coef_arg = coef.contiguous() if coef is not None else x3
        block_e, block_c = _block_e(idx.numel(), num_out), _block_c(channels)
        grid = (num_out, heads, triton.cdiv(channels, block_c))
        _gather_aggregate_kernel[grid](
            out, x3, coef_arg, idx, perm, ptr,
            heads, channels, x3.stride(0), x3.stride(1), out.stride(0), out.stride(1),
            HAS_COEF=coef is not None, ACC=_acc(x.dtype),
            BLOCK_E=block_e, BLOCK_C=block_c, num_warps=_num_warps(block_e, block_c),
        )
    return out.squeeze(1) if squeeze else out


def edge_dot(a: Tensor, b: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """``out[e] = <a[dst[e]], b[src[e]]>`` for ``a`` ``(M, C)``, ``b`` ``(N, C)``; ``(|E|,)``."""
    num_edges, channels = src.numel(), a.size(1)
    out = torch.empty(num_edges, dtype=a.dtype, device=a.device)
    if num_edges == 0:
        return out
    if channels == 0:
        return out.zero_()
    a, b, src, dst = a.contiguous(), b.contiguous(), src.contiguous(), dst.contiguous()
    block_e, block_c = 32, _block_c(channels)
    _edge_dot_kernel[(triton.cdiv(num_edges, block_e),)](
        out, a, b, src, dst, num_edges, channels, a.stride(0), b.stride(0),
        ACC=_acc(a.dtype), BLOCK_E=block_e, BLOCK_C=block_c,
        num_warps=_num_warps(block_e, block_c),
    )
    return out
