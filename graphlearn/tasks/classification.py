"""Classification tasks: LightningModules binding a model, a loss and metrics.

Following Lightning's model-vs-system split, the model is a plain ``nn.Module`` from
:mod:`graphlearn.models` that knows nothing of the trainer; a task owns the steps, the
loss, the metrics and the optimiser. Tasks rebuild their model from the registry name and
hyperparameters saved with ``save_hyperparameters()``, so a checkpoint restores them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError
from graphlearn.models import MODELS
from graphlearn.models.registry import call_model
from graphlearn.tasks.metrics import METRICS
from graphlearn.train.optim import build_optimization

__all__ = ["ClassificationTask", "NodeClassificationTask", "GraphClassificationTask", "build_model"]

def build_model(name: str, task: TaskKind, in_channels: int, out_channels: int, *,
                edge_dim: int | None = None, graph_stats: dict[str, int] | None = None,
                **hyperparameters: Any) -> torch.nn.Module:
    """Build registered model ``name`` for ``task``, checking its hyperparameter names.

    ``edge_dim`` (the dataset's edge-feature size) and each entry of ``graph_stats`` (e.g.
    ``num_nodes``, ``num_relations``: what a featureless or relational model must know of
    the graph) are passed to models whose constructor takes an argument of that name,
    unless the hyperparameters set it.
    """
    import inspect

    spec = MODELS.get(name)
    if task not in spec.tasks:
        served = ", ".join(sorted(t.value for t in spec.tasks))
        raise ConfigError(
            f"model {name!r} does not serve {task.value} (it serves {served}); choose another "
            f"model (`graphlearn models list`)"
        )
    params = inspect.signature(spec.cls).parameters
    # the task decides node- vs graph-level output; graph tasks may pick the pooling
    fixed = {"in_channels", "out_channels"} | ({"readout"} if task is not TaskKind.GRAPH_CLASSIFICATION
                                                else set())
    allowed = sorted(p for p in params if p not in fixed and params[p].kind is not
                     inspect.Parameter.VAR_KEYWORD)
    for key in hyperparameters:
        if key not in allowed:
            raise ConfigError(
                f"config key 'model.{key}' is not a hyperparameter of model {name!r}; valid keys: "
                f"{', '.join(allowed)}"
            )
    kwargs = dict(hyperparameters)
    if edge_dim is not None and "edge_dim" in params:
        kwargs.setdefault("edge_dim", edge_dim)
    for key, value in (graph_stats or {}).items():
        if key in params:
            kwargs.setdefault(key, value)
    if "readout" in params:
        if task is TaskKind.GRAPH_CLASSIFICATION:
            kwargs.setdefault("readout", "mean")
        else:
            kwargs["readout"] = None
    try:
        return spec.cls(in_channels, out_channels, **kwargs)
    except TypeError as exc:  # a value of the wrong type reached the constructor
        raise ConfigError(f"model {name!r} rejected its hyperparameters {hyperparameters}: {exc}"
                          ) from exc


class ClassificationTask(L.LightningModule):
    """Shared logic of node and graph classification: cross-entropy, metrics, optimiser.

    Subclasses define :meth:`_logits_and_targets`, which maps a batch and a stage
    (``"train"``, ``"val"``, ``"test"``) to the logits and targets scored for that stage.

    Args:
        model (str): Registered model name.
        model_kwargs (dict): Model hyperparameters.
        in_channels (int): Input feature size (from the dataset).
        num_classes (int): Number of classes (from the dataset).
        edge_dim (int, optional): Edge-feature size of the dataset, for models that use it.
        graph_stats (dict, optional): Graph statistics for models that take them
            (``num_nodes``, ``num_relations``, ...); see :func:`build_model`.
        metric (str): Name of the model-selection metric (``graphlearn.tasks.metrics``).
        optimizer (str): ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr (float): Learning rate.
        weight_decay (float): L2 penalty of the optimiser.
        param_groups (dict, optional): Per-parameter options by name pattern; see
            :func:`graphlearn.train.optim.parameter_groups`.
        lr_decay (float): Factor applied to the learning rate after every epoch (1: constant).
    """

    kind: TaskKind

    def __init__(
        self,
        model: str,
        model_kwargs: dict[str, Any] | None = None,
        in_channels: int = 1,
        num_classes: int = 2,
        edge_dim: int | None = None,
        graph_stats: dict[str, int] | None = None,
        metric: str = "accuracy",
        optimizer: str = "adam",
        lr: float = 0.005,
        weight_decay: float = 5e-4,
        param_groups: dict[str, dict[str, float]] | None = None,
        lr_decay: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model, self.kind, in_channels, num_classes, edge_dim=edge_dim,
                                 graph_stats=graph_stats,
                                 **(model_kwargs or {}))
        self.metric_name = METRICS.canonical(metric)
        self._metric = METRICS.get(metric)
        self._outputs: dict[str, list[tuple[Tensor, Tensor]]] = {"val": [], "test": []}

    @classmethod
    def from_config(cls, cfg, dataset) -> ClassificationTask:
        """The task ``cfg`` describes, sized for ``dataset``."""
        from graphlearn.train.fit import _graph_stats

        if cfg.task:
            raise ConfigError(f"config section 'task' ({', '.join(cfg.task)}) configures link "
                              f"prediction; {cls.kind.value} takes no task options")
        return cls(
            model=cfg.model.name,
            model_kwargs=cfg.model.hyperparameters(),
            in_channels=dataset.num_features,
            num_classes=dataset.num_classes,
            edge_dim=dataset.num_edge_features or None,
            graph_stats=_graph_stats(dataset),
            metric=cfg.eval.metric or dataset.info.metric,
            optimizer=cfg.optim.name,
            lr=cfg.optim.lr,
            weight_decay=cfg.optim.weight_decay,
            param_groups=cfg.optim.param_groups or None,
            lr_decay=cfg.optim.lr_decay,
        )

    @staticmethod
    def make_loaders(dataset, cfg):
        from graphlearn.train.datamodule import make_loaders

        return make_loaders(dataset, cfg)

    def forward(self, batch) -> Tensor:
        """Inference: logits for every node (node tasks) or graph (graph tasks) of ``batch``.

        Models that need more of the graph than features and edges (relational models need
        ``edge_type``) name those batch attributes in a ``graph_inputs`` class attribute;
        they are passed as keyword arguments.
        """
        return call_model(self.model, batch)

    def _logits_and_targets(self, batch, stage: str) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> Tensor:
        logits, target = self._logits_and_targets(batch, "train")
        loss = F.cross_entropy(logits, target)
        size = target.numel()
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=size)
        acc = (logits.detach().argmax(dim=-1) == target).float().mean()
        self.log("train/accuracy", acc, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch, stage: str) -> None:
        logits, target = self._logits_and_targets(batch, stage)
        self._outputs[stage].append((logits.detach(), target.detach()))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        outputs = self._outputs[stage]
        if not outputs:
            return
        logits = torch.cat([o[0] for o in outputs])
        target = torch.cat([o[1] for o in outputs])
        outputs.clear()
        self.log(f"{stage}/loss", F.cross_entropy(logits, target), batch_size=target.numel())
        self.log(f"{stage}/{self.metric_name}", self._metric(logits, target),
                 batch_size=target.numel())

    def configure_optimizers(self):
        hp = self.hparams
        return build_optimization(self.model, hp.optimizer, hp.lr, hp.weight_decay,
                                  hp.get("param_groups"), hp.get("lr_decay", 1.0))


class NodeClassificationTask(ClassificationTask):
    """Full-batch node classification: each batch is the whole graph; masks pick the split."""

    kind = TaskKind.NODE_CLASSIFICATION

    def _logits_and_targets(self, batch, stage: str) -> tuple[Tensor, Tensor]:
        mask = batch[f"{stage}_mask"]
        logits = self(batch)
        return logits[mask], batch.y[mask]


class GraphClassificationTask(ClassificationTask):
    """Mini-batch graph classification: one label per graph, pooled by the model's readout."""

    kind = TaskKind.GRAPH_CLASSIFICATION

    def _logits_and_targets(self, batch, stage: str) -> tuple[Tensor, Tensor]:
        return self(batch), batch.y.view(-1)


TASKS = {
    TaskKind.NODE_CLASSIFICATION: NodeClassificationTask,
    TaskKind.GRAPH_CLASSIFICATION: GraphClassificationTask,
}
