"""Message-passing layers with PyG's call conventions; hot ops run in graphlearn.kernels."""

from .gatv2_conv import GATv2Conv
from .omega_gat_conv import OmegaGATConv
from .omega_gcn_conv import OmegaGCNConv
from .rgcn_conv import RGCNConv

__all__ = ["GATv2Conv", "OmegaGATConv", "OmegaGCNConv", "RGCNConv"]
