r"""Compressed edge orders for the traversal kernels: edges grouped by destination and by source.

The Triton traversal kernels (:mod:`graphlearn.kernels.triton_traversal`) visit a graph
given as COO ``(src, dst)`` one destination at a time (forward, CSC order) and one source
at a time (the transposed graph, for gradients w.r.t. source features). Both orders are a
stable permutation of the edges plus a CSR pointer:

.. math::
    \mathrm{dst}[\mathrm{perm}_{dst}[k]] = i \quad \text{for} \quad
    \mathrm{ptr}_{dst}[i] \le k < \mathrm{ptr}_{dst}[i + 1],

and the same for sources. Building them costs two sorts; :func:`csc_index` builds them once
so a layer that runs many times over one graph (a full-batch GNN, a stack of layers) can
pass the result as ``csc=`` to :func:`~graphlearn.kernels.edge_softmax_aggregate` and
:func:`~graphlearn.kernels.weighted_aggregate` instead of re-sorting on every call.

Everything here is plain torch and runs on the edges' device without a host
synchronisation (no ``.item()``, no ``bincount``, which reads the maximum back on CUDA):
the pointer is a ``searchsorted`` of the segment ids into the sorted ids.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from graphlearn.errors import DeviceError, DTypeError, ShapeError

__all__ = ["CSCIndex", "csc_index", "segment_order"]


class CSCIndex(NamedTuple):
    """Both edge orders of one graph, as built by :func:`csc_index`.

    Attributes:
        dst_perm (Tensor): ``(|E|,)`` long, edge ids sorted by destination (stable).
        dst_ptr (Tensor): ``(num_dst + 1,)`` long, destination ``i`` owns
            ``dst_perm[dst_ptr[i]:dst_ptr[i + 1]]``.
        src_perm (Tensor): ``(|E|,)`` long, edge ids sorted by source (stable).
        src_ptr (Tensor): ``(num_src + 1,)`` long, source ``j`` owns
            ``src_perm[src_ptr[j]:src_ptr[j + 1]]``.
    """

    dst_perm: Tensor
    dst_ptr: Tensor
    src_perm: Tensor
    src_ptr: Tensor


def segment_order(index: Tensor, num_segments: int) -> tuple[Tensor, Tensor]:
    """Stable sort order of ``index`` ``(|E|,)`` and the CSR pointer of its segments.

    Returns ``(perm, ptr)``: ``perm`` ``(|E|,)`` lists edge ids by ascending ``index`` (ties
    in input order, so traversals are deterministic), ``ptr`` ``(num_segments + 1,)`` holds
    ``ptr[s] = #{e : index[e] < s}``. Ids outside ``[0, num_segments)`` are not checked (that
    would need a host synchronisation); they fall outside every segment.
    """
    sorted_index, perm = torch.sort(index, stable=True)
    bounds = torch.arange(num_segments + 1, dtype=index.dtype, device=index.device)
    ptr = torch.searchsorted(sorted_index, bounds)
    return perm, ptr


def csc_index(src: Tensor, dst: Tensor, num_src: int, num_dst: int) -> CSCIndex:
    """Build the destination-major and source-major edge orders of the graph ``src -> dst``.

    Args:
        src (Tensor): ``(|E|,)`` long, source node of each edge.
        dst (Tensor): ``(|E|,)`` long, destination node of each edge.
        num_src (int): Number of source nodes (rows of the ``values`` the ops gather).
        num_dst (int): Number of destination nodes (rows of the ops' output).

    Returns:
        CSCIndex: ``(dst_perm, dst_ptr, src_perm, src_ptr)``; pass it as ``csc=`` to the
        traversal ops for this same ``(src, dst, num_src, num_dst)``.
    """
    if not isinstance(src, Tensor) or not isinstance(dst, Tensor):
        raise DTypeError(
            f"csc_index: src and dst must be tensors, got {type(src).__name__} and "
            f"{type(dst).__name__}"
        )
    if src.dtype != torch.long or dst.dtype != torch.long:
        raise DTypeError(
            f"csc_index: src and dst must be torch.long, got {src.dtype}, {dst.dtype}; convert "
            f"with .long()"
        )
    if src.dim() != 1 or src.shape != dst.shape:
        raise ShapeError(
            f"csc_index: src and dst must be 1-D of one length (num_edges,), got "
            f"{tuple(src.shape)} and {tuple(dst.shape)}"
        )
    if src.device != dst.device:
        raise DeviceError(f"csc_index: src is on {src.device} but dst is on {dst.device}")
    if num_src < 0 or num_dst < 0:
        raise ShapeError(f"csc_index: num_src and num_dst must be >= 0, got {num_src}, {num_dst}")
    dst_perm, dst_ptr = segment_order(dst, num_dst)
    src_perm, src_ptr = segment_order(src, num_src)
    return CSCIndex(dst_perm, dst_ptr, src_perm, src_ptr)


def check_csc(op: str, csc: CSCIndex | tuple | None, num_edges: int, num_src: int,
              num_dst: int, device: torch.device) -> tuple[Tensor | None, ...]:
    """Validate a ``csc=`` argument of a traversal op; return its four tensors (or Nones)."""
    if csc is None:
        return (None, None, None, None)
    if not isinstance(csc, tuple) or len(csc) != 4:
        raise ShapeError(
            f"{op}: csc must be the CSCIndex returned by csc_index(src, dst, num_src, num_dst), "
            f"got {type(csc).__name__}"
        )
    expected = {"dst_perm": num_edges, "dst_ptr": num_dst + 1, "src_perm": num_edges,
                "src_ptr": num_src + 1}
    for (name, size), t in zip(expected.items(), csc, strict=True):
        if not isinstance(t, Tensor) or t.dtype != torch.long:
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise DTypeError(f"{op}: csc.{name} must be a torch.long tensor, got {got}")
        if t.shape != (size,):
            raise ShapeError(
                f"{op}: csc.{name} must have shape ({size},) for this graph, got "
                f"{tuple(t.shape)}; build it with csc_index(src, dst, num_src={num_src}, "
                f"num_dst={num_dst})"
            )
        if t.device != device:
            raise DeviceError(f"{op}: csc.{name} is on {t.device} but the inputs are on {device}")
    return tuple(csc)
