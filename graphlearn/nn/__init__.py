"""Graph neural network layers (PyG ``MessagePassing`` modules backed by graphlearn.kernels)."""

from .conv import GATv2Conv, OmegaGATConv, OmegaGCNConv, RGCNConv

__all__ = ["GATv2Conv", "OmegaGATConv", "OmegaGCNConv", "RGCNConv"]
