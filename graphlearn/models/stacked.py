"""The shared skeleton of plain stacked message-passing networks (GCN, GAT, GATv2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.data.validation import check_positive_int
from graphlearn.errors import InvalidArgumentError
from graphlearn.models.readout import Readout

__all__ = ["StackedGNN"]


class StackedGNN(torch.nn.Module):
    """``num_layers`` convolutions with dropout before each and an activation after hidden ones.

    Node-level (``readout=None``): the last convolution outputs the logits. Graph-level
    (``readout`` set): all convolutions are hidden, node features are pooled per graph,
    then dropout and a linear head give the logits. ``self.convs[i]`` is layer ``i`` (the
    convention :mod:`graphlearn.analysis` hooks).

    Subclasses validate and store their own hyperparameters, call ``super().__init__`` and
    then :meth:`_stack` with factories for the hidden and output convolutions.

    Args:
        in_channels (int): Input node features.
        out_channels (int): Number of classes.
        num_layers (int): Number of convolutions (>= 1).
        dropout (float): Feature dropout before each convolution, in [0, 1).
        readout (str, optional): Pooling for graph-level output, ``None`` for node level.
        act (callable): Activation after hidden convolutions.
        uses_edge_attr (bool): Whether the convolutions take ``edge_attr``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int, dropout: float,
                 readout: str | None, act: Callable[[Tensor], Tensor], uses_edge_attr: bool = False
                 ) -> None:
        super().__init__()
        name = type(self).__name__
        check_positive_int(num_layers, "num_layers", caller=name)
        if not 0.0 <= float(dropout) < 1.0:
            raise InvalidArgumentError(f"dropout of {name} must lie in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.act = act
        self.uses_edge_attr = uses_edge_attr
        self.readout = Readout(readout) if readout is not None else None
        self.convs = torch.nn.ModuleList()
        self.head: torch.nn.Linear | None = None

    def _stack(self, hidden_conv: Callable[[int], tuple[torch.nn.Module, int]],
               output_conv: Callable[[int], torch.nn.Module]) -> None:
        """Build the layers: ``hidden_conv(width) -> (conv, new_width)``, ``output_conv(width)``."""
        width = self.in_channels
        num_hidden = self.num_layers - 1 if self.readout is None else self.num_layers
        for _ in range(num_hidden):
            conv, width = hidden_conv(width)
            self.convs.append(conv)
        if self.readout is None:
            self.convs.append(output_conv(width))
        else:
            self.head = torch.nn.Linear(width, self.out_channels)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        if self.head is not None:
            self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        """Logits per node, or per graph of ``batch`` when the model has a ``readout``."""
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index, edge_attr) if self.uses_edge_attr else conv(x, edge_index)
            if i < last or self.readout is not None:
                x = self.act(x)
        if self.readout is not None:
            x = self.readout(x, batch)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = self.head(x)
        return x

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_layers={self.num_layers})")
