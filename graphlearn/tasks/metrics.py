"""Evaluation metrics for classification tasks, by name.

Each metric takes logits ``(N, num_classes)`` and integer targets ``(N,)`` and returns a
float; higher is better for every metric registered here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlearn.errors import InvalidArgumentError
from graphlearn.registry import Registry

__all__ = ["METRICS", "RANKING_METRICS", "accuracy", "roc_auc", "macro_f1"]

METRICS: Registry = Registry("metric")

#: Link-prediction metrics (computed from filtered ranks by :mod:`graphlearn.kg.evaluation`,
#: not from logits, so they are names only here: the trainer checks ``eval.metric`` against them).
RANKING_METRICS = ("mrr", "mr", "hits@1", "hits@3", "hits@10")


@METRICS.register("accuracy", aliases=("acc",))
def accuracy(logits: Tensor, target: Tensor) -> float:
    """Fraction of rows whose arg-max class equals the target."""
    if target.numel() == 0:
        return float("nan")
    return float((logits.argmax(dim=-1) == target).float().mean())


@METRICS.register("roc_auc", aliases=("auc", "rocauc"))
def roc_auc(logits: Tensor, target: Tensor) -> float:
    """Area under the ROC curve; binary (score of class 1) or one-vs-rest macro average."""
    from sklearn.metrics import roc_auc_score

    if target.numel() == 0 or target.unique().numel() < 2:
        raise InvalidArgumentError(
            "roc_auc needs both classes among the evaluated targets; use metric=accuracy or a "
            "split with positive and negative examples"
        )
    prob = torch.softmax(logits.detach().float(), dim=-1).cpu().numpy()
    y = target.cpu().numpy()
    if prob.shape[1] == 2:
        return float(roc_auc_score(y, prob[:, 1]))
    return float(roc_auc_score(y, prob, multi_class="ovr", average="macro"))


@METRICS.register("macro_f1", aliases=("f1",))
def macro_f1(logits: Tensor, target: Tensor) -> float:
    """Unweighted mean of per-class F1 scores."""
    from sklearn.metrics import f1_score

    pred = logits.argmax(dim=-1).cpu().numpy()
    return float(f1_score(target.cpu().numpy(), pred, average="macro"))
