r"""Triton kernels of the Mamba-1 selective scan (see :mod:`graphlearn.kernels.selective_scan`).

**Work split.** A *sequence* is a batch row (``ptr is None``) or a packed segment
``[ptr[i], ptr[i+1])`` of a batch of one, so variable-length packing is native: a program
never sees another sequence's positions and the state restarts for free. One program owns one
(sequence, block of ``BLOCK_D`` channels) pair and keeps the ``(BLOCK_D, BLOCK_N)`` state in
float32 registers (float64 for float64 inputs) while it loops over time. Time is sequential
inside a program; the parallelism is sequences x channel blocks (no chunked scan of a single
long sequence yet: a few very long sequences use few programs, see below).

Channel blocks never straddle a group of ``B`` or ``C``: channels are partitioned into
``G = lcm(groups_B, groups_C)`` groups (a ``(batch, state, length)`` tensor has one group; a
constant ``(dim, state)`` one imposes nothing) and each group into ``cdiv(dim / G, BLOCK_D)``
blocks, so a program reads one ``(state,)`` vector of ``B``/``C`` per step, addressed through
the strides of the caller's tensor (no ``(batch, dim, state, length)`` copy is made). A
constant ``B``/``C`` is read once, as a ``(BLOCK_D, BLOCK_N)`` tile, before the time loop.

Kernels:

* :func:`_scan_fwd_kernel`: the recurrence
  :math:`h_t = e^{\Delta_t A} h_{t-1} + \Delta_t B_t u_t`, with ``delta_bias`` + softplus, the
  ``D`` skip and the ``silu(z)`` gate fused; writes ``out`` (in ``u``'s dtype) and the last
  state.
* :func:`_scan_bwd_kernel`: two passes per program. Pass 1 recomputes the states of the
  program's sequence and channels into a transient float32 buffer (one ``(BLOCK_D,
  BLOCK_N)`` tile per position, so stores are contiguous). Pass 2 walks time backwards with
  the adjoint :math:`a_t = C_t \bar g_t + e^{\Delta_{t+1} A} a_{t+1}` (started from the
  gradient of the last state), reading :math:`h_{t-1}` back from the buffer and carrying
  :math:`h_t` in registers, and produces the per-position gradients of ``u``, ``delta`` and
  ``z`` (the pre-gate output :math:`y_t` is recomputed from :math:`h_t` for the gate's
  gradient). The math is that of :func:`~graphlearn.kernels.selective_scan.reference_backward`.

**Determinism.** No atomics. Parameter gradients are written as per-program partials and
summed by torch in a fixed order: ``A`` (and a constant ``B``/``C``) as ``(sequences, dim,
state)``, ``D`` and ``delta_bias`` as ``(sequences, dim)``; an input-dependent ``B``/``C``
gets one ``(state,)`` partial per (channel block, position), the sum over the block's
channels, as ``(blocks, batch, state, length)``, which torch reduces to the groups.

**Memory.** The state buffer holds ``positions x channels x BLOCK_N`` float32 values for the
programs of one launch. :func:`backward` bounds it by :data:`BUFFER_BUDGET` elements: it
launches over slices of consecutive sequences (and, when a single sequence is too long for
the budget, over slices of its channel blocks), so memory does not grow with the batch.
Only the packed (``ptr``) path reads ``ptr`` on the host (once per backward, to plan the
slices); the forward never synchronises.

**Dtypes.** float32/float16/bfloat16 inputs accumulate in float32; float64 inputs run in
float64 (``ACC``), matching the reference. ``B``, ``C``, ``A``, ``D``, ``delta_bias`` may have
other dtypes than ``u``; each gradient is returned in its input's dtype.

**Not done.** A chunked scan (split one long sequence into chunks, chunk-local scans, a carry
pass, a fix-up pass) would add parallelism along time for a few very long sequences; here the
launch heuristic only shrinks ``BLOCK_D`` to get more programs. Loads of ``u``/``delta``/``z``
at one time step are strided by ``length`` across channels and rely on the cache.

This module imports :mod:`triton` at import time; :mod:`graphlearn.kernels.selective_scan`
imports it only when the Triton path was selected.
"""

from __future__ import annotations

import bisect
import math
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .selective_scan import acc_dtype

__all__ = ["forward", "backward", "BUFFER_BUDGET", "MAX_BLOCK_D"]

