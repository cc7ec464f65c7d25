"""Core data layer: the dataset protocol and registry, file lookup and input validators."""

from graphlearn.data.dataset import (
    DATASETS,
    DatasetInfo,
    DatasetSpec,
    GraphClassificationDataset,
    NodeClassificationDataset,
    TaskKind,
    register_dataset,
)
from graphlearn.data.validation import (
    check_edge_index,
    check_node_features,
    check_same_device,
    validate,
    value_checks_enabled,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetSpec",
    "GraphClassificationDataset",
    "NodeClassificationDataset",
    "TaskKind",
    "register_dataset",
    "check_edge_index",
    "check_node_features",
    "check_same_device",
    "validate",
    "value_checks_enabled",
]
