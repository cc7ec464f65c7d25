"""``graphlearn.fit``: train a model on a dataset from one config and write a run directory.

The run directory holds::

    config.yaml          the resolved config (seed included)
    metrics.csv          one row per epoch: train and validation loss and metrics
    checkpoints/         best-EPOCH.ckpt (by the monitored validation value) and last.ckpt
    summary.json         model, dataset, seed, epochs, best_epoch, wall_s, metrics{val,test}
    learning_curve.png   loss and validation metric against epoch
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from graphlearn.errors import ConfigError, DataNotFoundError
from graphlearn.train.config import RunConfig, load_config, resolve_config

__all__ = ["fit", "FitResult"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a run produced; ``summary.json`` holds the same fields.

    ``best_epoch`` and ``epochs`` count like ``metrics.csv``'s ``epoch`` column: the best
    checkpoint was taken after epoch index ``best_epoch`` (0-based), and ``epochs`` epochs
    ran in total.
    """

    model: str
    dataset: str
    task: str
    seed: int
    epochs: int
    max_epochs: int
    best_epoch: int | None
    wall_s: float
    metric: str
    metrics: dict[str, dict[str, float]]
    run_dir: str
    checkpoint: str | None
    interrupted: bool = False
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def test_metric(self) -> float:
        """The test value of the model-selection metric."""
        return self.metrics["test"][self.metric]


def _versions() -> dict[str, str]:
    import lightning
    import torch
    import torch_geometric

    import graphlearn

    return {"graphlearn": graphlearn.__version__, "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "lightning": lightning.__version__,
            "python": sys.version.split()[0]}


