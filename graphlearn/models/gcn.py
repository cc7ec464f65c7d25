"""A plain multi-layer GCN (Kipf and Welling) for node and graph classification."""

from __future__ import annotations

import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import check_positive_int
from graphlearn.models.registry import register_model
from graphlearn.models.stacked import StackedGNN

__all__ = ["GCN"]


@register_model("gcn", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GCN(StackedGNN):
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
        check_positive_int(hidden_channels, "hidden_channels", caller="GCN")
        super().__init__(in_channels, out_channels, num_layers, dropout, readout, act=F.relu)
        self.hidden_channels = hidden_channels
        self._stack(lambda width: (GCNConv(width, hidden_channels), hidden_channels),
                    lambda width: GCNConv(width, out_channels))
