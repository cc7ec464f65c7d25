"""A multi-layer GATv2 network for node and graph classification."""

from __future__ import annotations

import torch.nn.functional as F

from graphlearn.data.dataset import TaskKind
from graphlearn.models.registry import register_model
from graphlearn.models.stacked import StackedGNN
from graphlearn.nn import GATv2Conv

__all__ = ["GATv2"]


@register_model("gatv2", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class GATv2(StackedGNN):
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
        super().__init__(in_channels, out_channels, num_layers, dropout, readout, act=F.elu,
                         uses_edge_attr=True)
        common = dict(dropout=attn_dropout, share_weights=share_weights, residual=residual,
                      edge_dim=edge_dim)
        self._stack(
            lambda width: (GATv2Conv(width, hidden_channels, heads=heads, **common),
                           hidden_channels * heads),
            lambda width: GATv2Conv(width, out_channels, heads=out_heads, concat=False, **common),
        )
