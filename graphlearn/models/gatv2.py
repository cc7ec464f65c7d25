"""A multi-layer GATv2 network for node and graph classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout
from graphlearn.models.registry import register_model
from graphlearn.nn import GATv2Conv

__all__ = ["GATv2"]


@register_model("gatv2", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GATv2(torch.nn.Module):
    r"""GATv2 network from `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_ (Brody et al., ICLR 2022).

    ``num_layers`` :class:`~graphlearn.nn.GATv2Conv` layers: hidden layers with ``heads``
    concatenated heads and ELU, then an output layer with ``out_heads`` heads averaged
    (the GAT recipe of Velickovic et al. for citation graphs). Dropout ``dropout`` is
    applied to each layer's input features and ``attn_dropout`` to the attention weights.
    With ``readout`` set (graph classification), the node embeddings of the last hidden
    layer are pooled per graph and a linear head predicts the class.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Channels per head in hidden layers. (default: :obj:`8`)
        num_layers (int, optional): Number of GATv2 layers (>= 1). (default: :obj:`2`)
        heads (int, optional): Heads in hidden layers. (default: :obj:`8`)
        out_heads (int, optional): Heads of the output layer (averaged). (default: :obj:`1`)
        dropout (float, optional): Feature dropout. (default: :obj:`0.6`)
        attn_dropout (float, optional): Attention dropout. (default: :obj:`0.6`)
        share_weights (bool, optional): Share source/target weights. (default: :obj:`False`)
        residual (bool, optional): Residual connections in each layer. (default: :obj:`False`)
        edge_dim (int, optional): Edge feature size, if edges carry features. (default: :obj:`None`)
        readout (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` pooling for graph-level
            output, ``None`` for node-level output. (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 8,
        num_layers: int = 2,
        heads: int = 8,
        out_heads: int = 1,
        dropout: float = 0.6,
        attn_dropout: float = 0.6,
        share_weights: bool = False,
        residual: bool = False,
        edge_dim: int | None = None,
        readout: str | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise InvalidArgumentError(f"GATv2 needs num_layers >= 1, got {num_layers}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        common = dict(dropout=attn_dropout, share_weights=share_weights, residual=residual,
                      edge_dim=edge_dim)
        self.convs = torch.nn.ModuleList()
        width = in_channels
        num_hidden = num_layers - 1 if readout is None else num_layers
        for _ in range(num_hidden):
            self.convs.append(GATv2Conv(width, hidden_channels, heads=heads, **common))
            width = hidden_channels * heads
        self.readout = Readout(readout) if readout is not None else None
        if readout is None:
            self.convs.append(GATv2Conv(width, out_channels, heads=out_heads, concat=False, **common))
            self.head = None
        else:
            self.head = torch.nn.Linear(width, out_channels)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        if self.head is not None:
            self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index, edge_attr)
            if i < last or self.readout is not None:
                x = F.elu(x)
        if self.readout is not None:
            x = self.readout(x, batch)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = self.head(x)
        return x

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.num_layers})")
