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

__all__ = ["HGT", "RGAT", "RGCN"]


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
        init (str): ``"glorot"``: PyG's Glorot initialisation of each relation's (or basis')
            ``(in, out)`` matrix; ``"flat-glorot"``: the original R-GCN implementation's
            (Keras, tkipf/relational-gcn), Glorot over the stacked ``(K * in, out)`` matrix
            with ``K`` bases (or relations), i.e. ``sqrt((in + out) / (K * in + out))``
            times smaller. (default: :obj:`"glorot"`)
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
        init: str = "glorot",
    ) -> None:
        super().__init__()
        _layers(num_layers, "RGCN")
        if init not in ("glorot", "flat-glorot"):
            raise InvalidArgumentError(f"RGCN: init must be 'glorot' or 'flat-glorot', got {init!r}")
        self.init = init
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
        self._flat_init()

    def _flat_init(self) -> None:
        if self.init != "flat-glorot":
            return
        with torch.no_grad():
            for conv in self.convs:
                w = conv.weight  # (K, in, out), or (R, B, in/B, out/B) with blocks
                k, fan_in, fan_out = w.size(0), w.size(-2), w.size(-1)
                w.mul_(((fan_in + fan_out) / (k * fan_in + fan_out)) ** 0.5)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self._flat_init()

    def forward(self, x: Tensor | None, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, *, edge_type: Tensor) -> Tensor:
        h = None if self.featureless else x
        for i, conv in enumerate(self.convs):
            if i > 0:
                h = F.dropout(F.relu(h), p=self.dropout, training=self.training)
            h = conv(h, edge_index, edge_type)
        return h


class _FeaturelessInput(torch.nn.Module):
    """Input features of a (possibly featureless) graph for attention models.

    Featureless graphs get a learned ``hidden``-dim vector per node (``"node"``) or per
    node type (``"type"``, needs ``node_type``); graphs with features get a linear map.
    """

    def __init__(self, in_channels: int, hidden: int, num_nodes: int | None,
                 num_node_types: int | None, embedding: str) -> None:
        super().__init__()
        if embedding not in ("node", "type"):
            raise InvalidArgumentError(f"embedding must be 'node' or 'type', got {embedding!r}")
        self.featureless = in_channels == 0
        self.mode = embedding
        self.lin = None if self.featureless else torch.nn.Linear(in_channels, hidden)
        self.embedding = None
        if self.featureless:
            size = num_nodes if embedding == "node" else num_node_types
            if not size:
                raise InvalidArgumentError(
                    f"a featureless graph with embedding={embedding!r} needs "
                    f"{'num_nodes' if embedding == 'node' else 'num_node_types'}; "
                    f"`graphlearn fit` fills it in from the dataset"
                )
            self.embedding = torch.nn.Embedding(size, hidden)

    def forward(self, x: Tensor | None, node_type: Tensor | None) -> Tensor:
        if self.lin is not None:
            return self.lin(x)
        if self.mode == "type":
            return self.embedding(node_type)
        return self.embedding.weight


