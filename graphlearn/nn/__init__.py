"""Graph neural network layers (PyG ``MessagePassing`` modules backed by graphlearn.kernels)."""

from .conv import GATv2Conv, HGTConv, OmegaGATConv, OmegaGCNConv, RGATConv, RGCNConv
from .mamba import BidirectionalMamba, MambaBlock

__all__ = ["BidirectionalMamba", "MambaBlock", "GATv2Conv", "HGTConv", "OmegaGATConv", "OmegaGCNConv", "RGATConv", "RGCNConv"]
