"""GATv2 attention layer whose softmax + aggregation runs in :mod:`graphlearn.kernels`."""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot, zeros
from torch_geometric.utils import add_self_loops, remove_self_loops

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
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.kernels import edge_softmax, edge_softmax_aggregate

__all__ = ["GATv2Conv"]

_CALLER = "GATv2Conv"


def attention_dropout_mask(logits: Tensor, p: float, training: bool) -> Tensor | None:
    """The keep-mask scaled by ``1/(1-p)`` that ``F.dropout`` would multiply alpha by, or None.

    Attention dropout is passed to the fused kernels as an ``edge_weight``; the mask uses the
    same draws as ``F.dropout`` on CPU (``bernoulli_(1 - p)`` on a tensor shaped like alpha),
    so layers match PyG's for a fixed seed.
    """
    if not training or p == 0.0:
        return None
    if p == 1.0:
        return torch.zeros_like(logits)
    return torch.empty_like(logits).bernoulli_(1.0 - p).div_(1.0 - p)


def _sum_is_finite(t: Tensor) -> bool:
    """Cheap NaN/inf screen: a NaN or inf entry makes the sum non-finite (one host sync).

    A non-finite sum can also come from overflow of finite values, so ``False`` only means
    "run the exact elementwise check"; it is ~30x cheaper than ``isfinite(t).all()``.
    """
    return bool(torch.isfinite(t.sum()))


