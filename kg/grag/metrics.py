"""Retrieval quality: does a retrieved subgraph hold the answers and the gold reasoning path?

LLM-free measures of what a retriever hands the generator (used in
``benchmarks/grag_quality.py`` on PathQuestion), each computed per question on the
subgraph's texts:

- :func:`answer_recall`: 1.0 when at least one gold answer is a node text of the subgraph,
  else 0.0 (the "hit" that a reader needs at least one answer to pick).
- :func:`answer_coverage`: the fraction of the distinct gold answers that are node texts.
- :func:`path_recall`: the fraction of the distinct gold-path triples
  ``(head, relation, tail)`` that are triples (edges) of the subgraph.
- :func:`full_path_recall`: 1.0 when every gold-path triple is an edge, else 0.0.

Matching is exact on texts, as PathQuestion's answers and paths are written with the KB's
own texts (every answer is a KB node and every path triple a KB edge); normalise texts
first where a dataset writes them differently. :func:`retrieval_quality` gathers the four
with the subgraph's size, and :func:`mean_retrieval_quality` averages them over questions.

Example:
    >>> from graphlearn.kg.grag import TextGraph
    >>> from graphlearn.kg.grag.metrics import path_recall, retrieval_quality
    >>> g = TextGraph.from_triples([("alice", "parent", "bob"), ("bob", "born in", "paris")])
    >>> path_recall(g, [("alice", "parent", "bob"), ("bob", "lives in", "paris")])
    0.5
    >>> retrieval_quality(g, ["paris", "lyon"], [("alice", "parent", "bob")])["answer_coverage"]
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from graphlearn.errors import DTypeError, InvalidArgumentError

from .textgraph import TextGraph

__all__ = ["answer_recall", "answer_coverage", "path_recall", "full_path_recall",
           "retrieval_quality", "mean_retrieval_quality"]

Triple = tuple[str, str, str]
QUALITY_KEYS = ("answer_recall", "answer_coverage", "path_recall", "full_path_recall")


def _graph_of(retrieved: Any) -> TextGraph:
    """The TextGraph of a TextGraph or of anything holding one in ``.graph`` (a Retrieval)."""
    graph = getattr(retrieved, "graph", retrieved)
    if not isinstance(graph, TextGraph):
        raise DTypeError(f"expected a TextGraph or a Retrieval, got {type(retrieved).__name__}")
    return graph


def _answers(answers: str | Iterable[str]) -> set[str]:
    found = {answers} if isinstance(answers, str) else set(answers)
    if not found:
        raise InvalidArgumentError("answers is empty; give at least one gold answer text")
    return found


def _path(path: Iterable[Sequence[str]]) -> set[Triple]:
    triples = set()
    for k, t in enumerate(path):
        if isinstance(t, str) or len(t) != 3:
            raise InvalidArgumentError(f"path[{k}] is {t!r}, not a (head, relation, tail) "
                                       f"triple of texts")
        triples.add((t[0], t[1], t[2]))
    if not triples:
        raise InvalidArgumentError("path is empty; give at least one (head, relation, tail) "
                                   "triple")
    return triples


def answer_recall(retrieved: TextGraph | Any, answers: str | Iterable[str]) -> float:
    """1.0 if any of ``answers`` is a node text of ``retrieved``, else 0.0.

    Args:
        retrieved (TextGraph or Retrieval): The subgraph.
        answers (str or iterable of str): The gold answer texts (at least one).

    Raises:
        InvalidArgumentError: ``answers`` is empty.
    """
    graph = _graph_of(retrieved)
    return float(any(a in graph for a in _answers(answers)))


def answer_coverage(retrieved: TextGraph | Any, answers: str | Iterable[str]) -> float:
    """The fraction of the distinct ``answers`` that are node texts of ``retrieved``.

    Raises:
        InvalidArgumentError: ``answers`` is empty.
    """
    graph = _graph_of(retrieved)
    gold = _answers(answers)
    return sum(a in graph for a in gold) / len(gold)


def path_recall(retrieved: TextGraph | Any, path: Iterable[Sequence[str]]) -> float:
    """The fraction of the distinct ``(head, relation, tail)`` triples of ``path`` that are
    edges of ``retrieved`` (a triple repeated in the path counts once).

    Raises:
        InvalidArgumentError: ``path`` is empty or holds a non-triple.
    """
    gold = _path(path)
    edges = set(_graph_of(retrieved).triples())
    return len(gold & edges) / len(gold)


def full_path_recall(retrieved: TextGraph | Any, path: Iterable[Sequence[str]]) -> float:
    """1.0 if every triple of ``path`` is an edge of ``retrieved``, else 0.0.

    Raises:
        InvalidArgumentError: ``path`` is empty or holds a non-triple.
    """
    return float(path_recall(retrieved, path) == 1.0)


def retrieval_quality(retrieved: TextGraph | Any, answers: str | Iterable[str],
                      path: Iterable[Sequence[str]] = ()) -> dict[str, float | None]:
    """Size and the four quality measures of one question's subgraph.

    Args:
        retrieved (TextGraph or Retrieval): The subgraph.
        answers (str or iterable of str): Gold answer texts (at least one).
        path (iterable of triples, optional): The gold path; when empty, ``path_recall`` and
            ``full_path_recall`` are ``None``.

    Returns:
        dict: ``num_nodes``, ``num_edges``, ``answer_recall``, ``answer_coverage``,
        ``path_recall``, ``full_path_recall``.
    """
    graph = _graph_of(retrieved)
    path = list(path)
    pr = path_recall(graph, path) if path else None
    return {"num_nodes": float(graph.num_nodes), "num_edges": float(graph.num_edges),
            "answer_recall": answer_recall(graph, answers),
            "answer_coverage": answer_coverage(graph, answers),
            "path_recall": pr, "full_path_recall": None if pr is None else float(pr == 1.0)}


def mean_retrieval_quality(rows: Iterable[dict[str, float | None]]) -> dict[str, float]:
    """Average :func:`retrieval_quality` rows over questions.

    A ``None`` entry (no gold path) is left out of that measure's mean; a measure that no
    row has is ``nan``. ``num_questions`` counts the rows.

    Raises:
        InvalidArgumentError: ``rows`` is empty.
    """
    rows = list(rows)
    if not rows:
        raise InvalidArgumentError("no rows to average; pass one retrieval_quality() per "
                                   "question")
    out: dict[str, float] = {"num_questions": len(rows)}
    for key in ("num_nodes", "num_edges", *QUALITY_KEYS):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = sum(values) / len(values) if values else math.nan
    return out
