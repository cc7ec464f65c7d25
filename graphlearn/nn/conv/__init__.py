"""Message-passing layers with PyG's call conventions; hot ops run in graphlearn.kernels."""

from .gatv2_conv import GATv2Conv
from .hgt_conv import HGTConv
from .omega_gat_conv import OmegaGATConv
from .omega_gcn_conv import OmegaGCNConv
from .rgat_conv import RGATConv
from .rgcn_conv import RGCNConv

__all__ = ["GATv2Conv", "HGTConv", "OmegaGATConv", "OmegaGCNConv", "RGATConv", "RGCNConv"]
