r"""The grouped GEMM template: typed linear transforms over rows grouped by type.

Two entry points share one contract for "which weight does a row use": a CSR ``ptr`` of
length ``T + 1`` over rows sorted by type, so rows ``ptr[t]:ptr[t+1]`` use ``weight[t]``
(pyg-lib's ``segment_matmul`` contract; empty types are allowed).

:func:`segment_matmul`
    .. math:: \mathbf{out}_m = \mathbf{x}_m \mathbf{W}_{t(m)}

:func:`gather_scatter_matmul` reads its input rows through a gather list and (optionally)
adds its output rows through a scatter list, so a typed transform over edges or over
(node, relation) pairs runs without materialising gathered copies of ``x``:

    .. math:: \mathbf{out}_{s(m)} \mathrel{+}= c_m \, \mathbf{x}_{g(m)} \mathbf{W}_{t(m)}

with ``g = gather_index`` (identity when ``None``), ``s = scatter_index`` (identity, and
an ``(M, out)`` output, when ``None``) and ``c = scale`` (ones when ``None``).

Shapes:
    - ``x``: ``(N, in)``, floating point
    - ``ptr``: ``(T + 1,)``, long, non-decreasing, ``ptr[0] == 0``, ``ptr[-1] == M``
    - ``weight``: ``(T, in, out)``, same dtype as ``x``
    - ``gather_index``, ``scatter_index``, ``scale``: ``(M,)`` or ``None``

Half-precision inputs accumulate in float32 and the output is cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, ShapeError

from ._dispatch import use_triton

__all__ = [
    "gather_scatter_matmul",
    "reference_gather_scatter_matmul",
    "reference_segment_matmul",
    "segment_matmul",
    "type_ptr",
]

SEGMENT_OP = "graphlearn::segment_matmul"
GATHER_SCATTER_OP = "graphlearn::gather_scatter_matmul"


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def type_ptr(sorted_type: Tensor, num_types: int) -> Tensor:
    """CSR pointer ``(num_types + 1,)`` of a type vector already sorted ascending."""
    counts = torch.bincount(sorted_type, minlength=num_types)
    ptr = torch.zeros(num_types + 1, dtype=torch.long, device=sorted_type.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


# ----------------------------------------------------------------------------- references


def reference_gather_scatter_matmul(
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None = None,
    scatter_index: Tensor | None = None,
    num_out: int | None = None,
    scale: Tensor | None = None,
) -> Tensor:
    """Plain-PyTorch oracle: one dense matmul per non-empty type (clarity over speed)."""
    acc = _acc_dtype(x.dtype)
    rows = x if gather_index is None else x.index_select(0, gather_index)
    num_rows = rows.size(0)
    y = torch.zeros((num_rows, weight.size(2)), dtype=acc, device=x.device)
    bounds = ptr.tolist()
    for t in range(weight.size(0)):
        lo, hi = bounds[t], bounds[t + 1]
        if hi > lo:
            y[lo:hi] = rows[lo:hi].to(acc) @ weight[t].to(acc)
    if scale is not None:
        y = y * scale.to(acc).unsqueeze(-1)
    if scatter_index is None:
        return y.to(x.dtype)
    out = torch.zeros((num_out, weight.size(2)), dtype=acc, device=x.device)
    return out.index_add_(0, scatter_index, y).to(x.dtype)


def reference_segment_matmul(x: Tensor, ptr: Tensor, weight: Tensor) -> Tensor:
    """Plain-PyTorch oracle of :func:`segment_matmul`."""
    return reference_gather_scatter_matmul(x, weight, ptr)


# ----------------------------------------------------------------------------- checks


def _check(op, x, weight, ptr, gather_index, scatter_index, num_out, scale) -> int:
    if not x.is_floating_point() or x.dtype != weight.dtype:
        raise DTypeError(
            f"{op}: x ({x.dtype}) and weight ({weight.dtype}) must share one floating-point dtype"
        )
    if x.dim() != 2 or weight.dim() != 3 or x.size(1) != weight.size(1):
        raise ShapeError(
            f"{op}: expected x (N, in) and weight (T, in, out) with the same in, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if ptr.dtype != torch.long or ptr.shape != (weight.size(0) + 1,):
        raise ShapeError(
            f"{op}: ptr must be a long tensor of shape (T + 1,) = ({weight.size(0) + 1},), got "
            f"{ptr.dtype} {tuple(ptr.shape)}"
        )
    num_rows = gather_index.numel() if gather_index is not None else x.size(0)
    for name, t in (("gather_index", gather_index), ("scatter_index", scatter_index)):
        if t is not None and (t.dtype != torch.long or t.shape != (num_rows,)):
            raise ShapeError(
                f"{op}: {name} must be a long tensor of shape ({num_rows},), got {t.dtype} "
                f"{tuple(t.shape)}"
            )
    if scale is not None and scale.shape != (num_rows,):
        raise ShapeError(f"{op}: scale must have shape ({num_rows},), got {tuple(scale.shape)}")
    if scatter_index is not None and (num_out is None or num_out < 0):
        raise ShapeError(f"{op}: scatter_index needs num_out >= 0, got {num_out}")
    for name, t in (("weight", weight), ("ptr", ptr), ("gather_index", gather_index),
                    ("scatter_index", scatter_index), ("scale", scale)):
        if t is not None and t.device != x.device:
            raise DeviceError(
                f"{op}: {name} is on {t.device} but x is on {x.device}; move all inputs to one "
                f"device"
            )
    if not x.is_cuda:  # a host-side check costs nothing here; on CUDA it would sync
        if ptr[0].item() != 0 or ptr[-1].item() != num_rows or bool((ptr.diff() < 0).any()):
            raise ShapeError(
                f"{op}: ptr must start at 0, be non-decreasing and end at the number of rows "
                f"({num_rows}); got {ptr.tolist()[:8]}{'...' if ptr.numel() > 8 else ''}"
            )
    return num_rows


# ----------------------------------------------------------------------------- custom ops


@torch.library.custom_op(GATHER_SCATTER_OP, mutates_args=())
def _gather_scatter_matmul(
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None,
    scatter_index: Tensor | None,
    num_out: int,
    scale: Tensor | None,
) -> Tensor:
    use_triton(GATHER_SCATTER_OP, x, has_triton=False)
    return reference_gather_scatter_matmul(
        x, weight, ptr, gather_index, scatter_index, num_out, scale
    )


@_gather_scatter_matmul.register_fake
def _(x, weight, ptr, gather_index, scatter_index, num_out, scale):
    if scatter_index is None:
        rows = gather_index.numel() if gather_index is not None else x.size(0)
        return x.new_empty((rows, weight.size(2)))
    return x.new_empty((num_out, weight.size(2)))


def _setup_context(ctx, inputs, output):
    x, weight, ptr, gather_index, scatter_index, num_out, scale = inputs
    ctx.num_x = x.size(0)
    ctx.save_for_backward(x, weight, ptr, gather_index, scatter_index, scale)


def _backward(ctx, grad_out):
    x, weight, ptr, gather_index, scatter_index, scale = ctx.saved_tensors
    # Reference backward, expressed with the forward op itself so a Triton forward is
    # reused: dX = scatter_g( c * g_s @ W^T ) and dW_t = sum_m x_g^T (c * g_s).
    acc = _acc_dtype(x.dtype)
    g = grad_out if scatter_index is None else grad_out.index_select(0, scatter_index)
    if scale is not None:
        g = g * scale.unsqueeze(-1).to(g.dtype)
    d_x = d_w = d_scale = None
    if ctx.needs_input_grad[0]:
        d_x = _gather_scatter_matmul(
            g.contiguous(), weight.transpose(1, 2).contiguous(), ptr, None, gather_index,
            ctx.num_x, None,
        ) if gather_index is not None else _gather_scatter_matmul(
            g.contiguous(), weight.transpose(1, 2).contiguous(), ptr, None, None, 0, None
        )
    rows = x if gather_index is None else x.index_select(0, gather_index)
    if ctx.needs_input_grad[1]:
        d_w = torch.zeros_like(weight, dtype=acc)
        bounds = ptr.tolist()
        for t in range(weight.size(0)):
            lo, hi = bounds[t], bounds[t + 1]
            if hi > lo:
                d_w[t] = rows[lo:hi].to(acc).t() @ g[lo:hi].to(acc)
        d_w = d_w.to(weight.dtype)
    if scale is not None and ctx.needs_input_grad[6]:
        g_raw = grad_out if scatter_index is None else grad_out.index_select(0, scatter_index)
        y = reference_gather_scatter_matmul(x, weight, ptr, gather_index)
        d_scale = (y.to(acc) * g_raw.to(acc)).sum(-1).to(scale.dtype)
    return d_x, d_w, None, None, None, None, d_scale


_gather_scatter_matmul.register_autograd(_backward, setup_context=_setup_context)


# ----------------------------------------------------------------------------- public API


def gather_scatter_matmul(
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None = None,
    scatter_index: Tensor | None = None,
    num_out: int | None = None,
    scale: Tensor | None = None,
) -> Tensor:
    """Typed linear transform of gathered rows, optionally scatter-added into ``num_out`` rows.

    See the module docstring for the formula and shapes. Differentiable in ``x``, ``weight``
    and ``scale``; registered as ``torch.ops.graphlearn.gather_scatter_matmul``.
    """
    _check(GATHER_SCATTER_OP, x, weight, ptr, gather_index, scatter_index, num_out, scale)
    return _gather_scatter_matmul(
        x, weight, ptr, gather_index, scatter_index, num_out if num_out is not None else 0, scale
    )


def segment_matmul(x: Tensor, ptr: Tensor, weight: Tensor) -> Tensor:
    """``out[ptr[t]:ptr[t+1]] = x[ptr[t]:ptr[t+1]] @ weight[t]`` (pyg-lib's contract)."""
    if ptr.device != x.device:  # pyg-lib accepts a host ptr; move it once
        ptr = ptr.to(x.device)
    _check(SEGMENT_OP, x, weight, ptr, None, None, None, None)
    return _gather_scatter_matmul(x, weight, ptr, None, None, 0, None)
