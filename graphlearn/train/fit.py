"""``graphlearn.fit``: train a model on a dataset from one config and write a run directory.

The run directory holds::

    config.yaml          the resolved config (seed included)
    metrics.csv          one row per epoch: train and validation loss and metrics
    checkpoints/         best-EPOCH.ckpt (by the monitored validation value) and last.ckpt (a link to it
                         when the last epoch is also the best)
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
    ran in total. A cross-validated run (``eval.folds``) reports the mean over folds in
    ``metrics``, the sample standard deviation in ``metrics_std``, each fold in ``folds``,
    the largest fold's epoch count in ``epochs`` and no ``best_epoch``.
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
    metrics_std: dict[str, dict[str, float]] | None = None
    folds: list[dict[str, Any]] | None = None

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
        if config is not None:
            raise ConfigError("pass either a config or resume=DIR (whose config is reused), not both")
        if not (run_dir / "config.yaml").is_file():
            raise DataNotFoundError(f"cannot resume {str(run_dir)!r}: it has no config.yaml from an "
                                    f"earlier `graphlearn fit`")
        cfg = resolve_config(load_config(run_dir / "config.yaml"), overrides)
        if cfg.eval.folds is None:  # a cross-validated run resumes fold by fold instead
            if not ckpt.is_file():
                raise DataNotFoundError(f"cannot resume {str(run_dir)!r}: it has no "
                                        f"checkpoints/last.ckpt (the run ended before its first "
                                        f"epoch); start it again")
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
        if cfg.eval.folds is not None:
            return _run_folds(cfg, run_dir if resume is not None else None, out, start)
        return _run(cfg, _load_dataset(cfg), run_dir if resume is not None else None, out,
                    ckpt_path, start)


def _check_names(cfg: RunConfig) -> None:
    """Fail fast on unknown model, dataset or metric names, before any work or warning."""
    from graphlearn.datasets import DATASETS, is_path
    from graphlearn.models import MODELS
    from graphlearn.tasks.metrics import METRICS, RANKING_METRICS

    MODELS.get(cfg.model.name)
    if not is_path(cfg.dataset.name):
        DATASETS.get(cfg.dataset.name)
    if cfg.eval.metric is not None and cfg.eval.metric not in RANKING_METRICS:
        METRICS.get(cfg.eval.metric)


def _load_dataset(cfg: RunConfig):
    from graphlearn import datasets
    from graphlearn.tasks import TASKS

    dataset = datasets.load(cfg.dataset.name, root=cfg.dataset.root, **cfg.dataset.options)
    if dataset.task not in TASKS:
        raise ConfigError(f"dataset {cfg.dataset.name!r} poses a {dataset.task} task, which "
                          f"`graphlearn fit` cannot train yet")
    return dataset


def _graph_stats(dataset) -> dict[str, int]:
    """What featureless and relational models must know of a dataset's graph."""
    import torch

    stats = {}
    data = getattr(dataset, "data", None)
    if data is not None and getattr(data, "num_nodes", None) is not None:
        stats["num_nodes"] = int(data.num_nodes)
    num_relations = getattr(dataset, "num_relations", None)
    if num_relations is not None:
        stats["num_relations"] = int(num_relations)
    elif data is not None and getattr(data, "edge_type", None) is not None:
        stats["num_relations"] = int(data.edge_type.max()) + 1 if data.edge_type.numel() else 1
    node_type = getattr(data, "node_type", None) if data is not None else None
    if node_type is not None and getattr(data, "edge_type", None) is not None:
        num_types = getattr(data, "num_node_types", None)
        stats["num_node_types"] = int(num_types if num_types is not None else node_type.max() + 1)
        src, dst = data.edge_index
        triples = torch.stack([node_type[src], data.edge_type, node_type[dst]], 1)
        stats["typed_edges"] = torch.unique(triples, dim=0).tolist()
    return stats


