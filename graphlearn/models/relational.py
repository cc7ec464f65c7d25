"""Relational GNNs for entity classification on typed (multi-relational) graphs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import check_positive_int
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.registry import register_model
from graphlearn.nn.conv.rgcn_conv import RGCNConv

__all__ = ["RGCN"]


def _layers(num_layers: int, caller: str) -> int:
    return check_positive_int(num_layers, "num_layers", caller=caller)


@register_model("rgcn", tasks=(TaskKind.NODE_CLASSIFICATION,))
class RGCN(torch.nn.Module):
    r"""R-GCN entity classifier from `"Modeling Relational Data with Graph Convolutional
    Networks" <https://arxiv.org/abs/1703.06103>`_ (Schlichtkrull et al., ESWC 2018).

    ``num_layers`` :class:`~graphlearn.nn.RGCNConv` layers with ReLU between them; the last
    outputs the logits. On a featureless graph (``in_channels == 0``, as the RDF datasets
    are) the first layer takes the one-hot node identity, so its relation weights hold one
    row per node (``in_channels = num_nodes``), exactly as in the paper.

    Args:
        in_channels (int): Input node features, 0 for featureless graphs.
        out_channels (int): Number of classes.
        num_relations (int): Number of edge types (filled in from the dataset).
        num_nodes (int, optional): Number of nodes (filled in from the dataset; needed when
            featureless).
        hidden_channels (int): Hidden width. (default: :obj:`16`, the paper's)
        num_layers (int): Number of R-GCN layers. (default: :obj:`2`)
        num_bases (int, optional): Basis decomposition of every layer's weights.
        num_blocks (int, optional): Block-diagonal decomposition of the hidden layers.
        dropout (float): Dropout on hidden features. (default: :obj:`0.0`)
        aggr (str): ``"mean"`` or ``"add"`` per relation. (default: :obj:`"mean"`)
        strategy (str): Kernel strategy of every layer (``"auto"``, ``"compact"``,
            ``"reorder"``, ``"fused"``); see :mod:`graphlearn.nn.conv.rgcn_conv`.
    """

    graph_inputs = ("edge_type",)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_nodes: int | None = None,
        hidden_channels: int = 16,
        num_layers: int = 2,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        dropout: float = 0.0,
        aggr: str = "mean",
        strategy: str = "auto",
    ) -> None:
        super().__init__()
        _layers(num_layers, "RGCN")
        check_positive_int(hidden_channels, "hidden_channels", caller="RGCN")
        self.featureless = in_channels == 0
        if self.featureless and not num_nodes:
            raise InvalidArgumentError(
                "RGCN on a featureless graph (in_channels=0) needs num_nodes; `graphlearn fit` "
                "fills it in from the dataset"
            )
        self.dropout = dropout
        width = num_nodes if self.featureless else in_channels
        self.convs = torch.nn.ModuleList()
        for i in range(num_layers):
            last = i == num_layers - 1
            out = out_channels if last else hidden_channels
            # the one-hot first layer cannot use blocks (PyG's rule too)
            blocks = num_blocks if (i > 0 or not self.featureless) else None
            self.convs.append(RGCNConv(width, out, num_relations, num_bases=num_bases,
                                       num_blocks=blocks, aggr=aggr, strategy=strategy))
            width = out

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor | None, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, *, edge_type: Tensor) -> Tensor:
        h = None if self.featureless else x
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = F.dropout(F.relu(h), p=self.dropout, training=self.training)
            h = conv(h, edge_index, edge_type)
        return h
