r"""Fused edge softmax + weighted aggregation (the attention core of GAT-style layers).

For edges :math:`(j \to i)` with logits :math:`e_{ij} \in \mathbb{R}^H` (one per head),
optional per-edge multipliers :math:`w_{ij}` (e.g. an attention-dropout mask scaled by
:math:`1/(1-p)`) and source values :math:`\mathbf{v}_j \in \mathbb{R}^{H \times C}`:

.. math::
    \alpha_{ij} = \frac{\exp(e_{ij} - m_i)}{\sum_{k \in \mathcal{N}(i)} \exp(e_{ik} - m_i)},
    \qquad m_i = \max_{k \in \mathcal{N}(i)} e_{ik},

    \mathbf{out}_i = \sum_{j \in \mathcal{N}(i)} w_{ij}\, \alpha_{ij}\, \mathbf{v}_j .

Destinations with no incoming edge get zeros. The values are gathered by ``src`` inside
the op, so callers never materialise an ``(|E|, H, C)`` message tensor themselves.

Two implementations (dispatch: :func:`~graphlearn.kernels.use_triton`): :func:`reference`
(plain PyTorch: scatter-max, exp, scatter-add; the oracle and the CPU path) and the Triton
traversal of :mod:`graphlearn.kernels.triton_traversal` (CUDA, or ``GRAPHLEARN_KERNELS=triton``
with ``TRITON_INTERPRET=1``): one program per destination and head runs an online softmax
fused with the aggregation, with no ``(|E|, H, C)`` tensor and no atomics; the backward is a
destination-major pass for the logit and weight gradients and a source-major pass over the
transposed graph for the value gradients, so both directions are deterministic. The Triton
path sorts the edges by destination (and by source, in backward) on every call unless a
precomputed :func:`~graphlearn.kernels.csc_index` is passed as ``csc=``. Where every logit
of a destination is ``-inf`` the Triton path returns zeros (the reference returns NaN).

Shapes:
    - ``logits``: ``(|E|, H)``, floating point
    - ``values``: ``(|V_src|, H, C)``, same dtype as ``logits``
    - ``src``, ``dst``: ``(|E|,)``, long, ids into ``values`` and the output
    - ``edge_weight``: ``(|E|, H)`` or ``None``
    - output: ``(num_dst, H, C)``

Half-precision inputs are accumulated in float32 and the output is cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, ShapeError

from ._dispatch import use_triton
from .csc import CSCIndex, check_csc

__all__ = ["edge_softmax_aggregate", "edge_softmax", "reference", "reference_backward"]

OP_NAME = "graphlearn::edge_softmax_aggregate"


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def edge_softmax(logits: Tensor, dst: Tensor, num_dst: int) -> Tensor:
    """Softmax of ``logits`` ``(|E|, H)`` over the incoming edges of each destination."""
    acc = _acc_dtype(logits.dtype)
    e = logits.to(acc)
    index = dst.view(-1, 1).expand_as(e)
    m = torch.full((num_dst, e.size(1)), float("-inf"), dtype=acc, device=e.device)
    m = m.scatter_reduce(0, index, e, reduce="amax", include_self=True)
    ex = (e - m.index_select(0, dst)).exp()
    den = torch.zeros((num_dst, e.size(1)), dtype=acc, device=e.device).index_add_(0, dst, ex)
    return (ex / den.index_select(0, dst)).to(logits.dtype)


def reference(
    logits: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    num_dst: int,
    edge_weight: Tensor | None = None,
) -> Tensor:
    """Plain-PyTorch oracle of :func:`edge_softmax_aggregate` (clarity over speed)."""
    acc = _acc_dtype(values.dtype)
    alpha = edge_softmax(logits.to(acc), dst, num_dst)
    if edge_weight is not None:
        alpha = alpha * edge_weight.to(acc)
    msg = values.to(acc).index_select(0, src) * alpha.unsqueeze(-1)
    out = torch.zeros((num_dst, values.size(1), values.size(2)), dtype=acc, device=values.device)
    return out.index_add_(0, dst, msg).to(values.dtype)


def reference_backward(
    grad_out: Tensor,
    logits: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    num_dst: int,
    edge_weight: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""Gradients of :func:`reference` w.r.t. ``logits``, ``values`` and ``edge_weight``.

    With :math:`p = \mathrm{softmax}(e)`, :math:`a = w p` and :math:`g_i = \partial L/\partial out_i`:
    :math:`\partial L/\partial v_j = \sum_{i} a_{ij} g_i`,
    :math:`\partial L/\partial a_{ij} = \langle g_i, v_j \rangle`,
    :math:`\partial L/\partial w_{ij} = p_{ij}\,\partial L/\partial a_{ij}` and
    :math:`\partial L/\partial e_{ij} = p_{ij}(d_{ij} - \sum_k p_{ik} d_{ik})` with
    :math:`d = w\,\partial L/\partial a`.
    """
    acc = _acc_dtype(values.dtype)
    g = grad_out.to(acc)
    v = values.to(acc)
    p = edge_softmax(logits.to(acc), dst, num_dst)
    w = edge_weight.to(acc) if edge_weight is not None else None
    a = p * w if w is not None else p
    g_dst = g.index_select(0, dst)  # (E, H, C)
    d_values = torch.zeros_like(v).index_add_(0, src, g_dst * a.unsqueeze(-1))
    d_a = (g_dst * v.index_select(0, src)).sum(-1)  # (E, H)
    d_weight = (d_a * p).to(edge_weight.dtype) if w is not None else None
    d_p = d_a * w if w is not None else d_a
    s = torch.zeros((num_dst, p.size(1)), dtype=acc, device=p.device).index_add_(0, dst, p * d_p)
    d_logits = p * (d_p - s.index_select(0, dst))
    return d_logits.to(logits.dtype), d_values.to(values.dtype), d_weight


