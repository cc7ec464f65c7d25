"""Hot graph ops, each with a plain-PyTorch reference and (where written) a Triton kernel.

Dispatch follows one rule (see :mod:`graphlearn.kernels._dispatch`): Triton on CUDA
tensors, the reference otherwise; ``GRAPHLEARN_KERNELS=reference|triton|auto`` overrides.
This package imports only torch (and triton, lazily) plus :mod:`graphlearn.errors`.
"""

from ._dispatch import kernel_mode, triton_available, use_triton
from .csc import CSCIndex, csc_index
from .edge_softmax_aggregate import edge_softmax, edge_softmax_aggregate
from .segment_matmul import gather_scatter_matmul, segment_matmul, type_ptr
from .selective_scan import selective_scan
from .weighted_aggregate import weighted_aggregate

__all__ = [
    "CSCIndex",
    "csc_index",
    "edge_softmax",
    "edge_softmax_aggregate",
    "gather_scatter_matmul",
    "kernel_mode",
    "segment_matmul",
    "selective_scan",
    "triton_available",
    "type_ptr",
    "use_triton",
    "weighted_aggregate",
]
