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

Implementations: the ``reference_*`` functions here (plain PyTorch, one dense matmul per
type; the oracle and the CPU path) and the Triton kernels of
:mod:`graphlearn.kernels.triton_gemm` (forward, ``d x``, ``d weight`` and ``d scale``;
CUDA in ``auto`` mode, or ``GRAPHLEARN_KERNELS=triton``). The Triton path never reads
``ptr`` on the host, so it does not synchronise with the device; its scattered forward and
``d x`` with a ``gather_index`` add rows with atomics, so those are not bitwise
deterministic on the GPU (``d weight`` and ``d scale`` are).
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, IndexOutOfRangeError, ShapeError

from ._dispatch import use_triton

__all__ = [
    "gather_scatter_matmul",
    "reference_gather_scatter_matmul",
    "reference_gather_scatter_matmul_backward",
    "reference_segment_matmul",
    "segment_matmul",
    "type_ptr",
]

SEGMENT_OP = "graphlearn::segment_matmul"
GATHER_SCATTER_OP = "graphlearn::gather_scatter_matmul"


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def type_ptr(sorted_type: Tensor, num_types: int) -> Tensor:
    """CSR pointer ``(num_types + 1,)`` of a type vector already sorted ascending.

    A ``searchsorted`` of the type ids into the sorted vector: no host synchronisation on
    CUDA (``bincount`` would read the maximum back).
    """
    bounds = torch.arange(num_types + 1, dtype=sorted_type.dtype, device=sorted_type.device)
    return torch.searchsorted(sorted_type, bounds)


# ----------------------------------------------------------------------------- references

# Many types with few rows each (R-GCN over hundreds of relations) make the per-type loop
# a long series of tiny GEMMs whose call overhead dominates. The tiled route cuts every
# type's rows into tiles of ``block`` rows (the Triton kernel's tiling, in torch ops), pads
# the last tile of each type, and runs all tiles as ONE batched GEMM against a per-tile
# copy of the weight; dW is one batched GEMM plus a sum over each type's tiles. It is used
# when the per-tile weight copies stay small.
_TILED_MIN_TYPES = 8
_TILED_MAX_WEIGHT_BYTES = 64 * 2**20


_TILE_PLANS: dict[int, tuple] = {}


def _tile_plan(ptr: Tensor, num_rows: int) -> tuple[int, Tensor, Tensor, int]:
    """``(block, tile_type, slot, num_tiles)``: row ``m`` lives at padded slot ``slot[m]``.

    Layers pass the same cached ``ptr`` on every call (forward and backward), so plans are
    memoised per live ``ptr`` tensor: keyed by its identity, checked through a weak
    reference (a freed tensor's id can be reused) and its version counter (in-place edits).
    """
    key = id(ptr)
    hit = _TILE_PLANS.get(key)
    if hit is not None and hit[0]() is ptr and hit[1] == (ptr._version, num_rows):
        return hit[2]
    plan = _build_tile_plan(ptr, num_rows)
    if len(_TILE_PLANS) > 64:  # drop entries whose ptr is gone
        for k in [k for k, v in _TILE_PLANS.items() if v[0]() is None]:
            del _TILE_PLANS[k]
    if not torch.compiler.is_compiling():
        _TILE_PLANS[key] = (weakref.ref(ptr), (ptr._version, num_rows), plan)
    return plan


