"""omegaGAT propagation: a learnable, channel-wise mix of the identity and an attention operator."""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import add_self_loops, remove_self_loops

from graphlearn.errors import InvalidArgumentError
from graphlearn.kernels import edge_softmax, edge_softmax_aggregate

from .gatv2_conv import attention_dropout_mask
from .omega_gcn_conv import (
    build_omega,
    check_graph_input,
    check_omega_scale,
    effective_omega,
    omega_mix,
)

__all__ = ["OmegaGATConv"]

_CALLER = "OmegaGATConv"


class OmegaGATConv(MessagePassing):
    r"""The omegaGAT propagation step from the `"Improving Graph Neural Networks with
    Learnable Propagation Operators" <https://arxiv.org/abs/2210.17224>`_ paper
    (Eliasof, Ruthotto and Treister, ICML 2023).

    The layer mixes the identity with an attention operator :math:`\mathbf{S}` using a
    learnable weight :math:`\omega` per channel (or per layer, or shared by all layers):

    .. math::
        \mathbf{X}^{\prime} = \mathbf{X} - \boldsymbol{\omega} \odot
        \left(\mathbf{X} - \mathbf{S}\mathbf{X}\right)
        = \left((1 - \boldsymbol{\omega}) \mathbf{I} + \boldsymbol{\omega}\mathbf{S}\right)
        \mathbf{X}.

    :math:`\mathbf{S}` is the GAT attention matrix computed on the layer input itself (the
    :math:`1 \times 1` convolution of omegaGAT comes *after* the propagation, so no weight
    matrix precedes the attention): with :math:`H` heads the :math:`F` channels split into
    :math:`H` groups of :math:`F/H`, and head :math:`h` propagates its group with

    .. math::
        S^{h}_{i,j} = \frac{\exp\left(\mathrm{LeakyReLU}\left(
        \mathbf{a}_{t}^{h\top} \mathbf{x}^{h}_i + \mathbf{a}_{s}^{h\top} \mathbf{x}^{h}_j
        \right)\right)}{\sum_{k \in \mathcal{N}(i) \cup \{i\}} \exp\left(\mathrm{LeakyReLU}
        \left(\mathbf{a}_{t}^{h\top} \mathbf{x}^{h}_i + \mathbf{a}_{s}^{h\top}
        \mathbf{x}^{h}_k\right)\right)}

    for :math:`j \in \mathcal{N}(i) \cup \{i\}`. Each row of :math:`\mathbf{S}^{h}` sums to
    one, so :math:`\omega_c = 1` averages (smooths), :math:`\omega_c = 0` is the identity and
    :math:`\omega_c > 1` sharpens. :math:`\omega` is initialised to 1 and not constrained.
    The softmax and the weighted sum run in one call to
    :func:`graphlearn.kernels.edge_softmax_aggregate`.

    .. note::
        With :obj:`omega=1` the output equals :class:`torch_geometric.nn.conv.GATConv`
        (:obj:`heads=H`, :obj:`out_channels=F/H`, no bias) whose linear map is the identity
        and whose attention vectors are :obj:`att_src`/:obj:`att_dst` of this layer. The
        sibling :class:`OmegaGCNConv` uses the fixed GCN operator.

    Args:
        channels (int): Size of each input and output node feature.
        heads (int, optional): Number of attention heads; must divide :obj:`channels`.
            (default: :obj:`1`)
        omega (str or torch.nn.Parameter, optional): Granularity of :math:`\omega`:
            :obj:`"channel"`, :obj:`"layer"`, :obj:`"global"` or a shared
            :class:`torch.nn.Parameter`, as in :class:`OmegaGCNConv`.
            (default: :obj:`"channel"`)
        negative_slope (float, optional): LeakyReLU angle of the negative slope.
            (default: :obj:`0.2`)
        dropout (float, optional): Dropout probability of the attention coefficients.
            (default: :obj:`0.0`)
        add_self_loops (bool, optional): If set to :obj:`False`, will not add self-loops to
            the input graph. (default: :obj:`True`)
        omega_scale (float, optional): Apply :math:`\omega = s\,\theta` with :math:`s` =
            :obj:`omega_scale` and :math:`\theta` = :obj:`self.omega` (initialised to 1), as in
            :class:`OmegaGCNConv`. (default: :obj:`1.0`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (:obj:`flow` is honoured).

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F)`; with
          :obj:`return_attention_weights=True` also the edge index used (self-loops
          included) and the attention :math:`(|\mathcal{E}|, H)`
    """

    def __init__(
        self,
        channels: int,
        heads: int = 1,
        omega: str | Parameter = "channel",
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        omega_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        aggr = kwargs.get("aggr", "add")
        if aggr not in ("add", "sum"):
            raise InvalidArgumentError(
                f"OmegaGATConv sums attention-weighted messages, so aggr must be 'add' (the "
                f"default), got {aggr!r}; drop the aggr argument"
            )
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise InvalidArgumentError(
                f"channels of OmegaGATConv must be an integer >= 1, got {channels!r}"
            )
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise InvalidArgumentError(f"heads of OmegaGATConv must be an integer >= 1, got {heads!r}")
        if channels % heads:
            raise InvalidArgumentError(
                f"channels={channels} of OmegaGATConv is not divisible by heads={heads}; each "
                f"head attends over its own group of channels, so choose heads dividing {channels}"
            )
        if not 0.0 <= float(dropout) <= 1.0:
            raise InvalidArgumentError(
                f"dropout of OmegaGATConv is a probability and must lie in [0, 1], got {dropout!r}"
            )
        self.channels = channels
        self.heads = heads
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.add_self_loops = add_self_loops
        self.att_src = Parameter(torch.empty(1, heads, channels // heads))
        self.att_dst = Parameter(torch.empty(1, heads, channels // heads))
        self.omega, self.omega_granularity = build_omega(omega, channels, _CALLER)
        self.omega_scale = check_omega_scale(omega_scale, _CALLER)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        glorot(self.att_src)
        glorot(self.att_dst)
        with torch.no_grad():
            self.omega.fill_(1.0)

    @overload
    def forward(self, x: Tensor, edge_index: Tensor,
                return_attention_weights: None = None) -> Tensor: ...

    @overload
    def forward(self, x: Tensor, edge_index: Tensor,
                return_attention_weights: bool = ...) -> tuple[Tensor, tuple[Tensor, Tensor]]: ...

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        return_attention_weights: bool | None = None,
    ) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
        r"""Run the layer.

        Args:
            x (torch.Tensor): Node features :obj:`(|V|, channels)`.
            edge_index (torch.Tensor): Edge indices, :obj:`(2, |E|)`, long or int32.
            return_attention_weights (bool, optional): If truthy, additionally return
                :obj:`(edge_index, alpha)`: the edge index used (self-loops included) and
                the attention weights :obj:`(|E|, H)` after attention dropout.
                (default: :obj:`None`)
        """
        check_graph_input(x, edge_index, self.channels, self.omega, _CALLER)
        num_nodes = x.size(0)
        H, D = self.heads, self.channels // self.heads
        edge_index = edge_index.long()
        if self.add_self_loops:
            edge_index, _ = remove_self_loops(edge_index)
            edge_index, _ = add_self_loops(edge_index, num_nodes=num_nodes)
        j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)
        src, dst = edge_index[j], edge_index[i]

        xh = x.view(-1, H, D)
        score_src = (xh * self.att_src).sum(dim=-1)  # (N, H)
        score_dst = (xh * self.att_dst).sum(dim=-1)
        logits = score_src.index_select(0, src) + score_dst.index_select(0, dst)
        logits = F.leaky_relu(logits, self.negative_slope)  # (E, H)

        keep = attention_dropout_mask(logits, float(self.dropout), self.training)
        sx = edge_softmax_aggregate(logits, xh, src, dst, num_nodes, keep)  # (N, H, D)
        out = omega_mix(x, sx.reshape(num_nodes, self.channels),
                        effective_omega(self.omega, self.omega_scale))
        if return_attention_weights:
            alpha = edge_softmax(logits, dst, num_nodes)
            if keep is not None:
                alpha = alpha * keep
            return out, (edge_index, alpha)
        return out

    def __repr__(self) -> str:
        scale = f", omega_scale={self.omega_scale:g}" if self.omega_scale != 1.0 else ""
        return (f"{self.__class__.__name__}({self.channels}, heads={self.heads}, "
                f"omega={self.omega_granularity!r}{scale})")
