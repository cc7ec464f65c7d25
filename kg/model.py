"""The link-prediction model protocol shared by embedding models and GNN reasoners.

A link-prediction model is an ``nn.Module`` registered (``register_model(name,
tasks=(TaskKind.LINK_PREDICTION,))``) whose constructor takes keyword arguments only:
``num_relations`` (base relations, without inverses) and, for models with one embedding per
entity, ``num_entities``; the config's ``model:`` keys are its further hyperparameters.
It implements :class:`KGModel`:

- :meth:`KGModel.score_all` scores every entity of the graph as the answer of a batch of
  queries (``side="tail"``: ``(h, r, ?)``, ``side="head"``: ``(?, r, t)``). This is the
  ``score_fn`` of :func:`graphlearn.kg.evaluate`, and what 1-N training uses.
- :meth:`KGModel.score_triples` scores given triples (negative-sampling training);
  embedding models implement it, reasoners need not.
- :meth:`KGModel.regularization` returns a penalty for a batch of triples (default 0).

Reasoners (``uses_graph = True``) answer queries by message passing over a fact graph
passed to :meth:`~KGModel.score_all` as a :class:`MessageGraph`, so they are inductive: the
same weights rank the entities of any graph over the same relations. Embedding models
ignore the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from graphlearn.errors import ConfigError, ShapeError

__all__ = ["KGModel", "MessageGraph", "message_graph"]


@dataclass
class MessageGraph:
    """A fact graph in message-passing form, inverse edges included.

    Attributes:
        edge_index (Tensor): ``(2, 2m)`` source and target entity ids; edge ``i + m`` is the
            inverse of edge ``i``.
        edge_type (Tensor): ``(2m,)`` relation ids; inverse edges carry ``r + num_relations``.
        num_nodes (int): Number of entities.
        num_relations (int): Number of base relations (``2 * num_relations`` edge types).
    """

    edge_index: Tensor
    edge_type: Tensor
    num_nodes: int
    num_relations: int

    def to(self, device) -> MessageGraph:
        return MessageGraph(self.edge_index.to(device), self.edge_type.to(device), self.num_nodes,
                            self.num_relations)

    @property
    def num_edges(self) -> int:
        return int(self.edge_type.numel())

    def without(self, triples: Tensor) -> MessageGraph:
        """A copy without the edges of ``triples`` (and their inverses).

        Reasoners trained on queries that are also facts (ConvE-layout datasets) must not
        see the edge they are asked to predict; NBFNet removes it the same way.
        """
        if triples.numel() == 0:
            return self
        E, R2 = self.num_nodes, 2 * self.num_relations
        src, dst = self.edge_index
        keys = (src * R2 + self.edge_type) * E + dst
        h, r, t = triples.to(src.device).unbind(1)
        drop = torch.cat([(h * R2 + r) * E + t, (t * R2 + r + self.num_relations) * E + h])
        keep = ~torch.isin(keys, drop)
        return MessageGraph(self.edge_index[:, keep], self.edge_type[keep], self.num_nodes,
                            self.num_relations)


def message_graph(facts: Tensor, num_entities: int, num_relations: int) -> MessageGraph:
    """The :class:`MessageGraph` of ``(m, 3)`` fact triples, with inverse edges appended."""
    h, r, t = facts.long().unbind(1)
    edge_index = torch.stack([torch.cat([h, t]), torch.cat([t, h])])
    edge_type = torch.cat([r, r + num_relations])
    return MessageGraph(edge_index, edge_type, int(num_entities), int(num_relations))


class KGModel(nn.Module):
    """Base class of link-prediction models (see the module docstring for the protocol)."""

    #: Whether :meth:`score_all` reasons over the fact graph (GNN reasoners).
    uses_graph: bool = False

    def score_all(self, anchors: Tensor, relations: Tensor, side: str,
                  graph: MessageGraph | None = None) -> Tensor:
        """Scores ``(B, num_entities)`` of every entity as the answer of each query.

        Args:
            anchors (Tensor): ``(B,)`` heads (``side="tail"``) or tails (``side="head"``).
            relations (Tensor): ``(B,)`` base relation ids.
            side (str): ``"tail"`` or ``"head"``: which end of the triple is asked for.
            graph (MessageGraph, optional): The fact graph (reasoners need it).
        """
        raise NotImplementedError

    def score_triples(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """Scores ``(B,)`` of the given triples (negative-sampling training)."""
        raise NotImplementedError(f"{type(self).__name__} scores whole entity sets only; train it "
                                  f"with task.objective=1-n")

    def score_answers(self, anchors: Tensor, relations: Tensor, answers: Tensor,
                      side: str) -> Tensor:
        """Scores ``(B,)`` of ``answers`` as answers of the queries ``(anchor, r, ?)``
        (``side="tail"``) or ``(?, r, anchor)`` (``side="head"``).

        Negative sampling scores through this, so a model that answers head queries its own
        way (reciprocal relations: ``(t, r + R, ?)``) is trained the way it is ranked. The
        default is :meth:`score_triples` with the triple put back in order.
        """
        if side == "tail":
            return self.score_triples(anchors, relations, answers)
        if side == "head":
            return self.score_triples(answers, relations, anchors)
        raise ConfigError(f"side must be 'head' or 'tail', got {side!r}")

    def score_candidates(self, anchors: Tensor, relations: Tensor, candidates: Tensor,
                         side: str) -> Tensor:
        """Scores ``(B, n)`` of each query's ``n`` candidate answers ``candidates (B, n)``.

        Negative sampling scores a batch's positives and corruptions through this. It checks
        the shapes and calls :meth:`_score_candidates`, whose default flattens the candidates
        into one :meth:`score_answers` call (one entity lookup, so one dense gradient fill of
        the entity table, per call); models whose :meth:`score_all` is cheap override that to
        score the whole entity set and gather.
        """
        if candidates.dim() != 2 or candidates.size(0) != anchors.numel() \
                or relations.numel() != anchors.numel():
            raise ShapeError(
                f"score_candidates needs candidates of shape (B, n) for B anchors and B "
                f"relations; got candidates {tuple(candidates.shape)}, "
                f"{anchors.numel()} anchors, {relations.numel()} relations")
        return self._score_candidates(anchors, relations, candidates, side)

    def _score_candidates(self, anchors: Tensor, relations: Tensor, candidates: Tensor,
                          side: str) -> Tensor:
        """:meth:`score_candidates` after its shape check: one candidate at a time."""
        b, n = candidates.shape
        return self.score_answers(anchors.repeat_interleave(n), relations.repeat_interleave(n),
                                  candidates.reshape(-1), side).view(b, n)

    def regularization(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        """A penalty added to the loss for a training batch (default: none)."""
        return torch.zeros((), device=heads.device)