def _check(logits: Tensor, values: Tensor, src: Tensor, dst: Tensor, num_dst: int,
           edge_weight: Tensor | None) -> None:
    if not logits.is_floating_point() or logits.dtype != values.dtype:
        raise DTypeError(
            f"{OP_NAME}: logits ({logits.dtype}) and values ({values.dtype}) must share one "
            f"floating-point dtype"
        )
    if src.dtype != torch.long or dst.dtype != torch.long:
        raise DTypeError(f"{OP_NAME}: src and dst must be torch.long, got {src.dtype}, {dst.dtype}")
    if logits.dim() != 2 or values.dim() != 3 or logits.size(1) != values.size(1):
        raise ShapeError(
            f"{OP_NAME}: expected logits (E, H) and values (N, H, C) with the same H, got "
            f"{tuple(logits.shape)} and {tuple(values.shape)}"
        )
    num_edges = logits.size(0)
    if src.shape != (num_edges,) or dst.shape != (num_edges,):
        raise ShapeError(
            f"{OP_NAME}: src and dst must have shape ({num_edges},) to match logits, got "
            f"{tuple(src.shape)} and {tuple(dst.shape)}"
        )
    if edge_weight is not None and edge_weight.shape != logits.shape:
        raise ShapeError(
            f"{OP_NAME}: edge_weight must have the shape of logits {tuple(logits.shape)}, got "
            f"{tuple(edge_weight.shape)}"
        )
    if num_dst < 0:
        raise ShapeError(f"{OP_NAME}: num_dst must be >= 0, got {num_dst}")
    for name, t in (("values", values), ("src", src), ("dst", dst), ("edge_weight", edge_weight)):
        if t is not None and t.device != logits.device:
            raise DeviceError(
                f"{OP_NAME}: {name} is on {t.device} but logits is on {logits.device}; move all "
                f"inputs to one device"
            )


# The four optional tensors are a CSCIndex taken apart (custom ops take no NamedTuples):
# dst_perm, dst_ptr, src_perm, src_ptr. Only the Triton path reads them.


def _csr_heads(weights: Tensor, src: Tensor, perm: Tensor, ptr: Tensor, values: Tensor,
               num_rows: int) -> Tensor:
    """``out[:, h] = A_h @ values[:, h]`` with ``A_h`` the CSR matrix of ``weights[:, h]``.

    ``perm``/``ptr`` order the edges by output row; ``src`` holds each edge's column.
    """
    from .weighted_aggregate import csr_aggregate

    heads = weights.size(1)
    out = values.new_empty((num_rows, heads, values.size(2)))
    for h in range(heads):
        out[:, h] = csr_aggregate(values[:, h].contiguous(), src, weights[:, h].contiguous(),
                                  num_rows, perm, ptr)
    return out


def csr_forward(logits, values, src, dst, num_dst, edge_weight, dst_perm, dst_ptr) -> Tensor:
    """:func:`reference` with the aggregation as a CSR sparse-dense product per head.

    The CPU route when the caller passes ``csc=``: the softmax is the reference's, and the
    weighted sum streams each destination's row (``torch.sparse.mm``) instead of building
    an ``(|E|, H, C)`` message tensor and scattering it.
    """
    acc = _acc_dtype(values.dtype)
    alpha = edge_softmax(logits.to(acc), dst, num_dst)
    if edge_weight is not None:
        alpha = alpha * edge_weight.to(acc)
    return _csr_heads(alpha, src, dst_perm, dst_ptr, values.to(acc), num_dst).to(values.dtype)


def csr_backward(grad_out, logits, values, src, dst, num_dst, edge_weight, src_perm, src_ptr):
    """:func:`reference_backward` with ``d_values = A^T g`` as a CSR product per head."""
    acc = _acc_dtype(values.dtype)
    g = grad_out.to(acc)
    v = values.to(acc)
    p = edge_softmax(logits.to(acc), dst, num_dst)
    w = edge_weight.to(acc) if edge_weight is not None else None
    a = p * w if w is not None else p
    d_values = _csr_heads(a, dst, src_perm, src_ptr, g, values.size(0))
    d_a = (g.index_select(0, dst) * v.index_select(0, src)).sum(-1)  # (E, H)
    d_weight = (d_a * p).to(edge_weight.dtype) if w is not None else None
    d_p = d_a * w if w is not None else d_a
    s = torch.zeros((num_dst, p.size(1)), dtype=acc, device=p.device).index_add_(0, dst, p * d_p)
    d_logits = p * (d_p - s.index_select(0, dst))
    return d_logits.to(logits.dtype), d_values.to(values.dtype), d_weight


