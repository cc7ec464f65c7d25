"""A plain multi-layer GAT (Velickovic et al.) for node and graph classification."""

from __future__ import annotations

import torch.nn.functional as F
from torch_geometric.nn import GATConv

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import check_positive_int
from graphlearn.models.registry import register_model
from graphlearn.models.stacked import StackedGNN

__all__ = ["GAT"]


@register_model("gat", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GAT(StackedGNN):
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
        for value, name in ((hidden_channels, "hidden_channels"), (heads, "heads"),
                            (out_heads, "out_heads")):
            check_positive_int(value, name, caller="GAT")
        super().__init__(in_channels, out_channels, num_layers, dropout, readout, act=F.elu)
        self.hidden_channels = hidden_channels
        self._stack(
            lambda width: (GATConv(width, hidden_channels, heads=heads, dropout=attn_dropout),
                           hidden_channels * heads),
            lambda width: GATConv(width, out_channels, heads=out_heads, concat=False,
                                  dropout=attn_dropout),
        )
