"""``LinkPredictionTask``: trains a :class:`~graphlearn.kg.model.KGModel` and ranks with filters.

Training objectives (``task.objective`` in a config):

- ``"1-n"`` (default): every training triple is a query on each side, ``(h, r, ?)`` and
  ``(?, r, t)``; the model scores all entities and the loss is cross-entropy against the true
  answer (``task.loss: ce``, Lacroix et al., 2018; the loss of RED-GNN and NBFNet) or binary
  cross-entropy against every known answer with label smoothing (``task.loss: bce``, ConvE).
- ``"negative-sampling"``: each training triple is a query on each of ``task.sides``, scored
  against ``ceil(task.num_negatives / len(sides))`` uniform corruptions of that side (half
  each by default); ``task.loss`` is ``nssa`` (self-adversarial negative sampling of RotatE,
  temperature ``task.adversarial_temperature``), ``softplus`` or ``margin``
  (``task.margin``). Reciprocal models score head corruptions through the inverse relation,
  as they rank head queries.

Reasoners (``uses_graph``) get the stage's fact graph; when the training queries are facts
themselves (datasets without a separate ``facts`` split, or ``task.train_queries: all``; see
:func:`train_stage`), each batch's query edges and their inverses are removed from the graph
it reasons over, so a query is never answered by its own edge. With ``task.train_queries:
resplit`` every epoch splits the known triples anew into a fact graph (``task.fact_ratio``)
and the epoch's queries (:mod:`graphlearn.kg.resplit`), as RED-GNN's official training does.

Validation and test rank every entity of the stage's graph, filtered as
:meth:`~graphlearn.kg.dataset.LinkPredictionDataset.stage` says, and log MRR, MR and
Hits@1/3/10 over both sides plus ``head/...`` and ``tail/...`` per side.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from graphlearn.kg.dataset import LinkPredictionDataset, Stage
from graphlearn.kg.evaluation import TIES, FilterIndex, filtered_ranks, rank_metrics
from graphlearn.kg.model import KGModel, MessageGraph, message_graph
from graphlearn.kg.resplit import ResplitSampler, resplit
from torch import Tensor

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError
from graphlearn.tasks.metrics import RANKING_METRICS
from graphlearn.train.optim import build_optimization

__all__ = ["LinkPredictionTask", "RANKING_METRICS", "TASK_OPTIONS"]


#: ``task:`` config keys of link prediction and their defaults.
TASK_OPTIONS: dict[str, Any] = {
    "objective": "1-n",
    "loss": None,  # ce for 1-n, nssa for negative-sampling
    "num_negatives": 64,
    "adversarial_temperature": 1.0,
    "margin": 1.0,
    "label_smoothing": 0.0,
    "sides": ["head", "tail"],
    "train_queries": "split",
    "fact_ratio": 0.75,
}
#: ``task.train_queries``: the train split, every known triple, or a new split every epoch.
TRAIN_QUERIES = ("split", "all", "resplit")
_LOSSES = {"1-n": ("ce", "bce"), "negative-sampling": ("nssa", "softplus", "margin")}


def check_task_options(options: dict[str, Any]) -> dict[str, Any]:
    """Merge ``options`` over :data:`TASK_OPTIONS`, rejecting unknown keys and values."""
    unknown = sorted(set(options) - set(TASK_OPTIONS))
    if unknown:
        raise ConfigError(f"config key 'task.{unknown[0]}' is not an option of link prediction; "
                          f"valid keys: {', '.join(TASK_OPTIONS)}")
    out = {**TASK_OPTIONS, **options}
    if out["objective"] not in _LOSSES:
        raise ConfigError(f"task.objective must be one of {', '.join(_LOSSES)}, got "
                          f"{out['objective']!r}")
    out["loss"] = out["loss"] or _LOSSES[out["objective"]][0]
    if out["loss"] not in _LOSSES[out["objective"]]:
        raise ConfigError(f"task.loss={out['loss']!r} does not go with objective "
                          f"{out['objective']!r}; choose one of {', '.join(_LOSSES[out['objective']])}")
    sides = out["sides"]
    if isinstance(sides, str):
        sides = [sides]
    if not sides or any(s not in ("head", "tail") for s in sides):
        raise ConfigError(f"task.sides must be a non-empty subset of [head, tail], got {sides!r}")
    out["sides"] = list(sides)
    if out["train_queries"] not in TRAIN_QUERIES:
        raise ConfigError(f"task.train_queries must be one of {', '.join(TRAIN_QUERIES)}, got "
                          f"{out['train_queries']!r}")
    if not 0 < float(out["fact_ratio"]) < 1:
        raise ConfigError(f"task.fact_ratio must be in (0, 1) (RED-GNN uses 0.75), got "
                          f"{out['fact_ratio']!r}")
    if int(out["num_negatives"]) < 1:
        raise ConfigError("task.num_negatives must be >= 1")
    if not 0 <= float(out["label_smoothing"]) < 1:
        raise ConfigError("task.label_smoothing must be in [0, 1)")
    return out


def train_stage(dataset: LinkPredictionDataset, options: dict[str, Any]) -> Stage:
    """The training stage under ``task.train_queries``.

    ``"split"``: the dataset's ``train`` triples are the queries and its ``facts`` split (or
    ``train`` itself) the graph. ``"all"``: every known triple (``facts`` + ``train``, the
    graph validation and test reason over) is both query and graph, and each batch's own
    edges are removed from the graph it reasons over. For a ``facts``/``train`` dataset this
    is RED-GNN's training: its ``shuffle_train`` re-splits facts + train every epoch so that
    every known triple serves as a query; removing the batch's edges does that with the
    graph kept as dense as at test time. The two are the same for datasets without
    ``facts``. ``"resplit"``: the same stage as ``"all"``; the training loader and the task
    then split it every epoch (:mod:`graphlearn.kg.resplit`).
    """
    st = dataset.stage("train")
    if options["train_queries"] == "split":
        return st
    known = dataset.stage("val").facts
    return Stage(graph=st.graph, queries=known, facts=known, filter=st.filter)


def build_kg_model(name: str, num_entities: int, num_relations: int,
                   **hyperparameters: Any) -> KGModel:
    """Build registered link-prediction model ``name``, checking its hyperparameter names."""
    from graphlearn.models import MODELS

    spec = MODELS.get(name)
    if TaskKind.LINK_PREDICTION not in spec.tasks:
        served = ", ".join(sorted(t.value for t in spec.tasks))
        raise ConfigError(f"model {name!r} does not serve link_prediction (it serves {served}); "
                          f"choose a knowledge-graph model (`graphlearn models list`)")
    params = inspect.signature(spec.cls).parameters
    fixed = {"num_entities", "num_relations"}
    allowed = sorted(p for p in params if p not in fixed
                     and params[p].kind is not inspect.Parameter.VAR_KEYWORD)
    for key in hyperparameters:
        if key not in allowed:
            raise ConfigError(f"config key 'model.{key}' is not a hyperparameter of model {name!r}; "
                              f"valid keys: {', '.join(allowed)}")
    kwargs = dict(hyperparameters)
    kwargs["num_relations"] = num_relations
    if "num_entities" in params:
        kwargs["num_entities"] = num_entities
    try:
        return spec.cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r} rejected its hyperparameters {hyperparameters}: {exc}"
                          ) from exc


class LinkPredictionTask(L.LightningModule):
    """Link prediction on a :class:`~graphlearn.kg.dataset.LinkPredictionDataset`.

    Args:
        model (str): Registered link-prediction model.
        model_kwargs (dict): Its hyperparameters.
        num_entities (int): Entities of the training graph.
        num_relations (int): Base relations.
        task_options (dict): The ``task:`` config section (see :data:`TASK_OPTIONS`).
        metric (str): Model-selection metric (``mrr`` by default).
        optimizer, lr, weight_decay, param_groups: As for the classification tasks.
        eval_batch_size (int): Queries ranked at once.
        ties (str): Tie handling of the ranking.
        lr_decay (float): Factor applied to the learning rate after every epoch (1: constant).
        seed (int): The run's seed; with ``task.train_queries: resplit`` it fixes every
            epoch's split.
        dataset (LinkPredictionDataset, optional): The data; needed for training and
            evaluation, not stored in checkpoints.
    """

    kind = TaskKind.LINK_PREDICTION

    def __init__(
        self,
        model: str,
        model_kwargs: dict[str, Any] | None = None,
        num_entities: int = 1,
        num_relations: int = 1,
        task_options: dict[str, Any] | None = None,
        metric: str = "mrr",
        optimizer: str = "adam",
        lr: float = 0.001,
        weight_decay: float = 0.0,
        param_groups: dict[str, dict[str, float]] | None = None,
        eval_batch_size: int = 256,
        ties: str = "realistic",
        lr_decay: float = 1.0,
        seed: int = 0,
        dataset: LinkPredictionDataset | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["dataset"])
        self.options = check_task_options(task_options or {})
        if metric not in RANKING_METRICS:
            raise ConfigError(f"eval.metric={metric!r} is not a ranking metric; choose one of "
                              f"{', '.join(RANKING_METRICS)}")
        if ties not in TIES:
            raise ConfigError(f"eval.ties must be one of {', '.join(TIES)}, got {ties!r}")
        self.metric_name = metric
        self.model = build_kg_model(model, num_entities, num_relations, **(model_kwargs or {}))
        self._dataset = None
        self._stages: dict[str, Stage] = {}
        self._cache: dict[str, Any] = {}
        self._ranks: dict[str, dict[str, list[Tensor]]] = {}
        if dataset is not None:
            self.attach(dataset)

    @classmethod
    def from_config(cls, cfg, dataset: LinkPredictionDataset) -> LinkPredictionTask:
        return cls(
            model=cfg.model.name, model_kwargs=cfg.model.hyperparameters(),
            num_entities=dataset.num_entities, num_relations=dataset.num_relations,
            task_options=dict(cfg.task), metric=cfg.eval.metric or dataset.info.metric,
            optimizer=cfg.optim.name, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
            param_groups=cfg.optim.param_groups or None, eval_batch_size=cfg.eval.batch_size,
            ties=cfg.eval.ties, lr_decay=cfg.optim.lr_decay, seed=int(cfg.seed), dataset=dataset,
        )

    @staticmethod
    def make_loaders(dataset: LinkPredictionDataset, cfg) -> dict[str, Any]:
        """Shuffled batches of training triples; ordered batches of val/test queries."""
        from torch.utils.data import DataLoader

        gen = torch.Generator().manual_seed(int(cfg.seed))
        options = check_task_options(dict(cfg.task or {}))
        loaders = {}
        for stage in ("train", "val", "test"):
            st = train_stage(dataset, options) if stage == "train" else dataset.stage(stage)
            queries = st.queries
            if queries.numel() == 0:
                from graphlearn.errors import EmptyGraphError

                raise EmptyGraphError(f"dataset {dataset.info.name!r} has no {stage} triples")
            size = cfg.trainer.batch_size if stage == "train" else cfg.eval.batch_size
            if stage == "train" and options["train_queries"] == "resplit":
                sampler = ResplitSampler(queries.size(0), options["fact_ratio"], int(cfg.seed))
                loaders[stage] = DataLoader(queries, batch_size=size, sampler=sampler)
                continue
            loaders[stage] = DataLoader(queries, batch_size=size, shuffle=stage == "train",
                                        generator=gen if stage == "train" else None)
        return loaders

    def attach(self, dataset: LinkPredictionDataset) -> None:
        """Give the task its data (after ``load_from_checkpoint``, which stores none)."""
        if dataset.num_relations != self.hparams.num_relations:
            raise ConfigError(f"dataset {dataset.info.name!r} has {dataset.num_relations} relations "
                              f"but the model was built for {self.hparams.num_relations}")
        self._dataset = dataset
        self._stages = {s: dataset.stage(s) for s in ("val", "test")}
        self._stages["train"] = train_stage(dataset, self.options)
        self._cache = {}

    # ------------------------------------------------------------------ data on device
    def stage_graph(self, stage: str) -> MessageGraph | None:
        """The fact graph of ``stage`` on the model's device (``None`` for embedding models)."""
        if not self.model.uses_graph:
            return None
        key = f"graph/{stage}"
        if key not in self._cache:
            st = self._stage(stage)
            self._cache[key] = message_graph(st.facts, st.num_entities,
                                             self.hparams.num_relations).to(self.device)
        return self._cache[key]

    def training_graph(self, batch: Tensor) -> MessageGraph | None:
        """The graph a training batch reasons over (``None`` for embedding models).

        ``resplit``: the current epoch's fact part of the known triples (the batch's queries
        are in the other part); otherwise the training stage's graph, less the batch's own
        edges when the queries are facts themselves.
        """
        graph = self.stage_graph("train")
        if graph is None:
            return None
        if self.options["train_queries"] == "resplit":
            epoch = int(self.current_epoch)
            cached = self._cache.get("graph/resplit")
            if cached is None or cached[0] != epoch:
                known = self._stage("train").facts
                facts, _ = resplit(known.size(0), self.options["fact_ratio"],
                                   self.hparams.get("seed", 0), epoch)
                cached = (epoch, message_graph(known[facts], self._stage("train").num_entities,
                                               self.hparams.num_relations).to(self.device))
                self._cache["graph/resplit"] = cached
            return cached[1]
        return graph.without(batch) if self._queries_are_facts() else graph

    def _filter(self, stage: str) -> FilterIndex:
        key = f"filter/{stage}"
        if key not in self._cache:
            st = self._stage(stage)
            self._cache[key] = FilterIndex(st.filter, st.num_entities).to(self.device)
        return self._cache[key]

    def _stage(self, stage: str) -> Stage:
        if not self._stages:
            raise ConfigError("this LinkPredictionTask has no dataset; call task.attach(dataset)")
        return self._stages[stage]

    def _queries_are_facts(self) -> bool:
        st = self._stage("train")
        return st.facts.data_ptr() == st.queries.data_ptr() or (
            st.facts.shape == st.queries.shape and bool(torch.equal(st.facts, st.queries)))

    # ------------------------------------------------------------------ scoring
    def score_all(self, anchors: Tensor, relations: Tensor, side: str, stage: str = "test") -> Tensor:
        """``(B, num_entities)`` scores of the stage's graph (the ``score_fn`` of ``evaluate``)."""
        return self.model.score_all(anchors, relations, side, self.stage_graph(stage))

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        h, r, t = batch.unbind(1)
        opts = self.options
        if opts["objective"] == "1-n":
            graph = self.training_graph(batch)
            losses = []
            for side in opts["sides"]:
                anchor, true = (h, t) if side == "tail" else (t, h)
                scores = self.model.score_all(anchor, r, side, graph)
                if opts["loss"] == "ce":
                    losses.append(F.cross_entropy(scores, true))
                else:
                    target = self._filter("train").targets(anchor, r, side)
                    eps = float(opts["label_smoothing"])
                    if eps:
                        target = (1.0 - eps) * target + eps / target.size(1)
                    losses.append(F.binary_cross_entropy_with_logits(scores, target))
            loss = torch.stack(losses).mean()
        else:
            loss = self._negative_sampling_loss(h, r, t)
        reg = self.model.regularization(h, r, t)
        total = loss + reg
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch.size(0))
        return total

    def _negative_sampling_loss(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        """Each side's loss over ``ceil(num_negatives / len(sides))`` corruptions of that
        side, averaged over ``task.sides``.

        Positives and negatives are scored together as candidate answers of the queries they
        stand for (:meth:`~graphlearn.kg.model.KGModel.score_candidates`): a reciprocal
        model's head corruptions go through the inverse relation, as its head queries do at
        ranking time, and an embedding model with few entities scores them all in one GEMM.
        """
        opts = self.options
        sides = opts["sides"]
        k = -(-int(opts["num_negatives"]) // len(sides))
        B, E = h.numel(), self.hparams.num_entities
        losses = []
        for side in sides:
            anchor, true = (h, t) if side == "tail" else (t, h)
            corrupt = torch.randint(0, E, (B, k), device=h.device)
            scores = self.model.score_candidates(anchor, r, torch.cat([true[:, None], corrupt], 1),
                                                 side)
            losses.append(self._pair_loss(scores[:, 0], scores[:, 1:]))
        return torch.stack(losses).mean()

    def _pair_loss(self, pos: Tensor, neg: Tensor) -> Tensor:
        """``task.loss`` of positives ``(B,)`` against their negatives ``(B, k)``."""
        opts = self.options
        if opts["loss"] == "nssa":
            weights = torch.softmax(neg.detach() * float(opts["adversarial_temperature"]), dim=1)
            return (-F.logsigmoid(pos) - (weights * F.logsigmoid(-neg)).sum(1)).mean() / 2
        if opts["loss"] == "softplus":
            return (F.softplus(-pos).mean() + F.softplus(neg).mean()) / 2
        return F.relu(float(opts["margin"]) - pos.unsqueeze(1) + neg).mean()

    # ------------------------------------------------------------------ evaluation
    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self._rank_batch(batch, "val")

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self._rank_batch(batch, "test")

    @torch.no_grad()
    def _rank_batch(self, batch: Tensor, stage: str) -> None:
        h, r, t = batch.unbind(1)
        index = self._filter(stage)
        graph = self.stage_graph(stage)
        store = self._ranks.setdefault(stage, {"head": [], "tail": []})
        for side in ("head", "tail"):
            anchor, true = (h, t) if side == "tail" else (t, h)
            scores = self.model.score_all(anchor, r, side, graph)
            rows, ents = index.answers(anchor, r, side)
            store[side].append(filtered_ranks(scores.float(), true, rows, ents,
                                              self.hparams.ties).cpu())

    def on_validation_epoch_end(self) -> None:
        self._log_ranks("val")

    def on_test_epoch_end(self) -> None:
        self._log_ranks("test")

    def _log_ranks(self, stage: str) -> None:
        store = self._ranks.pop(stage, None)
        if not store or not store["tail"]:
            return
        per_side = {side: torch.cat(v) for side, v in store.items()}
        n = int(per_side["tail"].numel())
        for key, value in rank_metrics(torch.cat([per_side["head"], per_side["tail"]])).items():
            self.log(f"{stage}/{key}", value, batch_size=n)
        for side, ranks in per_side.items():
            for key, value in rank_metrics(ranks).items():
                self.log(f"{stage}/{side}/{key}", value, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        return build_optimization(self.model, hp.optimizer, hp.lr, hp.weight_decay,
                                  hp.get("param_groups"), hp.get("lr_decay", 1.0))
