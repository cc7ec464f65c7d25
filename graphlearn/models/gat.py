"""A plain multi-layer GAT (Velickovic et al.) for node and graph classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import check_positive_int
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout
from graphlearn.models.registry import register_model

__all__ = ["GAT"]


@register_model("gat", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GAT(torch.nn.Module):
    r"""GAT network from `"Graph Attention Networks" <https://arxiv.org/abs/1710.10903>`_
    (Velickovic et al., ICLR 2018).

    ``num_layers`` :class:`torch_geometric.nn.GATConv` layers: hidden layers with ``heads``
    concatenated heads and ELU, then an output layer with ``out_heads`` heads averaged (the
    paper's citation-graph recipe). Dropout ``dropout`` is applied to each layer's input and
    ``attn_dropout`` to the attention weights; there are no residual connections, so this
    is the plain baseline of :class:`~graphlearn.models.OmegaGAT`. With ``readout`` set
    (graph classification) all layers are hidden, the node features are pooled per graph
    and a linear head predicts the class. ``self.convs[i]`` is layer :math:`i`.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Channels per head in hidden layers. (default: :obj:`8`)
        num_layers (int, optional): Number of GAT layers (>= 1). (default: :obj:`2`)
        heads (int, optional): Heads in hidden layers. (default: :obj:`8`)
        out_heads (int, optional): Heads of the output layer (averaged). (default: :obj:`1`)
        dropout (float, optional): Feature dropout. (default: :obj:`0.6`)
        attn_dropout (float, optional): Attention dropout. (default: :obj:`0.6`)
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
        readout: str | None = None,
    ) -> None:
        super().__init__()
        for value, name in ((num_layers, "num_layers"), (hidden_channels, "hidden_channels"),
                            (heads, "heads"), (out_heads, "out_heads")):
            check_positive_int(value, name, caller="GAT")
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"dropout of GAT must lie in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.convs = torch.nn.ModuleList()
        width = in_channels
        num_hidden = num_layers - 1 if readout is None else num_layers
        for _ in range(num_hidden):
            self.convs.append(GATConv(width, hidden_channels, heads=heads, dropout=attn_dropout))
            width = hidden_channels * heads
        self.readout = Readout(readout) if readout is not None else None
        if readout is None:
            self.convs.append(GATConv(width, out_channels, heads=out_heads, concat=False,
                                      dropout=attn_dropout))
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
        """Logits per node, or per graph of ``batch`` with a ``readout`` (``edge_attr`` unused)."""
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index)
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
