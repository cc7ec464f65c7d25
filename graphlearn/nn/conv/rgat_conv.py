"""Relational graph attention (RGAT) on the grouped GEMM and fused edge-softmax kernels."""

from __future__ import annotations

from typing import Any, NamedTuple, overload

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot, ones, zeros

from graphlearn.data.validation import (
    check_dense_edge_index,
    check_edge_index,
    check_node_features,
    check_same_device,
    value_checks_enabled,
)
from graphlearn.errors import (
    DeviceError,
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.kernels import (
    CSCIndex,
    csc_index,
    edge_softmax,
    edge_softmax_aggregate,
    gather_scatter_matmul,
    weighted_aggregate,
)

from ._typed_graph import StructureCache, TypedPairs, split_rows, typed_pairs
from .gatv2_conv import attention_dropout_mask

__all__ = ["RGATConv"]

_CALLER = "RGATConv"
MECHANISMS = ("across-relation", "within-relation")
MODES = ("additive-self-attention", "multiplicative-self-attention")
MODS = ("additive", "scaled", "f-additive", "f-scaled")


class _Plan(NamedTuple):
    """Graph structure of one (edge_index, edge_type) pair, computed once per graph."""

    src_pairs: TypedPairs  # unique (source, relation) pairs
    dst_pairs: TypedPairs  # unique (destination, relation) pairs
    block_gather: Tensor | None  # blocks: rows of x.view(-1, in / B) per (pair, block) row
    block_scatter: Tensor | None  # blocks: output row (pair * B + block) of each GEMM row
    block_ptr: Tensor | None  # blocks: CSR pointer over the R * B block weights
    dst: Tensor  # (E,) destination of each edge
    group: Tensor  # (E,) softmax group: the destination, or its (destination, relation) pair
    num_groups: int
    csc: CSCIndex  # edge orders of (source pair -> group) for the fused softmax
    degree: Tensor  # (num_dst,) in-degree over all relations (long)
    sum_csc: CSCIndex | None  # mod="additive": edge orders of (source pair -> destination)
    head_src: Tensor | None  # mod="f-additive": (E * H',) source row of each (edge, head)
    head_dst: Tensor | None  # mod="f-additive": (E * H',) output row of each (edge, head)
    head_csc: CSCIndex | None


class RGATConv(MessagePassing):
    r"""The relational graph attention operator from the `"Relational Graph Attention
    Networks" <https://arxiv.org/abs/1904.05811>`_ paper (Busbridge et al., 2019), with
    PyG's :class:`~torch_geometric.nn.conv.RGATConv` arguments and results.

    Every relation :math:`r` has its own transform :math:`\mathbf{W}_r` (full, a sum of
    bases or block-diagonal). Queries and keys are projections of the transformed nodes,
    :math:`\mathbf{q}^{(r)}_i = \mathbf{W}_r\mathbf{x}_i \cdot \mathbf{Q}` and
    :math:`\mathbf{k}^{(r)}_j = \mathbf{W}_r\mathbf{x}_j \cdot \mathbf{K}`, and the logit of
    an edge :math:`j \xrightarrow{r} i` is additive or multiplicative,

    .. math::
        a^{(r)}_{i,j} = \mathrm{LeakyReLU}\big(\mathbf{q}^{(r)}_i + \mathbf{k}^{(r)}_j
        [+ \mathbf{W}_e \mathbf{e}_{i,j} \cdot \mathbf{E}]\big)
        \quad\text{or}\quad
        a^{(r)}_{i,j} = \mathbf{q}^{(r)}_i \odot \mathbf{k}^{(r)}_j
        [\odot\, \mathbf{W}_e \mathbf{e}_{i,j} \cdot \mathbf{E}],

    normalised *across relations* (softmax over all incoming edges of :math:`i`) or
    *within each relation* (softmax over :math:`\mathcal{N}_r(i)`), and

    .. math::
        \mathbf{x}'_i = \sum_{r \in \mathcal{R}} \sum_{j \in \mathcal{N}_r(i)}
        \alpha^{(r)}_{i,j}\, \mathbf{W}_r \mathbf{x}_j,

    per head, concatenated or averaged (:obj:`concat`), plus a bias. The cardinality
    preservation options of `"Improving Attention Mechanism in Graph Neural Networks via
    Cardinality Preservation" <https://arxiv.org/abs/1907.02204>`_ (:obj:`mod`) add
    :math:`\mathbf{w} \odot \sum_j \mathbf{W}_r\mathbf{x}_j` (``"additive"``), scale by an
    MLP of the in-degree :math:`\psi(|\mathcal{N}(i)|)` (``"scaled"``), use
    :math:`\alpha + 1` (``"f-additive"``) or scale by the in-degree (``"f-scaled"``),
    exactly as PyG does (degrees count all incoming edges).

    **Pigeon transformation: compact materialization.** PyG gathers a full weight matrix
    :math:`\mathbf{W}_{r(e)}` for every edge (an :math:`(|E|, F_{in}, H F_{out})` tensor)
    and multiplies both endpoints with it, which costs :math:`2|E| F_{in} H F_{out}` and
    as much memory. The transform only depends on the (node, relation) pair, and in real
    graphs many edges share one (a node with several neighbours through one relation), so
    here it runs once per *unique* pair: :func:`graphlearn.kernels.gather_scatter_matmul`
    computes :math:`\mathbf{W}_r\mathbf{x}_j` for the unique (source, relation) pairs, with
    the gather list holding their source ids and a CSR pointer over relations. Queries need
    only :math:`\mathbf{x}_i (\mathbf{W}_r\mathbf{Q})`, so the destination side is a second
    grouped GEMM over the unique (destination, relation) pairs with the folded
    :math:`F_{in} \times H d` weights, and :math:`\mathbf{W}_r\mathbf{x}_i` is never formed.
    Block-diagonal weights run as :math:`B` independent small GEMMs (rows split into
    blocks), never multiplying the zero blocks. Edge logits then gather the pair rows, and
    one :func:`graphlearn.kernels.edge_softmax_aggregate` call normalises them and sums the
    source-pair values into each destination (for ``"within-relation"`` the softmax groups
    are the (destination, relation) pairs, summed into their destination afterwards).
    Pairs, pointers and edge orders are cached per graph (keyed on the identity and version
    of :obj:`edge_index` and :obj:`edge_type`), so repeated forwards skip them.

    .. note::
        Parameters, their names and shapes are those of PyG's layer, so state dicts load
        both ways and :meth:`from_pyg` converts a PyG layer. Like PyG, the returned
        attention weights are the softmax before dropout, and any :obj:`bool` for
        :obj:`return_attention_weights` (:obj:`False` too) returns them. Unlike PyG,
        :obj:`l2` is initialised to :math:`1/F_{out}` (PyG leaves it uninitialised).
        Not supported (they raise :class:`~graphlearn.errors.InvalidArgumentError` or
        :class:`~graphlearn.errors.DTypeError`): :obj:`aggr` other than ``"add"``,
        :class:`torch_sparse.SparseTensor` / torch sparse adjacency input (pass a
        :obj:`(2, |E|)` edge index and :obj:`edge_type`), and node-index (long) input
        :obj:`x` (PyG fails on it too; use a :class:`torch.nn.Embedding` weight as
        :obj:`x`). Propagate/message hooks and :obj:`decomposed_layers` have no effect;
        explainer edge masks (:obj:`explain=True`) are honoured.

    Args:
        in_channels (int): Size of each input sample.
        out_channels (int): Size of each output sample (per head).
        num_relations (int): Number of relations :math:`|\mathcal{R}|`.
        num_bases (int, optional): Use the basis decomposition with this many bases.
            (default: :obj:`None`)
        num_blocks (int, optional): Use the block-diagonal decomposition with this many
            blocks; must divide :obj:`in_channels` and :obj:`heads * out_channels`.
            (default: :obj:`None`)
        mod (str, optional): Cardinality preservation: ``"additive"``, ``"scaled"``,
            ``"f-additive"``, ``"f-scaled"`` or :obj:`None`. (default: :obj:`None`)
        attention_mechanism (str, optional): ``"across-relation"`` or
            ``"within-relation"``. (default: :obj:`"across-relation"`)
        attention_mode (str, optional): ``"additive-self-attention"`` or
            ``"multiplicative-self-attention"``. (default: :obj:`"additive-self-attention"`)
        heads (int, optional): Number of attention heads. (default: :obj:`1`)
        dim (int, optional): Dimensions :math:`d` of the query and key kernels per head;
            above 1 only with multiplicative attention. (default: :obj:`1`)
        concat (bool, optional): If :obj:`False`, heads are averaged instead of
            concatenated. (default: :obj:`True`)
        negative_slope (float, optional): LeakyReLU angle of the negative slope.
            (default: :obj:`0.2`)
        dropout (float, optional): Dropout probability of the attention coefficients
            (only with :obj:`mod=None`). (default: :obj:`0.0`)
        edge_dim (int, optional): Edge feature dimensionality. (default: :obj:`None`)
        bias (bool, optional): If :obj:`False`, no additive bias is learnt.
            (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (:obj:`flow` is honoured).

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or a pair
          :math:`((|\mathcal{V}_s|, F_{in}), (|\mathcal{V}_t|, F_{in}))`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge types :math:`(|\mathcal{E}|,)` in
          :math:`[0, |\mathcal{R}|)`, edge features :math:`(|\mathcal{E}|, D)` or
          :math:`(|\mathcal{E}|,)` *(optional)*
        - **output:** :math:`(|\mathcal{V}_t|, H d F_{out})` (:math:`d F_{out}` with
          :obj:`concat=False`; :math:`d = 1` for additive attention); with
          :obj:`return_attention_weights` also
          :math:`((2, |\mathcal{E}|), (|\mathcal{E}|, H d))`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        num_bases: int | None = None,
        num_blocks: int | None = None,
        mod: str | None = None,
        attention_mechanism: str = "across-relation",
        attention_mode: str = "additive-self-attention",
        heads: int = 1,
        dim: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        edge_dim: int | None = None,
        bias: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("aggr", "add")
        if kwargs["aggr"] not in ("add", "sum"):
            raise InvalidArgumentError(
                f"RGATConv sums attention-weighted messages, so aggr must be 'add' (the "
                f"default), got {kwargs['aggr']!r}; drop the aggr argument"
            )
        super().__init__(node_dim=0, **kwargs)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("num_relations", num_relations), ("heads", heads), ("dim", dim),
                            ("num_bases", num_bases), ("num_blocks", num_blocks),
                            ("edge_dim", edge_dim)):
            if value is None and name in ("num_bases", "num_blocks", "edge_dim"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(
                    f"{name} of RGATConv must be an integer >= 1, got {value!r}"
                )
        if attention_mechanism not in MECHANISMS:
            raise InvalidArgumentError(
                f"attention_mechanism of RGATConv must be one of {MECHANISMS}, got "
                f"{attention_mechanism!r}"
            )
        if attention_mode not in MODES:
            raise InvalidArgumentError(
                f"attention_mode of RGATConv must be one of {MODES}, got {attention_mode!r}"
            )
        if mod is not None and mod not in MODS:
            raise InvalidArgumentError(
                f"mod of RGATConv must be None or one of {MODS}, got {mod!r}"
            )
        if attention_mode == "additive-self-attention" and dim > 1:
            raise InvalidArgumentError(
                f"RGATConv: additive-self-attention needs dim=1, got dim={dim}; use "
                f"attention_mode='multiplicative-self-attention' for dim > 1"
            )
        if not 0.0 <= float(dropout) <= 1.0:
            raise InvalidArgumentError(
                f"dropout of RGATConv is a probability and must lie in [0, 1], got {dropout!r}"
            )
        if dropout > 0.0 and mod is not None:
            raise InvalidArgumentError(
                f"RGATConv: mod={mod!r} keeps all attention coefficients, so dropout must be 0 "
                f"(got {dropout}); set mod=None to sample neighbourhoods with dropout"
            )
        if num_bases is not None and num_blocks is not None:
            raise InvalidArgumentError(
                "RGATConv: num_bases and num_blocks are alternative decompositions; set at "
                "most one"
            )
        if num_blocks is not None and (in_channels % num_blocks
                                       or (heads * out_channels) % num_blocks):
            raise InvalidArgumentError(
                f"RGATConv: num_blocks={num_blocks} must divide in_channels={in_channels} and "
                f"heads * out_channels={heads * out_channels}"
            )

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.num_bases = num_bases
        self.num_blocks = num_blocks
        self.mod = mod
        self.attention_mechanism = attention_mechanism
        self.attention_mode = attention_mode
        self.heads = heads
        self.dim = dim
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.edge_dim = edge_dim
        self.activation = torch.nn.ReLU()

        hc, hd = heads * out_channels, heads * dim
        self.q = Parameter(torch.empty(hc, hd))
        self.k = Parameter(torch.empty(hc, hd))
        if bias:
            self.bias = Parameter(torch.empty((heads if concat else 1) * dim * out_channels))
        else:
            self.register_parameter("bias", None)
        if edge_dim is not None:
            self.lin_edge = Linear(edge_dim, hc, bias=False, weight_initializer="glorot")
            self.e = Parameter(torch.empty(hc, hd))
        else:
            self.lin_edge = None
            self.register_parameter("e", None)
        if num_bases is not None:
            self.att = Parameter(torch.empty(num_relations, num_bases))
            self.basis = Parameter(torch.empty(num_bases, in_channels, hc))
        elif num_blocks is not None:
            self.weight = Parameter(torch.empty(num_relations, num_blocks,
                                                in_channels // num_blocks, hc // num_blocks))
        else:
            self.weight = Parameter(torch.empty(num_relations, in_channels, hc))
        self.w = Parameter(torch.empty(out_channels))
        self.l1 = Parameter(torch.empty(1, out_channels))
        self.b1 = Parameter(torch.empty(1, out_channels))
        self.l2 = Parameter(torch.empty(out_channels, out_channels))
        self.b2 = Parameter(torch.empty(1, out_channels))
        self._structure = StructureCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.num_bases is not None:
            glorot(self.basis)
            glorot(self.att)
        else:
            glorot(self.weight)
        glorot(self.q)
        glorot(self.k)
        zeros(self.bias)
        ones(self.w)
        ones(self.l1)
        zeros(self.b1)
        with torch.no_grad():
            self.l2.fill_(1.0 / self.out_channels)
        zeros(self.b2)
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
            glorot(self.e)

    @classmethod
    def from_pyg(cls, module: MessagePassing) -> RGATConv:
        """Build a graphlearn :class:`RGATConv` with the config and weights of ``module``.

        Args:
            module (torch_geometric.nn.conv.RGATConv): The PyG layer to convert. Its
                parameters are copied (not shared); its device, dtype and train/eval mode
                are kept.
        """
        from torch_geometric.nn.conv import RGATConv as PyGRGATConv

        if not isinstance(module, PyGRGATConv):
            raise InvalidArgumentError(
                f"RGATConv.from_pyg expects a torch_geometric.nn.RGATConv, got "
                f"{type(module).__name__}"
            )
        conv = cls(
            module.in_channels,
            module.out_channels,
            module.num_relations,
            num_bases=module.num_bases,
            num_blocks=module.num_blocks,
            mod=module.mod,
            attention_mechanism=module.attention_mechanism,
            attention_mode=module.attention_mode,
            heads=module.heads,
            dim=module.dim,
            concat=module.concat,
            negative_slope=module.negative_slope,
            dropout=module.dropout,
            edge_dim=module.edge_dim,
            bias=module.bias is not None,
            aggr=module.aggr,
            flow=module.flow,
        )
        conv = conv.to(device=module.q.device, dtype=module.q.dtype)
        conv.load_state_dict(module.state_dict())
        return conv.train(module.training)

    # ------------------------------------------------------------------ weights

    def relation_weight(self) -> Tensor:
        r"""The relation transforms: :math:`(|\mathcal{R}|, F_{in}, H F_{out})` (bases
        composed), or the blocks :math:`(|\mathcal{R}|, B, F_{in}/B, H F_{out}/B)`."""
        if self.num_bases is not None:
            return (self.att @ self.basis.view(self.num_bases, -1)).view(
                self.num_relations, self.in_channels, self.heads * self.out_channels)
        return self.weight

    def _query_weight(self, weight: Tensor) -> Tensor:
        r""":math:`\mathbf{W}_r \mathbf{Q}` for every relation, :math:`(|\mathcal{R}|, F_{in}, H d)`."""
        if self.num_blocks is None:
            return weight @ self.q
        blocks = self.num_blocks
        q = self.q.view(blocks, -1, self.q.size(1))  # rows of block b: (H F_out / B, H d)
        folded = torch.einsum("rbio,bod->rbid", weight, q)
        return folded.reshape(self.num_relations, self.in_channels, self.q.size(1))

    # ------------------------------------------------------------------ structure

    def _plan(self, src: Tensor, dst: Tensor, edge_type: Tensor, num_src: int,
              num_dst: int) -> _Plan:
        """Unique pairs, block rows, softmax groups and edge orders of one graph."""
        num_relations = self.num_relations
        src_pairs = typed_pairs(src, edge_type, num_src, num_relations)
        dst_pairs = typed_pairs(dst, edge_type, num_dst, num_relations)
        block_gather = block_scatter = block_ptr = None
        if self.num_blocks is not None:
            blocks = self.num_blocks
            rows = split_rows(src_pairs, blocks)
            block_gather = src_pairs.node.index_select(0, rows.pair) * blocks + rows.part
            block_scatter = rows.pair * blocks + rows.part
            block_ptr = rows.ptr
        num_pairs = src_pairs.node.numel()
        if self.attention_mechanism == "within-relation":
            group, num_groups = dst_pairs.of_edge, dst_pairs.node.numel()
        else:
            group, num_groups = dst, num_dst
        degree = torch.zeros(num_dst, dtype=torch.long, device=dst.device)
        degree.index_add_(0, dst, torch.ones_like(dst))
        sum_csc = head_src = head_dst = head_csc = None
        if self.mod == "additive":
            sum_csc = csc_index(src_pairs.of_edge, dst, num_pairs, num_dst)
        if self.mod == "f-additive":
            heads = self.heads * self.dim
            offsets = torch.arange(heads, device=dst.device)
            head_src = (src_pairs.of_edge.unsqueeze(1) * heads + offsets).reshape(-1)
            head_dst = (group.unsqueeze(1) * heads + offsets).reshape(-1)
            head_csc = csc_index(head_src, head_dst, num_pairs * heads, num_groups * heads)
        return _Plan(
            src_pairs=src_pairs, dst_pairs=dst_pairs, block_gather=block_gather,
            block_scatter=block_scatter, block_ptr=block_ptr, dst=dst, group=group,
            num_groups=num_groups, csc=csc_index(src_pairs.of_edge, group, num_pairs, num_groups),
            degree=degree, sum_csc=sum_csc, head_src=head_src, head_dst=head_dst,
            head_csc=head_csc,
        )

    def _get_plan(self, edge_index: Tensor, edge_type: Tensor, num_src: int, num_dst: int,
                  check_values: bool) -> _Plan:
        """The cached structure of this graph; index ranges are checked when it is built."""
        j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)

        def build() -> _Plan:
            if check_values:
                # Row j of edge_index indexes the sources, row i the destinations.
                sizes = (num_src, num_dst) if j == 0 else (num_dst, num_src)
                check_edge_index(edge_index, num_nodes=sizes, caller=_CALLER)
            if check_values and edge_type.numel() > 0:
                lo, hi = int(edge_type.min()), int(edge_type.max())
                if lo < 0 or hi >= self.num_relations:
                    bad = lo if lo < 0 else hi
                    raise IndexOutOfRangeError(
                        f"edge_type passed to RGATConv holds relation id {bad}, outside "
                        f"[0, {self.num_relations}) for a layer built with "
                        f"num_relations={self.num_relations}; relation ids must be 0-based, or "
                        f"build the layer with num_relations={max(hi + 1, self.num_relations)}"
                    )
            return self._plan(edge_index[j].long(), edge_index[i].long(), edge_type.long(),
                              num_src, num_dst)

        extra = (num_src, num_dst, self.flow, self.num_relations, self.num_blocks,
                 self.attention_mechanism, self.mod, self.heads * self.dim, check_values)
        return self._structure.get((edge_index, edge_type), extra, build)

    # ------------------------------------------------------------------ forward

    @overload
    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        edge_attr: Tensor | None = None,
        size: tuple[int | None, int | None] | None = None,
        return_attention_weights: None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        edge_attr: Tensor | None = None,
        size: tuple[int | None, int | None] | None = None,
        return_attention_weights: bool = ...,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_type: Tensor | None = None,
        edge_attr: Tensor | None = None,
        size: tuple[int | None, int | None] | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        r"""Run the layer.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Node features, or the pair
                (source features, destination features) of a bipartite graph.
            edge_index (torch.Tensor): Edge indices, :obj:`(2, |E|)`, long or int32.
            edge_type (torch.Tensor): Relation of each edge, :obj:`(|E|,)`, integer ids in
                :obj:`[0, num_relations)`. Required.
            edge_attr (torch.Tensor, optional): Edge features, :obj:`(|E|, D)` or
                :obj:`(|E|,)`; needs :obj:`edge_dim`. (default: :obj:`None`)
            size ((int, int), optional): The shape of the adjacency matrix; must agree with
                the node counts of :obj:`x` (as PyG requires). (default: :obj:`None`)
            return_attention_weights (bool, optional): If a :obj:`bool` (either value, as in
                PyG), additionally return :obj:`(edge_index, alpha)` with the attention
                weights :obj:`(|E|, H d)` before dropout. (default: :obj:`None`)
        """
        j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)
        if isinstance(x, Tensor):
            xs, bipartite = (x, x), False
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            xs, bipartite = (x[0], x[1]), True
        else:
            raise DTypeError(
                f"x passed to RGATConv must be a tensor or a (source, destination) pair of "
                f"tensors, got {type(x).__name__}"
            )
        check_values = self._check_inputs(xs, bipartite, edge_index, edge_type, edge_attr, size)
        x_src, x_dst = xs[j], xs[i]
        num_src, num_dst = x_src.size(0), x_dst.size(0)
        plan = self._get_plan(edge_index, edge_type, num_src, num_dst, check_values)

        heads, channels, att_heads = self.heads, self.out_channels, self.heads * self.dim
        weight = self.relation_weight()
        # Compact materialization: W_r x_j once per unique (source, relation) pair ...
        if self.num_blocks is None:
            h_src = gather_scatter_matmul(x_src, weight, plan.src_pairs.ptr, plan.src_pairs.node)
        else:
            blocks = self.num_blocks
            h_src = gather_scatter_matmul(
                x_src.reshape(-1, self.in_channels // blocks),
                weight.reshape(self.num_relations * blocks, weight.size(2), weight.size(3)),
                plan.block_ptr, plan.block_gather, plan.block_scatter,
                plan.src_pairs.node.numel() * blocks,
            ).reshape(-1, heads * channels)
        # ... and x_i (W_r Q) once per unique (destination, relation) pair.
        q_pair = gather_scatter_matmul(x_dst, self._query_weight(weight), plan.dst_pairs.ptr,
                                       plan.dst_pairs.node)
        k_pair = h_src @ self.k
        q_edge = q_pair.index_select(0, plan.dst_pairs.of_edge)
        k_edge = k_pair.index_select(0, plan.src_pairs.of_edge)
        edge_term = None
        if edge_attr is not None:
            if edge_attr.dim() == 1:
                edge_attr = edge_attr.view(-1, 1)
            edge_term = edge_attr @ (self.lin_edge.weight.t() @ self.e)  # (E, H d)
        if self.attention_mode == "additive-self-attention":
            logits = q_edge + k_edge if edge_term is None else q_edge + k_edge + edge_term
            logits = F.leaky_relu(logits, self.negative_slope)
        else:
            logits = q_edge * k_edge if edge_term is None else q_edge * k_edge * edge_term

        values = h_src.reshape(-1, heads, 1, channels)
        if self.dim > 1:
            values = values.expand(-1, heads, self.dim, channels)
        values = values.reshape(-1, att_heads, channels)  # (P_src, H d, F_out)

        keep = None
        if self.mod is None:
            keep = attention_dropout_mask(logits, float(self.dropout), self.training)
        mask = self._explain_mask(logits.size(0)).to(logits.dtype) if self._explain else None
        edge_weight = keep
        if mask is not None:
            expanded = mask.view(-1, 1).expand_as(logits)
            edge_weight = expanded if edge_weight is None else edge_weight * expanded

        alpha = None
        src_pair = plan.src_pairs.of_edge
        if self.mod == "f-additive":
            alpha = edge_softmax(logits, plan.group, plan.num_groups)
            coefficient = alpha + (alpha > 0).to(alpha.dtype)  # PyG: where(a > 0, a + 1, a)
            if edge_weight is not None:
                coefficient = coefficient * edge_weight
            out = weighted_aggregate(
                values.reshape(-1, channels), plan.head_src, plan.head_dst,
                coefficient.reshape(-1), plan.num_groups * att_heads, csc=plan.head_csc,
            ).reshape(-1, att_heads, channels)
        else:
            out = edge_softmax_aggregate(logits, values, src_pair, plan.group, plan.num_groups,
                                         edge_weight, csc=plan.csc)
        if self.attention_mechanism == "within-relation":  # sum the (dst, relation) groups
            out = out.new_zeros((num_dst, att_heads, channels)).index_add_(
                0, plan.dst_pairs.node, out)

        if self.mod == "additive":
            total = weighted_aggregate(h_src, src_pair, plan.dst, mask, num_dst,
                                       csc=plan.sum_csc)  # sum_j W_r x_j (explained)
            total = (total.reshape(-1, heads, 1, channels) * self.w).expand(
                -1, heads, self.dim, channels)
            out = out + total.reshape(-1, att_heads, channels)
        elif self.mod == "scaled":
            degree = plan.degree.to(out.dtype).view(-1, 1)
            psi = self.activation(degree @ self.l1 + self.b1) @ self.l2 + self.b2  # (N, F_out)
            out = out * psi.unsqueeze(1)
        elif self.mod == "f-scaled":
            out = out * plan.degree.to(out.dtype).view(-1, 1, 1)

        if self.concat:
            out = out.reshape(num_dst, -1)
        else:
            out = out.reshape(num_dst, heads, self.dim * channels).mean(dim=1)
        if self.bias is not None:
            out = out + self.bias

        if isinstance(return_attention_weights, bool):
            if alpha is None:
                alpha = edge_softmax(logits, plan.group, plan.num_groups)
            return out, (edge_index, alpha)
        return out

    def _explain_mask(self, num_edges: int) -> Tensor:
        """Edge mask set by torch_geometric.explain (sigmoid applied as PyG does)."""
        edge_mask = self._edge_mask
        if edge_mask is None:
            raise InvalidArgumentError(
                "RGATConv.explain is True but no edge mask is set; set conv._edge_mask (as "
                "torch_geometric.explain does) or set conv.explain = False"
            )
        if self._apply_sigmoid:
            edge_mask = edge_mask.sigmoid()
        if edge_mask.numel() != num_edges:
            raise ShapeError(
                f"the explainer edge mask of RGATConv has {edge_mask.numel()} entries but the "
                f"graph has {num_edges} edges; give one mask entry per edge"
            )
        return edge_mask.view(-1)

    # ------------------------------------------------------------------ validation

    def _check_inputs(
        self,
        xs: tuple[Any, Any],
        bipartite: bool,
        edge_index: Any,
        edge_type: Any,
        edge_attr: Any,
        size: Any,
    ) -> bool:
        """Cheap dtype/shape/device checks always; returns whether value checks run."""
        names = ("x[0]", "x[1]") if bipartite else ("x", "x")
        features = list(zip(xs, names, strict=True))[: 2 if bipartite else 1]
        for t, name in features:
            if isinstance(t, Tensor) and not t.is_floating_point():
                raise DTypeError(
                    f"{name} passed to RGATConv must hold floating-point node features, got "
                    f"{t.dtype}; for featureless graphs learn an embedding "
                    f"(torch.nn.Embedding(num_nodes, {self.in_channels})) and pass its weight"
                )
            check_node_features(t, ensure_finite=False, allow_empty=True, caller=_CALLER,
                                input_name=name)
            if t.size(1) != self.in_channels:
                raise ShapeError(
                    f"{name} passed to RGATConv has {t.size(1)} features per node but the layer "
                    f"was built with in_channels={self.in_channels}; build it with the feature "
                    f"size of the data"
                )
        check_dense_edge_index(edge_index, caller=_CALLER)
        check_edge_index(edge_index, ensure_in_range=False, caller=_CALLER)
        num_edges = edge_index.size(1)
        if edge_type is None:
            raise InvalidArgumentError(
                "edge_type passed to RGATConv is None; pass the relation of every edge as a "
                f"long tensor of shape ({num_edges},)"
            )
        if not isinstance(edge_type, Tensor) or edge_type.dtype not in (
                torch.long, torch.int32, torch.int16, torch.int8, torch.uint8):
            got = edge_type.dtype if isinstance(edge_type, Tensor) else type(edge_type).__name__
            raise DTypeError(
                f"edge_type passed to RGATConv must be an integer tensor of relation ids, got "
                f"{got}; convert it with edge_type.long()"
            )
        if edge_type.shape != (num_edges,):
            raise ShapeError(
                f"edge_type passed to RGATConv must have shape ({num_edges},), one relation per "
                f"edge of edge_index, got {tuple(edge_type.shape)}"
            )
        if size is not None:
            if not isinstance(size, (tuple, list)) or len(size) != 2:
                raise ShapeError(f"size passed to RGATConv must be a pair (int, int), got {size!r}")
            for k in (0, 1):
                if size[k] is not None and size[k] != xs[k].size(0):
                    raise ShapeError(
                        f"size[{k}]={size[k]} passed to RGATConv disagrees with the "
                        f"{xs[k].size(0)} rows of {names[k]}; drop size or pass matching node "
                        f"features"
                    )
        check_same_device((names[0], xs[0]), (names[1], xs[1]), ("edge_index", edge_index),
                          ("edge_type", edge_type),
                          ("edge_attr", edge_attr if isinstance(edge_attr, Tensor) else None),
                          caller=_CALLER)
        if xs[0].device != self.q.device:
            raise DeviceError(
                f"{names[0]} is on {xs[0].device} but the parameters of RGATConv are on "
                f"{self.q.device}; move the layer with conv.to({names[0]}.device)"
            )
        if xs[0].dtype != self.q.dtype or xs[1].dtype != self.q.dtype:
            raise DTypeError(
                f"node features passed to RGATConv are {xs[0].dtype} but its parameters are "
                f"{self.q.dtype}; convert one of them (e.g. conv.to({xs[0].dtype}))"
            )
        check_values = (not torch.compiler.is_compiling()) and value_checks_enabled(
            xs[0], xs[1], edge_index, edge_type
        )
        if check_values:
            for t, name in features:
                check_node_features(t, allow_empty=True, caller=_CALLER, input_name=name)
        self._check_edge_attr(edge_attr, num_edges, check_values)
        return check_values

    def _check_edge_attr(self, edge_attr: Any, num_edges: int, check_values: bool) -> None:
        if edge_attr is None:
            return
        if self.lin_edge is None:
            raise InvalidArgumentError(
                "edge_attr was passed to RGATConv but the layer was built with edge_dim=None; "
                "build it with edge_dim=edge_attr.size(-1) to use edge features, or drop edge_attr"
            )
        if not isinstance(edge_attr, Tensor) or not edge_attr.is_floating_point():
            got = edge_attr.dtype if isinstance(edge_attr, Tensor) else type(edge_attr).__name__
            raise DTypeError(
                f"edge_attr passed to RGATConv must be a floating-point tensor, got {got}; "
                f"convert it with edge_attr.float()"
            )
        if edge_attr.dim() not in (1, 2) or edge_attr.size(0) != num_edges:
            raise ShapeError(
                f"edge_attr passed to RGATConv must have shape ({num_edges}, edge_dim) or "
                f"({num_edges},), one row per edge of edge_index, got {tuple(edge_attr.shape)}"
            )
        width = 1 if edge_attr.dim() == 1 else edge_attr.size(1)
        if width != self.edge_dim:
            raise ShapeError(
                f"edge_attr passed to RGATConv has {width} features per edge but the layer was "
                f"built with edge_dim={self.edge_dim}; build it with edge_dim={width}"
            )
        if check_values and edge_attr.numel() and not bool(torch.isfinite(edge_attr).all()):
            raise NonFiniteError(
                "edge_attr passed to RGATConv holds NaN or infinite values; impute or drop them "
                "(e.g. torch.nan_to_num(edge_attr))"
            )

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads})")
