r"""Triton kernels of the grouped GEMM template (see :mod:`graphlearn.kernels.segment_matmul`).

Rows ``m = 0 .. M-1`` are grouped by type through a CSR ``ptr``; row ``m`` of type ``t(m)``
reads input row ``g(m)`` (``gather_index``, identity when absent), is multiplied by
``weight[t(m)]`` and by an optional per-row scale ``c_m``, and is written to output row
``m`` or added to output row ``s(m)`` (``scatter_index``):

.. math::
    \mathbf{out}_{s(m)} \mathrel{+}= c_m \, \mathbf{x}_{g(m)} \mathbf{W}_{t(m)}

The gradients are the same template run backwards, plus one reduction per type:

.. math::
    \partial \mathbf{x}_{g(m)} \mathrel{+}= c_m \, \mathbf{g}_{s(m)} \mathbf{W}_{t(m)}^\top,
    \qquad
    \partial \mathbf{W}_t = \sum_{m:\,t(m)=t} \mathbf{x}_{g(m)}^\top \, c_m \mathbf{g}_{s(m)},
    \qquad
    \partial c_m = \langle \mathbf{x}_{g(m)} \mathbf{W}_{t(m)}, \mathbf{g}_{s(m)} \rangle .

Three kernels implement them:

* ``_gather_scatter_mm_kernel`` (forward and ``dX``): one program per (row tile, column
  tile). Row tiles never straddle two types. The launch grid is an upper bound on the number
  of row tiles, ``min(cdiv(M, BLOCK_M) + T, M)``, which depends on shapes only, so the host
  never reads ``ptr``; a device-side tile table (built with torch ops in :func:`_row_tiles`)
  maps each program to its type and first row, and programs past the last real tile exit.
  Scattered rows are added with ``tl.atomic_add`` into a float32 (float64) buffer, so that
  path is not bitwise deterministic on the GPU.
* ``_segment_weight_grad_kernel`` (``dW``): one program per (type, in tile, out tile)
  looping over the type's row tiles; deterministic, and empty types get zeros.
* ``_row_scale_grad_kernel`` (``d scale``): one program per row tile, looping over all
  output column tiles; deterministic.

Accumulation is float32 (float64 for float64 inputs) and outputs are cast back to the input
dtype. Float32 products use exact ``"ieee"`` dot products unless PyTorch itself allows TF32
(``torch.set_float32_matmul_precision("high")``), in which case the CUDA path uses ``"tf32"``.

This module imports :mod:`triton` at import time; :mod:`graphlearn.kernels.segment_matmul`
imports it only when Triton was selected, so ``import graphlearn.kernels`` works without
Triton.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = [
    "gather_scatter_matmul_backward",
    "gather_scatter_matmul_forward",
]


# ----------------------------------------------------------------------------- kernels


@triton.jit
def _typed_tile_dot(
    x_ptr, w_ptr,                                       # pointers
    src, row_mask, t, cols, col_mask, K,                # rows, type, columns, sizes
    stride_xm, stride_xk, stride_wt, stride_wk, stride_wn,  # strides
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ACC: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
):
    """``x[src] @ weight[t][:, cols]`` for one row tile, accumulated in ``ACC``."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    w_base = w_ptr + t.to(tl.int64) * stride_wt
    for k0 in range(0, K, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        k_mask = kk < K
        a = tl.load(x_ptr + src[:, None] * stride_xm + kk[None, :] * stride_xk,
                    mask=row_mask[:, None] & k_mask[None, :], other=0.0)
        b = tl.load(w_base + kk[:, None] * stride_wk + cols[None, :] * stride_wn,
                    mask=k_mask[:, None] & col_mask[None, :], other=0.0)
        if UPCAST:  # interpreter only: its half-precision tl.dot is not an fp32-accumulating one
            a = a.to(ACC)
            b = b.to(ACC)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
    return acc


@triton.jit
def _gather_scatter_mm_kernel(
    # pointers
    out_ptr, x_ptr, w_ptr, ptr_ptr, tile_type_ptr, tile_start_ptr,
    gather_ptr, scatter_ptr, scale_ptr,
    # sizes
    K, N,
    # strides
    stride_xm, stride_xk, stride_wt, stride_wk, stride_wn, stride_om, stride_on,
    # meta-parameters
    HAS_GATHER: tl.constexpr, HAS_SCATTER: tl.constexpr, HAS_SCALE: tl.constexpr,
    ACC: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """``out[s(m)] (+)= c_m x[g(m)] @ W[t(m)]`` for one (row tile, column tile)."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    t = tl.load(tile_type_ptr + pid_m)
    start = tl.load(tile_start_ptr + pid_m)
    end = tl.load(ptr_ptr + t + 1)
    if start >= end:  # past the last real tile (the grid is an upper bound)
        return
    rows = start + tl.arange(0, BLOCK_M)
    row_mask = rows < end
    if HAS_GATHER:
        src = tl.load(gather_ptr + rows, mask=row_mask, other=0)
    else:
        src = rows
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    acc = _typed_tile_dot(x_ptr, w_ptr, src, row_mask, t, cols, col_mask, K,
                          stride_xm, stride_xk, stride_wt, stride_wk, stride_wn,
                          BLOCK_M, BLOCK_N, BLOCK_K, ACC, UPCAST, PRECISION)
    if HAS_SCALE:
        c = tl.load(scale_ptr + rows, mask=row_mask, other=0.0).to(ACC)
        acc = acc * c[:, None]
    mask = row_mask[:, None] & col_mask[None, :]
    if HAS_SCATTER:
        dst = tl.load(scatter_ptr + rows, mask=row_mask, other=0)
        tl.atomic_add(out_ptr + dst[:, None] * stride_om + cols[None, :] * stride_on, acc,
                      mask=mask, sem="relaxed")
    else:
        tl.store(out_ptr + rows[:, None] * stride_om + cols[None, :] * stride_on,
                 acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _segment_weight_grad_kernel(
    # pointers
    dw_ptr, x_ptr, g_ptr, ptr_ptr, gather_ptr, scatter_ptr, scale_ptr,
    # sizes
    K, N,
    # strides
    stride_xm, stride_xk, stride_gm, stride_gn, stride_dt, stride_dk, stride_dn,
    # meta-parameters
    HAS_GATHER: tl.constexpr, HAS_SCATTER: tl.constexpr, HAS_SCALE: tl.constexpr,
    ACC: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """``dW[t][k tile, n tile] = sum over the rows m of type t of x[g(m)]^T (c_m g[s(m)])``."""
    t = tl.program_id(0).to(tl.int64)
    pid_k = tl.program_id(1)
    pid_n = tl.program_id(2)
    start = tl.load(ptr_ptr + t)
    end = tl.load(ptr_ptr + t + 1)
    kk = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    k_mask = kk < K
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=ACC)
    for m0 in range(start, end, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M)
        row_mask = rows < end
        if HAS_GATHER:
            src = tl.load(gather_ptr + rows, mask=row_mask, other=0)
        else:
            src = rows
        if HAS_SCATTER:
            dst = tl.load(scatter_ptr + rows, mask=row_mask, other=0)
        else:
            dst = rows
        a = tl.load(x_ptr + src[None, :] * stride_xm + kk[:, None] * stride_xk,
                    mask=k_mask[:, None] & row_mask[None, :], other=0.0)  # (BLOCK_K, BLOCK_M)
        b = tl.load(g_ptr + dst[:, None] * stride_gm + cols[None, :] * stride_gn,
                    mask=row_mask[:, None] & col_mask[None, :], other=0.0)  # (BLOCK_M, BLOCK_N)
        if HAS_SCALE:
            c = tl.load(scale_ptr + rows, mask=row_mask, other=0.0).to(ACC)
            b = (b.to(ACC) * c[:, None]).to(a.dtype)
        if UPCAST:
            a = a.to(ACC)
            b = b.to(ACC)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
    tl.store(dw_ptr + t * stride_dt + kk[:, None] * stride_dk + cols[None, :] * stride_dn,
             acc.to(dw_ptr.dtype.element_ty), mask=k_mask[:, None] & col_mask[None, :])


@triton.jit
def _row_scale_grad_kernel(
    # pointers
    ds_ptr, x_ptr, w_ptr, g_ptr, ptr_ptr, tile_type_ptr, tile_start_ptr,
    gather_ptr, scatter_ptr,
    # sizes
    K, N,
    # strides
    stride_xm, stride_xk, stride_wt, stride_wk, stride_wn, stride_gm, stride_gn,
    # meta-parameters
    HAS_GATHER: tl.constexpr, HAS_SCATTER: tl.constexpr,
    ACC: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    """``d_scale[m] = <x[g(m)] @ W[t(m)], g[s(m)]>`` for one row tile, over all columns."""
    pid = tl.program_id(0)
    t = tl.load(tile_type_ptr + pid)
    start = tl.load(tile_start_ptr + pid)
    end = tl.load(ptr_ptr + t + 1)
    if start >= end:
        return
    rows = start + tl.arange(0, BLOCK_M)
    row_mask = rows < end
    if HAS_GATHER:
        src = tl.load(gather_ptr + rows, mask=row_mask, other=0)
    else:
        src = rows
    if HAS_SCATTER:
        dst = tl.load(scatter_ptr + rows, mask=row_mask, other=0)
    else:
        dst = rows
    total = tl.zeros((BLOCK_M,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_mask = cols < N
        y = _typed_tile_dot(x_ptr, w_ptr, src, row_mask, t, cols, col_mask, K,
                            stride_xm, stride_xk, stride_wt, stride_wk, stride_wn,
                            BLOCK_M, BLOCK_N, BLOCK_K, ACC, UPCAST, PRECISION)
        g = tl.load(g_ptr + dst[:, None] * stride_gm + cols[None, :] * stride_gn,
                    mask=row_mask[:, None] & col_mask[None, :], other=0.0).to(ACC)
        total += tl.sum(y * g, axis=1)
    tl.store(ds_ptr + rows, total.to(ds_ptr.dtype.element_ty), mask=row_mask)


# ----------------------------------------------------------------------------- launch settings


# (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) on CUDA, by dot class and kernel:
# "mm" = forward and d x, "dw" = d weight (BLOCK_M is its reduction over rows, BLOCK_K and
# BLOCK_N its in and out tiles), "ds" = d scale. "mma" is fp16/bf16 on tensor cores, "tf32"
# fp32 on tensor cores (only when PyTorch allows TF32), "fma" exact fp32 ("ieee", no tensor
# cores, so the reduction block stays small), "fp64" double. Chosen so that no variant
# spills registers (beyond a few bytes) or needs more than 64 KiB of shared memory when
# compiled for sm_90 (checked offline with ptxas, without a GPU); not autotuned.
_CUDA_SETTINGS = {
    ("mma", "mm"): (64, 128, 64, 8, 3),
    ("mma", "dw"): (32, 128, 64, 8, 3),
    ("mma", "ds"): (64, 64, 64, 8, 3),
    ("tf32", "mm"): (64, 64, 32, 8, 3),
    ("tf32", "dw"): (32, 128, 32, 8, 3),
    ("tf32", "ds"): (64, 64, 32, 8, 3),
    ("fma", "mm"): (64, 64, 16, 8, 2),
    ("fma", "dw"): (16, 64, 64, 8, 2),
    ("fma", "ds"): (32, 64, 16, 8, 2),
    ("fp64", "mm"): (32, 64, 16, 8, 2),
    ("fp64", "dw"): (32, 64, 16, 8, 2),
    ("fp64", "ds"): (32, 64, 16, 8, 2),
}


def _launch_settings(kernel: str, dtype: torch.dtype, k: int, n: int,
                     device: torch.device) -> dict:
    """Block sizes, dtypes and dot precision of one launch: every heuristic lives here.

    On CPU (``TRITON_INTERPRET=1``) all blocks are 16 wide, the smallest ``tl.dot`` accepts,
    so toy test inputs already reach multi-tile types, tail tiles and several K/N tiles.
    ``k`` and ``n`` are the in and out widths of the product (for ``d x``, out and in).
    """
    acc = tl.float64 if dtype == torch.float64 else tl.float32
    half = dtype in (torch.float16, torch.bfloat16)
    if device.type != "cuda":
        return {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 16, "ACC": acc, "UPCAST": half,
                "PRECISION": "ieee", "num_warps": 4, "num_stages": 1}
    tf32 = dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest"
    dot_class = ("fp64" if dtype == torch.float64 else "mma" if half
                 else "tf32" if tf32 else "fma")
    block_m, block_n, block_k, num_warps, num_stages = _CUDA_SETTINGS[dot_class, kernel]
    return {
        "BLOCK_M": block_m,
        "BLOCK_N": max(16, min(block_n, triton.next_power_of_2(n))),
        "BLOCK_K": max(16, min(block_k, triton.next_power_of_2(k))),
        "ACC": acc,
        "UPCAST": False,
        "PRECISION": "tf32" if tf32 else "ieee",
        "num_warps": num_warps,
        "num_stages": num_stages,
    }


def _row_tiles(ptr: Tensor, num_rows: int, block_m: int) -> tuple[Tensor, Tensor]:
    """Device-side tile table: ``(tile_type, tile_start)`` for each program of the row grid.

    Type ``t`` owns ``cdiv(ptr[t+1] - ptr[t], block_m)`` tiles. The table has one entry per
    program of a grid of ``min(cdiv(M, block_m) + T, M)`` programs, an upper bound on the
    number of tiles computed from shapes only; entries past the last real tile get a
    ``tile_start`` at or beyond their type's end, and those programs exit. Built from torch
    ops alone, so it never synchronises with the device (it even runs on ``meta`` tensors).
    """
    num_types = ptr.numel() - 1
    grid = min(triton.cdiv(num_rows, block_m) + num_types, num_rows)
    counts = ptr[1:] - ptr[:-1]
    tiles = torch.div(counts + (block_m - 1), block_m, rounding_mode="floor")
    tile_ptr = torch.cat([ptr.new_zeros(1), torch.cumsum(tiles, 0)])
    pid = torch.arange(grid, dtype=ptr.dtype, device=ptr.device)
    tile_type = torch.searchsorted(tile_ptr, pid, right=True).sub_(1).clamp_(0, num_types - 1)
    tile_start = ptr[tile_type] + (pid - tile_ptr[tile_type]) * block_m
    return tile_type, tile_start


def _check_launchable(x: Tensor) -> None:
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        from graphlearn.errors import DTypeError

        raise DTypeError(
            f"the Triton grouped GEMM supports float16, bfloat16, float32 and float64, got "
            f"{x.dtype}; cast the inputs or set GRAPHLEARN_KERNELS=reference"
        )


def _grouped_mm(
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    num_rows: int,
    gather_index: Tensor | None,
    scatter_index: Tensor | None,
    num_out: int,
    scale: Tensor | None,
) -> Tensor:
    """Launch ``_gather_scatter_mm_kernel``; ``weight`` may be any strided ``(T, K, N)`` view."""
    _check_launchable(x)
    k, n = weight.size(1), weight.size(2)
    out_rows = num_out if scatter_index is not None else num_rows
    if num_rows == 0 or n == 0 or k == 0 or out_rows == 0 or weight.size(0) == 0:
        return x.new_zeros((out_rows, n))
    meta = _launch_settings("mm", x.dtype, k, n, x.device)
    if scatter_index is not None:  # atomics need the accumulator dtype
        acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = torch.zeros((out_rows, n), dtype=acc_dtype, device=x.device)
    else:
        out = torch.empty((out_rows, n), dtype=x.dtype, device=x.device)
    ptr = ptr.contiguous()
    tile_type, tile_start = _row_tiles(ptr, num_rows, meta["BLOCK_M"])
    grid = (tile_type.numel(), triton.cdiv(n, meta["BLOCK_N"]))
    _gather_scatter_mm_kernel[grid](
        out, x, weight, ptr, tile_type, tile_start,
        gather_index.contiguous() if gather_index is not None else ptr,
        scatter_index.contiguous() if scatter_index is not None else ptr,
        scale.contiguous() if scale is not None else x,
        k, n,
        x.stride(0), x.stride(1), weight.stride(0), weight.stride(1), weight.stride(2),
        out.stride(0), out.stride(1),
        HAS_GATHER=gather_index is not None, HAS_SCATTER=scatter_index is not None,
        HAS_SCALE=scale is not None, **meta,
    )
    return out.to(x.dtype)


# ----------------------------------------------------------------------------- host functions


def gather_scatter_matmul_forward(
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None,
    scatter_index: Tensor | None,
    num_out: int,
    scale: Tensor | None,
) -> Tensor:
    """Forward of the grouped GEMM on Triton; arguments as in ``gather_scatter_matmul``.

    Inputs are assumed checked (by the public function); nothing here reads device values.
    """
    num_rows = gather_index.numel() if gather_index is not None else x.size(0)
    return _grouped_mm(x, weight, ptr, num_rows, gather_index, scatter_index, num_out, scale)


def gather_scatter_matmul_backward(
    grad_out: Tensor,
    x: Tensor,
    weight: Tensor,
    ptr: Tensor,
    gather_index: Tensor | None,
    scatter_index: Tensor | None,
    scale: Tensor | None,
    needs_x: bool = True,
    needs_weight: bool = True,
    needs_scale: bool = True,
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients ``(d_x, d_weight, d_scale)`` of the forward on Triton (``None`` if not needed).

    ``d_x`` is the forward template with ``W^T`` (a stride swap, no copy), reading rows of
    ``grad_out`` through ``scatter_index`` and scattering into ``gather_index``.
    """
    _check_launchable(x)
    num_rows = gather_index.numel() if gather_index is not None else x.size(0)
    k, n = weight.size(1), weight.size(2)
    ptr = ptr.contiguous()
    gather = gather_index.contiguous() if gather_index is not None else None
    scatter = scatter_index.contiguous() if scatter_index is not None else None
    d_x = d_w = d_scale = None

    if needs_x:
        d_x = _grouped_mm(grad_out, weight.transpose(1, 2), ptr, num_rows, scatter, gather,
                          x.size(0), scale)

    if needs_weight:
        num_types = weight.size(0)
        if num_types == 0 or k == 0 or n == 0:
            d_w = torch.zeros_like(weight, memory_format=torch.contiguous_format)
        else:
            d_w = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
            meta = _launch_settings("dw", x.dtype, k, n, x.device)
            grid = (num_types, triton.cdiv(k, meta["BLOCK_K"]), triton.cdiv(n, meta["BLOCK_N"]))
            _segment_weight_grad_kernel[grid](
                d_w, x, grad_out, ptr,
                gather if gather is not None else ptr,
                scatter if scatter is not None else ptr,
                scale.contiguous() if scale is not None else x,
                k, n,
                x.stride(0), x.stride(1), grad_out.stride(0), grad_out.stride(1),
                d_w.stride(0), d_w.stride(1), d_w.stride(2),
                HAS_GATHER=gather is not None, HAS_SCATTER=scatter is not None,
                HAS_SCALE=scale is not None, **meta,
            )

    if needs_scale and scale is not None:
        if num_rows == 0 or k == 0 or n == 0 or weight.size(0) == 0:
            d_scale = torch.zeros(scale.shape, dtype=scale.dtype, device=scale.device)
        else:
            d_scale = torch.empty(scale.shape, dtype=scale.dtype, device=scale.device)
            meta = _launch_settings("ds", x.dtype, k, n, x.device)
            tile_type, tile_start = _row_tiles(ptr, num_rows, meta["BLOCK_M"])
            _row_scale_grad_kernel[(tile_type.numel(),)](
                d_scale, x, weight, grad_out, ptr, tile_type, tile_start,
                gather if gather is not None else ptr,
                scatter if scatter is not None else ptr,
                k, n,
                x.stride(0), x.stride(1), weight.stride(0), weight.stride(1), weight.stride(2),
                grad_out.stride(0), grad_out.stride(1),
                HAS_GATHER=gather is not None, HAS_SCATTER=scatter is not None, **meta,
            )
    return d_x, d_w, d_scale
