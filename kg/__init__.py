"""Knowledge graphs: triples, conversions, link-prediction models and filtered evaluation.

::

    from graphlearn import datasets
    from graphlearn.kg import KnowledgeGraph, evaluate

    ds = datasets.load("umls")                      # a LinkPredictionDataset
    kg = ds.graph                                   # KnowledgeGraph: vocabularies + splits
    kg.splits["train"]                              # (n, 3) long (head, relation, tail)
    metrics = evaluate(score_fn, kg.splits["test"], kg.triples(), kg.num_entities)

Train with ``graphlearn fit --model rotate --dataset umls``; the models (embedding models and
GNN reasoners) are in :mod:`graphlearn.kg.models`.
"""

from graphlearn.kg.dataset import LinkPredictionDataset, Stage
from graphlearn.kg.evaluation import FilterIndex, evaluate, filtered_ranks, rank_metrics
from graphlearn.kg.graph import INVERSE_SUFFIX, KnowledgeGraph
from graphlearn.kg.model import KGModel, MessageGraph, message_graph
from graphlearn.kg.task import LinkPredictionTask


def _register_task() -> None:
    from graphlearn.data.dataset import TaskKind
    from graphlearn.tasks import TASKS

    TASKS[TaskKind.LINK_PREDICTION] = LinkPredictionTask


_register_task()

__all__ = [
    "INVERSE_SUFFIX",
    "FilterIndex",
    "KGModel",
    "KnowledgeGraph",
    "LinkPredictionDataset",
    "LinkPredictionTask",
    "MessageGraph",
    "Stage",
    "evaluate",
    "filtered_ranks",
    "message_graph",
    "rank_metrics",
]