@register_model("rgat", tasks=(TaskKind.NODE_CLASSIFICATION,))
class RGAT(torch.nn.Module):
    r"""Relational graph attention network from `"Relational Graph Attention Networks"
    <https://arxiv.org/abs/1904.05811>`_ (Busbridge et al., 2019) for entity classification.

    A learned input embedding on featureless graphs (one vector per node), then
    ``num_layers`` :class:`~graphlearn.nn.RGATConv` layers (heads averaged in the last,
    concatenated before) with ELU between them.

    Args:
        in_channels (int): Input node features, 0 for featureless graphs.
        out_channels (int): Number of classes.
        num_relations (int): Number of edge types (filled in from the dataset).
        num_nodes (int, optional): Number of nodes (filled in; used when featureless).
        hidden_channels (int): Width per head. (default: :obj:`16`)
        num_layers (int): Number of RGAT layers. (default: :obj:`2`)
        heads (int): Attention heads. (default: :obj:`2`)
        num_bases (int, optional): Basis decomposition of the relation weights.
        attention_mechanism (str): ``"across-relation"`` or ``"within-relation"``.
        attention_mode (str): ``"additive-self-attention"`` or
            ``"multiplicative-self-attention"``.
        dropout (float): Dropout on hidden features. (default: :obj:`0.2`)
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
        heads: int = 2,
        num_bases: int | None = None,
        attention_mechanism: str = "across-relation",
        attention_mode: str = "additive-self-attention",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        from graphlearn.nn.conv.rgat_conv import RGATConv

        _layers(num_layers, "RGAT")
        check_positive_int(hidden_channels, "hidden_channels", caller="RGAT")
        self.input = _FeaturelessInput(in_channels, hidden_channels, num_nodes, None, "node")
        self.dropout = dropout
        self.convs = torch.nn.ModuleList()
        width = hidden_channels
        for i in range(num_layers):
            last = i == num_layers - 1
            self.convs.append(RGATConv(
                width, out_channels if last else hidden_channels, num_relations,
                num_bases=num_bases, attention_mechanism=attention_mechanism,
                attention_mode=attention_mode, heads=heads, concat=not last))
            width = hidden_channels * heads

    def forward(self, x: Tensor | None, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, *, edge_type: Tensor) -> Tensor:
        h = self.input(x, None)
        for i, conv in enumerate(self.convs):
            h = F.dropout(h, p=self.dropout, training=self.training)
            h = conv(h, edge_index, edge_type)
            if i < len(self.convs) - 1:
                h = F.elu(h)
        return h


@register_model("hgt", tasks=(TaskKind.NODE_CLASSIFICATION,))
class HGT(torch.nn.Module):
    r"""Heterogeneous Graph Transformer from `"Heterogeneous Graph Transformer"
    <https://arxiv.org/abs/2003.01332>`_ (Hu et al., WWW 2020) for entity classification.

    Runs on a typed graph given as one ``edge_index`` with ``edge_type`` and ``node_type``
    (the RDF datasets carry both; node types come from ``rdf:type``): every
    (source type, relation, destination type) combination of the dataset is an HGT edge
    type (``typed_edges``, filled in from the dataset). Featureless graphs get a learned
    input vector per node (``embedding="node"``) or per node type (``"type"``). Then
    ``num_layers`` :class:`~graphlearn.nn.HGTConv` layers and a linear classifier.

    Args:
        in_channels (int): Input node features, 0 for featureless graphs.
        out_channels (int): Number of classes.
        num_relations (int): Number of relations (filled in).
        num_node_types (int): Number of node types (filled in).
        typed_edges (list): ``[source type, relation, destination type]`` triples present in
            the graph (filled in).
        num_nodes (int, optional): Number of nodes (filled in).
        hidden_channels (int): Hidden width (divisible by ``heads``). (default: :obj:`16`)
        num_layers (int): Number of HGT layers. (default: :obj:`2`)
        heads (int): Attention heads. (default: :obj:`2`)
        embedding (str): Featureless input: ``"node"`` or ``"type"``. (default: ``"node"``)
        dropout (float): Dropout on hidden features. (default: :obj:`0.2`)
    """

    graph_inputs = ("edge_type", "node_type")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_node_types: int,
        typed_edges: list[list[int]],
        num_nodes: int | None = None,
        hidden_channels: int = 16,
        num_layers: int = 2,
        heads: int = 2,
        embedding: str = "node",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        from graphlearn.nn.conv.hgt_conv import HGTConv

        _layers(num_layers, "HGT")
        check_positive_int(hidden_channels, "hidden_channels", caller="HGT")
        self.num_node_types = num_node_types
        self.node_names = [f"t{t}" for t in range(num_node_types)]
        self.edge_keys = [(f"t{s}", f"r{r}", f"t{d}") for s, r, d in typed_edges]
        self._edge_id = {tuple(int(v) for v in e): i for i, e in enumerate(typed_edges)}
        metadata = (self.node_names, self.edge_keys)
        self.input = _FeaturelessInput(in_channels, hidden_channels, num_nodes, num_node_types,
                                       embedding)
        self.dropout = dropout
        self.convs = torch.nn.ModuleList(
            HGTConv(hidden_channels, hidden_channels, metadata, heads=heads)
            for _ in range(num_layers))
        self.classify = torch.nn.Linear(hidden_channels, out_channels)
        self._split_key: tuple | None = None
        self._split = None

    def _hetero(self, edge_index: Tensor, edge_type: Tensor, node_type: Tensor):
        """Per-type node ids and per-edge-type local edge indices (cached per graph)."""
        key = tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in
                    (edge_index, edge_type, node_type))
        if self._split_key != key:
            order = torch.argsort(node_type, stable=True)
            counts = torch.bincount(node_type, minlength=self.num_node_types).tolist()
            ids = dict(zip(self.node_names, order.split(counts), strict=True))
            local = torch.empty_like(node_type)
            for part in ids.values():
                local[part] = torch.arange(part.numel(), device=part.device)
            src_t, dst_t = node_type[edge_index[0]], node_type[edge_index[1]]
            edge_dict = {}
            triples = torch.stack([src_t, edge_type, dst_t], 1)
            combos, inverse = torch.unique(triples, dim=0, return_inverse=True)
            edge_order = torch.argsort(inverse, stable=True)
            sizes = torch.bincount(inverse, minlength=combos.size(0)).tolist()
            for combo, part in zip(combos.tolist(), edge_order.split(sizes), strict=True):
                if tuple(combo) not in self._edge_id:
                    raise InvalidArgumentError(
                        f"HGT: the graph has edges of (source type, relation, destination "
                        f"type) = {tuple(combo)}, which the model was not built for; build it "
                        f"from this dataset (typed_edges)"
                    )
                edge_dict[self.edge_keys[self._edge_id[tuple(combo)]]] = local[edge_index[:, part]]
            self._split, self._split_key = (ids, edge_dict), key
        return self._split

    def forward(self, x: Tensor | None, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None, *, edge_type: Tensor, node_type: Tensor) -> Tensor:
        ids, edge_dict = self._hetero(edge_index, edge_type, node_type)
        h = self.input(x, node_type)
        h_dict = {t: h.index_select(0, i) for t, i in ids.items() if i.numel()}
        for conv in self.convs:
            h_dict = {t: F.dropout(v, p=self.dropout, training=self.training)
                      for t, v in h_dict.items()}
            out = conv(h_dict, edge_dict)
            h_dict = {t: out.get(t, h_dict[t]) for t in h_dict}
        out = h.new_zeros((node_type.numel(), h.size(1)))
        for t, v in h_dict.items():
            out[ids[t]] = v
        return self.classify(out)
