"""Heterogeneous Graph Transformer (HGT) on the grouped GEMM and fused edge-softmax kernels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense import HeteroDictLinear, HeteroLinear
from torch_geometric.nn.inits import ones
from torch_geometric.nn.parameter_dict import ParameterDict

from graphlearn.data.validation import (
    check_dense_edge_index,
    check_edge_index,
    check_node_features,
    value_checks_enabled,
)
from graphlearn.errors import DeviceError, DTypeError, InvalidArgumentError, ShapeError
from graphlearn.kernels import (
    CSCIndex,
    csc_index,
    edge_softmax_aggregate,
    gather_scatter_matmul,
    segment_matmul,
)

from ._typed_graph import StructureCache, split_rows, typed_pairs

__all__ = ["HGTConv"]

_CALLER = "HGTConv"

EdgeType = tuple[str, str, str]


class _Group(NamedTuple):
    """Node types of one input width, projected by one segment GEMM."""

    types: tuple[str, ...]
    ptr: Tensor  # (T_g + 1,) rows of each type in the group's concatenation
    type_of_row: Tensor  # (N_g,) index into ``types`` (for the bias)


class _Plan(NamedTuple):
    """Graph structure of one heterogeneous graph, computed once per graph."""

    groups: tuple[_Group, ...]
    offset: dict[str, int]  # first row of each node type in the concatenation
    num_nodes: int
    num_pairs: int  # unique (source node, edge type) pairs
    kv_ptr: Tensor  # (|R| * 2H + 1,) rows of the K/V relation GEMM per (edge type, K|V, head)
    kv_gather: Tensor  # (P * 2H,) row of kqv.view(-1, D) each GEMM row reads
    kv_scatter: Tensor  # (P * 2H,) output row: (K|V) * P * H + pair * H + head
    edge_pair: Tensor  # (E,) source pair of each edge
    edge_query: Tensor  # (E,) destination node (row of the concatenation)
    edge_out: Tensor  # (E,) destination row in the output space (destination types only)
    edge_rel: Tensor  # (E,) edge type id (metadata order)
    csc: CSCIndex  # edge orders of (pair -> output row) for the fused softmax
    out_types: tuple[str, ...]  # destination types with features, in output order
    out_ptr: Tensor  # (T_out + 1,) output rows of each destination type
    out_type_of_row: Tensor  # (N_out,) index into ``out_types``
    out_bounds: tuple[int, ...]  # host copy of out_ptr
    num_out: int


class HGTConv(MessagePassing):
    r"""The Heterogeneous Graph Transformer operator from the `"Heterogeneous Graph
    Transformer" <https://arxiv.org/abs/2003.01332>`_ paper (Hu et al., WWW 2020), with
    PyG's :class:`~torch_geometric.nn.conv.HGTConv` arguments and results.

    For every node type :math:`\tau` keys, queries and values are linear projections
    :math:`\mathbf{k}_j, \mathbf{q}_i, \mathbf{v}_j` split into :math:`H` heads of size
    :math:`D = F_{out}/H`. An edge :math:`j \xrightarrow{\phi} i` of edge type
    :math:`\phi` transforms the source key and value per head and scores

    .. math::
        e^{h}_{i,j} = \frac{\mu^h_{\phi}}{\sqrt{D}}\,
        \big\langle \mathbf{q}^h_i,\; \mathbf{k}^h_j \mathbf{W}^{K,h}_{\phi} \big\rangle,
        \qquad
        \mathbf{m}_i = \Big\Vert_{h=1}^{H} \sum_{j} \mathrm{softmax}_j(e^h_{i,j})\,
        \mathbf{v}^h_j \mathbf{W}^{V,h}_{\phi},

    the softmax running over *all* incoming edges of :math:`i` across edge types. The
    output is :math:`\mathbf{y}_i = \mathbf{A}_{\tau(i)}\,\mathrm{GELU}(\mathbf{m}_i)` and,
    where the input size equals :math:`F_{out}`, the gated skip
    :math:`\sigma(s_\tau)\,\mathbf{y}_i + (1 - \sigma(s_\tau))\,\mathbf{x}_i`.

    **Pigeon transformation: compact materialization.** PyG applies the relation
    transforms :math:`\mathbf{W}^{K}_\phi, \mathbf{W}^{V}_\phi` to *every* node of the
    source type, once per edge type that leaves it, whether or not the node has such an
    edge. Here they run once per *unique* (source node, edge type) pair that occurs in
    the graph, and both K and V of all heads in a single
    :func:`graphlearn.kernels.gather_scatter_matmul`: its gather list reads the key and
    value rows of the pairs' source nodes straight out of the projection output, the
    weight index is (edge type, K|V, head), and the scatter list writes the rows in
    (K|V, pair, head) order so the values feed the attention without a copy. Everything
    else is grouped too: the K/Q/V projections of all node types are one
    :func:`graphlearn.kernels.segment_matmul` over the nodes concatenated by type (one per
    distinct input width, if node types differ in size: zero-padding them to one width
    would copy and multiply zeros), the attention over all edge types is one
    :func:`graphlearn.kernels.edge_softmax_aggregate` call whose output rows are the
    destination-type nodes only, and the output projection is one segment GEMM over them.
    The structure (offsets, unique pairs, row orders, edge orders) is cached per graph,
    keyed on the identity and version of the :obj:`edge_index_dict` tensors and the node
    counts, so repeated forwards skip it.

    .. note::
        Parameters, their names and shapes are those of PyG's layer (:obj:`kqv_lin`,
        :obj:`out_lin`, :obj:`k_rel`, :obj:`v_rel`, :obj:`skip`, :obj:`p_rel`), so state
        dicts load both ways and :meth:`from_pyg` converts a PyG layer. As in PyG, node
        types that are not the destination of any edge type of the metadata are left out
        of the output dict, node types of :obj:`x_dict` unknown to the metadata are
        ignored, and a destination type whose edge types are all absent gets the output
        of a zero message. Unlike PyG, the result does not depend on the order of
        :obj:`edge_index_dict` (PyG's relation transform assumes metadata order).
        :class:`torch_sparse.SparseTensor` adjacencies and :obj:`flow` other than
        ``"source_to_target"`` are not supported (they raise).

    Args:
        in_channels (int or Dict[str, int]): Size of each input sample of every node
            type, or :obj:`-1` to derive the sizes from the first forward call.
        out_channels (int): Size of each output sample.
        metadata (Tuple[List[str], List[Tuple[str, str, str]]]): The node types and edge
            types of the heterogeneous graph (see
            :meth:`torch_geometric.data.HeteroData.metadata`).
        heads (int, optional): Number of attention heads; must divide
            :obj:`out_channels`. (default: :obj:`1`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}_\tau|, F_\tau)` per node type,
          edge indices :math:`(2, |\mathcal{E}_\phi|)` per edge type
        - **output:** :math:`(|\mathcal{V}_\tau|, F_{out})` per destination node type
    """

    def __init__(
        self,
        in_channels: int | dict[str, int],
        out_channels: int,
        metadata: tuple[list[str], list[EdgeType]],
        heads: int = 1,
        **kwargs: Any,
    ) -> None:
        aggr = kwargs.pop("aggr", "add")
        if aggr not in ("add", "sum"):
            raise InvalidArgumentError(
                f"HGTConv sums attention-weighted messages, so aggr must be 'add' (the "
                f"default), got {aggr!r}; drop the aggr argument"
            )
        super().__init__(aggr="add", node_dim=0, **kwargs)
        if self.flow != "source_to_target":
            raise InvalidArgumentError(
                f"HGTConv supports flow='source_to_target' only (edge types name their "
                f"source first), got flow={self.flow!r}; reverse the edge types instead"
            )
        for name, value in (("out_channels", out_channels), ("heads", heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} of HGTConv must be an integer >= 1, got {value!r}")
        if out_channels % heads:
            raise InvalidArgumentError(
                f"HGTConv: out_channels (got {out_channels}) must be divisible by heads (got "
                f"{heads}); choose heads dividing {out_channels}"
            )
        node_types, edge_types = _check_metadata(metadata)
        if not isinstance(in_channels, dict):
            in_channels = {node_type: in_channels for node_type in node_types}

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.node_types = node_types
        self.edge_types = edge_types
        self.edge_types_map = {edge_type: i for i, edge_type in enumerate(edge_types)}
        self.dst_node_types = {edge_type[-1] for edge_type in edge_types}

        dim = out_channels // heads
        self.kqv_lin = HeteroDictLinear(self.in_channels, 3 * out_channels)
        self.out_lin = HeteroDictLinear(out_channels, out_channels, types=node_types)
        self.k_rel = HeteroLinear(dim, dim, heads * len(edge_types), bias=False, is_sorted=True)
        self.v_rel = HeteroLinear(dim, dim, heads * len(edge_types), bias=False, is_sorted=True)
        self.skip = ParameterDict({t: Parameter(torch.empty(1)) for t in node_types})
        self.p_rel = ParameterDict({
            "__".join(edge_type): Parameter(torch.empty(1, heads)) for edge_type in edge_types
        })
        self._structure = StructureCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.kqv_lin.reset_parameters()
        self.out_lin.reset_parameters()
        self.k_rel.reset_parameters()
        self.v_rel.reset_parameters()
        ones(self.skip)
        ones(self.p_rel)

    @classmethod
    def from_pyg(cls, module: MessagePassing) -> HGTConv:
        """Build a graphlearn :class:`HGTConv` with the config and weights of ``module``.

        Args:
            module (torch_geometric.nn.conv.HGTConv): The PyG layer to convert; lazy
                (:obj:`-1`) input sizes must have been initialised by a forward call. Its
                parameters are copied (not shared); its device, dtype and train/eval mode
                are kept.
        """
        from torch.nn.parameter import UninitializedParameter
        from torch_geometric.nn.conv import HGTConv as PyGHGTConv

        if not isinstance(module, PyGHGTConv):
            raise InvalidArgumentError(
                f"HGTConv.from_pyg expects a torch_geometric.nn.HGTConv, got "
                f"{type(module).__name__}"
            )
        if any(isinstance(p, UninitializedParameter) for p in module.parameters()):
            raise InvalidArgumentError(
                "HGTConv.from_pyg: the PyG layer has uninitialised (lazy, in_channels=-1) "
                "parameters; run one forward pass through it first"
            )
        in_channels = {t: lin.in_channels for t, lin in module.kqv_lin.lins.items()}
        conv = cls(in_channels, module.out_channels, (module.node_types, module.edge_types),
                   heads=module.heads)
        reference = next(iter(module.parameters()))
        conv = conv.to(device=reference.device, dtype=reference.dtype)
        conv.load_state_dict(module.state_dict())
        return conv.train(module.training)

    # ------------------------------------------------------------------ structure

    def _plan(self, x_dict: Mapping[str, Tensor], types: list[str],
              edge_index_dict: Mapping[EdgeType, Tensor], present: list[EdgeType]) -> _Plan:
        """Offsets, width groups, unique (source, edge type) pairs and row/edge orders."""
        device = x_dict[types[0]].device
        heads = self.heads
        # 1. Node types grouped by input width (one group in the usual case), concatenated
        #    group after group: these are the rows of the K/Q/V projection.
        by_width: dict[int, list[str]] = {}
        for t in types:
            by_width.setdefault(x_dict[t].size(1), []).append(t)
        groups, offset, total = [], {}, 0
        for group_types in by_width.values():
            counts = [x_dict[t].size(0) for t in group_types]
            for t, count in zip(group_types, counts, strict=True):
                offset[t] = total
                total += count
            groups.append(_Group(tuple(group_types), *_segments(counts, device)))
        # 2. Output rows: the destination types (in the layer's node-type order), one block each.
        out_types = tuple(t for t in types if t in self.dst_node_types)
        out_counts = [x_dict[t].size(0) for t in out_types]
        out_bounds = [0]
        for count in out_counts:
            out_bounds.append(out_bounds[-1] + count)
        out_offset = dict(zip(out_types, out_bounds, strict=False))
        out_ptr, out_type_of_row = _segments(out_counts, device)
        # 3. Edges of all present edge types, in global row ids.
        sources, queries, outs, rels = [], [], [], []
        for edge_type in present:
            edge_index = edge_index_dict[edge_type]
            src_type, _, dst_type = edge_type
            src = edge_index[0].long() + offset[src_type]
            dst = edge_index[1].long()
            sources.append(src)
            queries.append(dst + offset[dst_type])
            outs.append(dst + out_offset[dst_type])
            rels.append(torch.full_like(src, self.edge_types_map[edge_type]))
        empty = torch.zeros(0, dtype=torch.long, device=device)
        src = torch.cat(sources) if sources else empty
        edge_query = torch.cat(queries) if queries else empty
        edge_out = torch.cat(outs) if outs else empty
        edge_rel = torch.cat(rels) if rels else empty
        # 4. Compact materialization: unique (source, edge type) pairs; GEMM rows
        #    (pair, K|V, head) ordered by (edge type, K|V, head) with weight index
        #    rel * 2H + part, reading kqv.view(N, 3, H, D)[node, 0 or 2, head].
        pairs = typed_pairs(src, edge_rel, total, len(self.edge_types))
        num_pairs = pairs.node.numel()
        rows = split_rows(pairs, 2 * heads)
        is_value = rows.part // heads  # 0: K, 1: V
        head = rows.part - is_value * heads
        kv_gather = pairs.node.index_select(0, rows.pair) * (3 * heads) + is_value * (2 * heads) + head
        kv_scatter = is_value * (num_pairs * heads) + rows.pair * heads + head
        num_out = out_bounds[-1]
        return _Plan(
            groups=tuple(groups), offset=offset, num_nodes=total, num_pairs=num_pairs,
            kv_ptr=rows.ptr, kv_gather=kv_gather, kv_scatter=kv_scatter,
            edge_pair=pairs.of_edge, edge_query=edge_query, edge_out=edge_out,
            edge_rel=edge_rel, csc=csc_index(pairs.of_edge, edge_out, num_pairs, num_out),
            out_types=out_types, out_ptr=out_ptr, out_type_of_row=out_type_of_row,
            num_out=num_out, out_bounds=tuple(out_bounds),
        )

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        x_dict: dict[str, Tensor],
        edge_index_dict: dict[EdgeType, Tensor],
    ) -> dict[str, Tensor]:
        r"""Run the layer.

        Args:
            x_dict (Dict[str, torch.Tensor]): Node features per node type,
                :obj:`(|V_t|, F_t)`.
            edge_index_dict (Dict[Tuple[str, str, str], torch.Tensor]): Edge indices per
                edge type, :obj:`(2, |E_r|)` (local ids of the source and destination
                types), long or int32.

        Returns:
            Dict[str, torch.Tensor]: :obj:`(|V_t|, F_out)` for every node type of
            :obj:`x_dict` that is a destination of an edge type of the metadata.
        """
        types, present, check_values = self._check_inputs(x_dict, edge_index_dict)
        if not any(t in self.dst_node_types for t in types):
            return {}
        self._materialize(x_dict, types)
        heads, channels = self.heads, self.out_channels
        dim = channels // heads

        tensors = [edge_index_dict[e] for e in present]
        extra = (tuple(present), tuple((t, x_dict[t].size(0), x_dict[t].size(1)) for t in types),
                 check_values)

        def build() -> _Plan:
            if check_values:  # index ranges: once per graph, not once per forward
                for edge_type in present:
                    check_edge_index(
                        edge_index_dict[edge_type],
                        num_nodes=(x_dict[edge_type[0]].size(0), x_dict[edge_type[2]].size(0)),
                        caller=_CALLER, input_name=f"edge_index_dict[{edge_type!r}]",
                    )
            return self._plan(x_dict, types, edge_index_dict, present)

        plan = self._structure.get(tensors, extra, build)

        # 1. K, Q, V of all node types: one segment GEMM per input width.
        parts = []
        for group in plan.groups:
            lins = [self.kqv_lin.lins[t] for t in group.types]
            x = x_dict[group.types[0]] if len(group.types) == 1 else torch.cat(
                [x_dict[t] for t in group.types])
            weight = torch.stack([lin.weight.t() for lin in lins])
            y = segment_matmul(x, group.ptr, weight)
            if lins[0].bias is not None:
                bias = torch.stack([lin.bias for lin in lins])
                y = y + bias.index_select(0, group.type_of_row)
            parts.append(y)
        kqv = parts[0] if len(parts) == 1 else torch.cat(parts)  # (N, 3 F): K | Q | V

        # 2. Relation transforms of K and V, once per unique (source, edge type) pair.
        num_rel = len(self.edge_types)
        k_w = self.k_rel.weight.view(heads, num_rel, dim, dim).transpose(0, 1)
        v_w = self.v_rel.weight.view(heads, num_rel, dim, dim).transpose(0, 1)
        kv_weight = torch.stack([k_w, v_w], dim=1).reshape(num_rel * 2 * heads, dim, dim)
        kv = gather_scatter_matmul(kqv.reshape(-1, dim), kv_weight, plan.kv_ptr, plan.kv_gather,
                                   plan.kv_scatter, 2 * plan.num_pairs * heads)
        kv = kv.reshape(2, plan.num_pairs, heads, dim)

        # 3. Attention over all edge types at once.
        query = kqv.reshape(-1, 3, heads, dim)[:, 1]
        prior = torch.cat([self.p_rel["__".join(e)] for e in self.edge_types]) / math.sqrt(dim)
        logits = (query.index_select(0, plan.edge_query)
                  * kv[0].index_select(0, plan.edge_pair)).sum(-1)
        logits = logits * prior.index_select(0, plan.edge_rel)  # (E, H)
        message = edge_softmax_aggregate(logits, kv[1], plan.edge_pair, plan.edge_out,
                                         plan.num_out, csc=plan.csc)

        # 4. Output projection of the destination types: one segment GEMM.
        out_lins = [self.out_lin.lins[t] for t in plan.out_types]
        a = F.gelu(message.reshape(plan.num_out, channels))
        out = segment_matmul(a, plan.out_ptr, torch.stack([lin.weight.t() for lin in out_lins]))
        if out_lins[0].bias is not None:
            bias = torch.stack([lin.bias for lin in out_lins])
            out = out + bias.index_select(0, plan.out_type_of_row)

        out_dict = {}
        for k, node_type in enumerate(plan.out_types):
            y = out[plan.out_bounds[k]:plan.out_bounds[k + 1]] if len(plan.out_types) > 1 else out
            x = x_dict[node_type]
            if x.size(-1) == channels:
                gate = self.skip[node_type].sigmoid()
                y = gate * y + (1 - gate) * x
            out_dict[node_type] = y
        return out_dict

    def _materialize(self, x_dict: Mapping[str, Tensor], types: list[str]) -> None:
        """Initialise lazy (in_channels=-1) projections from the first input, as PyG does."""
        from torch.nn.parameter import UninitializedParameter

        lazy = [t for t in types
                if isinstance(self.kqv_lin.lins[t].weight, UninitializedParameter)]
        if lazy:
            with torch.no_grad():
                for t in lazy:
                    self.kqv_lin.lins[t](x_dict[t][:0])
            self.in_channels = {**self.in_channels, **{t: x_dict[t].size(1) for t in lazy}}

    # ------------------------------------------------------------------ validation

    def _check_inputs(
        self, x_dict: Any, edge_index_dict: Any
    ) -> tuple[list[str], list[EdgeType], bool]:
        """Check the dicts; return the used node types, the present edge types (metadata
        order) and whether value checks ran."""
        if not isinstance(x_dict, Mapping):
            raise DTypeError(
                f"x_dict passed to HGTConv must be a dict of node features per node type, got "
                f"{type(x_dict).__name__}"
            )
        if not isinstance(edge_index_dict, Mapping):
            raise DTypeError(
                f"edge_index_dict passed to HGTConv must be a dict of edge indices per edge "
                f"type, got {type(edge_index_dict).__name__}"
            )
        types = [t for t in self.kqv_lin.lins.keys() if t in x_dict]
        reference = self.p_rel[next(iter(self.p_rel.keys()))]
        for t in types:
            x = x_dict[t]
            check_node_features(x, ensure_finite=False, allow_empty=True, caller=_CALLER,
                                input_name=f"x_dict[{t!r}]")
            expected = self.in_channels.get(t, -1)
            if expected > 0 and x.size(1) != expected:
                raise ShapeError(
                    f"x_dict[{t!r}] passed to HGTConv has {x.size(1)} features per node but the "
                    f"layer was built with in_channels={expected} for {t!r}; build it with the "
                    f"feature sizes of the data (or -1 to infer them)"
                )
            if x.device != reference.device:
                raise DeviceError(
                    f"x_dict[{t!r}] is on {x.device} but the parameters of HGTConv are on "
                    f"{reference.device}; move the layer with conv.to(x.device) (or the inputs)"
                )
            if x.dtype != reference.dtype:
                raise DTypeError(
                    f"x_dict[{t!r}] passed to HGTConv is {x.dtype} but its parameters are "
                    f"{reference.dtype}; convert one of them (e.g. conv.to({x.dtype}))"
                )
        present_set = set()
        for key, edge_index in edge_index_dict.items():
            edge_type = tuple(key) if isinstance(key, (tuple, list)) else key
            if edge_type not in self.edge_types_map:
                raise InvalidArgumentError(
                    f"edge_index_dict passed to HGTConv has edge type {key!r}, which is not in "
                    f"the metadata the layer was built with ({len(self.edge_types)} edge types, "
                    f"e.g. {self.edge_types[:3]}); build the layer with data.metadata()"
                )
            name = f"edge_index_dict[{key!r}]"
            check_dense_edge_index(edge_index, caller=_CALLER)
            check_edge_index(edge_index, ensure_in_range=False, caller=_CALLER, input_name=name)
            for role, node_type in (("source", edge_type[0]), ("destination", edge_type[2])):
                if node_type not in x_dict or node_type not in self.kqv_lin.lins:
                    raise InvalidArgumentError(
                        f"{name} passed to HGTConv needs features of its {role} node type "
                        f"{node_type!r}, but x_dict has none; add x_dict[{node_type!r}]"
                    )
            if edge_index.device != reference.device:
                raise DeviceError(
                    f"{name} is on {edge_index.device} but x_dict and the parameters of HGTConv "
                    f"are on {reference.device}; move both to one device"
                )
            present_set.add(edge_type)
        present = [e for e in self.edge_types if e in present_set]
        check_values = (not torch.compiler.is_compiling()) and value_checks_enabled(
            reference, *(x_dict[t] for t in types), *edge_index_dict.values()
        )
        if check_values:
            for t in types:
                check_node_features(x_dict[t], allow_empty=True, caller=_CALLER,
                                    input_name=f"x_dict[{t!r}]")
        return types, present, check_values

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(-1, {self.out_channels}, heads={self.heads})"


def _segments(counts: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
    """CSR pointer ``(T + 1,)`` and per-row segment id of consecutive blocks of ``counts`` rows."""
    ptr = [0]
    for count in counts:
        ptr.append(ptr[-1] + count)
    segment = torch.repeat_interleave(torch.arange(len(counts), device=device),
                                      torch.tensor(counts, dtype=torch.long, device=device),
                                      output_size=ptr[-1])
    return torch.tensor(ptr, dtype=torch.long, device=device), segment


def _check_metadata(metadata: Any) -> tuple[list[str], list[EdgeType]]:
    """Validate ``(node_types, edge_types)`` and return them as lists."""
    if not isinstance(metadata, (tuple, list)) or len(metadata) != 2:
        raise InvalidArgumentError(
            f"metadata of HGTConv must be (node_types, edge_types), as returned by "
            f"data.metadata(), got {metadata!r}"
        )
    node_types, edge_types = list(metadata[0]), [tuple(e) for e in metadata[1]]
    if not node_types:
        raise InvalidArgumentError("metadata of HGTConv lists no node types")
    if not edge_types:
        raise InvalidArgumentError("metadata of HGTConv lists no edge types")
    known = set(node_types)
    for edge_type in edge_types:
        if len(edge_type) != 3 or edge_type[0] not in known or edge_type[2] not in known:
            raise InvalidArgumentError(
                f"metadata of HGTConv has edge type {edge_type!r}; edge types must be "
                f"(source type, relation, destination type) triples of listed node types"
            )
    return node_types, edge_types
