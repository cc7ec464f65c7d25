"""RED-GNN's per-epoch re-split of the known triples into a fact graph and training queries.

The official RED-GNN and RUN-GNN training on facts/train datasets (family, UMLS, ...) shuffles
facts + train after every epoch and splits them again: a fraction ``fact_ratio`` (3/4 in the
official ``shuffle_train``) becomes the graph the model reasons over, the rest the epoch's
queries. ``task.train_queries: resplit`` reproduces that.

The split of an epoch is a pure function of ``(seed, epoch)``, so the two places that need it
agree without sharing state: :class:`ResplitSampler`, which the training loader draws the
epoch's queries from (Lightning calls its ``set_epoch`` before every epoch), and
:class:`~graphlearn.kg.task.LinkPredictionTask`, which builds the epoch's fact graph from the
complement. A resumed run draws the same splits.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from graphlearn.errors import ConfigError

__all__ = ["ResplitSampler", "resplit"]


def resplit(num_known: int, fact_ratio: float, seed: int, epoch: int) -> tuple[Tensor, Tensor]:
    """``(fact_index, query_index)``: a random partition of ``range(num_known)`` for ``epoch``.

    ``fact_index`` holds ``floor(num_known * fact_ratio)`` positions (sorted), ``query_index``
    the others in random order (the epoch's query order).
    """
    if not 0 < fact_ratio < 1:
        raise ConfigError(f"task.fact_ratio must be in (0, 1) (RED-GNN uses 0.75), got {fact_ratio}")
    bar = int(num_known * fact_ratio)
    if bar == 0 or bar == num_known:
        raise ConfigError(f"task.fact_ratio={fact_ratio} leaves an empty fact graph or no queries "
                          f"out of {num_known} known triples; choose a ratio nearer 0.75")
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    perm = torch.randperm(num_known, generator=gen)
    return perm[:bar].sort().values, perm[bar:]


class ResplitSampler(Sampler[int]):
    """Indices of the training queries of the current epoch's :func:`resplit`.

    Args:
        num_known (int): Known triples (the training loader's dataset).
        fact_ratio (float): Fraction of them that forms the epoch's fact graph.
        seed (int): The run's seed.
    """

    def __init__(self, num_known: int, fact_ratio: float, seed: int) -> None:
        self.num_known, self.fact_ratio, self.seed = int(num_known), float(fact_ratio), int(seed)
        self.epoch = 0
        resplit(self.num_known, self.fact_ratio, self.seed, 0)  # validate the ratio now

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        _, queries = resplit(self.num_known, self.fact_ratio, self.seed, self.epoch)
        return iter(queries.tolist())

    def __len__(self) -> int:
        return self.num_known - int(self.num_known * self.fact_ratio)