# Elements (float32) of the transient state buffer one backward launch may use (256 MiB).
BUFFER_BUDGET = 1 << 26
# Largest channel block; tests lower it to exercise several blocks per group.
MAX_BLOCK_D = 32
# Below this many programs the launch heuristic halves BLOCK_D (GPU only).
_MIN_PROGRAMS = 1024


# ----------------------------------------------------------------------------- device helpers


@triton.jit
def _softplus(x):
    """``log(1 + exp(x))`` as torch computes it (``x`` beyond 20 returned as is).

    ``log1p`` is Goldberg's ``log(v) * e / (v - 1)`` with ``v = 1 + e``, accurate for tiny ``e``.
    """
    e = tl.exp(tl.minimum(x, 20.0))
    v = 1.0 + e
    lp = tl.where(v == 1.0, e, tl.log(v) * (e / tl.where(v == 1.0, 1.0, v - 1.0)))
    return tl.where(x > 20.0, x, lp)


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _scan_fwd_kernel(
    # pointers
    out_ptr, last_ptr, u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, seq_ptr,
    # sizes (u, delta, z, out are contiguous (batch, dim, length); A (dim, state))
    dim, length, state, dpg, bpg, dpg_b, dpg_c,
    # strides of B and C as (batch, group, state, length)
    sBb, sBg, sBn, sBl, sCb, sCg, sCn, sCl,
    # meta-parameters
    HAS_PTR: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, B_CONST: tl.constexpr, C_CONST: tl.constexpr, ACC: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program per (sequence s, channel block): the recurrence over the sequence's steps."""
    s = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1).to(tl.int64)
    grp = blk // bpg
    d_loc = (blk % bpg) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = d_loc < dpg
    d0 = grp * dpg  # first channel of the group: every channel of the block shares B/C groups
    offs_d = d0 + d_loc
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    if HAS_PTR:
        b = s * 0
        start = tl.load(seq_ptr + s)
        end = tl.load(seq_ptr + s + 1)
    else:
        b = s
        start = 0
        end = length

    A = tl.load(A_ptr + offs_d[:, None] * state + offs_n[None, :], mask=mask_dn,
                other=0.0).to(ACC)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)
    if B_CONST:
        Bt = tl.load(B_ptr + offs_d[:, None] * sBg + offs_n[None, :] * sBn, mask=mask_dn,
                     other=0.0).to(ACC)
    else:
        B_row = B_ptr + b * sBb + (d0 // dpg_b) * sBg + offs_n * sBn
    if C_CONST:
        Ct = tl.load(C_ptr + offs_d[:, None] * sCg + offs_n[None, :] * sCn, mask=mask_dn,
                     other=0.0).to(ACC)
    else:
        C_row = C_ptr + b * sCb + (d0 // dpg_c) * sCg + offs_n * sCn
    x_off = (b * dim + offs_d) * length

    h = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    for t in range(start, end):
        u_t = tl.load(u_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        dl = tl.load(delta_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        if HAS_BIAS:
            dl = dl + bias
        if SOFTPLUS:
            dl = _softplus(dl)
        if not B_CONST:
            Bt = tl.load(B_row + t * sBl, mask=mask_n, other=0.0).to(ACC)[None, :]
        if not C_CONST:
            Ct = tl.load(C_row + t * sCl, mask=mask_n, other=0.0).to(ACC)[None, :]
        h = tl.exp(dl[:, None] * A) * h + (dl * u_t)[:, None] * Bt
        y = tl.sum(h * Ct, 1)
        if HAS_D:
            y = y + Dv * u_t
        if HAS_Z:
            z_t = tl.load(z_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
            y = y * z_t * _sigmoid(z_t)
        tl.store(out_ptr + x_off + t, y.to(out_ptr.dtype.element_ty), mask=mask_d)
    tl.store(last_ptr + (s * dim + offs_d)[:, None] * state + offs_n[None, :],
             h.to(last_ptr.dtype.element_ty), mask=mask_dn)


@triton.jit
def _scan_bwd_kernel(
    # pointers: outputs (gradients and partials), scratch, inputs
    gu_ptr, gdelta_ptr, gz_ptr, pA_ptr, pD_ptr, pbias_ptr, pB_ptr, pC_ptr, buf_ptr,
    gout_ptr, glast_ptr, u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, seq_ptr,
    # sizes (as in the forward) and the slice this launch covers
    batch, dim, length, state, dpg, bpg, dpg_b, dpg_c, nblk,
    S0, BLK0, NBLK_SLICE, SEQ_STRIDE, POS0,
    # strides of B and C as (batch, group, state, length)
    sBb, sBg, sBn, sBl, sCb, sCg, sCn, sCl,
    # meta-parameters
    HAS_PTR: tl.constexpr, HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr,
    SOFTPLUS: tl.constexpr, B_CONST: tl.constexpr, C_CONST: tl.constexpr,
    HAS_GLAST: tl.constexpr, ACC: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """One program per (sequence s, channel block): recompute states, then the reverse sweep.

    Partials: ``pA[s, d, n]``, ``pD[s, d]``, ``pbias[s, d]``; ``pB``/``pC`` are ``[s, d, n]``
    for a constant ``B``/``C`` and ``[blk, b, n, t]`` (summed over the block's channels)
    otherwise. The buffer holds the state after step ``t`` at tile
    ``((s - S0) * SEQ_STRIDE + t - POS0) * NBLK_SLICE + (blk - BLK0)``.
    """
    s = S0 + tl.program_id(0).to(tl.int64)
    blk = BLK0 + tl.program_id(1).to(tl.int64)
    grp = blk // bpg
    d_loc = (blk % bpg) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = d_loc < dpg
    d0 = grp * dpg
    offs_d = d0 + d_loc
    offs_n = tl.arange(0, BLOCK_N)
    mask_n = offs_n < state
    mask_dn = mask_d[:, None] & mask_n[None, :]
    if HAS_PTR:
        b = s * 0
        start = tl.load(seq_ptr + s)
        end = tl.load(seq_ptr + s + 1)
    else:
        b = s
        start = 0
        end = length

    A = tl.load(A_ptr + offs_d[:, None] * state + offs_n[None, :], mask=mask_dn,
                other=0.0).to(ACC)
    if HAS_D:
        Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(ACC)
    if B_CONST:
        Bt = tl.load(B_ptr + offs_d[:, None] * sBg + offs_n[None, :] * sBn, mask=mask_dn,
                     other=0.0).to(ACC)
    else:
        B_row = B_ptr + b * sBb + (d0 // dpg_b) * sBg + offs_n * sBn
    if C_CONST:
        Ct = tl.load(C_ptr + offs_d[:, None] * sCg + offs_n[None, :] * sCn, mask=mask_dn,
                     other=0.0).to(ACC)
    else:
        C_row = C_ptr + b * sCb + (d0 // dpg_c) * sCg + offs_n * sCn
    x_off = (b * dim + offs_d) * length
    tile_offs = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + offs_n[None, :]
    buf_row = buf_ptr + (blk - BLK0) * (BLOCK_D * BLOCK_N) + tile_offs
    buf_pos = (s - S0) * SEQ_STRIDE - POS0  # buffer position of time step t: buf_pos + t
    pos_stride = NBLK_SLICE * (BLOCK_D * BLOCK_N)

    # pass 1: recompute the states into the buffer (float32, or float64 for float64 inputs)
    h = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    for t in range(start, end):
        u_t = tl.load(u_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        dl = tl.load(delta_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        if HAS_BIAS:
            dl = dl + bias
        if SOFTPLUS:
            dl = _softplus(dl)
        if not B_CONST:
            Bt = tl.load(B_row + t * sBl, mask=mask_n, other=0.0).to(ACC)[None, :]
        h = tl.exp(dl[:, None] * A) * h + (dl * u_t)[:, None] * Bt
        tl.store(buf_row + (buf_pos + t) * pos_stride, h.to(buf_ptr.dtype.element_ty))
    # pass 2 reads what other threads of this program stored in pass 1
    tl.debug_barrier()

    # pass 2: the reverse sweep
    if HAS_GLAST:
        a = tl.load(glast_ptr + (s * dim + offs_d)[:, None] * state + offs_n[None, :],
                    mask=mask_dn, other=0.0).to(ACC)
    else:
        a = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    gA = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    if B_CONST:
        gB = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    if C_CONST:
        gC = tl.zeros([BLOCK_D, BLOCK_N], ACC)
    gD = tl.zeros([BLOCK_D], ACC)
    gbias = tl.zeros([BLOCK_D], ACC)
    h_t = h
    pBC_row = ((blk * batch + b) * state + offs_n) * length  # grouped partials [blk, b, n, t]
    for i in range(0, end - start):
        t = end - 1 - i
        u_t = tl.load(u_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        raw = tl.load(delta_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        if HAS_BIAS:
            raw = raw + bias
        if SOFTPLUS:
            dl = _softplus(raw)
        else:
            dl = raw
        if not B_CONST:
            Bt = tl.load(B_row + t * sBl, mask=mask_n, other=0.0).to(ACC)[None, :]
        if not C_CONST:
            Ct = tl.load(C_row + t * sCl, mask=mask_n, other=0.0).to(ACC)[None, :]
        g = tl.load(gout_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
        t_prev = tl.maximum(t - 1, start)
        h_prev = tl.load(buf_row + (buf_pos + t_prev) * pos_stride).to(ACC)
        h_prev = tl.where(t > start, h_prev, 0.0)  # h_{-1} = 0
        if HAS_Z:
            y = tl.sum(h_t * Ct, 1)
            if HAS_D:
                y = y + Dv * u_t
            z_t = tl.load(z_ptr + x_off + t, mask=mask_d, other=0.0).to(ACC)
            sig = _sigmoid(z_t)
            g_z = g * y * sig * (1.0 + z_t * (1.0 - sig))
            tl.store(gz_ptr + x_off + t, g_z.to(gz_ptr.dtype.element_ty), mask=mask_d)
            g = g * z_t * sig
        a = a + g[:, None] * Ct
        g_Ct = g[:, None] * h_t
        if C_CONST:
            gC += g_Ct
        else:
            tl.store(pC_ptr + pBC_row + t, tl.sum(g_Ct, 0).to(pC_ptr.dtype.element_ty),
                     mask=mask_n)
        dA = tl.exp(dl[:, None] * A)
        dAh = dA * h_prev
        g_dl = tl.sum(a * (A * dAh + Bt * u_t[:, None]), 1)
        gA += a * dl[:, None] * dAh
        g_u = tl.sum(a * Bt, 1) * dl
        if HAS_D:
            g_u = g_u + g * Dv
            gD += g * u_t
        g_Bt = a * (dl * u_t)[:, None]
        if B_CONST:
            gB += g_Bt
        else:
            tl.store(pB_ptr + pBC_row + t, tl.sum(g_Bt, 0).to(pB_ptr.dtype.element_ty),
                     mask=mask_n)
        if SOFTPLUS:
            g_dl = g_dl * _sigmoid(raw)
        if HAS_BIAS:
            gbias += g_dl
        tl.store(gu_ptr + x_off + t, g_u.to(gu_ptr.dtype.element_ty), mask=mask_d)
        tl.store(gdelta_ptr + x_off + t, g_dl.to(gdelta_ptr.dtype.element_ty), mask=mask_d)
        a = a * dA
        h_t = h_prev

    p_dn = (s * dim + offs_d)[:, None] * state + offs_n[None, :]
    tl.store(pA_ptr + p_dn, gA.to(pA_ptr.dtype.element_ty), mask=mask_dn)
    if B_CONST:
        tl.store(pB_ptr + p_dn, gB.to(pB_ptr.dtype.element_ty), mask=mask_dn)
    if C_CONST:
        tl.store(pC_ptr + p_dn, gC.to(pC_ptr.dtype.element_ty), mask=mask_dn)
    if HAS_D:
        tl.store(pD_ptr + s * dim + offs_d, gD.to(pD_ptr.dtype.element_ty), mask=mask_d)
    if HAS_BIAS:
        tl.store(pbias_ptr + s * dim + offs_d, gbias.to(pbias_ptr.dtype.element_ty),
                 mask=mask_d)


# ----------------------------------------------------------------------------- launch plan


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _bc_layout(M: Tensor, dim: int) -> tuple[tuple[int, int, int, int], int | None]:
    """Strides of ``B``/``C`` as ``(batch, group, state, length)`` and its group count.

    The group count is ``None`` for a constant ``(dim, state)`` tensor: it is indexed per
    channel (``group = channel``, strides 0 along batch and length).
    """
    if M.dim() == 2:
        return (0, M.stride(0), M.stride(1), 0), None
    if M.dim() == 3:
        return (M.stride(0), 0, M.stride(1), M.stride(2)), 1
    return (M.stride(0), M.stride(1), M.stride(2), M.stride(3)), M.size(1)


class _Plan:
    """Channel partition and block sizes shared by the forward and the backward."""

    def __init__(self, u: Tensor, A: Tensor, B: Tensor, C: Tensor, ptr: Tensor | None):
        self.batch, self.dim, self.length = u.shape
        self.state = A.size(1)
        self.num_seqs = self.batch if ptr is None else ptr.numel() - 1
        self.sB, gB = _bc_layout(B, self.dim)
        self.sC, gC = _bc_layout(C, self.dim)
        self.b_const, self.c_const = gB is None, gC is None
        groups = math.lcm(gB or 1, gC or 1)
        self.dpg = self.dim // groups
        self.dpg_b = self.dim // gB if gB else 1
        self.dpg_c = self.dim // gC if gC else 1
        self.groups, self.gB, self.gC = groups, gB, gC
        block_d = min(triton.next_power_of_2(max(self.dpg, 1)), MAX_BLOCK_D)
        if not _interpreting():  # more, smaller programs when there are few sequences
            while block_d > 4 and self.num_seqs * groups * triton.cdiv(self.dpg, block_d) \
                    < _MIN_PROGRAMS:
                block_d //= 2
        self.block_d = block_d
        self.block_n = triton.next_power_of_2(max(self.state, 1))
        self.bpg = triton.cdiv(self.dpg, block_d)
        self.nblk = groups * self.bpg
        tile = block_d * self.block_n
        self.num_warps = 1 if tile <= 128 else 2 if tile <= 512 else 4


def _flags(plan: _Plan, u: Tensor, D, z, delta_bias, delta_softplus, ptr) -> dict:
    return dict(
        HAS_PTR=ptr is not None, HAS_D=D is not None, HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
        B_CONST=plan.b_const, C_CONST=plan.c_const, ACC=_acc(u.dtype),
        BLOCK_D=plan.block_d, BLOCK_N=plan.block_n, num_warps=plan.num_warps,
    )


def _slices(plan: _Plan, ptr: Tensor | None) -> list[tuple[int, int, int, int, int, int]]:
    """``(s0, s1, blk0, blk1, pos0, positions)`` launches whose buffers fit the budget.

    Sequences ``[s0, s1)`` and channel blocks ``[blk0, blk1)``; ``pos0`` is the offset of
    ``s0`` in the (packed or flattened) time axis and ``positions`` the steps the slice
    covers. Reads ``ptr`` on the host only when one launch would not fit.
    """
    tile = plan.block_d * plan.block_n
    per_pos = plan.nblk * tile
    total = plan.num_seqs * plan.length if ptr is None else plan.length
    if total * per_pos <= BUFFER_BUDGET:
        return [(0, plan.num_seqs, 0, plan.nblk, 0, total)]
    cap = BUFFER_BUDGET // per_pos  # positions one launch may cover with every channel block
    # equal lengths (plan.length > 0 here) need no list: a range bisects in O(1) memory
    offsets = (range(0, (plan.num_seqs + 1) * plan.length, plan.length) if ptr is None
               else ptr.tolist())
    out = []
    i = 0
    while i < plan.num_seqs:
        # the last sequence end within the budget from sequence i: a bisect per launch, not a
        # step per sequence (10,000 short sequences made that loop the backward's host cost)
        j = bisect.bisect_right(offsets, offsets[i] + cap, lo=i + 1) - 1
        if j == i:  # one sequence too long for every channel at once: split its channels
            j = i + 1
            pos = offsets[j] - offsets[i]
            step = max(1, BUFFER_BUDGET // max(1, pos * tile))
            out.extend((i, j, k, min(plan.nblk, k + step), offsets[i], pos)
                       for k in range(0, plan.nblk, step))
        else:
            out.append((i, j, 0, plan.nblk, offsets[i], offsets[j] - offsets[i]))
        i = j
    return out


# ----------------------------------------------------------------------------- host functions


def forward(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None,
            z: Tensor | None, delta_bias: Tensor | None, delta_softplus: bool,
            ptr: Tensor | None) -> tuple[Tensor, Tensor]:
    """Triton forward of the selective scan (inputs checked): ``(out, last_state)``."""
    plan = _Plan(u, A, B, C, ptr)
    u, delta = u.contiguous(), delta.contiguous()
    out = torch.empty_like(u)
    last = u.new_empty((plan.num_seqs, plan.dim, plan.state), dtype=acc_dtype(u.dtype))
    if last.numel() == 0:
        return out, last
    A = A.contiguous()
    zc = z.contiguous() if z is not None else u
    grid = (plan.num_seqs, plan.nblk)
    _scan_fwd_kernel[grid](
        out, last, u, delta, A, B, C,
        D.contiguous() if D is not None else u, zc,
        delta_bias.contiguous() if delta_bias is not None else u,
        ptr.contiguous() if ptr is not None else u,
        plan.dim, plan.length, plan.state, plan.dpg, plan.bpg, plan.dpg_b, plan.dpg_c,
        *plan.sB, *plan.sC,
        **_flags(plan, u, D, z, delta_bias, delta_softplus, ptr),
    )
    return out, last


def _reduce_bc(partial: Tensor, M: Tensor, plan: _Plan, groups_m: int | None) -> Tensor:
    """Partials of a ``B``/``C`` gradient -> the gradient in ``M``'s shape."""
    if groups_m is None:  # constant: (sequences, dim, state)
        return partial.sum(0)
    # (nblk, batch, state, length) -> (lcm groups, ...) -> (groups of M, ...)
    g = partial.view(plan.groups, plan.bpg, plan.batch, plan.state, plan.length).sum(1)
    g = g.view(groups_m, plan.groups // groups_m, plan.batch, plan.state, plan.length).sum(1)
    g = g.permute(1, 0, 2, 3)
    return g.squeeze(1) if M.dim() == 3 else g


def backward(grad_out: Tensor, grad_last: Tensor | None, u: Tensor, delta: Tensor, A: Tensor,
             B: Tensor, C: Tensor, D: Tensor | None, z: Tensor | None,
             delta_bias: Tensor | None, delta_softplus: bool, ptr: Tensor | None):
    """Triton backward: ``(g_u, g_delta, g_A, g_B, g_C, g_D, g_z, g_delta_bias)``.

    Deterministic: per-program partials summed by torch. The state buffer is bounded by
    :data:`BUFFER_BUDGET` through the slices of :func:`_slices`.
    """
    plan = _Plan(u, A, B, C, ptr)
    acc = acc_dtype(u.dtype)
    dev = u.device
    u, delta, grad_out = u.contiguous(), delta.contiguous(), grad_out.contiguous()
    A = A.contiguous()
    S, dim, n = plan.num_seqs, plan.dim, plan.state
    runs = bool(S and dim and plan.length)
    # the kernel writes every element of these when it runs; otherwise they are empty or zero
    g_u = torch.empty_like(u)
    g_delta = torch.empty_like(delta)
    g_z = torch.empty_like(z, memory_format=torch.contiguous_format) if z is not None else None
    alloc = torch.empty if runs else torch.zeros
    pA = alloc((S, dim, n), dtype=acc, device=dev)
    pD = alloc((S, dim), dtype=acc, device=dev) if D is not None else None
    pbias = alloc((S, dim), dtype=acc, device=dev) if delta_bias is not None else None

    def bc_partial(const: bool) -> Tensor:
        shape = (S, dim, n) if const else (plan.nblk, plan.batch, n, plan.length)
        return alloc(shape, dtype=acc, device=dev)

    pB, pC = bc_partial(plan.b_const), bc_partial(plan.c_const)
    if runs:
        zc = z.contiguous() if z is not None else u
        glast = grad_last.to(acc).contiguous() if grad_last is not None else None
        flags = _flags(plan, u, D, z, delta_bias, delta_softplus, ptr)
        tile = plan.block_d * plan.block_n
        for s0, s1, k0, k1, pos0, positions in _slices(plan, ptr):
            buf = torch.empty((max(positions, 1) * (k1 - k0) * tile,), dtype=acc, device=dev)
            _scan_bwd_kernel[(s1 - s0, k1 - k0)](
                g_u, g_delta, g_z if g_z is not None else g_u, pA,
                pD if pD is not None else pA, pbias if pbias is not None else pA, pB, pC, buf,
                grad_out, glast if glast is not None else pA, u, delta, A, B, C,
                D.contiguous() if D is not None else u, zc,
                delta_bias.contiguous() if delta_bias is not None else u,
                ptr.contiguous() if ptr is not None else u,
                plan.batch, dim, plan.length, n, plan.dpg, plan.bpg, plan.dpg_b, plan.dpg_c,
                plan.nblk, s0, k0, k1 - k0, *((plan.length, 0) if ptr is None else (0, pos0)),
                *plan.sB, *plan.sC,
                HAS_GLAST=glast is not None, **flags,
            )
    return (
        g_u, g_delta, pA.sum(0).to(A.dtype),
        _reduce_bc(pB, B, plan, plan.gB).to(B.dtype), _reduce_bc(pC, C, plan, plan.gC).to(C.dtype),
        pD.sum(0).to(D.dtype) if D is not None else None,
        g_z,
        pbias.sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
    )

