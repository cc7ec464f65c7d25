r"""Retrieve a question's subgraph from a :class:`~graphlearn.kg.grag.GraphIndex`.

- :func:`retrieve` (GRAG, Hu et al., 2024, `arXiv:2405.16506
  <https://arxiv.org/abs/2405.16506>`_): the top-:math:`k` ego-graphs by cosine similarity
  of their pooled embeddings to the question, merged into one subgraph.
- :func:`text_rag`: the plain text-RAG baseline, the top-:math:`k` triples by similarity of
  their embeddings to the question, as a subgraph of just those triples.
- :func:`khop_baseline`: the :math:`k`-hop neighbourhood of a named question entity (what
  a KBQA system with perfect entity linking and no ranking would hand the LLM).

Each returns a :class:`Retrieval`: the subgraph (a :class:`TextGraph`), where its nodes and
edges sit in the indexed graph, per-node / per-edge cosine similarities to the question, the
member embeddings (for :class:`~graphlearn.kg.grag.SoftPruner`) and
:attr:`Retrieval.description`, GRAG's hierarchical text for the LLM.

Example:
    >>> from graphlearn.kg.grag import GraphIndex, HashingEncoder, TextGraph, retrieve
    >>> g = TextGraph.from_triples([("paris", "capital of", "france"),
    ...                             ("rome", "capital of", "italy")])
    >>> r = retrieve(GraphIndex.build(g, HashingEncoder()), "capital of france?", k=1)
    >>> sorted(r.graph.triples())
    [('paris', 'capital of', 'france')]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import torch
from torch import Tensor

from graphlearn.errors import DTypeError, EmptyGraphError, InvalidArgumentError

from .describe import describe
from .index import GraphIndex, _check_int
from .textgraph import TextGraph

__all__ = ["Retrieval", "retrieve", "text_rag", "khop_baseline"]


@dataclass(frozen=True, eq=False)
class Retrieval:
    """A retrieved subgraph with its similarity scores.

    Attributes:
        question (str, optional): The question (``None`` for :func:`khop_baseline` without one).
        graph (TextGraph): The subgraph; node ``i`` is node ``node_ids[i]`` of the index's
            graph and edge ``j`` is edge ``edge_ids[j]``.
        node_ids (Tensor): ``(n,)`` long, sorted.
        edge_ids (Tensor): ``(m,)`` long, sorted.
        node_scores (Tensor, optional): ``(n,)`` cosine similarity of each node's text
            embedding to the question.
        edge_scores (Tensor, optional): ``(m,)`` the same for each edge's embedding.
        roots (Tensor): Subgraph node ids in priority order for :attr:`description` (most
            similar first; for :func:`khop_baseline` the entity).
        ego_roots (Tensor): ``(k,)`` index node ids whose ego-graphs were retrieved
            (:func:`retrieve` only; empty otherwise), best first.
        ego_scores (Tensor): ``(k,)`` their cosine similarities to the question.
        question_embedding (Tensor, optional): ``(d,)``.
        node_embeddings (Tensor): ``(n, d)`` member node embeddings.
        edge_embeddings (Tensor): ``(m, d)`` member edge embeddings.
        node_gates, edge_gates (Tensor, optional): Relevance gates in (0, 1) set by
            :meth:`SoftPruner.prune <graphlearn.kg.grag.SoftPruner.prune>`.
        method (str): ``"grag"``, ``"text_rag"``, ``"khop"`` or ``"pruned"``.
    """

    question: str | None
    graph: TextGraph
    node_ids: Tensor
    edge_ids: Tensor
    node_scores: Tensor | None
    edge_scores: Tensor | None
    roots: Tensor
    ego_roots: Tensor
    ego_scores: Tensor
    question_embedding: Tensor | None
    node_embeddings: Tensor
    edge_embeddings: Tensor
    node_gates: Tensor | None = None
    edge_gates: Tensor | None = None
    method: str = "grag"

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        return self.graph.num_edges

    @cached_property
    def description(self) -> str:
        """GRAG's hierarchical description (:func:`~graphlearn.kg.grag.describe`) grown from
        :attr:`roots`, the most similar nodes first; computed on first access and kept (the
        prompt, the service's JSON and a retrieval-only answer all read it)."""
        return describe(self.graph, roots=self.roots)

    def triples(self) -> list[tuple[str, str, str]]:
        """The subgraph's edges as ``(head, relation, tail)`` texts."""
        return self.graph.triples()

    def __repr__(self) -> str:
        q = "" if self.question is None else f"{self.question[:40]!r}, "
        return (f"Retrieval({q}method={self.method!r}, nodes={self.num_nodes}, "
                f"edges={self.num_edges})")

    def replace(self, **changes) -> Retrieval:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return replace(self, **changes)


# ---------------------------------------------------------------------------- helpers
def _check_index(index: GraphIndex) -> None:
    if not isinstance(index, GraphIndex):
        raise DTypeError(f"expected a GraphIndex, got {type(index).__name__}; build one with "
                         f"GraphIndex.build(graph, encoder)")
    if index.num_nodes == 0:
        raise EmptyGraphError("the index's graph has no nodes")


def _query(index: GraphIndex, question: str, k: int) -> tuple[str, int, Tensor]:
    """Check a retrieval call's arguments; return the question, ``k`` and its embedding."""
    _check_index(index)
    question = _check_question(question)
    k = _check_int(k, "k", 1)
    return question, k, index.encode_question(question)


def _check_question(question: str) -> str:
    if not isinstance(question, str):
        raise DTypeError(f"question must be a str, got {type(question).__name__}")
    if not question.strip():
        raise InvalidArgumentError(f"question is empty ({question!r}); pass the question text")
    return question


def _assemble(index: GraphIndex, question: str | None, q: Tensor | None, node_ids: Tensor,
              edge_ids: Tensor, graph: TextGraph, *, ego_roots: Tensor, ego_scores: Tensor,
              method: str, lead: Tensor | None = None) -> Retrieval:
    # index_select: advanced indexing is far slower on a busy multi-threaded CPU
    x = index.node_embeddings.index_select(0, node_ids)
    y = index.edge_embeddings_of(edge_ids)
    node_scores = x @ q if q is not None else None
    edge_scores = y @ q if q is not None else None
    order = (torch.argsort(node_scores, descending=True, stable=True) if node_scores is not None
             else torch.empty(0, dtype=torch.long))
    if lead is not None:
        order = torch.cat([lead, order[~torch.isin(order, lead)]])
    roots = order if node_scores is not None or lead is not None else torch.arange(len(node_ids))
    return Retrieval(question=question, graph=graph, node_ids=node_ids, edge_ids=edge_ids,
                     node_scores=node_scores, edge_scores=edge_scores, roots=roots,
                     ego_roots=ego_roots, ego_scores=ego_scores, question_embedding=q,
                     node_embeddings=x, edge_embeddings=y, method=method)


# ---------------------------------------------------------------------------- retrievers
def retrieve(index: GraphIndex, question: str, k: int = 5) -> Retrieval:
    r"""GRAG retrieval: merge the ``k`` ego-graphs most similar to ``question``.

    The question is embedded with the index's encoder, faiss returns the ``k`` roots whose
    pooled ego-graph embeddings :math:`\mathbf{g}_v` have the largest cosine similarity to
    it, and the subgraph is the one induced by the union of their node sets, equal to
    ``index.graph.k_hop_subgraph(roots, index.num_hops)`` (the union of the ego-graphs plus
    any edge joining two of them), found by a breadth-first search whose cost grows with the
    subgraph, not the graph (:meth:`GraphIndex.k_hop_nodes`). :attr:`Retrieval.roots` orders
    the subgraph's nodes by their own similarity to the question, so the description starts
    from the most relevant entity.

    Args:
        index (GraphIndex): The index.
        question (str): A non-empty question.
        k (int): Ego-graphs to merge (capped at the number of nodes). (default: :obj:`5`)

    Raises:
        InvalidArgumentError: ``question`` is blank or ``k < 1``.
        EmptyGraphError: The index is empty.
    """
    question, k, q = _query(index, question, k)
    ego_scores, ego_roots = index.search(q, k)
    node_ids = index.k_hop_nodes(ego_roots)
    edge_ids = index.induced_edges(node_ids)
    graph = index.subgraph(node_ids, edge_ids)
    return _assemble(index, question, q, node_ids, edge_ids, graph, ego_roots=ego_roots,
                     ego_scores=ego_scores, method="grag")


def text_rag(index: GraphIndex, question: str, k: int = 10) -> Retrieval:
    """Text-RAG baseline: the ``k`` triples whose edge embeddings are most similar to
    ``question`` (exact, a matrix product over all edges), as a graph of just those triples
    and their endpoints.

    Meaningful with ``edge_embedding="triple"`` (the default), where an edge embedding is
    its ``"head relation tail"`` text; with ``"relation"`` all edges of one relation tie.

    Raises:
        InvalidArgumentError: ``question`` is blank or ``k < 1``.
        EmptyGraphError: The index is empty.
    """
    question, k, q = _query(index, question, k)
    empty = torch.empty(0, dtype=torch.long)
    if index.num_edges == 0:
        edge_ids = empty
    else:
        scores = index.edge_scores(q)
        edge_ids = torch.topk(scores, min(k, index.num_edges)).indices.sort().values
    node_ids = torch.unique(index.graph.edges.index_select(0, edge_ids).reshape(-1))
    graph = index.subgraph(node_ids, edge_ids)
    return _assemble(index, question, q, node_ids, edge_ids, graph, ego_roots=empty,
                     ego_scores=torch.empty(0), method="text_rag")


def khop_baseline(index: GraphIndex, entity: str, num_hops: int | None = None, *,
                  question: str | None = None) -> Retrieval:
    """The ``num_hops``-hop neighbourhood (edge direction ignored) of the node named
    ``entity``, as an induced subgraph.

    Args:
        index (GraphIndex): The index.
        entity (str): A node text, e.g. the question's topic entity.
        num_hops (int, optional): Radius (default: the index's ``num_hops``).
        question (str, optional): When given, node and edge scores are computed against it.

    Raises:
        IndexOutOfRangeError: No node has text ``entity`` (the closest texts are named).
        InvalidArgumentError: ``num_hops < 0`` or a blank ``question``.
    """
    _check_index(index)
    if not isinstance(entity, str):
        raise DTypeError(f"entity must be a node text (str), got {type(entity).__name__}")
    num_hops = index.num_hops if num_hops is None else _check_int(num_hops, "num_hops", 0)
    root = index.graph.node_id(entity)
    q = None
    if question is not None:
        question = _check_question(question)
        q = index.encode_question(question)
    node_ids = index.k_hop_nodes(root, num_hops)
    edge_ids = index.induced_edges(node_ids)
    graph = index.subgraph(node_ids, edge_ids)
    local_root = int(torch.searchsorted(node_ids, torch.tensor(root)))
    return _assemble(index, question, q, node_ids, edge_ids, graph,
                     ego_roots=torch.empty(0, dtype=torch.long), ego_scores=torch.empty(0),
                     method="khop", lead=torch.tensor([local_root]))
