"""Tasks: a model, its loss, metrics and batching for one task kind (LightningModules)."""

from graphlearn.tasks.classification import (
    TASKS,
    ClassificationTask,
    GraphClassificationTask,
    NodeClassificationTask,
    build_model,
)
from graphlearn.tasks.metrics import METRICS

__all__ = [
    "TASKS",
    "METRICS",
    "ClassificationTask",
    "GraphClassificationTask",
    "NodeClassificationTask",
    "build_model",
]
