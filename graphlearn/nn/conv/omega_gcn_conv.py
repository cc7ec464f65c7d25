"""omegaGCN propagation: a learnable, channel-wise mix of the identity and the GCN operator."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm

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
from graphlearn.kernels import weighted_aggregate

__all__ = ["OmegaGCNConv"]

_CALLER = "OmegaGCNConv"
OMEGA_GRANULARITIES = ("channel", "layer", "global")


def build_omega(omega: str | Parameter, channels: int, caller: str) -> tuple[Parameter, str]:
    """Return the omega parameter of a layer and its granularity.

    ``"channel"`` makes a ``(channels,)`` parameter, ``"layer"`` and ``"global"`` a ``(1,)``
    one; a :class:`torch.nn.Parameter` (shape ``(1,)`` or ``(channels,)``) is used as given,
    so several layers can share it (granularity ``"global"``). Values are set by
    ``reset_parameters`` (to 1).
    """
    if isinstance(omega, Parameter):
        if not omega.is_floating_point() or omega.shape not in ((1,), (channels,)):
            raise InvalidArgumentError(
                f"a shared omega passed to {caller} must be a floating-point Parameter of shape "
                f"(1,) or ({channels},), got dtype {omega.dtype} and shape {tuple(omega.shape)}; "
                f"create it with torch.nn.Parameter(torch.ones(1))"
            )
        return omega, "global"
    if isinstance(omega, str) and omega in OMEGA_GRANULARITIES:
        return Parameter(torch.empty(channels if omega == "channel" else 1)), omega
    raise InvalidArgumentError(
        f"omega of {caller} must be one of {', '.join(map(repr, OMEGA_GRANULARITIES))} or a "
        f"shared torch.nn.Parameter, got {omega!r}"
    )


def check_omega_scale(omega_scale: Any, caller: str) -> float:
    """``omega_scale`` as a float, which must be finite and positive."""
    if isinstance(omega_scale, bool) or not isinstance(omega_scale, (int, float)) or not (
            0.0 < float(omega_scale) < float("inf")):
        raise InvalidArgumentError(
            f"omega_scale of {caller} must be a finite number > 0, got {omega_scale!r}; 1.0 "
            f"uses the stored omega as is"
        )
    return float(omega_scale)


def effective_omega(omega: Tensor, omega_scale: float) -> Tensor:
    """The omega a layer applies: the stored parameter times ``omega_scale`` (exact at 1)."""
    return omega if omega_scale == 1.0 else omega * omega_scale


def omega_mix(x: Tensor, sx: Tensor, omega: Tensor) -> Tensor:
    r""":math:`(1 - \omega) \odot x + \omega \odot Sx`, exact at :math:`\omega \in \{0, 1\}`.

    Algebraically :math:`x - \omega \odot (x - Sx)`; written as a convex-style combination so
    that :math:`\omega = 1` returns :math:`Sx` and :math:`\omega = 0` returns :math:`x` bit
    for bit (for finite inputs).
    """
    if omega.dtype != x.dtype:
        omega = omega.to(x.dtype)
    return (1.0 - omega) * x + omega * sx


def check_channels(x: Tensor, channels: int, caller: str) -> None:
    if x.size(1) != channels:
        raise ShapeError(
            f"x passed to {caller} has {x.size(1)} features per node but the layer was built "
            f"with channels={channels}; the omega update keeps the width, so build it with "
            f"channels={x.size(1)} (or project x to {channels} features first)"
        )


def check_graph_input(x: Any, edge_index: Any, channels: int, omega: Tensor,
                      caller: str) -> bool:
    """Shared checks of the omega layers; returns whether value checks ran (and may run)."""
    if isinstance(x, (tuple, list)):
        raise InvalidArgumentError(
            f"{caller} received a tuple of node features, but the omega update "
            f"x - omega * (x - S x) needs one square graph; pass a single (num_nodes, "
            f"channels) tensor"
        )
    check_dense_edge_index(edge_index, caller=caller)
    check_node_features(x, ensure_finite=False, allow_empty=True, caller=caller)
    check_channels(x, channels, caller)
    values = (not torch.compiler.is_compiling()) and value_checks_enabled(x, edge_index)
    if values:
        check_node_features(x, allow_empty=True, caller=caller)
    check_same_device(("x", x), ("edge_index", edge_index), caller=caller)
    if x.device != omega.device:
        raise DeviceError(
            f"x is on {x.device} but the parameters of {caller} are on {omega.device}; move the "
            f"layer with conv.to(x.device)"
        )
    check_edge_index(edge_index, num_nodes=x.size(0), ensure_in_range=values, caller=caller)
    return values


class OmegaGCNConv(MessagePassing):
    r"""The omegaGCN propagation step from the `"Improving Graph Neural Networks with
    Learnable Propagation Operators" <https://arxiv.org/abs/2210.17224>`_ paper
    (Eliasof, Ruthotto and Treister, ICML 2023; first circulated as "ωGNNs: Deep Graph
    Neural Networks Enhanced by Multiple Propagation Operators").

    The layer mixes the identity with the GCN operator
    :math:`\mathbf{S} = \mathbf{\hat{D}}^{-1/2} \mathbf{\hat{A}} \mathbf{\hat{D}}^{-1/2}`
    (:math:`\mathbf{\hat{A}} = \mathbf{A} + \mathbf{I}`, Kipf and Welling) with a learnable
    weight :math:`\omega` per channel (or per layer, or shared by all layers):

    .. math::
        \mathbf{X}^{\prime} = \mathbf{X} - \boldsymbol{\omega} \odot
        \left(\mathbf{X} - \mathbf{S}\mathbf{X}\right)
        = \left((1 - \boldsymbol{\omega}) \mathbf{I} + \boldsymbol{\omega}\mathbf{S}\right)
        \mathbf{X},

    where :math:`\boldsymbol{\omega}` scales the columns (channels). Since
    :math:`\mathbf{I} - \mathbf{S}` is a normalised graph Laplacian, channel :math:`c` takes
    one explicit step of size :math:`\omega_c` of the heat equation: :math:`\omega_c = 1`
    is GCN's :math:`\mathbf{S}`, :math:`0 < \omega_c < 1` smooths less (towards the
    identity, :math:`\omega_c = 0`), and :math:`\omega_c > 1` or :math:`\omega_c < 0` gives
    operators with negative entries that sharpen. :math:`\omega` is initialised to 1 and
    not constrained.

    The layer has no weight matrix: in omegaGCN the channel-mixing :math:`1 \times 1`
    convolution :math:`\mathbf{K}` and the activation follow it,
    :math:`\mathbf{X}^{(l+1)} = \sigma(\mathbf{K}^{(l)} \mathbf{X}^{\prime})` (see
    :class:`graphlearn.models.OmegaGCN`). The product :math:`\mathbf{S}\mathbf{X}` runs in
    :func:`graphlearn.kernels.weighted_aggregate`.

    .. note::
        With :obj:`omega=1` the output equals the propagation of
        :class:`torch_geometric.nn.conv.GCNConv` without its weight and bias; the sibling
        :class:`OmegaGATConv` uses an attention operator for :math:`\mathbf{S}`. The layer
        does not call :meth:`~torch_geometric.nn.conv.MessagePassing.propagate`, so
        propagate hooks and explainer masks have no effect. Index-range and NaN checks are
        skipped while compiling.

    Args:
        channels (int): Size of each input and output node feature.
        omega (str or torch.nn.Parameter, optional): Granularity of :math:`\omega`:
            :obj:`"channel"` (one per channel, shape :obj:`(channels,)`), :obj:`"layer"`
            (one scalar, shape :obj:`(1,)`), :obj:`"global"` (a scalar meant to be shared:
            pass this layer's :obj:`omega` to the others), or a
            :class:`torch.nn.Parameter` of shape :obj:`(1,)` or :obj:`(channels,)` shared
            with other layers. (default: :obj:`"channel"`)
        improved (bool, optional): If set to :obj:`True`, use
            :math:`\mathbf{\hat{A}} = \mathbf{A} + 2\mathbf{I}`. (default: :obj:`False`)
        cached (bool, optional): If set to :obj:`True`, cache the normalised edge weights
            of the first call and reuse them; only for transductive full-graph training
            where the graph never changes. (default: :obj:`False`)
        add_self_loops (bool, optional): Add self-loops before normalising; defaults to
            :obj:`normalize`. (default: :obj:`None`)
        normalize (bool, optional): Compute the symmetric normalisation on the fly. With
            :obj:`False`, :obj:`edge_weight` is used as :math:`\mathbf{S}` as given (all
            ones if absent) and no self-loops are added. (default: :obj:`True`)
        omega_scale (float, optional): The layer applies
            :math:`\omega = s\,\theta` with :math:`s` = :obj:`omega_scale` and
            :math:`\theta` the stored parameter :obj:`self.omega`, initialised to 1: omega
            starts at :math:`s`, and an optimiser such as Adam, whose steps do not depend on
            the gradient's scale, moves it :math:`s` times as far per step. Deep omega stacks
            use :math:`s < 1` (see :class:`graphlearn.models.OmegaGCN`'s
            :obj:`diffusion_time`). (default: :obj:`1.0`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing` (:obj:`flow` is honoured).

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, F)`
    """

    def __init__(
        self,
        channels: int,
        omega: str | Parameter = "channel",
        improved: bool = False,
        cached: bool = False,
        add_self_loops: bool | None = None,
        normalize: bool = True,
        omega_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        aggr = kwargs.get("aggr", "add")
        if aggr not in ("add", "sum"):
            raise InvalidArgumentError(
                f"OmegaGCNConv sums weighted messages, so aggr must be 'add' (the default), got "
                f"{aggr!r}; drop the aggr argument"
            )
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise InvalidArgumentError(
                f"channels of OmegaGCNConv must be an integer >= 1, got {channels!r}"
            )
        if add_self_loops is None:
            add_self_loops = normalize
        if add_self_loops and not normalize:
            raise InvalidArgumentError(
                "OmegaGCNConv cannot add self-loops when normalize=False (the given edge_weight "
                "is used as S as is); add them to the graph beforehand or set normalize=True"
            )
        self.channels = channels
        self.improved = improved
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self.omega, self.omega_granularity = build_omega(omega, channels, _CALLER)
        self.omega_scale = check_omega_scale(omega_scale, _CALLER)
        self._cached_edge_index: tuple[Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.omega.fill_(1.0)
        self._cached_edge_index = None

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        r"""Run the layer.

        Args:
            x (torch.Tensor): Node features :obj:`(|V|, channels)`.
            edge_index (torch.Tensor): Edge indices, :obj:`(2, |E|)`, long or int32.
            edge_weight (torch.Tensor, optional): Edge weights :obj:`(|E|,)`.
                (default: :obj:`None`)
        """
        self._check_inputs(x, edge_index, edge_weight)
        num_nodes = x.size(0)
        edge_index = edge_index.long()
        if self.normalize:
            cache = self._cached_edge_index
            if cache is None:
                edge_index, edge_weight = gcn_norm(edge_index, edge_weight, num_nodes,
                                                   self.improved, self.add_self_loops, self.flow,
                                                   x.dtype)
                if self.cached:
                    self._cached_edge_index = (edge_index, edge_weight)
            else:
                edge_index, edge_weight = cache
        if edge_weight is not None and edge_weight.dtype != x.dtype:
            edge_weight = edge_weight.to(x.dtype)
        # Row j of edge_index holds the message sources, row i their destinations.
        j, i = (0, 1) if self.flow == "source_to_target" else (1, 0)
        sx = weighted_aggregate(x, edge_index[j], edge_index[i], edge_weight, num_nodes)
        return omega_mix(x, sx, effective_omega(self.omega, self.omega_scale))

    def _check_inputs(self, x: Any, edge_index: Any, edge_weight: Any) -> None:
        values = check_graph_input(x, edge_index, self.channels, self.omega, _CALLER)
        if edge_weight is None:
            return
        if not isinstance(edge_weight, Tensor) or not edge_weight.is_floating_point():
            got = edge_weight.dtype if isinstance(edge_weight, Tensor) else type(edge_weight).__name__
            raise DTypeError(
                f"edge_weight passed to OmegaGCNConv must be a floating-point tensor, got {got}; "
                f"convert it with edge_weight.float()"
            )
        num_edges = edge_index.size(1)
        if edge_weight.shape != (num_edges,):
            raise ShapeError(
                f"edge_weight passed to OmegaGCNConv must have shape ({num_edges},), one weight "
                f"per edge of edge_index, got {tuple(edge_weight.shape)}"
            )
        check_same_device(("x", x), ("edge_weight", edge_weight), caller=_CALLER)
        if values and not bool(torch.isfinite(edge_weight).all()):
            raise NonFiniteError(
                "edge_weight passed to OmegaGCNConv holds NaN or infinite values; impute or drop "
                "them (e.g. torch.nan_to_num(edge_weight))"
            )

    def __repr__(self) -> str:
        scale = f", omega_scale={self.omega_scale:g}" if self.omega_scale != 1.0 else ""
        return (f"{self.__class__.__name__}({self.channels}, "
                f"omega={self.omega_granularity!r}{scale})")