def _build_tile_plan(ptr: Tensor, num_rows: int) -> tuple[int, Tensor, Tensor, int]:
    num_types = ptr.numel() - 1
    counts = ptr.diff()
    avg = max(1, num_rows // max(1, int((counts > 0).sum())))
    block = 1 << max(4, min(7, (avg - 1).bit_length()))  # 16 .. 128 rows per tile
    tiles = (counts + block - 1) // block
    first_tile = torch.cumsum(tiles, 0) - tiles
    types = torch.arange(num_types, device=ptr.device)
    tile_type = torch.repeat_interleave(types, tiles)
    row_type = torch.repeat_interleave(types, counts, output_size=num_rows)
    local = torch.arange(num_rows, device=ptr.device) - ptr[row_type]
    slot = (first_tile[row_type] + local // block) * block + local % block
    return block, tile_type, slot, int(tile_type.numel())


def _use_tiles(x: Tensor, weight: Tensor, num_rows: int) -> bool:
    num_types, k, n = weight.shape
    if x.is_cuda or num_types < _TILED_MIN_TYPES or num_rows == 0:
        return False
    max_tiles = num_rows // 16 + num_types
    return max_tiles * k * n * 4 <= _TILED_MAX_WEIGHT_BYTES


def _pad_rows(rows: Tensor, slot: Tensor, num_tiles: int, block: int) -> Tensor:
    padded = rows.new_zeros((num_tiles * block, rows.size(1)))
    return padded.index_copy_(0, slot, rows).view(num_tiles, block, rows.size(1))



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
    if _use_tiles(x, weight, num_rows):
        block, tile_type, slot, num_tiles = _tile_plan(ptr, num_rows)
        tiles = _pad_rows(rows.to(acc), slot, num_tiles, block)
        y_tiles = torch.bmm(tiles, weight.to(acc).index_select(0, tile_type))
        y = y_tiles.view(-1, weight.size(2)).index_select(0, slot)
    else:
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


def reference_gather_scatter_matmul_backward(
    grad_out: Tensor,
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None = None,
    scatter_index: Tensor | None = None,
    scale: Tensor | None = None,
    *,
    needs_x: bool = True,
    needs_weight: bool = True,
    needs_scale: bool = True,
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    r"""Plain-PyTorch gradients of :func:`reference_gather_scatter_matmul`.

    With :math:`\mathbf{g}_m = \partial L / \partial \mathbf{out}_{s(m)}`:

    .. math::
        \partial \mathbf{x}_{g(m)} \mathrel{+}= c_m \mathbf{g}_m \mathbf{W}_{t(m)}^\top, \quad
        \partial \mathbf{W}_t = \sum_{m:\,t(m)=t} \mathbf{x}_{g(m)}^\top c_m \mathbf{g}_m, \quad
        \partial c_m = \langle \mathbf{x}_{g(m)} \mathbf{W}_{t(m)}, \mathbf{g}_m \rangle .

    Returns ``(d_x, d_weight, d_scale)``; an entry is ``None`` when not asked for (or, for
    ``d_scale``, when ``scale`` is ``None``). One loop over types, fp32 accumulation.
    """
    acc = _acc_dtype(x.dtype)
    g = grad_out if scatter_index is None else grad_out.index_select(0, scatter_index)
    g = g.to(acc)
    g_scaled = g if scale is None else g * scale.to(acc).unsqueeze(-1)
    rows = (x if gather_index is None else x.index_select(0, gather_index)).to(acc)
    w = weight.to(acc)
    num_rows, k, n = rows.size(0), weight.size(1), weight.size(2)
    needs_scale = needs_scale and scale is not None
    # Not differentiated itself, so each type's product is written in place (out=); every
    # row belongs to one type, and only empty types' d_w needs the zeros.
    u = d_w = y = None
    if _use_tiles(x, weight, num_rows):
        block, tile_type, slot, num_tiles = _tile_plan(ptr, num_rows)
        g_tiles = _pad_rows(g_scaled, slot, num_tiles, block)
        w_tiles = w.index_select(0, tile_type) if (needs_x or needs_scale) else None
        if needs_x:
            u = torch.bmm(g_tiles, w_tiles.transpose(1, 2)).view(-1, k).index_select(0, slot)
        if needs_weight or needs_scale:
            x_tiles = _pad_rows(rows, slot, num_tiles, block)
        if needs_weight:
            d_w = torch.zeros(weight.shape, dtype=acc, device=x.device).index_add_(
                0, tile_type, torch.bmm(x_tiles.transpose(1, 2), g_tiles))
        if needs_scale:
            y = torch.bmm(x_tiles, w_tiles).view(-1, n).index_select(0, slot)
    else:
        u = torch.empty((num_rows, k), dtype=acc, device=x.device) if needs_x else None
        d_w = torch.zeros(weight.shape, dtype=acc, device=x.device) if needs_weight else None
        y = torch.empty((num_rows, n), dtype=acc, device=x.device) if needs_scale else None
        bounds = ptr.tolist()
        for t in range(weight.size(0)):
            lo, hi = bounds[t], bounds[t + 1]
            if hi == lo:
                continue
            if u is not None:
                torch.mm(g_scaled[lo:hi], w[t].t(), out=u[lo:hi])
            if d_w is not None:
                torch.mm(rows[lo:hi].t(), g_scaled[lo:hi], out=d_w[t])
            if y is not None:
                torch.mm(rows[lo:hi], w[t], out=y[lo:hi])
    d_x = None
    if u is not None:
        if gather_index is not None:
            u = torch.zeros((x.size(0), k), dtype=acc, device=x.device).index_add_(
                0, gather_index, u)
        d_x = u.to(x.dtype)
    d_scale = y.mul_(g).sum(-1).to(scale.dtype) if y is not None else None
    return d_x, (d_w.to(weight.dtype) if d_w is not None else None), d_scale


# ----------------------------------------------------------------------------- checks


def _check(op, x, weight, ptr, gather_index, scatter_index, num_out, scale) -> int:
    """Validate the inputs of one call; returns the number of rows ``M``.

    Dtypes, shapes and devices are checked always. Values (``ptr`` monotone and ending at
    ``M``, indices in range) are checked only on CPU outside ``torch.compile``: on CUDA that
    check would synchronise with the device, and under compile it would break the graph.
    """
    if not x.is_floating_point() or x.dtype != weight.dtype:
        raise DTypeError(
            f"{op}: x ({x.dtype}) and weight ({weight.dtype}) must share one floating-point "
            f"dtype; cast one of them, e.g. weight.to(x.dtype)"
        )
    if scale is not None and not scale.is_floating_point():
        raise DTypeError(f"{op}: scale must be floating point, got {scale.dtype}")
    for name, t in (("ptr", ptr), ("gather_index", gather_index),
                    ("scatter_index", scatter_index)):
        if t is not None and t.dtype != torch.long:
            raise DTypeError(f"{op}: {name} must be torch.long, got {t.dtype}; use {name}.long()")
    if x.dim() != 2 or weight.dim() != 3 or x.size(1) != weight.size(1):
        raise ShapeError(
            f"{op}: expected x (N, in) and weight (T, in, out) with the same in, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if ptr.shape != (weight.size(0) + 1,):
        raise ShapeError(
            f"{op}: ptr must have shape (T + 1,) = ({weight.size(0) + 1},) for weight "
            f"{tuple(weight.shape)}, got {tuple(ptr.shape)}"
        )
    num_rows = gather_index.numel() if gather_index is not None else x.size(0)
    for name, t in (("gather_index", gather_index), ("scatter_index", scatter_index),
                    ("scale", scale)):
        if t is not None and t.shape != (num_rows,):
            raise ShapeError(
                f"{op}: {name} must have shape ({num_rows},) (one entry per row"
                f"{' of gather_index' if gather_index is not None else ' of x'}), got "
                f"{tuple(t.shape)}"
            )
    if scatter_index is not None and (num_out is None or num_out < 0):
        raise ShapeError(f"{op}: scatter_index needs num_out >= 0 output rows, got {num_out}")
    for name, t in (("weight", weight), ("ptr", ptr), ("gather_index", gather_index),
                    ("scatter_index", scatter_index), ("scale", scale)):
        if t is not None and t.device != x.device:
            raise DeviceError(
                f"{op}: {name} is on {t.device} but x is on {x.device}; move all inputs to one "
                f"device"
            )
    if x.is_cuda or x.device.type == "meta" or torch.compiler.is_compiling():
        return num_rows
    if ptr[0].item() != 0 or ptr[-1].item() != num_rows or bool((ptr.diff() < 0).any()):
        raise ShapeError(
            f"{op}: ptr must start at 0, be non-decreasing and end at the number of rows "
            f"({num_rows}); got {ptr.tolist()[:8]}{'...' if ptr.numel() > 8 else ''}"
        )
    for name, t, bound in (("gather_index", gather_index, x.size(0)),
                           ("scatter_index", scatter_index, num_out)):
        if t is not None and t.numel() and (t.min().item() < 0 or t.max().item() >= bound):
            raise IndexOutOfRangeError(
                f"{op}: {name} must lie in [0, {bound}), got values in "
                f"[{t.min().item()}, {t.max().item()}]"
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
    if use_triton(GATHER_SCATTER_OP, x, has_triton=True):
        from .triton_gemm import gather_scatter_matmul_forward

        return gather_scatter_matmul_forward(
            x, weight, ptr, gather_index, scatter_index, num_out, scale
        )
    return reference_gather_scatter_matmul(
        x, weight, ptr, gather_index, scatter_index, num_out, scale
    )


@_gather_scatter_matmul.register_fake
def _(x, weight, ptr, gather_index, scatter_index, num_out, scale):
    if scatter_index is None:
        rows = gather_index.numel() if gather_index is not None else x.size(0)
        return x.new_empty((rows, weight.size(2)))
    return x.new_empty((num_out, weight.size(2)))


@torch.library.custom_op(GATHER_SCATTER_OP + "_backward", mutates_args=())
def _gather_scatter_matmul_backward(
    grad_out: Tensor,
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None,
    scatter_index: Tensor | None,
    scale: Tensor | None,
    needs_x: bool,
    needs_weight: bool,
    needs_scale: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    if use_triton(GATHER_SCATTER_OP, x, has_triton=True):
        from .triton_gemm import gather_scatter_matmul_backward as backward
    else:
        backward = reference_gather_scatter_matmul_backward
    d_x, d_w, d_scale = backward(
        grad_out, x, weight, ptr, gather_index, scatter_index, scale,
        needs_x=needs_x, needs_weight=needs_weight, needs_scale=needs_scale,
    )
    # custom ops cannot return None: an empty tensor stands for "not computed".
    return (
        d_x if d_x is not None else x.new_empty(0),
        d_w if d_w is not None else weight.new_empty(0),
        d_scale if d_scale is not None else x.new_empty(0),
    )


@_gather_scatter_matmul_backward.register_fake
def _(grad_out, x, weight, ptr, gather_index, scatter_index, scale, needs_x, needs_weight,
      needs_scale):
    d_x = x.new_empty(x.shape) if needs_x else x.new_empty(0)
    d_w = weight.new_empty(weight.shape) if needs_weight else weight.new_empty(0)
    d_scale = scale.new_empty(scale.shape) if (needs_scale and scale is not None) \
        else x.new_empty(0)
    return d_x, d_w, d_scale


def _setup_context(ctx, inputs, output):
    x, weight, ptr, gather_index, scatter_index, num_out, scale = inputs
    ctx.has_scale = scale is not None
    ctx.save_for_backward(x, weight, ptr, gather_index, scatter_index, scale)


def _backward(ctx, grad_out):
    x, weight, ptr, gather_index, scatter_index, scale = ctx.saved_tensors
    needs_x, needs_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    needs_scale = ctx.has_scale and ctx.needs_input_grad[6]
    d_x, d_w, d_scale = _gather_scatter_matmul_backward(
        grad_out, x, weight, ptr, gather_index, scatter_index, scale,
        needs_x, needs_weight, needs_scale,
    )
    return (d_x if needs_x else None, d_w if needs_weight else None, None, None, None, None,
            d_scale if needs_scale else None)


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
    r"""Typed linear transform of gathered rows, optionally scatter-added into ``num_out`` rows.

    .. math:: \mathbf{out}_{s(m)} \mathrel{+}= c_m \, \mathbf{x}_{g(m)} \mathbf{W}_{t(m)}

    Args:
        x (Tensor): Input rows ``(N, in)``.
        weight (Tensor): One matrix per type ``(T, in, out)``, same dtype as ``x``.
        ptr (Tensor): CSR pointer ``(T + 1,)``, long, over the ``M`` rows (pairs), which
            must be sorted by type; see :func:`type_ptr`.
        gather_index (Tensor, optional): ``(M,)`` long; row ``m`` reads ``x[gather_index[m]]``.
            (default: :obj:`None`, ``M = N`` and row ``m`` reads ``x[m]``)
        scatter_index (Tensor, optional): ``(M,)`` long; row ``m`` is added to output row
            ``scatter_index[m]``. (default: :obj:`None`, one output row per ``m``)
        num_out (int, optional): Number of output rows; required with ``scatter_index``.
        scale (Tensor, optional): ``(M,)`` per-row multiplier ``c`` (e.g. a ``1 / |N_r(i)|``
            normalisation). (default: :obj:`None`)

    Returns:
        Tensor: ``(M, out)``, or ``(num_out, out)`` with ``scatter_index``; dtype of ``x``.

    Differentiable in ``x``, ``weight`` and ``scale``; registered as
    ``torch.ops.graphlearn.gather_scatter_matmul`` so it runs under ``torch.compile``.
    """
    _check(GATHER_SCATTER_OP, x, weight, ptr, gather_index, scatter_index, num_out, scale)
    return _gather_scatter_matmul(
        x, weight, ptr, gather_index, scatter_index, num_out if num_out is not None else 0, scale
    )


def segment_matmul(x: Tensor, ptr: Tensor, weight: Tensor) -> Tensor:
    """``out[ptr[t]:ptr[t+1]] = x[ptr[t]:ptr[t+1]] @ weight[t]`` (pyg-lib's contract).

    Args:
        x (Tensor): ``(M, in)``, rows sorted by type.
        ptr (Tensor): ``(T + 1,)`` long CSR pointer; a host ``ptr`` is moved to ``x``'s device.
        weight (Tensor): ``(T, in, out)``, same dtype as ``x``.

    Returns:
        Tensor: ``(M, out)`` in the dtype of ``x``.
    """
    if ptr.device != x.device:  # pyg-lib accepts a host ptr; move it once
        ptr = ptr.to(x.device)
    _check(SEGMENT_OP, x, weight, ptr, None, None, None, None)
    return _gather_scatter_matmul(x, weight, ptr, None, None, 0, None)
