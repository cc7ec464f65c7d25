r"""omegaGCN and omegaGAT networks (Eliasof, Ruthotto and Treister, ICML 2023).

Both follow the paper's architecture: an opening embedding, ``num_layers`` omega-layers
:math:`\mathbf{X}^{(l+1)} = \mathrm{ReLU}\big(\mathbf{K}^{(l)} ((1 - \boldsymbol{\omega}^{(l)})
\mathbf{X}^{(l)} + \boldsymbol{\omega}^{(l)} \mathbf{S}^{(l)} \mathbf{X}^{(l)})\big)` and a
closing linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, remove_self_loops

from graphlearn.data.dataset import TaskKind
from graphlearn.data.validation import (
    check_edge_index,
    check_node_features,
    check_positive_int,
    value_checks_enabled,
)
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout
from graphlearn.models.registry import register_model
from graphlearn.nn import OmegaGATConv, OmegaGCNConv
from graphlearn.nn.conv.omega_gcn_conv import OMEGA_GRANULARITIES

__all__ = ["OmegaGAT", "OmegaGCN", "OmegaLayer"]


class OmegaLayer(torch.nn.Module):
    r"""One omegaGNN layer: omega-propagation, a :math:`1 \times 1` convolution, ReLU.

    .. math::
        \mathbf{X}^{(l+1)} = \mathrm{ReLU}\left(\mathbf{X}^{\prime} \mathbf{K}^{\top}\right),
        \qquad \mathbf{X}^{\prime} = \mathrm{conv}(\mathbf{X}^{(l)}),

    where :obj:`conv` is an :class:`~graphlearn.nn.OmegaGCNConv` or
    :class:`~graphlearn.nn.OmegaGATConv` and :math:`\mathbf{K}` (no bias) starts as the
    identity, as in the authors' code, so a freshly built deep network is a stable
    propagation of the opening embedding.

    With ``channel_mixing=False`` the layer has no :math:`\mathbf{K}` (it stays the
    identity): :math:`\mathbf{X}^{(l+1)} = \mathrm{ReLU}(\mathbf{X}^{\prime})`, and the
    omegas are the only parameters of the layer.

    Args:
        conv (torch.nn.Module): The omega propagation layer.
        channels (int): Its width.
        channel_mixing (bool, optional): Learn :math:`\mathbf{K}`. (default: :obj:`True`)
    """

    def __init__(self, conv: torch.nn.Module, channels: int, channel_mixing: bool = True) -> None:
        super().__init__()
        self.conv = conv
        self.lin = torch.nn.Linear(channels, channels, bias=False) if channel_mixing else None
        self.reset_parameters()

    @property
    def omega(self) -> Parameter:
        """The omega parameter of the propagation (shared for ``omega="global"``)."""
        return self.conv.omega

    @property
    def omega_scale(self) -> float:
        """The factor between the stored omega and the one applied (1 unless ``diffusion_time``)."""
        return self.conv.omega_scale

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()
        if self.lin is not None:
            with torch.no_grad():
                self.lin.weight.copy_(torch.eye(self.lin.in_features))

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        if edge_weight is None:
            x = self.conv(x, edge_index)
        else:
            x = self.conv(x, edge_index, edge_weight)
        return F.relu(x if self.lin is None else self.lin(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conv})"


class _OmegaNetwork(torch.nn.Module):
    """Opening embedding, ``self.convs`` (one :class:`OmegaLayer` each), closing classifier."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 num_layers: int, dropout: float, omega: str, readout: str | None,
                 channel_mixing: bool = True, conv_options: dict | None = None,
                 diffusion_time: float | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        check_positive_int(num_layers, "num_layers", caller=name)
        check_positive_int(hidden_channels, "hidden_channels", caller=name)
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"dropout of {name} must lie in [0, 1), got {dropout!r}")
        if omega not in OMEGA_GRANULARITIES:
            raise InvalidArgumentError(
                f"omega of {name} must be one of {', '.join(map(repr, OMEGA_GRANULARITIES))}, "
                f"got {omega!r}"
            )
        if diffusion_time is not None and (
                isinstance(diffusion_time, bool) or not isinstance(diffusion_time, (int, float))
                or not 0.0 < float(diffusion_time) < float("inf")):
            raise InvalidArgumentError(
                f"diffusion_time of {name} must be a finite number > 0 or None, got "
                f"{diffusion_time!r}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.omega_granularity = omega
        self.channel_mixing = bool(channel_mixing)
        self.diffusion_time = None if diffusion_time is None else float(diffusion_time)
        # stacks deeper than diffusion_time apply omega = (T / L) * theta (theta starts at 1)
        self.omega_scale = (1.0 if diffusion_time is None
                            else min(1.0, float(diffusion_time) / num_layers))
        self.conv_options = dict(conv_options or {})
        self.open = torch.nn.Linear(in_channels, hidden_channels)
        # "global": one scalar shared by every layer (a Parameter handed to each conv).
        shared = Parameter(torch.ones(1)) if omega == "global" else None
        self.convs = torch.nn.ModuleList(
            OmegaLayer(self._make_conv(shared if shared is not None else omega), hidden_channels,
                       self.channel_mixing)
            for _ in range(num_layers)
        )
        self.readout = Readout(readout) if readout is not None else None
        if readout is None:
            self.close = torch.nn.Linear(hidden_channels, out_channels)
            self.mlp = None
        else:  # the authors' graph-classification head: pool, linear, ReLU, dropout, linear
            self.mlp = torch.nn.Linear(hidden_channels, hidden_channels)
            self.close = torch.nn.Linear(hidden_channels, out_channels)

    def _make_conv(self, omega: str | Parameter) -> torch.nn.Module:
        raise NotImplementedError

    def _propagation_graph(self, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        """The graph every layer propagates on, computed once per forward."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        self.open.reset_parameters()
        for layer in self.convs:
            layer.reset_parameters()
        if self.mlp is not None:
            self.mlp.reset_parameters()
        self.close.reset_parameters()

    def no_weight_decay(self) -> set[str]:
        """Names of the omega parameters, which the trainer exempts from weight decay.

        Decay pulls omega towards 0, i.e. towards no propagation at all (an MLP); the
        authors' code gives omega its own, near-zero decay.
        """
        return {name for name, p in self.named_parameters()
                if any(p is w for w in self.omegas)}

    @property
    def omegas(self) -> list[Parameter]:
        """The omega parameter of each layer (the same object repeated for ``"global"``)."""
        return [layer.omega for layer in self.convs]

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        """Logits per node, or per graph of ``batch`` when built with a ``readout``.

        ``edge_attr`` is accepted for the trainer's calling convention and ignored (the
        omega operators use the graph structure only).
        """
        name = type(self).__name__
        check_node_features(x, ensure_finite=False, allow_empty=True, caller=name)
        values = (not torch.compiler.is_compiling()) and value_checks_enabled(x, edge_index)
        check_edge_index(edge_index, num_nodes=x.size(0), ensure_in_range=values, caller=name)
        edge_index, edge_weight = self._propagation_graph(x, edge_index)
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = F.relu(self.open(x))
        for layer in self.convs:
            x = layer(x, edge_index, edge_weight)
        if self.readout is not None:
            x = self.readout(x, batch)
            x = F.relu(self.mlp(x))
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.close(x)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.num_layers})")


@register_model("omega-gcn", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class OmegaGCN(_OmegaNetwork):
    r"""omegaGCN network from `"Improving Graph Neural Networks with Learnable Propagation
    Operators" <https://arxiv.org/abs/2210.17224>`_ (Eliasof et al., ICML 2023).

    Dropout on the input features, an opening embedding
    :math:`\mathbf{X}^{(0)} = \mathrm{ReLU}(\mathbf{X}_{in}\mathbf{K}_o^\top)`, then
    ``num_layers`` :class:`OmegaLayer` s (:class:`~graphlearn.nn.OmegaGCNConv` with the
    symmetric GCN operator :math:`\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}
    \hat{\mathbf{D}}^{-1/2}`, then an identity-initialised :math:`1 \times 1` convolution
    and ReLU), dropout and a closing linear layer. The normalised operator is computed
    once per forward pass and shared by all layers. With ``readout`` set (graph
    classification), the final node features are pooled per graph and passed through
    linear, ReLU, dropout and linear, as in the authors' TU-dataset model.

    ``self.convs[i]`` is the :class:`OmegaLayer` whose output is the node representation
    after layer :math:`i`; ``self.convs[i].omega`` is its omega.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Width of every omega-layer. (default: :obj:`64`)
        num_layers (int, optional): Number of omega-layers (>= 1). (default: :obj:`2`)
        dropout (float, optional): Dropout on the input features and before the closing
            layer. (default: :obj:`0.5`)
        omega (str, optional): :obj:`"channel"` (per layer and channel), :obj:`"layer"`
            (one per layer) or :obj:`"global"` (one shared by all layers).
            (default: :obj:`"channel"`)
        readout (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` pooling for graph-level
            output, ``None`` for node-level output. (default: :obj:`None`)
        channel_mixing (bool, optional): Learn the :math:`1 \times 1` convolution of each
            layer; :obj:`False` keeps it the identity, so only the omegas are learned between
            the opening and closing layers (far fewer parameters; better on small label sets
            such as the Planetoid splits, see ``docs/results.md``). (default: :obj:`True`)
        diffusion_time (float, optional): Depth-independent omega steps. Each layer's update
            is one explicit step of size :math:`\omega` of a diffusion, so the stack's
            initial omegas add up to the total diffusion time :math:`L`. With
            ``diffusion_time`` :math:`T` and :math:`L > T` layers, every layer applies
            :math:`\omega = (T / L)\,\theta`, the stored :math:`\theta` starting at 1: the
            stack starts with total diffusion :math:`T`, and Adam moves the total as fast as
            in a :math:`T`-layer stack, so training does not change with depth. Stacks of at
            most :math:`T` layers are unchanged (:math:`\omega = \theta`, the paper's).
            :obj:`None` never scales. (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        dropout: float = 0.5,
        omega: str = "channel",
        readout: str | None = None,
        channel_mixing: bool = True,
        diffusion_time: float | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, omega,
                         readout, channel_mixing, diffusion_time=diffusion_time)

    def _make_conv(self, omega: str | Parameter) -> torch.nn.Module:
        # The model normalises once per forward pass and hands S to every layer.
        return OmegaGCNConv(self.hidden_channels, omega=omega, normalize=False,
                            omega_scale=self.omega_scale)

    def _propagation_graph(self, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        return gcn_norm(edge_index.long(), None, x.size(0), add_self_loops=True, dtype=x.dtype)


@register_model("omega-gat", tasks=(TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION))
class OmegaGAT(_OmegaNetwork):
    r"""omegaGAT network from `"Improving Graph Neural Networks with Learnable Propagation
    Operators" <https://arxiv.org/abs/2210.17224>`_ (Eliasof et al., ICML 2023).

    The :class:`OmegaGCN` architecture with :class:`~graphlearn.nn.OmegaGATConv`: each
    layer's operator is a GAT attention matrix (``heads`` heads over channel groups)
    computed from that layer's input. Self-loops are added once per forward pass.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        hidden_channels (int, optional): Width of every omega-layer; divisible by ``heads``.
            (default: :obj:`64`)
        num_layers (int, optional): Number of omega-layers (>= 1). (default: :obj:`2`)
        dropout (float, optional): Dropout on the input features and before the closing
            layer. (default: :obj:`0.5`)
        omega (str, optional): :obj:`"channel"`, :obj:`"layer"` or :obj:`"global"`.
            (default: :obj:`"channel"`)
        heads (int, optional): Attention heads per layer. (default: :obj:`1`)
        attn_dropout (float, optional): Dropout on the attention coefficients.
            (default: :obj:`0.0`)
        readout (str, optional): ``"mean"``, ``"sum"`` or ``"max"`` pooling for graph-level
            output, ``None`` for node-level output. (default: :obj:`None`)
        channel_mixing (bool, optional): Learn the :math:`1 \times 1` convolution of each
            layer (see :class:`OmegaGCN`). (default: :obj:`True`)
        diffusion_time (float, optional): Scale the omega steps of stacks deeper than this
            (see :class:`OmegaGCN`). (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        dropout: float = 0.5,
        omega: str = "channel",
        heads: int = 1,
        attn_dropout: float = 0.0,
        readout: str | None = None,
        channel_mixing: bool = True,
        diffusion_time: float | None = None,
    ) -> None:
        check_positive_int(heads, "heads", caller="OmegaGAT")
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, omega,
                         readout, channel_mixing, {"heads": heads, "dropout": attn_dropout},
                         diffusion_time)
        self.heads = heads
        self.attn_dropout = attn_dropout

    def _make_conv(self, omega: str | Parameter) -> torch.nn.Module:
        return OmegaGATConv(self.hidden_channels, omega=omega, add_self_loops=False,
                            omega_scale=self.omega_scale, **self.conv_options)

    def _propagation_graph(self, x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor | None]:
        edge_index, _ = remove_self_loops(edge_index.long())
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        return edge_index, None
