"""The dataset protocol: what every dataset knows about itself, and the registry.

A dataset is registered with a :class:`DatasetInfo` (task kind, default metric, splits,
source URL, citation, licence, raw files) and a loader. :func:`graphlearn.datasets.load`
looks the name up and returns a dataset object: :class:`NodeClassificationDataset` or
:class:`GraphClassificationDataset` in the core (task modules add their own kinds).
Graphs inside are plain PyG ``Data`` objects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from graphlearn.errors import InvalidArgumentError
from graphlearn.registry import Registry

__all__ = [
    "TaskKind",
    "DatasetInfo",
    "DatasetSpec",
    "DATASETS",
    "register_dataset",
    "NodeClassificationDataset",
    "GraphClassificationDataset",
]


class TaskKind(str, enum.Enum):
    """The learning task a dataset poses; decides which task (and trainer loop) runs it."""

    NODE_CLASSIFICATION = "node_classification"
    GRAPH_CLASSIFICATION = "graph_classification"
    LINK_PREDICTION = "link_prediction"
    PAIR_PREDICTION = "pair_prediction"
    GENERATION = "generation"
    TEXT_GRAPH_QA = "text_graph_qa"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DatasetInfo:
    """Everything graphlearn knows about a dataset before loading it.

    Args:
        name: Registry name (``"cora"``).
        task: The task kind.
        description: One line on what the data is.
        metric: Default evaluation metric (``"accuracy"``, ``"roc_auc"``, ``"mrr"``).
        splits: How train/validation/test are defined.
        url: Canonical source the raw files are downloaded from.
        citation: Paper to cite.
        license: Licence of the data, as far as known.
        raw_dir: Folder of the raw files relative to a data root (``"planetoid/cora/raw"``),
            the layout of ``$GRAPHLEARN_DATA``.
        raw_files: Raw file names inside ``raw_dir`` (empty for embedded datasets).
        stats: Summary numbers (nodes, edges, features, classes, graphs).
    """

    name: str
    task: TaskKind
    description: str
    metric: str
    splits: str
    url: str
    citation: str
    license: str
    raw_dir: str = ""
    raw_files: tuple[str, ...] = ()
    stats: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["task"] = self.task.value
        out["raw_files"] = list(self.raw_files)
        return out


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: the dataset's info and the function that loads it.

    ``loader(info, root, **options)`` returns the dataset object.
    """

    info: DatasetInfo
    loader: Callable[..., Any]


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", hint="run `graphlearn datasets list` to see them all"
)


def register_dataset(info: DatasetInfo, *, aliases: tuple[str, ...] = ()):
    """Decorator registering ``loader(info, root, **options)`` under ``info.name``."""

    def wrap(loader: Callable[..., Any]) -> Callable[..., Any]:
        DATASETS.register(info.name, DatasetSpec(info, loader), aliases=aliases)
        return loader

    return wrap


class NodeClassificationDataset:
    """One graph whose nodes carry class labels, with train/validation/test masks.

    Attributes:
        info (DatasetInfo): Metadata.
        data (torch_geometric.data.Data): ``x`` (|V|, F) float, ``edge_index`` (2, |E|) long,
            ``y`` (|V|,) long, and boolean ``train_mask``/``val_mask``/``test_mask`` of
            shape (|V|,) or (|V|, S) for datasets with S official splits.
    """

    task = TaskKind.NODE_CLASSIFICATION

    def __init__(self, info: DatasetInfo, data) -> None:
        self.info = info
        self.data = data

    @property
    def num_features(self) -> int:
        return int(self.data.x.size(1))

    @property
    def num_classes(self) -> int:
        return int(self.data.y.max()) + 1

    @property
    def num_edge_features(self) -> int:
        return int(self.data.num_edge_features)

    @property
    def num_splits(self) -> int:
        mask = self.data.train_mask
        return 1 if mask.dim() == 1 else int(mask.size(1))

    def split(self, index: int = 0):
        """Return ``data`` with 1-D masks of split ``index`` (identity for single-split data)."""
        if self.num_splits == 1:
            if index != 0:
                raise InvalidArgumentError(f"{self.info.name} has one split; got split={index}")
            return self.data
        if not 0 <= index < self.num_splits:
            raise InvalidArgumentError(
                f"{self.info.name} has {self.num_splits} splits; split={index} is out of range"
            )
        out = self.data.clone()
        for key in ("train_mask", "val_mask", "test_mask"):
            out[key] = self.data[key][:, index]
        return out

    def split_sizes(self) -> dict[str, int]:
        d = self.split(0)
        return {k: int(d[f"{k}_mask"].sum()) for k in ("train", "val", "test")}

    def __repr__(self) -> str:
        d = self.data
        return (f"{type(self).__name__}({self.info.name!r}, nodes={d.num_nodes}, "
                f"edges={d.num_edges}, features={self.num_features}, classes={self.num_classes})")


class GraphClassificationDataset:
    """A collection of graphs, each with one class label, and a train/validation/test split.

    Attributes:
        info (DatasetInfo): Metadata.
        graphs (torch_geometric.data.InMemoryDataset): The graphs, each a ``Data`` with
            ``y`` of shape (1,); ``graphs.y`` holds all labels.
        split_index (dict[str, Tensor]): ``train``/``val``/``test`` graph indices.
    """

    task = TaskKind.GRAPH_CLASSIFICATION

    def __init__(self, info: DatasetInfo, graphs, split_index: dict[str, Tensor]) -> None:
        self.info = info
        self.graphs = graphs
        self.split_index = split_index

    @property
    def num_features(self) -> int:
        return int(self.graphs.num_features)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def num_edge_features(self) -> int:
        return int(self.graphs.num_edge_features)

    @property
    def labels(self) -> Tensor:
        """Graph labels, shape (num_graphs,), long."""
        return self.graphs.y.view(-1)

    def subset(self, index: Tensor):
        return self.graphs[index]

    def split_sizes(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in self.split_index.items()}

    def folds(self, k: int = 10, *, seed: int = 0) -> Iterator[dict[str, Tensor]]:
        """Stratified k-fold cross-validation splits.

        Fold ``i`` tests on the i-th stratified fold, validates on the next fold and trains
        on the rest (the protocol of Errica et al., 2020, minus their inner model selection).
        """
        from sklearn.model_selection import StratifiedKFold

        if k < 2:
            raise InvalidArgumentError(f"cross-validation needs k >= 2 folds, got k={k}")
        y = self.labels.numpy()
        skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        test_folds = [torch.as_tensor(test) for _, test in skf.split(y, y)]
        for i in range(k):
            val = test_folds[(i + 1) % k]
            test = test_folds[i]
            rest = torch.ones(len(y), dtype=torch.bool)
            rest[val] = False
            rest[test] = False
            yield {"train": rest.nonzero().view(-1), "val": val, "test": test}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.info.name!r}, graphs={len(self.graphs)}, "
                f"features={self.num_features}, classes={self.num_classes})")
