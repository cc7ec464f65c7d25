"""Ask a trained link-prediction run for the most likely tails (or heads) of a query.

A run directory written by ``graphlearn fit`` holds ``config.yaml`` (which dataset) and
``checkpoints/`` (the weights). :func:`predict` reloads both, scores every entity of the test
stage's graph as the answer of ``(head, relation, ?)`` (or ``(?, relation, tail)``) and
returns the ``k`` best::

    from graphlearn.kg.predict import predict

    predict("runs/distmult-umls", head="acquired_abnormality", relation="location_of", k=5)
    # [{"rank": 1, "label": "...", "id": 17, "score": 9.81, "known": False}, ...]

The same from the shell: ``graphlearn kg predict --run DIR --head LABEL --relation LABEL``.

Answers already known as facts of the graph (its ``facts`` and ``train`` splits) are left
out by default (``filter=True``), as in filtered evaluation; with ``filter=False`` they are
ranked too and marked ``known``. For an inductive dataset the labels are entities of the
test graph, the one the test stage ranks.

Checkpoints are loaded with ``weights_only=True``: a graphlearn checkpoint holds only
tensors, plain containers and numbers/strings (hyperparameters are saved with
``save_hyperparameters(ignore=["dataset"])``), so torch's safe unpickler reads it and no
code in a checkpoint file is ever run. A file that needs more raises
:class:`~graphlearn.errors.UnsafeFileError`.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from graphlearn.errors import (
    ConfigError,
    DataNotFoundError,
    InvalidArgumentError,
    ShapeError,
    UnsafeFileError,
)

__all__ = ["LoadedRun", "load_run", "predict", "format_predictions"]


@dataclass
class LoadedRun:
    """A trained link-prediction task with its dataset, ready to score (eval mode, CPU)."""

    task: Any  # LinkPredictionTask
    dataset: Any  # LinkPredictionDataset
    checkpoint: Path
    run_dir: Path


def _resolve_relative(value: str | None, run_dir: Path) -> str | None:
    """A relative path from ``config.yaml`` resolved against the cwd, else the folders a run
    was likely started from (the run's parent, and its grandparent for ``runs/<name>``)."""
    if value is None or os.path.isabs(value):
        return value
    for base in (Path.cwd(), run_dir.parent, run_dir.parent.parent, run_dir):
        if (base / value).exists():
            return str((base / value).resolve())
    return value


def _checkpoint_path(run_dir: Path) -> Path:
    """The run's checkpoint: ``summary.json``'s ``checkpoint``, else ``checkpoints/last.ckpt``."""
    candidates = []
    summary = run_dir / "summary.json"
    if summary.is_file():
        recorded = json.loads(summary.read_text()).get("checkpoint")
        if recorded:
            # the recorded path is absolute; a moved run keeps the file name
            candidates += [Path(recorded), run_dir / "checkpoints" / Path(recorded).name]
    candidates.append(run_dir / "checkpoints" / "last.ckpt")
    for path in candidates:
        if path.is_file():
            return path
    raise DataNotFoundError(
        f"run {str(run_dir)!r} has no checkpoint (looked for "
        f"{', '.join(repr(str(c)) for c in candidates)}); a cross-validated run keeps one per "
        f"fold: pass its fold directory")


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Reload the dataset and the trained task of a ``graphlearn fit`` run directory.

    Raises:
        DataNotFoundError: ``run_dir`` has no ``config.yaml`` or no checkpoint.
        ConfigError: The run did not train a link-prediction model.
        UnsafeFileError: The checkpoint holds objects a weights-only load refuses.
    """
    from graphlearn.kg.task import LinkPredictionTask

    from graphlearn import datasets
    from graphlearn.train.config import resolve_config

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise DataNotFoundError(f"{str(run_dir)!r} is not a run directory: it has no config.yaml "
                                f"(pass the directory `graphlearn fit` printed)")
    cfg = resolve_config(run_dir / "config.yaml")
    root = _resolve_relative(cfg.dataset.root, run_dir)
    name = cfg.dataset.name
    if os.sep in name or name.startswith("."):  # a user's graph (see datasets.is_path)
        name = _resolve_relative(name, run_dir) or name
    dataset = datasets.load(name, root=root, **cfg.dataset.options)
    if not hasattr(dataset, "stage"):
        raise ConfigError(f"run {str(run_dir)!r} trained on {cfg.dataset.name!r}, which is not a "
                          f"link-prediction dataset; `kg predict` needs a knowledge-graph run")
    ckpt = _checkpoint_path(run_dir)
    try:
        task = LinkPredictionTask.load_from_checkpoint(ckpt, dataset=dataset, map_location="cpu",
                                                       weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(f"checkpoint {str(ckpt)!r} holds objects a weights-only load "
                              f"refuses ({exc}); graphlearn does not unpickle code from files"
                              ) from exc
    task.eval()
    return LoadedRun(task=task, dataset=dataset, checkpoint=ckpt, run_dir=run_dir)


@torch.no_grad()
def predict(run: str | os.PathLike | LoadedRun, *, head: str | None = None,
            relation: str, tail: str | None = None, k: int = 10,
            filter: bool = True) -> list[dict[str, Any]]:
    """The ``k`` best answers of ``(head, relation, ?)`` or ``(?, relation, tail)``.

    Args:
        run: A run directory (or a :class:`LoadedRun` from :func:`load_run`, to ask many
            queries without reloading).
        head (str, optional): Head label: rank tails. Give exactly one of ``head``, ``tail``.
        relation (str): Relation label.
        tail (str, optional): Tail label: rank heads.
        k (int): How many answers (at most the number of candidates).
        filter (bool): Leave out answers that are known facts of the graph (default); with
            ``False`` they are ranked and marked ``known``.

    Returns:
        ``[{"rank", "label", "id", "score", "known"}, ...]`` sorted by decreasing score.

    Raises:
        IndexOutOfRangeError: An unknown label (the message names the closest ones).
    """
    from graphlearn.kg.evaluation import FilterIndex

    if (head is None) == (tail is None):
        raise InvalidArgumentError("give exactly one of head (to rank tails) or tail (to rank "
                                   "heads)")
    if int(k) < 1:
        raise InvalidArgumentError(f"k must be >= 1, got {k}")
    loaded = run if isinstance(run, LoadedRun) else load_run(run)
    task, dataset = loaded.task, loaded.dataset
    stage = dataset.stage("test")
    graph = stage.graph
    side = "tail" if head is not None else "head"
    anchor = torch.tensor([graph.entity_id(head if head is not None else tail)])
    rel = torch.tensor([graph.relation_id(relation)])
    task.eval()
    scores = task.score_all(anchor, rel, side, stage="test")
    if scores.shape != (1, graph.num_entities):
        raise ShapeError(f"the model scored {tuple(scores.shape)} candidates; expected "
                         f"(1, {graph.num_entities}) for graph {graph.name!r}")
    scores = scores[0].float().cpu()
    known_splits = [s for s in ("facts", "train") if s in graph.splits]
    index = FilterIndex(graph.triples(*known_splits), graph.num_entities)
    _, answers = index.answers(anchor, rel, side)
    known = torch.zeros(graph.num_entities, dtype=torch.bool)
    known[answers] = True
    candidates = torch.arange(graph.num_entities)
    if filter:
        candidates = candidates[~known]
    order = torch.argsort(scores[candidates], descending=True, stable=True)
    top = candidates[order[:int(k)]]
    return [{"rank": i + 1, "label": graph.entities[e], "id": e, "score": float(scores[e]),
             "known": bool(known[e])} for i, e in enumerate(top.tolist())]


def format_predictions(rows: list[dict[str, Any]]) -> str:
    """``rank  label  score`` lines (``known`` answers marked with ``*``)."""
    if not rows:
        return ""
    width = max(len(r["label"]) for r in rows)
    return "\n".join(f"{r['rank']:>4}  {r['label']:<{width}}  {r['score']:.6g}"
                     + ("  *known" if r["known"] else "") for r in rows)