def _cpu_csr(values: Tensor, src: Tensor, perm: Tensor | None) -> bool:
    return perm is not None and values.device.type == "cpu" and src.numel() > 0


@torch.library.custom_op(OP_NAME, mutates_args=())
def _edge_softmax_aggregate(
    logits: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    num_dst: int,
    edge_weight: Tensor | None = None,
    dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None,
    src_perm: Tensor | None = None,
    src_ptr: Tensor | None = None,
) -> Tensor:
    if use_triton(OP_NAME, values, has_triton=True):
        from . import triton_traversal

        return triton_traversal.softmax_aggregate_forward(
            logits, values, src, dst, num_dst, edge_weight, dst_perm, dst_ptr
        )
    if _cpu_csr(values, src, dst_perm):
        return csr_forward(logits, values, src, dst, num_dst, edge_weight, dst_perm, dst_ptr)
    return reference(logits, values, src, dst, num_dst, edge_weight)


@_edge_softmax_aggregate.register_fake
def _(logits, values, src, dst, num_dst, edge_weight=None, dst_perm=None, dst_ptr=None,
      src_perm=None, src_ptr=None):
    return values.new_empty((num_dst, values.size(1), values.size(2)))


@torch.library.custom_op(OP_NAME + "_backward", mutates_args=())
def _edge_softmax_aggregate_backward(
    grad_out: Tensor,
    logits: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    num_dst: int,
    edge_weight: Tensor | None,
    dst_perm: Tensor | None = None,
    dst_ptr: Tensor | None = None,
    src_perm: Tensor | None = None,
    src_ptr: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    if use_triton(OP_NAME, values, has_triton=True):
        from . import triton_traversal

        d_logits, d_values, d_weight = triton_traversal.softmax_aggregate_backward(
            grad_out, logits, values, src, dst, num_dst, edge_weight, dst_perm, dst_ptr,
            src_perm, src_ptr,
        )
    elif _cpu_csr(values, src, src_perm):
        d_logits, d_values, d_weight = csr_backward(
            grad_out, logits, values, src, dst, num_dst, edge_weight, src_perm, src_ptr
        )
    else:
        d_logits, d_values, d_weight = reference_backward(
            grad_out, logits, values, src, dst, num_dst, edge_weight
        )
    # custom ops cannot return None: an empty tensor stands for "no edge_weight".
    return d_logits, d_values, d_weight if d_weight is not None else logits.new_empty(0)


@_edge_softmax_aggregate_backward.register_fake
def _(grad_out, logits, values, src, dst, num_dst, edge_weight, dst_perm=None, dst_ptr=None,
      src_perm=None, src_ptr=None):
    w = torch.empty_like(logits) if edge_weight is not None else logits.new_empty(0)
    return torch.empty_like(logits), torch.empty_like(values), w


def _setup_context(ctx, inputs, output):
    logits, values, src, dst, num_dst, edge_weight, *csc = inputs
    ctx.num_dst = num_dst
    ctx.has_weight = edge_weight is not None
    ctx.save_for_backward(logits, values, src, dst, edge_weight, *csc)


def _backward(ctx, grad_out):
    logits, values, src, dst, edge_weight, *csc = ctx.saved_tensors
    d_logits, d_values, d_weight = _edge_softmax_aggregate_backward(
        grad_out.contiguous(), logits, values, src, dst, ctx.num_dst, edge_weight, *csc
    )
    return (d_logits, d_values, None, None, None, (d_weight if ctx.has_weight else None),
            None, None, None, None)


_edge_softmax_aggregate.register_autograd(_backward, setup_context=_setup_context)


def edge_softmax_aggregate(
    logits: Tensor,
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    num_dst: int,
    edge_weight: Tensor | None = None,
    *,
    csc: CSCIndex | None = None,
) -> Tensor:
    """Softmax ``logits`` over each destination's incoming edges and aggregate ``values``.

    See the module docstring for the formula and shapes. Differentiable in ``logits``,
    ``values`` and ``edge_weight``; registered as ``torch.ops.graphlearn.edge_softmax_aggregate``
    so it runs under ``torch.compile`` without graph breaks.

    Args:
        csc (CSCIndex, optional): ``csc_index(src, dst, values.size(0), num_dst)``, built once
            for a graph used many times, so the Triton path does not sort the edges on every
            call; on the CPU it turns the aggregation (forward and the gradient w.r.t.
            ``values``) into CSR sparse-dense products (:func:`csr_forward`).
            (default: :obj:`None`)
    """
    _check(logits, values, src, dst, num_dst, edge_weight)
    parts = check_csc(OP_NAME, csc, logits.size(0), values.size(0), num_dst, logits.device)
    return _edge_softmax_aggregate(logits, values, src, dst, num_dst, edge_weight, *parts)