class GATv2Conv(MessagePassing):
    r"""The GATv2 operator from the `"How Attentive are Graph Attention Networks?"
    <https://arxiv.org/abs/2105.14491>`_ paper, which fixes the static attention problem of
    GAT: the attention vector is applied *after* the non-linearity, so the ranking of the
    attended neighbours depends on the query node.

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i) \cup \{ i \}}
        \alpha_{i,j}\mathbf{\Theta}_{t}\mathbf{x}_{j},

    where the attention coefficients :math:`\alpha_{i,j}` are computed as

    .. math::
        \alpha_{i,j} =
        \frac{
        \exp\left(\mathbf{a}^{\top}\mathrm{LeakyReLU}\left(
        \mathbf{\Theta}_{s} \mathbf{x}_i + \mathbf{\Theta}_{t} \mathbf{x}_j
        + \mathbf{\Theta}_{e} \mathbf{e}_{i,j}
        \right)\right)}
        {\sum_{k \in \mathcal{N}(i) \cup \{ i \}}
        \exp\left(\mathbf{a}^{\top}\mathrm{LeakyReLU}\left(
        \mathbf{\Theta}_{s} \mathbf{x}_i + \mathbf{\Theta}_{t} \mathbf{x}_k
        + \mathbf{\Theta}_{e} \mathbf{e}_{i,k}
        \right)\right)},

    the edge term :math:`\mathbf{\Theta}_{e} \mathbf{e}_{i,j}` being present only when the
    layer has :obj:`edge_dim` set and :obj:`edge_attr` is passed. With :math:`H` heads the
    :math:`H` outputs are concatenated (or averaged, :obj:`concat=False`).

    The scores :math:`e_{i,j}` are computed in plain PyTorch; the softmax over each node's
    incoming edges and the weighted sum of :math:`\mathbf{\Theta}_{t}\mathbf{x}_j` run in one
    call to :func:`graphlearn.kernels.edge_softmax_aggregate` (Triton on CUDA once written,
    the PyTorch reference otherwise). Attention dropout is passed to that op as a per-edge
    keep-mask scaled by :math:`1/(1-p)`, which is exactly what
    :func:`torch.nn.functional.dropout` applies to :math:`\alpha`.

    .. note::
        Parameters, their names and shapes are those of
        :class:`torch_geometric.nn.conv.GATv2Conv`, so state dicts load both ways and
        :meth:`from_pyg` converts a PyG layer. The layer does not call
        :meth:`~torch_geometric.nn.conv.MessagePassing.propagate`, so propagate/message
        hooks and :obj:`decomposed_layers` have no effect; explainer edge masks
        (:obj:`explain=True`) are honoured. :class:`torch_sparse.SparseTensor` and torch
        sparse adjacency inputs are not supported: pass a :obj:`(2, |E|)` edge index.

    .. note::
        The layer compiles with :obj:`torch.compile(fullgraph=True)`. With
        :obj:`add_self_loops=True`, removing existing self-loops gives a data-dependent
        number of edges: :obj:`fullgraph=True` captures it as an unbacked symbolic size,
        while the default :obj:`fullgraph=False` splits the graph there (two breaks) unless
        :obj:`torch._dynamo.config.capture_dynamic_output_shape_ops = True`. Index-range and
        NaN checks are skipped while compiling (they would force a host sync).

    Args:
        in_channels (int or tuple): Size of each input sample, or :obj:`-1` to derive the
            size from the first input(s) to the forward method. A tuple corresponds to the
            sizes of source and target dimensionalities in case of a bipartite graph.
        out_channels (int): Size of each output sample (per head).
        heads (int, optional): Number of attention heads. (default: :obj:`1`)
        concat (bool, optional): If set to :obj:`False`, the heads are averaged instead of
            concatenated. (default: :obj:`True`)
        negative_slope (float, optional): LeakyReLU angle of the negative slope.
            (default: :obj:`0.2`)
        dropout (float, optional): Dropout probability of the normalized attention
            coefficients, exposing each node to a stochastically sampled neighbourhood
            during training. (default: :obj:`0.0`)
        add_self_loops (bool, optional): If set to :obj:`False`, will not add self-loops to
            the input graph. (default: :obj:`True`)
        edge_dim (int, optional): Edge feature dimensionality (in case there are any).
            (default: :obj:`None`)
        fill_value (float or torch.Tensor or str, optional): How to generate edge features
            of self-loops (when :obj:`edge_dim != None`): a :obj:`float` or
            :class:`torch.Tensor` is used as is; a :obj:`str` names the reduction of the
            features of the edges pointing to the node (:obj:`"add"`, :obj:`"mean"`,
            :obj:`"min"`, :obj:`"max"`, :obj:`"mul"`). (default: :obj:`"mean"`)
        bias (bool, optional): If set to :obj:`False`, the layer will not learn an additive
            bias (nor biases in :obj:`lin_l`/:obj:`lin_r`). (default: :obj:`True`)
        share_weights (bool, optional): If set to :obj:`True`, the same matrix is applied to
            the source and the target node of every edge, *i.e.*
            :math:`\mathbf{\Theta}_{s} = \mathbf{\Theta}_{t}`. (default: :obj:`False`)
        residual (bool, optional): If set to :obj:`True`, the layer will add a learnable
            skip-connection. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (:obj:`flow` is honoured;
            :obj:`aggr` must stay the default sum).

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{s}), (|\mathcal{V_t}|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge features :math:`(|\mathcal{E}|, D)` or :math:`(|\mathcal{E}|,)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, H * F_{out})` or
          :math:`(|\mathcal{V}_t|, H * F_{out})` if bipartite (:math:`F_{out}` when
          :obj:`concat=False`). If :obj:`return_attention_weights=True`, then
          :math:`((|\mathcal{V}|, H * F_{out}), ((2, |\mathcal{E}|), (|\mathcal{E}|, H)))`,
          where :math:`|\mathcal{E}|` counts the added self-loops.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        edge_dim: int | None = None,
        fill_value: float | Tensor | str = "mean",
        bias: bool = True,
        share_weights: bool = False,
        residual: bool = False,
        **kwargs: Any,
    ) -> None:
        aggr = kwargs.get("aggr", "sum")
        if aggr not in ("add", "sum"):
            raise InvalidArgumentError(
                f"GATv2Conv sums attention-weighted messages, so aggr must be 'add' (the "
                f"default), got {aggr!r}; drop the aggr argument"
            )
        super().__init__(node_dim=0, **kwargs)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise InvalidArgumentError(f"heads of GATv2Conv must be an integer >= 1, got {heads!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise InvalidArgumentError(
                f"dropout of GATv2Conv is a probability and must lie in [0, 1], got {dropout!r}"
            )

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.edge_dim = edge_dim
        self.fill_value = fill_value
        self.residual = residual
        self.share_weights = share_weights

        in_src, in_dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        self.lin_l = Linear(in_src, heads * out_channels, bias=bias, weight_initializer="glorot")
        if share_weights:
            self.lin_r = self.lin_l
        else:
            self.lin_r = Linear(in_dst, heads * out_channels, bias=bias, weight_initializer="glorot")

        self.att = Parameter(torch.empty(1, heads, out_channels))

        if edge_dim is not None:
            self.lin_edge = Linear(edge_dim, heads * out_channels, bias=False,
                                   weight_initializer="glorot")
        else:
            self.lin_edge = None

        total_out_channels = out_channels * (heads if concat else 1)
        if residual:
            self.res = Linear(in_dst, total_out_channels, bias=False, weight_initializer="glorot")
        else:
            self.register_parameter("res", None)

        if bias:
            self.bias = Parameter(torch.empty(total_out_channels))
        else:
            self.register_parameter("bias", None)

        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        if self.res is not None:
            self.res.reset_parameters()
        glorot(self.att)
        zeros(self.bias)

    @classmethod
    def from_pyg(cls, module: MessagePassing) -> GATv2Conv:
        """Build a graphlearn :class:`GATv2Conv` with the config and weights of ``module``.

        Args:
            module (torch_geometric.nn.conv.GATv2Conv): The PyG layer to convert. Its
                parameters are copied (not shared), its device, dtype and train/eval mode
                are kept, and :obj:`share_weights=True` stays shared.
        """
        from torch_geometric.nn.conv import GATv2Conv as PyGGATv2Conv

        if not isinstance(module, PyGGATv2Conv):
            raise InvalidArgumentError(
                f"GATv2Conv.from_pyg expects a torch_geometric.nn.GATv2Conv, got "
                f"{type(module).__name__}"
            )
        conv = cls(
            module.in_channels,
            module.out_channels,
            heads=module.heads,
            concat=module.concat,
            negative_slope=module.negative_slope,
            dropout=module.dropout,
            add_self_loops=module.add_self_loops,
            edge_dim=module.edge_dim,
            fill_value=module.fill_value,
            bias=module.bias is not None,
            share_weights=module.share_weights,
            residual=module.residual,
            flow=module.flow,
        )
        conv = conv.to(device=module.att.device, dtype=module.att.dtype)
        conv.load_state_dict(module.state_dict())
        return conv.train(module.training)

    @overload
    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool = ...,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_attr: Tensor | None = None,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        r"""Run the layer.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Node features, or the pair
                (source features, destination features) of a bipartite graph.
            edge_index (torch.Tensor): Edge indices, :obj:`(2, |E|)`, long or int32.
            edge_attr (torch.Tensor, optional): Edge features, :obj:`(|E|, D)` or
                :obj:`(|E|,)`; needs :obj:`edge_dim`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If truthy, additionally return
                :obj:`(edge_index, alpha)`: the edge index used (self-loops included) and
                the attention weights :obj:`(|E|, H)` after attention dropout.
                (default: :obj:`None`)
        """
        H, C = self.heads, self.out_channels
        if isinstance(x, Tensor):
            x_src, x_dst, bipartite = x, x, False
        else:
            x_src, x_dst, bipartite = x[0], x[1], True
        self._check_inputs(x_src, x_dst, bipartite, edge_index, edge_attr)

        res: Tensor | None = self.res(x_dst) if self.res is not None else None
        x_l = self.lin_l(x_src).view(-1, H, C)
        x_r = x_l if (self.share_weights and not bipartite) else self.lin_r(x_dst).view(-1, H, C)

        if self.add_self_loops:
            num_nodes = min(x_l.size(0), x_r.size(0))
            edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
            edge_index, edge_attr = add_self_loops(
                edge_index, edge_attr, fill_value=self.fill_value, num_nodes=num_nodes
            )

        # Row j of edge_index holds the message sources, row i their destinations.
        j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)
        src, dst = edge_index[j].long(), edge_index[i].long()
        num_dst = x_r.size(0)

        z = x_l.index_select(0, src) + x_r.index_select(0, dst)  # (E, H, C)
        if edge_attr is not None and self.lin_edge is not None:
            if edge_attr.dim() == 1:
                edge_attr = edge_attr.view(-1, 1)
            z = z + self.lin_edge(edge_attr).view(-1, H, C)
        z = F.leaky_relu(z, self.negative_slope)
        logits = (z * self.att).sum(dim=-1)  # (E, H)

        keep = attention_dropout_mask(logits, float(self.dropout), self.training)
        weight = keep
        if self._explain:
            mask = self._explain_mask(logits.size(0)).view(-1, 1).expand(-1, H)
            weight = mask if weight is None else weight * mask

        out = edge_softmax_aggregate(logits, x_l, src, dst, num_dst, weight)  # (N_dst, H, C)

        if self.concat:
            out = out.reshape(-1, H * C)
        else:
            out = out.mean(dim=1)
        if res is not None:
            out = out + res
        if self.bias is not None:
            out = out + self.bias

        if return_attention_weights:
            alpha = edge_softmax(logits, dst, num_dst)
            if keep is not None:
                alpha = alpha * keep
            return out, (edge_index, alpha)
        return out

    def _explain_mask(self, num_edges: int) -> Tensor:
        """Edge mask set by torch_geometric.explain, extended with ones for added self-loops."""
        edge_mask = self._edge_mask
        if edge_mask is None:
            raise InvalidArgumentError(
                "GATv2Conv.explain is True but no edge mask is set; set conv._edge_mask (as "
                "torch_geometric.explain does) or set conv.explain = False"
            )
        if self._apply_sigmoid:
            edge_mask = edge_mask.sigmoid()
        if edge_mask.size(0) != num_edges:
            if self._loop_mask is not None:
                edge_mask = edge_mask[self._loop_mask]
            loop = edge_mask.new_ones(num_edges - edge_mask.size(0))
            edge_mask = torch.cat([edge_mask, loop], dim=0)
        return edge_mask

    def _check_inputs(
        self,
        x_src: Tensor,
        x_dst: Tensor | None,
        bipartite: bool,
        edge_index: Any,
        edge_attr: Tensor | None,
    ) -> None:
        """Cheap dtype/shape/device checks always; value checks where they cost no sync."""
        name_src, name_dst = ("x[0]", "x[1]") if bipartite else ("x", "x")
        if x_dst is None:
            raise InvalidArgumentError(
                "x[1] (destination node features) passed to GATv2Conv is None; GATv2 scores "
                "every edge with both endpoints, so pass (x_src, x_dst)"
            )
        check_dense_edge_index(edge_index, caller=_CALLER)
        features = [(x_src, name_src), (x_dst, name_dst)] if bipartite else [(x_src, name_src)]
        for t, name in features:
            check_node_features(t, ensure_finite=False, allow_empty=True, caller=_CALLER,
                                input_name=name)
        values = (not torch.compiler.is_compiling()) and value_checks_enabled(
            x_src, x_dst, edge_index, edge_attr if isinstance(edge_attr, Tensor) else None
        )
        if values:  # check_node_features screens with a cheap sum before the exact check
            for t, name in features:
                check_node_features(t, allow_empty=True, caller=_CALLER, input_name=name)
        in_src, in_dst = ((self.in_channels, self.in_channels)
                          if isinstance(self.in_channels, int) else self.in_channels)
        for t, name, expected in ((x_src, name_src, in_src), (x_dst, name_dst, in_dst)):
            if expected > 0 and t.size(1) != expected:
                raise ShapeError(
                    f"{name} passed to GATv2Conv has {t.size(1)} features per node but the layer "
                    f"was built with in_channels={self.in_channels}; build it with the feature "
                    f"size of the data (or -1 to infer it)"
                )
        check_same_device((name_src, x_src), (name_dst, x_dst), ("edge_index", edge_index),
                          ("edge_attr", edge_attr), caller=_CALLER)
        if x_src.device != self.att.device:
            raise DeviceError(
                f"{name_src} is on {x_src.device} but the parameters of GATv2Conv are on "
                f"{self.att.device}; move the layer with conv.to({name_src}.device)"
            )
        sizes = (x_src.size(0), x_dst.size(0))
        if self.flow != "source_to_target":
            sizes = (sizes[1], sizes[0])
        check_edge_index(edge_index, num_nodes=sizes, ensure_in_range=values, caller=_CALLER)

        if edge_attr is None:
            return
        if self.lin_edge is None:
            raise InvalidArgumentError(
                "edge_attr was passed to GATv2Conv but the layer was built with edge_dim=None; "
                "build it with edge_dim=edge_attr.size(-1) to use edge features, or drop edge_attr"
            )
        if not isinstance(edge_attr, Tensor) or not edge_attr.is_floating_point():
            got = edge_attr.dtype if isinstance(edge_attr, Tensor) else type(edge_attr).__name__
            raise DTypeError(
                f"edge_attr passed to GATv2Conv must be a floating-point tensor, got {got}; "
                f"convert it with edge_attr.float()"
            )
        num_edges = edge_index.size(1)
        if edge_attr.dim() not in (1, 2) or edge_attr.size(0) != num_edges:
            raise ShapeError(
                f"edge_attr passed to GATv2Conv must have shape ({num_edges}, edge_dim) or "
                f"({num_edges},), one row per edge of edge_index, got {tuple(edge_attr.shape)}"
            )
        width = 1 if edge_attr.dim() == 1 else edge_attr.size(1)
        if self.edge_dim > 0 and width != self.edge_dim:
            raise ShapeError(
                f"edge_attr passed to GATv2Conv has {width} features per edge but the layer was "
                f"built with edge_dim={self.edge_dim}; build it with edge_dim={width}"
            )
        if values and not _sum_is_finite(edge_attr) and not bool(torch.isfinite(edge_attr).all()):
            raise NonFiniteError(
                "edge_attr passed to GATv2Conv holds NaN or infinite values; impute or drop them "
                "(e.g. torch.nan_to_num(edge_attr))"
            )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, heads={self.heads})"
