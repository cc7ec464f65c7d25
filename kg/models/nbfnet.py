r"""NBFNet: Neural Bellman-Ford Networks (Zhu et al., `NeurIPS 2021
<https://arxiv.org/abs/2106.06935>`_; code DeepGraphLearning/NBFNet).

A query :math:`(u, q, ?)` gets a representation :math:`\mathbf{h}_q(u, v)` of every entity
:math:`v` by a generalized Bellman-Ford iteration over the whole graph:

.. math::
    \mathbf{h}^{0}_v = \mathbb{1}[v = u]\, \mathbf{q}, \qquad
    \mathbf{h}^{t}_v = \mathrm{ReLU}\Big(\mathrm{LN}\big(\mathbf{W}^t\,
    [\mathbf{h}^{t-1}_v;\ \mathrm{AGG}(\{\mathbf{h}^{t-1}_x \odot \mathbf{w}_q^t(r)
    : (x, r, v)\} \cup \{\mathbf{h}^0_v\})] + \mathbf{b}^t\big)\Big) + \mathbf{h}^{t-1}_v

with DistMult messages whose relation vectors :math:`\mathbf{w}_q^t(r)` are produced from
the query embedding by a linear map (``dependent``, as the official code), the boundary
condition :math:`\mathbf{h}^0` added to each entity's messages, sum or PNA aggregation,
layer norm and a shortcut; the score is an MLP on :math:`[\mathbf{h}^L_v; \mathbf{q}]`.
A head query :math:`(?, q, t)` is the tail query :math:`(t, q + R, ?)` on the inverse
relation. There are no entity embeddings, so the model is inductive.

All queries of a batch run together on a ``(|V|, B, d)`` state (entity-major, so one
gather by edge source serves every query). The ``(|E|, B, d)`` message tensor is built
in full, so memory grows as ``|E| * B * d``: on FB15k-237 (544k directed edges) use small
batches (the official code uses 16 queries per GPU with a sparse relational kernel).
"""

from __future__ import annotations

import torch
from graphlearn.kg.model import KGModel, MessageGraph
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as checkpoint_layer

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError
from graphlearn.models.registry import register_model

__all__ = ["NBFNet", "GeneralizedRelationalConv"]


class GeneralizedRelationalConv(nn.Module):
    r"""One generalized Bellman-Ford iteration (DistMult message, sum or PNA aggregation).

    Args:
        input_dim (int): State size in.
        output_dim (int): State size out.
        num_relations (int): Edge types (inverses included, ``2R``).
        query_dim (int): Size of the query embedding the relation vectors come from.
        aggregate (str, optional): ``"sum"`` or ``"pna"``. (default: :obj:`"sum"`)
        layer_norm (bool, optional): Layer norm before the activation. (default: :obj:`True`)

    Shapes:
        ``x``, ``boundary``: ``(|V|, B, F_in)``; ``query``: ``(B, d_q)`` -> ``(|V|, B, F_out)``.
    """

    eps = 1e-6

    def __init__(self, input_dim: int, output_dim: int, num_relations: int, query_dim: int,
                 aggregate: str = "sum", layer_norm: bool = True) -> None:
        super().__init__()
        if aggregate not in ("sum", "pna"):
            raise ConfigError(f"aggregate must be 'sum' or 'pna', got {aggregate!r}")
        self.input_dim, self.output_dim = input_dim, output_dim
        self.num_relations, self.aggregate = num_relations, aggregate
        self.relation_linear = nn.Linear(query_dim, num_relations * input_dim)
        self.linear = nn.Linear(input_dim * (13 if aggregate == "pna" else 2), output_dim)
        self.layer_norm = nn.LayerNorm(output_dim) if layer_norm else None

    def forward(self, x: Tensor, query: Tensor, boundary: Tensor, src: Tensor, dst: Tensor,
                edge_type: Tensor) -> Tensor:
        N, B, d = x.shape
        relation = self.relation_linear(query).view(B, self.num_relations, d).transpose(0, 1)
        msg = x.index_select(0, src) * relation.index_select(0, edge_type)  # (E, B, d)
        if self.aggregate == "sum":
            agg = boundary.index_add(0, dst, msg)
        else:
            agg = self._pna(msg, boundary, dst, N)
        out = self.linear(torch.cat([x, agg], -1))
        if self.layer_norm is not None:
            out = self.layer_norm(out)
        return torch.relu(out)

    def _pna(self, msg: Tensor, boundary: Tensor, dst: Tensor, N: int) -> Tensor:
        # the boundary condition is one more message of every entity (a self-loop)
        msg = torch.cat([msg, boundary])
        index = torch.cat([dst, torch.arange(N, device=dst.device)])
        deg = torch.bincount(index, minlength=N).to(msg.dtype)
        shape = (N, *msg.shape[1:])
        idx = index.view(-1, 1, 1).expand_as(msg)
        w = deg.view(-1, 1, 1)
        mean = msg.new_zeros(shape).index_add_(0, index, msg) / w
        sq_mean = msg.new_zeros(shape).index_add_(0, index, msg * msg) / w
        mx = msg.new_zeros(shape).scatter_reduce(0, idx, msg, "amax", include_self=False)
        mn = msg.new_zeros(shape).scatter_reduce(0, idx, msg, "amin", include_self=False)
        std = (sq_mean - mean * mean).clamp(min=self.eps).sqrt()
        features = torch.stack([mean, mx, mn, std], -1)  # (N, B, d, 4)
        scale = deg.log()
        scale = scale / scale.mean()
        scales = torch.stack([torch.ones_like(scale), scale, 1 / scale.clamp(min=1e-2)], -1)
        out = features.unsqueeze(-1) * scales.view(N, 1, 1, 1, 3)
        return out.flatten(-3)  # (N, B, 12 d)


