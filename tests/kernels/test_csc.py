"""Tests of graphlearn.kernels.csc: the edge orders the traversal kernels walk."""

from __future__ import annotations

import pytest
import torch
from graphlearn.kernels import CSCIndex, csc_index
from graphlearn.kernels.csc import segment_order

from graphlearn.errors import DeviceError, DTypeError, ShapeError


def loop_order(index, num_segments):
    """Edge ids grouped by segment, each group in input order, and the group boundaries."""
    perm, ptr = [], [0]
    for s in range(num_segments):
        perm += [e for e in range(index.numel()) if int(index[e]) == s]
        ptr.append(len(perm))
    return torch.tensor(perm, dtype=torch.long), torch.tensor(ptr, dtype=torch.long)


@pytest.mark.parametrize("num_edges", [0, 1, 37])
def test_csc_index_matches_loop(num_edges):
    gen = torch.Generator().manual_seed(num_edges)
    src = torch.randint(0, 5, (num_edges,), generator=gen)
    dst = torch.randint(0, 4, (num_edges,), generator=gen)
    csc = csc_index(src, dst, num_src=7, num_dst=6)  # nodes 5, 6 and 4, 5 have no edges
    assert isinstance(csc, CSCIndex)
    for (perm, ptr), index, n in (((csc.dst_perm, csc.dst_ptr), dst, 6),
                                  ((csc.src_perm, csc.src_ptr), src, 7)):
        expected_perm, expected_ptr = loop_order(index, n)
        assert perm.dtype == ptr.dtype == torch.long
        assert torch.equal(perm, expected_perm), "the sort must be stable"
        assert torch.equal(ptr, expected_ptr)


def test_segment_order_ignores_ids_past_the_end():
    perm, ptr = segment_order(torch.tensor([2, 0, 9, 0]), 3)
    assert torch.equal(ptr, torch.tensor([0, 2, 2, 3]))
    assert torch.equal(perm[:3], torch.tensor([1, 3, 0]))


def test_csc_index_errors():
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    with pytest.raises(DTypeError, match="torch.long"):
        csc_index(src.int(), dst, 2, 2)
    with pytest.raises(DTypeError, match="must be tensors"):
        csc_index([0, 1], dst, 2, 2)
    with pytest.raises(ShapeError, match="one length"):
        csc_index(src, dst[:1], 2, 2)
    with pytest.raises(ShapeError, match=">= 0"):
        csc_index(src, dst, 2, -1)
    with pytest.raises(DeviceError, match="meta"):
        csc_index(src, dst.to("meta"), 2, 2)


def test_csc_index_under_compile():
    torch._dynamo.reset()
    src, dst = torch.tensor([3, 0, 1, 0]), torch.tensor([1, 1, 0, 2])
    compiled = torch.compile(csc_index, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(src, dst, 4, 3), csc_index(src, dst, 4, 3), strict=True):
        assert torch.equal(got, want)
