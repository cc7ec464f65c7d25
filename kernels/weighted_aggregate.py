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
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, ShapeError

from ._dispatch import use_triton

__all__ = ["weighted_aggregate", "reference", "reference_backward"]

OP_NAME = "graphlearn::weighted_aggregate"


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


@torch.library.custom_op(OP_NAME, mutates_args=())
def _weighted_aggregate(
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
    num_dst: int,
) -> Tensor:
    use_triton(OP_NAME, values, has_triton=False)  # no Triton implementation yet
    return reference(values, src, dst, weight, num_dst)


@_weighted_aggregate.register_fake
def _(values, src, dst, weight, num_dst):
    return values.new_empty((num_dst, values.size(1)))


def _setup_context(ctx, inputs, output):
    values, src, dst, weight, num_dst = inputs
    ctx.num_src = values.size(0)
    ctx.has_weight = weight is not None
    ctx.save_for_backward(values, src, dst, weight)


def _backward(ctx, grad_out):
    # The gradient w.r.t. values is the transposed product A^T g: the same op with src and
    # dst swapped, so it reuses the forward kernel and is itself differentiable (double
    # backward works). The gradient w.r.t. weight is a per-edge dot product (an SDDMM).
    values, src, dst, weight = ctx.saved_tensors
    d_values = d_weight = None
    if ctx.needs_input_grad[0]:
        d_values = _weighted_aggregate(grad_out.contiguous(), dst, src, weight, ctx.num_src)
    if ctx.has_weight and ctx.needs_input_grad[3]:
        acc = _acc_dtype(values.dtype)
        d_weight = (grad_out.to(acc).index_select(0, dst)
                    * values.to(acc).index_select(0, src)).sum(-1).to(weight.dtype)
    return d_values, None, None, d_weight, None


_weighted_aggregate.register_autograd(_backward, setup_context=_setup_context)


def weighted_aggregate(
    values: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor | None,
    num_dst: int,
) -> Tensor:
    """Sum ``weight[e] * values[src[e]]`` into row ``dst[e]`` of a ``(num_dst, C)`` output.

    See the module docstring for the formula and shapes. Differentiable in ``values`` and
    ``weight``; registered as ``torch.ops.graphlearn.weighted_aggregate`` so it runs under
    ``torch.compile`` without graph breaks.
    """
    _check(values, src, dst, weight, num_dst)
    return _weighted_aggregate(values, src, dst, weight, num_dst)
