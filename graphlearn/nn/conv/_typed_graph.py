r"""Graph-structure preprocessing shared by the typed attention layers (RGAT, HGT).

Both layers apply one linear transform per (node, relation) and use Pigeon's *compact
materialization*: the transform runs once per unique (node, relation) pair that occurs in
the graph, with :func:`graphlearn.kernels.gather_scatter_matmul` reading the node rows
through a gather list, instead of once per edge. This module builds those pair lists and
the row orders the grouped GEMM needs, and caches them per graph.

- :func:`typed_pairs`: the unique (node, type) pairs of a typed edge list, sorted by
  (type, node) so a CSR pointer over types addresses them, and the pair of every edge.
- :func:`split_rows`: the rows of a grouped GEMM that splits every pair into ``S`` parts
  (blocks of a block-diagonal weight, or attention heads), ordered by (type, part, pair).
- :class:`StructureCache`: a small cache of such preprocessing keyed on the *identity and
  version* of the index tensors, so repeated forwards over one graph skip it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

from graphlearn.kernels import type_ptr

__all__ = ["StructureCache", "SplitRows", "TypedPairs", "sorted_ptr", "split_rows", "typed_pairs"]

T = TypeVar("T")


def sorted_ptr(sorted_ids: Tensor, num_segments: int) -> Tensor:
    """CSR pointer ``(num_segments + 1,)`` of ids sorted ascending: ``ptr[s] = #{ids < s}``.

    :func:`graphlearn.kernels.type_ptr` (a ``searchsorted``: no host synchronisation, and it
    traces under :func:`torch.compile` with data-dependent sizes).
    """
    return type_ptr(sorted_ids, num_segments)


class TypedPairs(NamedTuple):
    """Unique (node, type) pairs of a typed edge list, sorted by (type, node).

    Attributes:
        node (Tensor): ``(P,)`` long, node id of each pair.
        type (Tensor): ``(P,)`` long, type of each pair (ascending).
        ptr (Tensor): ``(T + 1,)`` long, pairs of type ``t`` are ``ptr[t]:ptr[t + 1]``.
        of_edge (Tensor): ``(|E|,)`` long, the pair of each edge.
    """

    node: Tensor
    type: Tensor
    ptr: Tensor
    of_edge: Tensor


def typed_pairs(node: Tensor, type: Tensor, num_nodes: int, num_types: int) -> TypedPairs:
    """The unique (node, type) pairs among ``zip(node, type)`` and the pair of each entry.

    Args:
        node (Tensor): ``(|E|,)`` long, ids in ``[0, num_nodes)``.
        type (Tensor): ``(|E|,)`` long, ids in ``[0, num_types)``.
        num_nodes (int): Number of nodes (the key is ``type * num_nodes + node``).
        num_types (int): Number of types (length of the pointer minus one).
    """
    key = type * max(num_nodes, 1) + node
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    pair_type = unique // max(num_nodes, 1)
    return TypedPairs(
        node=unique - pair_type * max(num_nodes, 1),
        type=pair_type,
        ptr=sorted_ptr(pair_type, num_types),
        of_edge=inverse.view(-1),
    )


class SplitRows(NamedTuple):
    """Rows ``(pair, part)`` of a grouped GEMM whose weight index is ``type * S + part``.

    Attributes:
        pair (Tensor): ``(P * S,)`` long, the pair of each row.
        part (Tensor): ``(P * S,)`` long, the part of each row.
        ptr (Tensor): ``(T * S + 1,)`` long, CSR pointer over the ``T * S`` weights.
    """

    pair: Tensor
    part: Tensor
    ptr: Tensor


def split_rows(pairs: TypedPairs, num_parts: int) -> SplitRows:
    """Order the rows (pair ``p``, part ``s``) by (type of ``p``, ``s``, ``p``).

    A block-diagonal weight with ``S`` blocks (or a per-head weight with ``S`` heads) is
    ``S`` independent small transforms: viewing every pair as ``S`` rows of width
    ``in / S`` with weight index ``type * S + part`` makes it one grouped GEMM again, with
    no multiplication by the zero blocks. The rows of weight ``t * S + s`` are the pairs of
    type ``t`` in pair order, so the row of (``p``, ``s``) is
    ``S * ptr[t] + s * count[t] + (p - ptr[t])``: no sort is needed.
    """
    num_pairs = pairs.node.numel()
    device = pairs.node.device
    counts = pairs.ptr.diff()
    parts = torch.arange(num_parts, device=device)
    pair_id = torch.arange(num_pairs, device=device)
    start = pairs.ptr[:-1].index_select(0, pairs.type)  # (P,)
    count = counts.index_select(0, pairs.type)
    position = (num_parts * start + (pair_id - start)).unsqueeze(1) + parts * count.unsqueeze(1)
    position = position.reshape(-1)  # row of (p, s), p-major
    row_pair = torch.empty(num_pairs * num_parts, dtype=torch.long, device=device)
    row_part = torch.empty_like(row_pair)
    row_pair[position] = pair_id.repeat_interleave(num_parts)
    row_part[position] = parts.repeat(num_pairs)
    ptr = (num_parts * pairs.ptr[:-1]).unsqueeze(1) + parts * counts.unsqueeze(1)  # (T, S)
    ptr = torch.cat([ptr.reshape(-1), pairs.ptr.new_full((1,), num_parts * num_pairs)])
    return SplitRows(pair=row_pair, part=row_part, ptr=ptr)


def _version(t: Tensor) -> int | None:
    """The in-place version counter of ``t``; None for inference tensors (not tracked)."""
    if t.is_inference():
        return None
    return t._version


class StructureCache:
    """A small LRU cache of graph preprocessing, keyed on index tensors by identity.

    An entry matches when each key tensor is the *same object* (held by weak reference,
    so the cache never keeps a graph alive) with an unchanged in-place version counter,
    and the hashable ``extra`` key (sizes, options) is equal. A tensor modified in place,
    a new tensor with equal values, or a dead reference all miss, and the preprocessing
    is rebuilt. Inference-mode tensors (no version counter) and code being traced by
    :func:`torch.compile` bypass the cache. Copies and pickles of a layer start empty.

    Args:
        maxsize (int): Number of graphs remembered (default: :obj:`2`, e.g. a training and
            an evaluation graph).
    """

    def __init__(self, maxsize: int = 2) -> None:
        self.maxsize = maxsize
        self._entries: list[tuple[tuple[Any, ...], tuple[int, ...], Hashable, Any]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def get(self, tensors: Sequence[Tensor], extra: Hashable, build: Callable[[], T]) -> T:
        """Return the cached value for (``tensors``, ``extra``), building it on a miss."""
        if torch.compiler.is_compiling():
            return build()
        versions = tuple(_version(t) for t in tensors)
        if any(v is None for v in versions):
            return build()
        self._entries = [e for e in self._entries if all(r() is not None for r in e[0])]
        for position, (refs, entry_versions, entry_extra, value) in enumerate(self._entries):
            if (len(refs) == len(tensors) and entry_versions == versions
                    and entry_extra == extra
                    and all(r() is t for r, t in zip(refs, tensors, strict=True))):
                self._entries.insert(0, self._entries.pop(position))
                return value
        value = build()
        refs = tuple(weakref.ref(t) for t in tensors)
        self._entries.insert(0, (refs, versions, extra, value))
        del self._entries[self.maxsize:]
        return value

    def __deepcopy__(self, memo: dict) -> StructureCache:
        return StructureCache(self.maxsize)

    def __getstate__(self) -> dict:
        return {"maxsize": self.maxsize}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.get("maxsize", 2))

    def __repr__(self) -> str:
        return f"StructureCache(entries={len(self)}, maxsize={self.maxsize})"
