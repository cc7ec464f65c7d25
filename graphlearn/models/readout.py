"""Graph-level readout: pool node embeddings per graph of a mini-batch."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from graphlearn.errors import InvalidArgumentError

__all__ = ["Readout"]

_POOLS = {"mean": global_mean_pool, "sum": global_add_pool, "add": global_add_pool,
          "max": global_max_pool}


class Readout(torch.nn.Module):
    """Pool node features ``(|V|, F)`` into graph features ``(num_graphs, F)`` by ``batch``.

    Args:
        mode (str): ``"mean"``, ``"sum"`` (``"add"``) or ``"max"``.
    """

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in _POOLS:
            raise InvalidArgumentError(
                f"readout={mode!r} is not a pooling mode; use one of {', '.join(sorted(_POOLS))}"
            )
        self.mode = mode

    def forward(self, x: Tensor, batch: Tensor | None) -> Tensor:
        return _POOLS[self.mode](x, batch)

    def __repr__(self) -> str:
        return f"Readout({self.mode!r})"