def _new_run_dir(config: RunConfig, out: str | os.PathLike | None) -> Path:
    if out is not None:
        path = Path(out)
        if path.exists() and any(path.iterdir()):
            raise ConfigError(f"--out {str(path)!r} exists and is not empty; choose a new folder "
                              f"or use --resume {str(path)!r} to continue that run")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path("runs") / f"{config.model.name}-{config.dataset.name}-{stamp}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _quiet_lightning():
    """Silence Lightning's banner logs and known-benign warnings during a run."""
    import lightning  # noqa: F401  (its import sets its loggers to INFO; override after it)

    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*that has `shuffle=True`.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def fit(
    config: str | os.PathLike | dict[str, Any] | RunConfig | None = None,
    /,
    *,
    out: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    **overrides: Any,
) -> FitResult:
    """Train and evaluate a model as the config says; return the run's :class:`FitResult`.

    Args:
        config: A YAML path, a dict of sections, a :class:`~graphlearn.train.config.RunConfig`
            or ``None`` for the defaults (GATv2 on the embedded karate-club graph).
        out: Run directory; default ``runs/<model>-<dataset>-<timestamp>/``.
        resume: A previous run directory to continue from its ``last.ckpt`` (its config is
            used, updated by ``overrides``, e.g. a larger ``epochs``).
        **overrides: Dotted config keys (``**{"optim.lr": 0.01}``) or the shortcuts
            ``model``, ``dataset``, ``epochs``, ``seed``, ``root``.

    Example:
        >>> import graphlearn
        >>> result = graphlearn.fit(model="gatv2", dataset="karate", seed=0, epochs=50)
        >>> result.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    start = time.perf_counter()
    ckpt_path = None
    if resume is not None:
        run_dir = Path(resume)
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not (run_dir / "config.yaml").is_file() or not ckpt.is_file():
            raise DataNotFoundError(f"cannot resume {str(run_dir)!r}: it needs config.yaml and "
                                    f"checkpoints/last.ckpt from an earlier `graphlearn fit`")
        if config is not None:
            raise ConfigError("pass either a config or resume=DIR (whose config is reused), not both")
        cfg = resolve_config(load_config(run_dir / "config.yaml"), overrides)
        ckpt_path = str(ckpt)
    else:
        cfg = resolve_config(config, overrides)

    _check_names(cfg)
    if cfg.seed is None:
        seed = random.SystemRandom().randrange(2**31)
        warnings.warn(f"no seed given; drew seed={seed} (recorded in config.yaml)", UserWarning,
                      stacklevel=2)
        cfg.seed = seed

    with _quiet_lightning():
        return _run(cfg, run_dir if resume is not None else None, out, ckpt_path, start)


def _check_names(cfg: RunConfig) -> None:
    """Fail fast on unknown model, dataset or metric names, before any work or warning."""
    from graphlearn.datasets import DATASETS
    from graphlearn.models import MODELS
    from graphlearn.tasks.metrics import METRICS

    MODELS.get(cfg.model.name)
    DATASETS.get(cfg.dataset.name)
    if cfg.eval.metric is not None:
        METRICS.get(cfg.eval.metric)


def _run(cfg: RunConfig, run_dir: Path | None, out, ckpt_path: str | None, start: float) -> FitResult:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from graphlearn import datasets
    from graphlearn.data.dataset import TaskKind
    from graphlearn.tasks import TASKS
    from graphlearn.train.callbacks import EpochProgressBar, MetricsCSV, RNGState
    from graphlearn.train.datamodule import make_loaders
    from graphlearn.train.plots import plot_learning_curve

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dataset = datasets.load(cfg.dataset.name, root=cfg.dataset.root, **cfg.dataset.options)
    if dataset.task not in TASKS:
        raise ConfigError(f"dataset {cfg.dataset.name!r} poses a {dataset.task} task, which "
                          f"`graphlearn fit` cannot train yet")
    metric = cfg.eval.metric or dataset.info.metric
    task_cls = TASKS[dataset.task]
    task = task_cls(
        model=cfg.model.name,
        model_kwargs=cfg.model.hyperparameters(),
        in_channels=dataset.num_features,
        num_classes=dataset.num_classes,
        edge_dim=dataset.num_edge_features or None,
        metric=metric,
        optimizer=cfg.optim.name,
        lr=cfg.optim.lr,
        weight_decay=cfg.optim.weight_decay,
    )
    loaders = make_loaders(dataset, cfg)

    if run_dir is None:
        run_dir = _new_run_dir(cfg, out)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    monitor = f"val/{task.metric_name}" if cfg.trainer.monitor == "metric" else "val/loss"
    mode = "max" if cfg.trainer.monitor == "metric" else "min"
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best-epoch={epoch:04d}", monitor=monitor,
        mode=mode, save_top_k=1, save_last=True, auto_insert_metric_name=False,
    )
    callbacks = [checkpoint, MetricsCSV(run_dir / "metrics.csv"), RNGState()]
    if cfg.trainer.patience is not None:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.trainer.patience))
    if cfg.trainer.progress_bar:
        callbacks.append(EpochProgressBar(monitor=monitor))
    trainer = L.Trainer(
        max_epochs=cfg.trainer.max_epochs,
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=cfg.trainer.precision,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir),
        log_every_n_steps=1,
    )
    trainer.fit(task, train_dataloaders=loaders["train"], val_dataloaders=loaders["val"],
                ckpt_path=ckpt_path)
    interrupted = bool(trainer.interrupted)

    best = checkpoint.best_model_path or None
    eval_ckpt = best if best else None
    metrics: dict[str, dict[str, float]] = {}
    for stage, loader in (("val", loaders["val"]), ("test", loaders["test"])):
        run = trainer.validate if stage == "val" else trainer.test
        # Evaluate the best checkpoint; `validate` logs under val/, `test` under test/.
        results = run(task, dataloaders=loader, ckpt_path=eval_ckpt, verbose=False)[0]
        metrics[stage] = {k.split("/", 1)[1]: float(v) for k, v in results.items()
                          if k.startswith(f"{stage}/")}

    match = re.search(r"best-epoch=(\d+)", best or "")
    result = FitResult(
        model=cfg.model.name,
        dataset=cfg.dataset.name,
        task=TaskKind(dataset.task).value,
        seed=int(cfg.seed),
        epochs=int(trainer.current_epoch),
        max_epochs=cfg.trainer.max_epochs,
        best_epoch=int(match.group(1)) if match else None,
        wall_s=round(time.perf_counter() - start, 3),
        metric=task.metric_name,
        metrics=metrics,
        run_dir=str(run_dir),
        checkpoint=best,
        interrupted=interrupted,
        versions=_versions(),
    )
    (run_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    try:
        plot_learning_curve(run_dir / "metrics.csv", run_dir / "learning_curve.png",
                            metric=task.metric_name)
    except Exception as exc:  # a plot must never lose a finished run
        log.warning("could not draw the learning curve: %s", exc)
    return result
