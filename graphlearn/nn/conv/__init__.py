"""Message-passing layers with PyG's call conventions; hot ops run in graphlearn.kernels."""

from .gatv2_conv import GATv2Conv

__all__ = ["GATv2Conv"]
