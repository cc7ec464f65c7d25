"""Keep freed CPU memory in the process instead of returning it to the kernel at every step.

glibc's ``malloc`` serves every allocation above its *mmap threshold* (at most 32 MiB after its
dynamic adjustment) with a fresh ``mmap`` and unmaps it on ``free``. A CPU training step that
allocates the same large tensors every time (1-N scores of a batch against every entity, the
gathered rows of negative sampling) then pays a page fault per 4 KiB page, every step: on this
project's 2-core machine a 1-N ComplEx step on WN18RR (1,024 queries x 40,943 entities) took
2.6 s with glibc's defaults and 1.8 s with large blocks kept, and a negative-sampling step with
128 candidates per query 1.07 s against 0.34 s. PyTorch's CUDA caching allocator keeps freed
blocks for the same reason.

:func:`keep_freed_memory` raises glibc's mmap and trim thresholds (``mallopt``), so large blocks
come from the heap and stay there for the next step. The price is memory: freed blocks stay in
the process for reuse, and blocks of different sizes fragment the heap, so the resident size
stays at its high-water mark, which is higher (one epoch of ``configs/complex-wn18rr.yaml``:
160 s and 2.1 GB peak RSS against 230 s and 1.4 GB with glibc's defaults, the same MRR;
PyTorch CPU tuning guides reach for jemalloc or TCMalloc for the same reason). ``graphlearn fit``
calls it at start; set ``GRAPHLEARN_KEEP_FREED_MEMORY=0`` to keep glibc's defaults. It does
nothing off glibc (macOS, Windows, musl), or when the user set ``MALLOC_MMAP_THRESHOLD_``
or ``MALLOC_TRIM_THRESHOLD_`` themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from graphlearn.env import env_flag

__all__ = ["keep_freed_memory", "keep_freed_memory_from_env"]

#: mallopt parameters (``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Environment switch read by ``graphlearn fit``.
ENV = "GRAPHLEARN_KEEP_FREED_MEMORY"


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Serve allocations up to ``threshold`` bytes from the heap and keep freed memory.

    Returns whether the allocator was changed (``False`` off Linux/glibc, when the user set
    glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or when ``mallopt``
    refused the value).
    """
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = int(min(threshold, 2**31 - 1))
    return bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))


def keep_freed_memory_from_env() -> bool:
    """:func:`keep_freed_memory` unless ``GRAPHLEARN_KEEP_FREED_MEMORY`` says off (``0``,
    ``false``, ``no``, ``off``)."""
    if env_flag(ENV) is False:
        return False
    return keep_freed_memory()
