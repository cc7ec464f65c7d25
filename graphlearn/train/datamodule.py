"""Data loaders for each task kind: full-batch for node tasks, mini-batches for graphs."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from graphlearn.data.dataset import GraphClassificationDataset, NodeClassificationDataset
from graphlearn.data.validation import validate
from graphlearn.errors import ConfigError, EmptyGraphError

__all__ = ["make_loaders"]


def _only(batch):
    return batch[0]


def make_loaders(dataset, cfg) -> dict[str, DataLoader]:
    """Return ``{"train", "val", "test"}`` loaders for ``dataset`` under config ``cfg``.

    Node datasets yield the one (validated) graph per epoch in every stage; the stage's
    mask picks the nodes. Graph datasets yield shuffled (train) or ordered mini-batches of
    ``cfg.trainer.batch_size`` graphs from the dataset's split.
    """
    if isinstance(dataset, NodeClassificationDataset):
        data = validate(dataset.split(cfg.dataset.split), caller="graphlearn.fit")
        for stage in ("train", "val", "test"):
            if int(data[f"{stage}_mask"].sum()) == 0:
                raise EmptyGraphError(f"dataset {dataset.info.name!r} has no {stage} nodes in "
                                      f"split {cfg.dataset.split}")
        return {stage: DataLoader([data], batch_size=1, collate_fn=_only)
                for stage in ("train", "val", "test")}
    if isinstance(dataset, GraphClassificationDataset):
        from torch_geometric.loader import DataLoader as PyGLoader

        if cfg.dataset.split != 0:
            raise ConfigError("dataset.split selects among official node splits; graph datasets "
                              "have one split (set dataset.split=0)")
        for i in range(len(dataset.graphs)):
            validate(dataset.graphs[i], caller=f"graphlearn.fit (graph {i})")
        gen = torch.Generator().manual_seed(int(cfg.seed))
        loaders = {}
        for stage in ("train", "val", "test"):
            idx = dataset.split_index[stage]
            if idx.numel() == 0:
                raise EmptyGraphError(f"dataset {dataset.info.name!r} has no {stage} graphs")
            loaders[stage] = PyGLoader(dataset.graphs[idx], batch_size=cfg.trainer.batch_size,
                                       shuffle=stage == "train", generator=gen,
                                       num_workers=cfg.trainer.num_workers)
        return loaders
    raise ConfigError(f"`graphlearn fit` cannot train on {type(dataset).__name__} yet")
