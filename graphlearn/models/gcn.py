"""A plain multi-layer GCN (Kipf and Welling) for node and graph classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GCNConv

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import check_positive_int
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout
from graphlearn.models.registry import register_model

__all__ = ["GCN"]


@register_model("gcn", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GCN(torch.nn.Module):
    r"""GCN network from `"Semi-supervised Classification with Graph Convolutional Networks"
    <https://arxiv.org/abs/1609.02907>`_ (Kipf and Welling, ICLR 2017).

    ``num_layers`` :class:`torch_geometric.nn.GCNConv` layers,
    :math:`\mathbf{X}^{(l+1)} = \mathrm{ReLU}(\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}
    \hat{\mathbf{D}}^{-1/2}\mathbf{X}^{(l)}\mathbf{W}^{(l)})`, with dropout before each
    layer and no residual connections, so deep stacks over-smooth: this is the baseline
    the omega models (:class:`~graphlearn.models.OmegaGCN`) are compared against. For node
    classification the last layer outputs the logits; with ``readout`` set (graph
    classification) all layers are hidden, the node features are pooled per graph and a
    linear head predicts the class. ``self.convs[i]`` is layer :math:`i`.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Hidden width. (default: :obj:`64`)
        num_layers (int, optional): Number of GCN layers (>= 1). (default: :obj:`2`)
        dropout (float, optional): Feature dropout before each layer. (default: :obj:`0.5`)
        readout (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` pooling for graph-level
            output, ``None`` for node-level output. (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        dropout: float = 0.5,
        readout: str | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(num_layers, "num_layers", caller="GCN")
        check_positive_int(hidden_channels, "hidden_channels", caller="GCN")
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"dropout of GCN must lie in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        num_hidden = num_layers - 1 if readout is None else num_layers
        widths = [in_channels] + [hidden_channels] * num_hidden
        self.convs = torch.nn.ModuleList(GCNConv(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.readout = Readout(readout) if readout is not None else None
        if readout is None:
            self.convs.append(GCNConv(widths[-1], out_channels))
            self.head = None
        else:
            self.head = torch.nn.Linear(hidden_channels, out_channels)

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
                x = F.relu(x)
        if self.readout is not None:
            x = self.readout(x, batch)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = self.head(x)
        return x

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.num_layers})")
