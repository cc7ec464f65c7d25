"""Assembled models, registered by name for the trainer and the CLI."""

from graphlearn.models.gat import GAT  # noqa: E402  (registers "gat")
from graphlearn.models.gatv2 import GATv2  # noqa: E402  (registers "gatv2")
from graphlearn.models.gcn import GCN  # noqa: E402  (registers "gcn")
from graphlearn.models.graph_mamba import GraphMambaNetwork  # noqa: E402  (registers "graph-mamba")
from graphlearn.models.omega import OmegaGAT, OmegaGCN  # noqa: E402  (registers "omega-gcn/gat")
from graphlearn.models.registry import MODELS, ModelSpec, register_model
from graphlearn.models.relational import HGT, RGAT, RGCN  # noqa: E402  (registers rgcn/rgat/hgt)

__all__ = ["MODELS", "ModelSpec", "register_model", "GAT", "GATv2", "GCN", "GraphMambaNetwork", "OmegaGAT", "OmegaGCN", "RGCN", "RGAT", "HGT"]
