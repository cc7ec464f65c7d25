"""``LinkPredictionDataset``: a knowledge graph with its evaluation protocol.

Transductive datasets hold one :class:`~graphlearn.kg.graph.KnowledgeGraph`; validation and
test queries come from its ``valid`` and ``test`` splits and every entity is known in
training. Inductive datasets (GraIL's splits) add a second graph, ``test_graph``, over
entities never seen in training (the relation vocabulary is shared): the model is trained
and validated on ``graph`` and tested on ``test_graph``, whose ``train`` split is the fact
graph the test queries are answered over.

:meth:`LinkPredictionDataset.stage` returns what one stage needs: the query triples, the
fact graph to reason over and the filter of known true triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from graphlearn.kg.graph import KnowledgeGraph
from torch import Tensor

from graphlearn.data.dataset import DatasetInfo, TaskKind
from graphlearn.errors import EmptyGraphError, InvalidArgumentError

__all__ = ["LinkPredictionDataset", "Stage"]


@dataclass
class Stage:
    """What training or evaluating one stage needs.

    Attributes:
        graph (KnowledgeGraph): The graph whose entities are ranked.
        queries (Tensor): ``(n, 3)`` query triples of the stage.
        facts (Tensor): ``(m, 3)`` triples message-passing models reason over.
        filter (Tensor): ``(k, 3)`` known true triples removed from the rankings.
    """

    graph: KnowledgeGraph
    queries: Tensor
    facts: Tensor
    filter: Tensor

    @property
    def num_entities(self) -> int:
        return self.graph.num_entities


class LinkPredictionDataset:
    """A knowledge graph (and, for inductive data, a disjoint test graph) for link prediction.

    Args:
        info (DatasetInfo): Metadata.
        graph (KnowledgeGraph): Training graph with ``train`` (and usually ``valid``,
            ``test``) splits, plus ``facts`` when the background graph differs from the
            training queries (RED-GNN's layout).
        test_graph (KnowledgeGraph, optional): The inductive test graph: its ``train`` split
            is the fact graph, its ``test`` split the test queries. Its relation vocabulary
            must equal ``graph``'s.
    """

    task = TaskKind.LINK_PREDICTION

    def __init__(self, info: DatasetInfo, graph: KnowledgeGraph,
                 test_graph: KnowledgeGraph | None = None) -> None:
        if "train" not in graph.splits or graph.splits["train"].numel() == 0:
            raise EmptyGraphError(f"knowledge graph {graph.name!r} has no training triples")
        if test_graph is not None and test_graph.relations != graph.relations:
            raise InvalidArgumentError(
                f"inductive test graph {test_graph.name!r} must share the relation vocabulary of "
                f"{graph.name!r} (same labels, same order)")
        self.info = info
        self.graph = graph
        self.test_graph = test_graph

    @property
    def inductive(self) -> bool:
        return self.test_graph is not None

    @property
    def num_entities(self) -> int:
        """Entities of the training graph."""
        return self.graph.num_entities

    @property
    def num_relations(self) -> int:
        return self.graph.num_relations

    # the classification-trainer protocol: link prediction has no features or classes
    num_features = 0
    num_classes = 0
    num_edge_features = 0

    def stage(self, stage: str) -> Stage:
        """The queries, fact graph and filter of ``stage`` (``"train"``, ``"val"``, ``"test"``).

        The fact graph a reasoner walks is every known triple of the stage: for training the
        ``facts`` split when present (the ``train`` triples are the queries), else ``train``;
        for validation and test ``facts`` plus ``train``, as RED-GNN's ``load_test_graph``
        does (a test answer may be reachable only through a training triple). An inductive
        test graph's facts are its ``train`` split. The validation filter is every split but
        ``test``; the test filter is every split (PyKEEN's and RED-GNN's convention).
        """
        if stage not in ("train", "val", "test"):
            raise InvalidArgumentError(f"stage must be 'train', 'val' or 'test', got {stage!r}")
        g = self.test_graph if stage == "test" and self.test_graph is not None else self.graph
        split = {"train": "train", "val": "valid", "test": "test"}[stage]
        if g is self.test_graph or "facts" not in g.splits:
            facts = g.triples("train")
        elif stage == "train":
            facts = g.triples("facts")
        else:
            facts = g.triples("facts", "train")
        if split not in g.splits:
            raise EmptyGraphError(f"knowledge graph {g.name!r} has no {split!r} split for the "
                                  f"{stage} stage")
        keep = [s for s in g.splits if stage == "test" or s != "test"]
        return Stage(graph=g, queries=g.splits[split], facts=facts,
                     filter=torch.cat([g.splits[s] for s in keep]))

    def split_sizes(self) -> dict[str, int]:
        return {s: int(self.stage(s).queries.size(0)) for s in ("train", "val", "test")}

    def __repr__(self) -> str:
        ind = f", test_graph={self.test_graph!r}" if self.test_graph is not None else ""
        return f"LinkPredictionDataset({self.info.name!r}, {self.graph!r}{ind})"
