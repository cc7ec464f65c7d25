r"""Relational graph convolution (R-GCN) on the grouped GEMM and traversal kernels.

.. math::
    \mathbf{x}'_i = \mathbf{x}_i \mathbf{W}_{\text{root}} + \mathbf{b} + \sum_{r}
    \sum_{j \in \mathcal{N}_r(i)} c_{i,r}\, \mathbf{x}_j \mathbf{W}_r,
    \qquad c_{i,r} = 1/|\mathcal{N}_r(i)| \ (\texttt{aggr="mean"}) \text{ or } 1 \ (\texttt{"add"})

(Schlichtkrull et al., "Modeling Relational Data with Graph Convolutional Networks", 2018),
with the basis (:math:`\mathbf{W}_r = \sum_b a_{rb} \mathbf{V}_b`) and block-diagonal
decompositions.

Instead of looping over relations (PyG's ``RGCNConv``) or materialising one weight matrix
per edge (PyG's ``FastRGCNConv``), the layer picks one of Pigeon's strategies from the
graph's statistics (``strategy="auto"``) or the one a user forces:

``"compact"`` (compact materialization)
    The typed transform :math:`\mathbf{x}_j \mathbf{W}_r` is computed once per unique
    (source, relation) pair (:func:`graphlearn.kernels.gather_scatter_matmul` with a gather
    list), then a weighted traversal (:func:`graphlearn.kernels.weighted_aggregate`) sums
    the pair rows into each destination. Cost: :math:`Q\,d_{in} d_{out} + E\,d_{out}` with
    :math:`Q` unique (source, relation) pairs.
``"reorder"`` (linear-operator reordering)
    By linearity, :math:`\sum_j c\,\mathbf{x}_j \mathbf{W}_r = (\sum_j c\,\mathbf{x}_j)
    \mathbf{W}_r`: aggregate first into one row per unique (destination, relation) pair,
    then transform each pair row and scatter-add it into its destination (one
    gather/scatter GEMM). Cost: :math:`E\,d_{in} + P\,d_{in} d_{out}` with :math:`P` unique
    (destination, relation) pairs. This is what wins when :math:`d_{in} < d_{out}` or
    destinations have many neighbours per relation.
``"fused"``
    The typed linear fused into the traversal: one gather/scatter GEMM over the edges
    themselves (:math:`E\,d_{in} d_{out}` work, but no per-edge weight and no message tensor
    in memory). Never cheaper in arithmetic than the two above; kept as the memory floor
    and for comparison.

Featureless input (``x=None`` or a long tensor of node ids, R-GCN's one-hot input) needs no
GEMM at all: row :math:`j` of :math:`\mathbf{W}_r` *is* :math:`\mathbf{x}_j \mathbf{W}_r`,
so the layer aggregates rows of the weight directly (one traversal over
``W.view(R * N, out)``). The structure each strategy needs (unique pairs, CSR pointers,
normalisers) is computed once per graph and cached on the layer, keyed by the identity and
version of ``edge_index`` and ``edge_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.inits import glorot, zeros

from graphlearn.data.validation import check_edge_index, check_node_features, value_checks_enabled
from graphlearn.errors import DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError
from graphlearn.kernels import (
    CSCIndex,
    csc_index,
    gather_scatter_matmul,
    type_ptr,
    weighted_aggregate,
)
from graphlearn.nn.conv._typed_graph import typed_pairs

__all__ = ["RGCNConv", "RelationalPlan", "choose_strategy", "relational_plan"]

_CALLER = "RGCNConv"
STRATEGIES = ("auto", "compact", "reorder", "fused")


@dataclass
class RelationalPlan:
    """Graph structure a relational layer needs, computed once per graph.

    Pairs are sorted by relation (so ``*_ptr`` are CSR pointers over relations) and, within
    a relation, by node id. :meth:`traversal` adds, on first use, the edge orders
    (:func:`graphlearn.kernels.csc_index`) of each traversal a strategy runs.
    """

    src: Tensor  # (E,) source of each edge
    dst: Tensor  # (E,) destination of each edge
    edge_type: Tensor  # (E,)
    norm: Tensor  # (E,) c_{i,r} of each edge (float64; cast to the input dtype)
    src_pair_node: Tensor  # (Q,) source node of each unique (source, relation) pair
    src_pair_ptr: Tensor  # (R + 1,)
    edge_src_pair: Tensor  # (E,) the (source, relation) pair of each edge
    dst_pair_node: Tensor  # (P,) destination node of each unique (destination, relation) pair
    dst_pair_ptr: Tensor  # (R + 1,)
    edge_dst_pair: Tensor  # (E,) the (destination, relation) pair of each edge
    edge_order: Tensor  # (E,) edges sorted by relation (for the fused strategy)
    edge_ptr: Tensor  # (R + 1,)
    num_relations: int = 1
    num_src: int = 0
    num_dst: int = 0
    _traversals: dict = field(default_factory=dict, repr=False)

    def traversal(self, kind: str) -> tuple[Tensor, Tensor, int, int, CSCIndex]:
        """``(src, dst, num_src, num_dst, csc)`` of the traversal a strategy runs.

        ``"featureless"``: rows ``r * num_src + j`` of the flattened relation weights
        ``(R * num_src, out)`` into destinations; ``"compact"``: (source, relation) pair rows
        into destinations; ``"reorder"``: source rows into (destination, relation) pairs.
        """
        if kind not in self._traversals:
            if kind == "featureless":
                src, dst = self.edge_type * self.num_src + self.src, self.dst
                n_src, n_dst = self.num_relations * self.num_src, self.num_dst
            elif kind == "compact":
                src, dst = self.edge_src_pair, self.dst
                n_src, n_dst = self.src_pair_node.numel(), self.num_dst
            else:
                src, dst = self.src, self.edge_dst_pair
                n_src, n_dst = self.num_src, self.dst_pair_node.numel()
            self._traversals[kind] = (src, dst, n_src, n_dst, csc_index(src, dst, n_src, n_dst))
        return self._traversals[kind]


def relational_plan(edge_index: Tensor, edge_type: Tensor, num_relations: int,
                    num_src: int, num_dst: int, aggr: str = "mean") -> RelationalPlan:
    """Unique (node, relation) pairs, CSR pointers and normalisers of a typed graph."""
    src, dst = edge_index[0], edge_index[1]
    src_pairs = typed_pairs(src, edge_type, num_src, num_relations)
    dst_pairs = typed_pairs(dst, edge_type, num_dst, num_relations)
    ones = torch.ones(src.numel(), dtype=torch.float64, device=src.device)
    if aggr == "mean":  # c_{i,r} = 1 / |N_r(i)|: edges per (destination, relation) pair
        count = torch.zeros(dst_pairs.node.numel(), dtype=torch.float64, device=src.device)
        count.index_add_(0, dst_pairs.of_edge, ones)
        norm = count.reciprocal().index_select(0, dst_pairs.of_edge)
    else:
        norm = ones
    sorted_type, edge_order = torch.sort(edge_type, stable=True)
    return RelationalPlan(
        src=src, dst=dst, edge_type=edge_type, norm=norm,
        src_pair_node=src_pairs.node,
        src_pair_ptr=src_pairs.ptr,
        edge_src_pair=src_pairs.of_edge,
        dst_pair_node=dst_pairs.node,
        dst_pair_ptr=dst_pairs.ptr,
        edge_dst_pair=dst_pairs.of_edge,
        edge_order=edge_order,
        edge_ptr=type_ptr(sorted_type, num_relations),
        num_relations=num_relations,
        num_src=num_src,
        num_dst=num_dst,
    )


def choose_strategy(plan: RelationalPlan, in_channels: int, out_channels: int) -> str:
    """The cheaper of ``"compact"`` and ``"reorder"`` by the arithmetic cost model above."""
    num_edges = plan.src.numel()
    compact = plan.src_pair_node.numel() * in_channels * out_channels + num_edges * out_channels
    reorder = num_edges * in_channels + plan.dst_pair_node.numel() * in_channels * out_channels
    return "compact" if compact < reorder else "reorder"


class RGCNConv(torch.nn.Module):
    r"""The relational graph convolution of R-GCN, with PyG's ``RGCNConv`` arguments.

    Args:
        in_channels (int or tuple): Input size; for featureless graphs (``x=None``) the
            number of nodes. A tuple gives (source, destination) sizes of a bipartite graph.
        out_channels (int): Output size.
        num_relations (int): Number of relations.
        num_bases (int, optional): Basis decomposition with this many bases.
        num_blocks (int, optional): Block-diagonal decomposition with this many blocks.
        aggr (str): ``"mean"`` (per relation, as in the paper) or ``"add"``.
        root_weight (bool): Add the self-connection :math:`\mathbf{x}_i\mathbf{W}_{root}`.
        is_sorted (bool): Accepted for PyG compatibility; sorting is never needed here.
        bias (bool): Learn an additive bias.
        strategy (str): ``"auto"`` (pick by the cost model), ``"compact"``, ``"reorder"``
            or ``"fused"``; see the module docstring.

    Shapes:
        - **input:** node features :math:`(|V|, F_{in})`, a long tensor of node ids, or
          ``None`` (one-hot input); ``edge_index`` :math:`(2, |E|)`; ``edge_type``
          :math:`(|E|,)` in ``[0, num_relations)``
        - **output:** :math:`(|V|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        aggr: str = "mean",
        root_weight: bool = True,
        is_sorted: bool = False,
        bias: bool = True,
        strategy: str = "auto",
    ) -> None:
        super().__init__()
        if num_bases is not None and num_blocks is not None:
            raise InvalidArgumentError(
                f"{_CALLER}: num_bases and num_blocks are alternatives; set at most one"
            )
        aggr = {"sum": "add"}.get(aggr, aggr)
        if aggr not in ("mean", "add"):
            raise InvalidArgumentError(f"{_CALLER}: aggr must be 'mean' or 'add', got {aggr!r}")
        if strategy not in STRATEGIES:
            raise InvalidArgumentError(
                f"{_CALLER}: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
        if num_relations < 1:
            raise InvalidArgumentError(f"{_CALLER}: num_relations must be >= 1, got {num_relations}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.num_blocks = num_blocks
        self.aggr = aggr
        self.is_sorted = is_sorted
        self.strategy = strategy
        in_l, in_r = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.in_channels_l = in_l

        if num_bases is not None:
            self.weight = Parameter(torch.empty(num_bases, in_l, out_channels))
            self.comp = Parameter(torch.empty(num_relations, num_bases))
        elif num_blocks is not None:
            if in_l % num_blocks or out_channels % num_blocks:
                raise InvalidArgumentError(
                    f"{_CALLER}: num_blocks={num_blocks} must divide in_channels ({in_l}) and "
                    f"out_channels ({out_channels})"
                )
            self.weight = Parameter(torch.empty(num_relations, num_blocks, in_l // num_blocks,
                                                out_channels // num_blocks))
            self.register_parameter("comp", None)
        else:
            self.weight = Parameter(torch.empty(num_relations, in_l, out_channels))
            self.register_parameter("comp", None)
        self.root = Parameter(torch.empty(in_r, out_channels)) if root_weight else None
        self.bias = Parameter(torch.empty(out_channels)) if bias else None
        self._plan_key: tuple | None = None
        self._plan: RelationalPlan | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot(self.weight)
        glorot(self.comp)
        glorot(self.root)
        zeros(self.bias)

    # ------------------------------------------------------------------ structure

    def plan(self, edge_index: Tensor, edge_type: Tensor, num_src: int,
             num_dst: int) -> RelationalPlan:
        """The cached :class:`RelationalPlan` of this graph (recomputed when it changes).

        The graph's values (id ranges) are validated when its plan is built, so a full-batch
        model pays for the check once, not on every forward pass.
        """
        key = (edge_index.data_ptr(), edge_index._version, tuple(edge_index.shape),
               edge_type.data_ptr(), edge_type._version, num_src, num_dst, edge_index.device)
        if self._plan_key != key:
            self._check_graph(edge_index, edge_type, num_src, num_dst)
            self._plan = relational_plan(edge_index, edge_type, self.num_relations, num_src,
                                         num_dst, self.aggr)
            self._plan_key = key
        return self._plan

    def relation_weight(self) -> Tensor:
        """The dense ``(R, in, out)`` relation weights (bases composed; blocks stay blocks)."""
        if self.num_bases is not None:
            return (self.comp @ self.weight.reshape(self.num_bases, -1)).view(
                self.num_relations, self.in_channels_l, self.out_channels)
        return self.weight

    # ------------------------------------------------------------------ forward

    def _check_graph(self, edge_index, edge_type, num_src, num_dst) -> None:
        check_edge_index(edge_index, num_nodes=(num_src, num_dst),
                         ensure_in_range=value_checks_enabled(edge_index), caller=_CALLER)
        if value_checks_enabled(edge_type) and edge_type.numel():
            lo, hi = int(edge_type.min()), int(edge_type.max())
            if lo < 0 or hi >= self.num_relations:
                raise IndexOutOfRangeError(
                    f"{_CALLER}: edge_type holds relation {lo if lo < 0 else hi}, outside "
                    f"[0, {self.num_relations}); set num_relations to the number of relations "
                    f"of the graph (with inverse relations counted)"
                )


    def _check(self, x_l, x_r, edge_index, edge_type) -> None:
        if edge_type is None:
            raise InvalidArgumentError(f"{_CALLER}: edge_type is required (one relation id per edge)")
        check_edge_index(edge_index, ensure_in_range=False, caller=_CALLER)
        if (not isinstance(edge_type, Tensor) or edge_type.dtype != torch.long
                or edge_type.shape != (edge_index.size(1),)):
            got = (f"{edge_type.dtype} {tuple(edge_type.shape)}" if isinstance(edge_type, Tensor)
                   else type(edge_type).__name__)
            raise ShapeError(
                f"{_CALLER}: edge_type must be a long tensor of shape ({edge_index.size(1)},), got "
                f"{got}"
            )
        for name, t in (("x", x_l), ("x_dst", x_r)):
            if t is not None and t.is_floating_point():
                check_node_features(t, caller=_CALLER, input_name=name)
        if x_l is not None and x_l.is_floating_point() and x_l.size(-1) != self.in_channels_l:
            raise ShapeError(
                f"{_CALLER}: x has {x_l.size(-1)} features but the layer was built with "
                f"in_channels={self.in_channels_l}"
            )
        if x_l is not None and not x_l.is_floating_point() and x_l.dtype != torch.long:
            raise DTypeError(
                f"{_CALLER}: x must be float features, a long tensor of node ids, or None; got "
                f"{x_l.dtype}"
            )
        if self.num_blocks is not None and (x_l is None or not x_l.is_floating_point()):
            raise InvalidArgumentError(
                f"{_CALLER}: the block-diagonal decomposition needs float node features; use "
                f"num_bases (or neither) for featureless graphs"
            )

    def forward(self, x: Tensor | None | tuple[Tensor | None, Tensor], edge_index: Tensor,
                edge_type: Tensor | None = None) -> Tensor:
        """Apply the layer; ``x`` may be features, node ids, ``None`` or a (src, dst) pair."""
        x_l, x_r = x if isinstance(x, tuple) else (x, x)
        if x_l is None:
            num_src = self.in_channels_l
        else:
            num_src = x_l.size(0)
        if x_r is None:
            in_r = self.root.size(0) if self.root is not None else self.in_channels_l
            num_dst = in_r if isinstance(x, tuple) or x_l is None else num_src
        else:
            num_dst = x_r.size(0)
        self._check(x_l, x_r, edge_index, edge_type)
        plan = self.plan(edge_index, edge_type, num_src, num_dst)
        dtype = x_l.dtype if x_l is not None and x_l.is_floating_point() else self.weight.dtype

        if x_l is None or not x_l.is_floating_point():
            out = self._featureless(x_l, plan, num_dst, dtype)
        else:
            out = self._typed(x_l, plan, num_dst)

        if self.root is not None:
            if x_r is None:
                out = out + self.root
            elif not x_r.is_floating_point():
                out = out + self.root.index_select(0, x_r)
            else:
                out = out + x_r @ self.root
        if self.bias is not None:
            out = out + self.bias
        return out

    def _featureless(self, ids: Tensor | None, plan: RelationalPlan, num_dst: int,
                     dtype: torch.dtype) -> Tensor:
        # Row j of W_r is x_j W_r for one-hot x: aggregate rows of W.view(R * N, out).
        flat = self.relation_weight().reshape(-1, self.out_channels)
        norm = plan.norm.to(dtype)
        if ids is None:
            src, dst, _, _, csc = plan.traversal("featureless")
            return weighted_aggregate(flat, src, dst, norm, num_dst, csc=csc)
        index = plan.edge_type * self.in_channels_l + ids.index_select(0, plan.src)
        return weighted_aggregate(flat, index, plan.dst, norm, num_dst)

    def _typed(self, x: Tensor, plan: RelationalPlan, num_dst: int) -> Tensor:
        strategy = self.strategy
        if strategy == "auto":
            strategy = choose_strategy(plan, self.in_channels_l, self.out_channels)
        weight = self.relation_weight()
        blocks = self.num_blocks or 1
        if blocks > 1:
            return self._blocked(x, plan, num_dst, strategy, weight)
        norm = plan.norm.to(x.dtype)
        if strategy == "compact":
            h = gather_scatter_matmul(x, weight, plan.src_pair_ptr, plan.src_pair_node)
            src, dst, _, _, csc = plan.traversal("compact")
            return weighted_aggregate(h, src, dst, norm, num_dst, csc=csc)
        if strategy == "reorder":
            src, dst, _, n_pairs, csc = plan.traversal("reorder")
            agg = weighted_aggregate(x, src, dst, norm, n_pairs, csc=csc)
            return gather_scatter_matmul(agg, weight, plan.dst_pair_ptr, None,
                                         plan.dst_pair_node, num_dst)
        order = plan.edge_order  # fused: one GEMM over the edges, scattered into dst
        return gather_scatter_matmul(x, weight, plan.edge_ptr, plan.src.index_select(0, order),
                                     plan.dst.index_select(0, order), num_dst,
                                     norm.index_select(0, order))

    def _blocked(self, x: Tensor, plan: RelationalPlan, num_dst: int, strategy: str,
                 weight: Tensor) -> Tensor:
        # A block-diagonal W_r is B independent (in/B, out/B) transforms: view rows as
        # (row, block) pairs with type r * B + b, and everything is one grouped GEMM again.
        num_blocks = self.num_blocks
        in_b, out_b = weight.size(2), weight.size(3)
        w = weight.reshape(self.num_relations * num_blocks, in_b, out_b)
        block = torch.arange(num_blocks, device=x.device)
        norm = plan.norm.to(x.dtype)

        def expand(ptr: Tensor, node: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            # pairs sorted by relation -> rows sorted by (relation, block, pair)
            sizes = ptr.diff()
            rel = torch.repeat_interleave(torch.arange(self.num_relations, device=x.device), sizes)
            pair = torch.arange(node.numel(), device=x.device)
            key = (rel * num_blocks).unsqueeze(1) + block  # (pairs, B): type of each row
            order = torch.argsort(key.reshape(-1), stable=True)
            pair_b = (pair.unsqueeze(1) * num_blocks + block).reshape(-1)[order]
            node_b = (node.unsqueeze(1) * num_blocks + block).reshape(-1)[order]
            return type_ptr(key.reshape(-1)[order], w.size(0)), pair_b, node_b

        if strategy in ("compact", "fused"):
            ptr, pair_b, node_b = expand(plan.src_pair_ptr, plan.src_pair_node)
            h = gather_scatter_matmul(x.reshape(-1, in_b), w, ptr, node_b, pair_b,
                                      plan.src_pair_node.numel() * num_blocks)
            src, dst, _, _, csc = plan.traversal("compact")
            return weighted_aggregate(h.view(-1, self.out_channels), src, dst, norm, num_dst,
                                      csc=csc)
        src, dst, _, n_pairs, csc = plan.traversal("reorder")
        agg = weighted_aggregate(x, src, dst, norm, n_pairs, csc=csc)
        ptr, pair_b, node_b = expand(plan.dst_pair_ptr, plan.dst_pair_node)
        out = gather_scatter_matmul(agg.reshape(-1, in_b), w, ptr, pair_b, node_b,
                                    num_dst * num_blocks)
        return out.view(num_dst, self.out_channels)

    # ------------------------------------------------------------------ interop

    @classmethod
    def from_pyg(cls, module, strategy: str = "auto") -> RGCNConv:
        """Copy a PyG ``RGCNConv`` or ``FastRGCNConv`` (with or without bases/blocks).

        The copy gives the PyG layer's outputs for float features and for ``x=None``. For
        ``x`` given as node ids it follows ``RGCNConv``, which indexes the weights by those
        ids; PyG's ``FastRGCNConv`` indexes its messages by ``edge_index`` instead (and its
        root term by the ids), so it agrees only when the ids are ``arange(num_nodes)``.
        """
        from torch_geometric.nn import FastRGCNConv as PygFast
        from torch_geometric.nn import RGCNConv as PygRGCN

        if not isinstance(module, (PygRGCN, PygFast)):
            raise InvalidArgumentError(
                f"RGCNConv.from_pyg takes torch_geometric.nn.RGCNConv or FastRGCNConv, got "
                f"{type(module).__name__}"
            )
        aggr = module.aggr if isinstance(module.aggr, str) else "mean"
        layer = cls(module.in_channels, module.out_channels, module.num_relations,
                    num_bases=module.num_bases, num_blocks=module.num_blocks, aggr=aggr,
                    root_weight=module.root is not None, bias=module.bias is not None,
                    strategy=strategy)
        layer.to(device=module.weight.device, dtype=module.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(module.weight)
            for name in ("comp", "root", "bias"):
                if getattr(module, name) is not None:
                    getattr(layer, name).copy_(getattr(module, name))
        return layer

    def extra_repr(self) -> str:
        decomposition = (f", num_bases={self.num_bases}" if self.num_bases else
                         f", num_blocks={self.num_blocks}" if self.num_blocks else "")
        return (f"{self.in_channels}, {self.out_channels}, num_relations={self.num_relations}"
                f"{decomposition}, aggr={self.aggr!r}, strategy={self.strategy!r}")