@register_model("nbfnet", tasks=(TaskKind.LINK_PREDICTION,))
class NBFNet(KGModel):
    r"""NBFNet (Zhu et al., `NeurIPS 2021 <https://arxiv.org/abs/2106.06935>`_).

    Args:
        num_relations (int): Base relations :math:`R`.
        hidden_dim (int, optional): Query embedding and state size. (default: :obj:`32`)
        num_layers (int, optional): Bellman-Ford iterations. (default: :obj:`6`)
        aggregate (str, optional): ``"sum"`` or ``"pna"`` (the official setting).
            (default: :obj:`"pna"`)
        layer_norm (bool, optional): (default: :obj:`True`)
        short_cut (bool, optional): Residual connection per layer. (default: :obj:`True`)
        num_mlp_layers (int, optional): Layers of the scoring MLP. (default: :obj:`2`)
        checkpoint (bool, optional): Recompute each layer's ``(|E|, B, d)`` messages in the
            backward pass instead of storing them (activation checkpointing).
            (default: :obj:`False`)

    Shapes:
        ``score_all``: ``(B,)`` anchors and relations -> ``(B, |V|)``.
    """

    uses_graph = True

    def __init__(self, num_relations: int, *, hidden_dim: int = 32, num_layers: int = 6,
                 aggregate: str = "pna", layer_norm: bool = True, short_cut: bool = True,
                 num_mlp_layers: int = 2, checkpoint: bool = False) -> None:
        super().__init__()
        if num_layers < 1 or num_mlp_layers < 1:
            raise ConfigError(f"num_layers and num_mlp_layers must be >= 1, got {num_layers} "
                              f"and {num_mlp_layers}")
        self.num_relations, self.hidden_dim, self.num_layers = num_relations, hidden_dim, num_layers
        self.short_cut, self.checkpoint = short_cut, checkpoint
        self.query = nn.Embedding(2 * num_relations, hidden_dim)
        self.layers = nn.ModuleList(
            GeneralizedRelationalConv(hidden_dim, hidden_dim, 2 * num_relations, hidden_dim,
                                      aggregate, layer_norm) for _ in range(num_layers))
        feature_dim = 2 * hidden_dim
        mlp: list[nn.Module] = []
        for _ in range(num_mlp_layers - 1):
            mlp += [nn.Linear(feature_dim, feature_dim), nn.ReLU()]
        mlp.append(nn.Linear(feature_dim, 1))
        self.mlp = nn.Sequential(*mlp)

    def score_all(self, anchors: Tensor, relations: Tensor, side: str,
                  graph: MessageGraph | None = None) -> Tensor:
        if graph is None:
            raise ConfigError("NBFNet reasons over the fact graph; pass graph=")
        if graph.num_relations != self.num_relations:
            raise ConfigError(f"NBFNet was built for {self.num_relations} relations, the graph "
                              f"has {graph.num_relations}")
        if side not in ("head", "tail"):
            raise ConfigError(f"side must be 'head' or 'tail', got {side!r}")
        q_rel = relations if side == "tail" else relations + self.num_relations
        B, N = anchors.numel(), graph.num_nodes
        query = self.query(q_rel)  # (B, d)
        boundary = query.new_zeros(N, B, self.hidden_dim)
        boundary = boundary.index_put((anchors, torch.arange(B, device=anchors.device)), query,
                                      accumulate=True)
        src, dst = graph.edge_index
        hidden = boundary
        for layer in self.layers:
            args = (hidden, query, boundary, src, dst, graph.edge_type)
            if self.checkpoint and torch.is_grad_enabled():
                out = checkpoint_layer(layer, *args, use_reentrant=False)
            else:
                out = layer(*args)
            hidden = out + hidden if self.short_cut else out
        feature = torch.cat([hidden, query.unsqueeze(0).expand(N, -1, -1)], -1)
        return self.mlp(feature).squeeze(-1).T.contiguous()

    def __repr__(self) -> str:
        return (f"NBFNet(num_relations={self.num_relations}, hidden_dim={self.hidden_dim}, "
                f"num_layers={self.num_layers})")
