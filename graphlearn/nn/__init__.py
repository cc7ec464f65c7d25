"""Graph neural network layers (PyG ``MessagePassing`` modules backed by graphlearn.kernels)."""

from .conv import GATv2Conv, HGTConv, OmegaGATConv, OmegaGCNConv, RGATConv, RGCNConv

__all__ = ["GATv2Conv", "HGTConv", "OmegaGATConv", "OmegaGCNConv", "RGATConv", "RGCNConv"]
