"""The typed run configuration: one YAML file, validated, overridable key by key.

A config has six sections::

    seed: 0                 # null: draw one, warn, and record it
    dataset: {name: cora, root: null, split: 0, options: {normalize_features: true}}
    model: {name: gatv2, hidden_channels: 8, heads: 8}   # other keys: model hyperparameters
    optim: {name: adam, lr: 0.005, weight_decay: 0.0005}
    trainer: {max_epochs: 200, patience: 100, monitor: metric, batch_size: 32, ...}
    eval: {metric: null, folds: null}   # metric null: the dataset's default
    task: {objective: 1-n}  # options of the task kind's training loop (link prediction)

Every section rejects unknown keys with a :class:`~graphlearn.errors.ConfigError` naming the
key and the valid ones; ``model`` keys are checked against the model's constructor when it
is built.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphlearn.errors import ConfigError

__all__ = [
    "RunConfig",
    "DatasetSection",
    "ModelSection",
    "OptimSection",
    "TrainerSection",
    "EvalSection",
    "load_config",
    "resolve_config",
    "parse_assignment",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetSection(_Section):
    """Which dataset to load and how (``options`` go to ``graphlearn.datasets.load``)."""

    name: str = "karate"
    root: str | None = None
    split: int = Field(0, ge=0, description="which official split, for multi-split datasets")
    options: dict[str, Any] = Field(default_factory=dict)


class ModelSection(BaseModel):
    """The registered model name plus its hyperparameters (any further keys)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str = "gatv2"

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimSection(_Section):
    name: Literal["adam", "adamw", "sgd", "adagrad"] = "adam"
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    lr_decay: float = Field(1.0, gt=0, le=1,
                            description="multiply the learning rate by this after every epoch "
                                        "(exponential schedule); 1 keeps it constant")
    param_groups: dict[str, dict[Literal["lr", "weight_decay"], float]] = Field(
        default_factory=dict,
        description="per-parameter options by fnmatch pattern over parameter names, first match "
                    "wins: {'convs.*.lin.weight': {'lr': 1e-4}}")


class TrainerSection(_Section):
    max_epochs: int = Field(200, ge=1)
    patience: int | None = Field(100, ge=1, description="early-stopping patience in epochs; null disables")
    monitor: Literal["metric", "loss"] = "metric"
    batch_size: int = Field(32, ge=1, description="graphs per batch (graph tasks)")
    accelerator: str = "auto"
    devices: int | str = "auto"
    precision: str = "32-true"
    progress_bar: bool = True
    gradient_clip_val: float | None = Field(None, gt=0)
    num_workers: int = Field(0, ge=0)


class EvalSection(_Section):
    metric: str | None = None
    folds: int | None = Field(
        None, ge=2,
        description="k-fold cross-validation for graph datasets; for node datasets with official "
                    "splits, run the first k of them; report mean and std")
    fold_seed: int = Field(0, description="seed of the stratified fold assignment (graph datasets)")
    checkpoint: Literal["best", "last"] = Field(
        "best", description="weights evaluated on val/test: the best checkpoint by the monitored "
                            "value, or the last epoch's (fixed-epoch protocols such as R-GCN's)")
    layer_stats: bool = Field(
        True, description="write per-layer Dirichlet energy and omega (node tasks) to the run dir")
    every: int = Field(1, ge=1, description="validate every N epochs")
    batch_size: int = Field(256, ge=1, description="queries ranked at once (link prediction)")
    ties: Literal["realistic", "optimistic", "pessimistic"] = Field(
        "realistic", description="rank of the true entity among equal scores (link prediction)")


class RunConfig(_Section):
    """The whole run: what :func:`graphlearn.fit` and ``graphlearn fit`` take."""

    seed: int | None = None
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    model: ModelSection = Field(default_factory=ModelSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    task: dict[str, Any] = Field(
        default_factory=dict,
        description="options of the task kind's training loop, checked by the task "
                    "(link prediction: objective, loss, num_negatives, ...)")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_SECTIONS = {
    "dataset": DatasetSection,
    "optim": OptimSection,
    "trainer": TrainerSection,
    "eval": EvalSection,
}


def _format_error(err: ValidationError) -> str:
    """One line naming the first bad key, what is wrong and the valid keys or values."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc)
    if first["type"] == "extra_forbidden":
        section = _SECTIONS.get(loc[0]) if len(loc) > 1 else RunConfig
        valid = ", ".join(section.model_fields) if section is not None else ""
        where = f"in '{loc[0]}'" if len(loc) > 1 else "at the top level"
        return f"config key '{key}' is not recognised; valid keys {where}: {valid}"
    value = first.get("input")
    return f"config key '{key}' has invalid value {value!r}: {first['msg']}"


def _validate(raw: dict[str, Any]) -> RunConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a mapping of sections, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file into a plain dict (validated later by :func:`resolve_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; check the path or omit --config")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{where}: "
                          f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections "
                          f"(seed, dataset, model, optim, trainer, eval)")
    return raw


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse a ``--set`` argument ``key.path=value``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. optim.lr=0.01), got {text!r}")
    key, _, value = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set key {key!r} is malformed; use dotted keys like trainer.max_epochs")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key, parsed


def _assign(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' is a value, not a section; "
                              f"cannot set '{key}'")
        node = child
    node[parts[-1]] = value


# Shortcuts accepted by graphlearn.fit(...) and the CLI flags, as dotted keys.
SHORTCUTS = {
    "model": "model.name",
    "dataset": "dataset.name",
    "epochs": "trainer.max_epochs",
    "seed": "seed",
    "root": "dataset.root",
}


def resolve_config(
    config: str | os.PathLike | dict[str, Any] | RunConfig | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Merge a config (path, dict or object) with dotted-key overrides and validate it.

    Args:
        config: A YAML path, a dict of sections, a :class:`RunConfig`, or ``None`` (defaults).
        overrides: ``{"optim.lr": 0.01, "epochs": 50, ...}``; the shortcuts ``model``,
            ``dataset``, ``epochs``, ``seed`` and ``root`` name the usual keys.
    """
    if config is None:
        raw: dict[str, Any] = {}
    elif isinstance(config, RunConfig):
        raw = config.to_dict()
    elif isinstance(config, dict):
        raw = copy.deepcopy(config)
    else:
        raw = load_config(config)
    for key, value in (overrides or {}).items():
        _assign(raw, SHORTCUTS.get(key, key), value)
    return _validate(raw)