def _run(cfg: RunConfig, dataset, run_dir: Path | None, out, ckpt_path: str | None,
         start: float) -> FitResult:
    """Train and evaluate one model on one split; write and return its summary."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from graphlearn.data.dataset import TaskKind
    from graphlearn.tasks import TASKS
    from graphlearn.train.callbacks import EpochProgressBar, MetricsCSV, RNGState
    from graphlearn.train.plots import plot_learning_curve

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task_cls = TASKS[dataset.task]
    task = task_cls.from_config(cfg, dataset)
    loaders = task_cls.make_loaders(dataset, cfg)

    if run_dir is None:
        run_dir = _new_run_dir(cfg, out)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    monitor = f"val/{task.metric_name}" if cfg.trainer.monitor == "metric" else "val/loss"
    mode = "max" if cfg.trainer.monitor == "metric" and task.metric_name != "mr" else "min"
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best-epoch={epoch:04d}", monitor=monitor,
        mode=mode, save_top_k=1, save_last="link", auto_insert_metric_name=False,
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
        check_val_every_n_epoch=cfg.eval.every,
    )
    trainer.fit(task, train_dataloaders=loaders["train"], val_dataloaders=loaders["val"],
                ckpt_path=ckpt_path)
    interrupted = bool(trainer.interrupted)

    best = checkpoint.best_model_path or None
    # "last": the weights in memory after the final epoch (Lightning evaluates the module as
    # it is when no checkpoint path is given)
    eval_ckpt = best if best and cfg.eval.checkpoint == "best" else None
    metrics: dict[str, dict[str, float]] = {}
    for stage, loader in (("val", loaders["val"]), ("test", loaders["test"])):
        run = trainer.validate if stage == "val" else trainer.test
        # Evaluate the chosen weights; `validate` logs under val/, `test` under test/.
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
        if cfg.eval.layer_stats and dataset.task is TaskKind.NODE_CLASSIFICATION:
            _write_layer_stats(task.model, loaders["test"], run_dir, cfg)
    except Exception as exc:  # an analysis plot must never lose a finished run
        log.warning("could not write the learning curve or layer statistics: %s", exc)
    return result


def _write_layer_stats(model, loader, run_dir: Path, cfg: RunConfig) -> None:
    """Dirichlet energy and omega per layer of the evaluated model (node tasks)."""
    import torch

    from graphlearn.analysis import layer_statistics, plot_layer_statistics

    if not isinstance(getattr(model, "convs", None), torch.nn.ModuleList):
        return
    data = next(iter(loader)).to(next(model.parameters()).device)
    rows = layer_statistics(model, data)
    (run_dir / "layer_stats.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot_layer_statistics(rows, run_dir / "layer_stats.png",
                          title=f"{cfg.model.name} on {cfg.dataset.name}")


def _run_folds(cfg: RunConfig, run_dir: Path | None, out, start: float) -> FitResult:
    """Cross-validation (graph datasets) or repeated official splits (node datasets).

    Fold ``i`` runs in ``<run_dir>/fold-<i>/`` like a single run; the top-level
    ``summary.json`` holds the mean over folds in ``metrics``, the sample standard deviation
    in ``metrics_std`` and every fold's numbers in ``folds``. Resuming skips finished folds
    and continues an interrupted one from its last checkpoint.
    """
    import statistics

    from graphlearn.data.dataset import GraphClassificationDataset, NodeClassificationDataset

    dataset = _load_dataset(cfg)
    k = int(cfg.eval.folds)
    if isinstance(dataset, GraphClassificationDataset):
        splits = list(dataset.folds(k, seed=cfg.eval.fold_seed))
        views = [GraphClassificationDataset(dataset.info, dataset.graphs, split) for split in splits]
        configs = [cfg] * k
    elif isinstance(dataset, NodeClassificationDataset):
        if k > dataset.num_splits:
            raise ConfigError(
                f"eval.folds={k} but dataset {cfg.dataset.name!r} has {dataset.num_splits} official "
                f"split(s); node datasets are evaluated over their official splits, so set "
                f"eval.folds <= {dataset.num_splits} (or dataset.split=i for one split)")
        views = [dataset] * k
        configs = [cfg.model_copy(update={"dataset": cfg.dataset.model_copy(update={"split": i})})
                   for i in range(k)]
    else:
        raise ConfigError(f"eval.folds is not supported for {type(dataset).__name__}")

    if run_dir is None:
        run_dir = _new_run_dir(cfg, out)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    results: list[FitResult] = []
    for i, (view, fold_cfg) in enumerate(zip(views, configs, strict=True)):
        fold_dir = run_dir / f"fold-{i:02d}"
        summary = fold_dir / "summary.json"
        if summary.is_file():  # finished before an interruption
            results.append(FitResult(**json.loads(summary.read_text())))
            continue
        last = fold_dir / "checkpoints" / "last.ckpt"
        fold_dir.mkdir(parents=True, exist_ok=True)
        log.info("fold %d of %d", i + 1, k)
        results.append(_run(fold_cfg, view, fold_dir, None, str(last) if last.is_file() else None,
                            time.perf_counter()))
        if results[-1].interrupted:
            break

    def stat(fn, stage: str) -> dict[str, float]:
        keys = results[0].metrics[stage]
        return {key: fn([r.metrics[stage][key] for r in results]) for key in keys}

    def std(xs):
        return statistics.stdev(xs) if len(xs) > 1 else 0.0

    first = results[0]
    result = FitResult(
        model=cfg.model.name, dataset=cfg.dataset.name, task=first.task, seed=int(cfg.seed),
        epochs=max(r.epochs for r in results), max_epochs=cfg.trainer.max_epochs, best_epoch=None,
        wall_s=round(time.perf_counter() - start, 3), metric=first.metric,
        metrics={stage: stat(statistics.fmean, stage) for stage in ("val", "test")},
        metrics_std={stage: stat(std, stage) for stage in ("val", "test")},
        folds=[{"fold": i, "best_epoch": r.best_epoch, "epochs": r.epochs, "metrics": r.metrics,
                "run_dir": r.run_dir} for i, r in enumerate(results)],
        run_dir=str(run_dir), checkpoint=None,
        interrupted=len(results) < k or any(r.interrupted for r in results),
        versions=first.versions,
    )
    (run_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
