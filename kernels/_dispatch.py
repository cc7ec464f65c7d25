"""The one dispatch rule for graphlearn kernels.

Every op in :mod:`graphlearn.kernels` has a plain-PyTorch ``reference`` implementation
(the oracle, and the CPU path) and, once written, a Triton implementation. Which one runs:

* ``GRAPHLEARN_KERNELS=reference``: always the reference.
* ``GRAPHLEARN_KERNELS=triton``: always Triton; CPU tensors need ``TRITON_INTERPRET=1``
  (that is how the tests run Triton code on machines without a GPU). An op without a
  Triton implementation raises :class:`~graphlearn.errors.KernelNotAvailableError`.
* ``GRAPHLEARN_KERNELS=auto`` (default): Triton for CUDA tensors when the op has a Triton
  implementation and Triton imports, the reference otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import os

from torch import Tensor

from graphlearn.errors import InvalidArgumentError, KernelNotAvailableError

__all__ = ["kernel_mode", "triton_available", "use_triton"]

_MODES = ("auto", "reference", "triton")


def kernel_mode() -> str:
    """Return the mode set by ``GRAPHLEARN_KERNELS`` (``auto`` when unset)."""
    mode = os.environ.get("GRAPHLEARN_KERNELS", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise InvalidArgumentError(
            f"GRAPHLEARN_KERNELS={mode!r} is not a kernel mode; use one of {', '.join(_MODES)}"
        )
    return mode


@functools.cache
def triton_available() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_triton(op: str, tensor: Tensor, *, has_triton: bool) -> bool:
    """Decide whether ``op`` runs its Triton implementation for ``tensor``.

    Args:
        op (str): Qualified op name, for messages (``"graphlearn::segment_matmul"``).
        tensor (Tensor): A representative input; its device decides in ``auto`` mode.
        has_triton (bool): Whether the op has a Triton implementation.
    """
    mode = kernel_mode()
    if mode == "reference":
        return False
    if mode == "auto":
        return has_triton and tensor.is_cuda and triton_available()
    # mode == "triton": the user asked for it, so failing to honour it is an error.
    if not has_triton:
        raise KernelNotAvailableError(
            f"{op} has no Triton implementation yet; unset GRAPHLEARN_KERNELS or set it to "
            f"'reference'"
        )
    if not triton_available():
        raise KernelNotAvailableError(
            "GRAPHLEARN_KERNELS=triton but the triton package is not installed; "
            "install it (pip install triton) or set GRAPHLEARN_KERNELS=auto"
        )
    if not tensor.is_cuda and not _interpreting():
        raise KernelNotAvailableError(
            f"{op}: Triton kernels need CUDA tensors (got {tensor.device}); set "
            f"TRITON_INTERPRET=1 to run them on the CPU, or GRAPHLEARN_KERNELS=auto"
        )
    return True
