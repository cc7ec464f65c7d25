r"""GRAG's soft pruning: learned relevance gates on the nodes and edges of a retrieved subgraph.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_, Sec. 3.3)
scales each node and edge of the retrieved subgraph by a relevance factor computed from how
far its text embedding lies from the question's, so that irrelevant members fade before the
GNN and the LLM see them:

.. math::
    \alpha_u = \sigma\bigl(\mathrm{MLP}_V(\delta(\mathbf{x}_u, \mathbf{q}))\bigr), \qquad
    \beta_e = \sigma\bigl(\mathrm{MLP}_E(\delta(\mathbf{y}_e, \mathbf{q}))\bigr)

where :math:`\delta` is an element-wise distance: ``"abs"`` :math:`|\mathbf{x} - \mathbf{q}|`
(GRAG's ``manhattan`` operator; its ``euclidean`` operator
:math:`\sqrt{(\mathbf{x} - \mathbf{q})^2}` is the same vector) or ``"difference"``
:math:`\mathbf{x} - \mathbf{q}` (GRAG's ``element``). :class:`SoftPruner` computes the gates;
GRAG multiplies the member embeddings by them (``x * node_gate[:, None]``) inside its
graph encoder, and :meth:`SoftPruner.prune` turns them into a hard selection.

The gates are trained here on their own, with binary cross-entropy against labels read off
the data (:func:`pruning_labels`): a node is relevant when its text is an answer, an edge
when its triple lies on the gold relation path from the topic entity (PathQuestion's
``path``). GRAG trains them end to end through the LLM's loss; this direct supervision is
the cheap, LLM-free stage that the generation step can start from.

**Structure-aware gates** (``num_steps > 0``, an extension, not in GRAG). A gate computed
from one member's text alone cannot tell the second edge of a gold path
(``daoguang_emperor gender male`` for "the gender of yixin_prince_gong's father?") from a
look-alike elsewhere in the subgraph (``yixin_prince_gong gender male``): what makes it
relevant is that it continues a relevant edge. With ``num_steps`` :math:`T > 0` the MLPs
output hidden states :math:`\mathbf{h}_u, \mathbf{h}_e \in \mathbb{R}^H` instead of
logits, and :math:`T` rounds of message passing over the retrieved subgraph update them,

.. math::
    \mathbf{h}_u \leftarrow \mathbf{h}_u + \mathrm{ReLU}\bigl(\mathbf{W}_V^{(t)}
        [\mathbf{h}_u \,\Vert\, \operatorname{mean}_{e \ni u} \mathbf{h}_e]\bigr), \qquad
    \mathbf{h}_e \leftarrow \mathbf{h}_e + \mathrm{ReLU}\bigl(\mathbf{W}_E^{(t)}
        [\mathbf{h}_e \,\Vert\, \mathbf{h}_{\mathrm{head}(e)} \,\Vert\,
        \mathbf{h}_{\mathrm{tail}(e)}]\bigr)

(the mean over the edges incident to :math:`u`, either direction), before a linear layer
gives each logit. :math:`T` rounds let an edge see members :math:`T` hops away, so set it
to the path length (2 or 3 on PathQuestion). On PathQuestion's GRAG retrievals this is
what makes pruning pay: per-member gates lose more gold paths than retrieving fewer
ego-graphs does, while structure-aware ones keep nearly all of them (within about a point
of full-path recall) with a sixth of the nodes and a tenth of the edges
(``benchmarks/grag_quality.py``, ``docs/results.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.errors import (
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

from .index import GraphIndex, _check_int
from .retrieve import Retrieval, khop_baseline, retrieve, text_rag
from .textgraph import TextGraph

__all__ = ["SoftPruner", "PruningExample", "pruning_labels", "make_pruning_examples",
           "pruning_loss", "train_pruner"]

DISTANCES = ("abs", "difference")


class SoftPruner(nn.Module):
    r"""Relevance gates :math:`\alpha_u, \beta_e \in (0, 1)` from GRAG's soft pruning.

    Two MLPs (nodes, edges; :class:`torch_geometric.nn.MLP` with ReLU, no normalisation)
    map the element-wise distance between a member's embedding and the question's to one
    logit each (module docstring); with ``num_steps > 0`` they map it to a hidden state that
    ``num_steps`` rounds of message passing over the subgraph refine before a linear layer
    gives the logit (module docstring, "structure-aware gates").

    .. note::
        ``num_steps=0`` (the default) is GRAG's soft pruning: each gate sees one member and
        the question. On PathQuestion those gates rank gold-path edges poorly (a path's
        later edges share little text with the question), and pruning with them keeps fewer
        gold paths than retrieving fewer ego-graphs would. ``num_steps`` equal to the path
        length fixes that at the cost of needing the subgraph's edges
        (:class:`Retrieval`, or ``edges=`` with tensors).

    Args:
        in_channels (int): Embedding size :math:`d` (the index's ``dim``).
        hidden_channels (int): Hidden width. (default: :obj:`128`)
        num_layers (int): Linear layers per MLP (``1``: logistic regression on the
            distance, or with ``num_steps > 0`` one linear map to the hidden state).
            (default: :obj:`2`)
        dropout (float): Dropout between layers. (default: :obj:`0.0`)
        distance (str): ``"abs"`` or ``"difference"``. (default: ``"abs"``)
        num_steps (int): Message-passing rounds over the subgraph (``0``: none, GRAG's
            per-member gates). (default: :obj:`0`)
        product (bool): Also feed the MLPs the element-wise product
            :math:`\mathbf{x} \odot \mathbf{q}` (whose sum is the cosine similarity),
            concatenated to the distance. (default: :obj:`False`)

    Shapes:
        - **input:** node embeddings :math:`(n, d)`, edge embeddings :math:`(m, d)`, question
          :math:`(d,)` (or one per row, :math:`(n, d)` / :math:`(m, d)`); with
          ``num_steps > 0`` also the subgraph's edges :math:`(m, 2)` (local node ids)
        - **output:** node gates :math:`(n,)`, edge gates :math:`(m,)`
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128, num_layers: int = 2,
                 dropout: float = 0.0, distance: str = "abs", num_steps: int = 0,
                 product: bool = False) -> None:
        super().__init__()
        from torch_geometric.nn import MLP

        self.in_channels = _check_int(in_channels, "in_channels", 1)
        self.hidden_channels = _check_int(hidden_channels, "hidden_channels", 1)
        self.num_layers = _check_int(num_layers, "num_layers", 1)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise InvalidArgumentError(f"dropout must be a float in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        if distance not in DISTANCES:
            raise InvalidArgumentError(f"distance must be one of {', '.join(map(repr, DISTANCES))}"
                                       f", got {distance!r}")
        self.distance = distance
        self.num_steps = _check_int(num_steps, "num_steps", 0)
        if not isinstance(product, bool):
            raise InvalidArgumentError(f"product must be True or False, got {product!r}")
        self.product = product
        features = 2 * in_channels if product else in_channels
        out = 1 if self.num_steps == 0 else hidden_channels
        channels = [features] + [hidden_channels] * (num_layers - 1) + [out]
        # with message passing the MLPs' last layer feeds the rounds, so it gets a ReLU too
        plain_last = self.num_steps == 0
        self.node_mlp = MLP(channels, dropout=self.dropout, norm=None, plain_last=plain_last)
        self.edge_mlp = MLP(channels, dropout=self.dropout, norm=None, plain_last=plain_last)
        h = hidden_channels
        self.node_updates = nn.ModuleList(nn.Linear(2 * h, h) for _ in range(self.num_steps))
        self.edge_updates = nn.ModuleList(nn.Linear(3 * h, h) for _ in range(self.num_steps))
        self.node_out = nn.Linear(h, 1) if self.num_steps else None
        self.edge_out = nn.Linear(h, 1) if self.num_steps else None
        self.reset_parameters()

    def config(self) -> dict:
        """The constructor arguments, JSON-ready (``SoftPruner(**p.config())`` rebuilds it)."""
        return {"in_channels": self.in_channels, "hidden_channels": self.hidden_channels,
                "num_layers": self.num_layers, "dropout": self.dropout,
                "distance": self.distance, "num_steps": self.num_steps,
                "product": self.product}

    def reset_parameters(self) -> None:
        self.node_mlp.reset_parameters()
        self.edge_mlp.reset_parameters()
        for layer in (*self.node_updates, *self.edge_updates, self.node_out, self.edge_out):
            if layer is not None:
                layer.reset_parameters()

    def __repr__(self) -> str:
        extra = (f", num_steps={self.num_steps}" if self.num_steps else "") + (
            ", product=True" if self.product else "")
        return (f"{type(self).__name__}({self.in_channels}, hidden_channels="
                f"{self.hidden_channels}, num_layers={self.num_layers}, "
                f"distance={self.distance!r}{extra})")

    def _features(self, members: Tensor, question: Tensor, what: str) -> Tensor:
        if members.dim() != 2 or members.size(1) != self.in_channels:
            raise ShapeError(f"{what} must have shape (rows, {self.in_channels}), got "
                             f"{tuple(members.shape)}")
        if question.dim() == 1:
            question = question.unsqueeze(0)
        if question.size(-1) != self.in_channels or question.size(0) not in (1, members.size(0)):
            raise ShapeError(f"the question embedding must have shape ({self.in_channels},) or "
                             f"({members.size(0)}, {self.in_channels}) for {what}, got "
                             f"{tuple(question.shape)}")
        diff = members - question
        out = diff.abs() if self.distance == "abs" else diff
        if self.product:
            out = torch.cat([out, members * question], dim=-1)
        return out

    def _check_edges(self, edges: Tensor | None, num_nodes: int, num_edges: int) -> Tensor:
        if edges is None:
            raise InvalidArgumentError(f"this SoftPruner passes messages (num_steps="
                                       f"{self.num_steps}), so it needs the subgraph's edges: "
                                       f"pass a Retrieval, or edges=retrieval.graph.edges")
        edges = torch.as_tensor(edges)
        if edges.dim() != 2 or edges.size(1) != 2 or edges.size(0) != num_edges:
            raise ShapeError(f"edges must have shape ({num_edges}, 2) (local head, tail ids, "
                             f"one row per edge embedding), got {tuple(edges.shape)}")
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= num_nodes):
            raise IndexOutOfRangeError(f"edges name node ids outside [0, {num_nodes}), the "
                                       f"rows of node_embeddings")
        return edges.long()

    def _propagate(self, h_node: Tensor, h_edge: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
        from torch_geometric.utils import scatter

        n = h_node.size(0)
        heads, tails = edges[:, 0], edges[:, 1]
        ends = torch.cat([heads, tails])
        for node_update, edge_update in zip(self.node_updates, self.edge_updates, strict=True):
            incident = scatter(torch.cat([h_edge, h_edge]), ends, dim=0, dim_size=n,
                               reduce="mean")
            h_node = h_node + F.relu(node_update(torch.cat([h_node, incident], dim=-1)))
            h_edge = h_edge + F.relu(edge_update(torch.cat(
                [h_edge, h_node.index_select(0, heads), h_node.index_select(0, tails)], dim=-1)))
        return self.node_out(h_node).view(-1), self.edge_out(h_edge).view(-1)

    def logits(self, node_embeddings: Tensor, edge_embeddings: Tensor,
               question_embedding: Tensor, edge_question_embedding: Tensor | None = None,
               edges: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gate logits ``(n,)`` and ``(m,)`` (for ``binary_cross_entropy_with_logits``).

        ``question_embedding`` is ``(d,)`` or one row per node; ``edge_question_embedding``
        (one row per edge) defaults to ``question_embedding``. ``edges`` (``(m, 2)`` local
        node ids, e.g. ``retrieval.graph.edges``; a batch of subgraphs as their disjoint
        union) is needed when ``num_steps > 0`` and ignored otherwise.
        """
        p = next(self.parameters())
        x = node_embeddings.to(p)
        y = edge_embeddings.to(p)
        q = question_embedding.to(p)
        qe = q if edge_question_embedding is None else edge_question_embedding.to(p)
        node = self.node_mlp(self._features(x, q, "node_embeddings"))
        edge = self.edge_mlp(self._features(y, qe, "edge_embeddings"))
        if self.num_steps == 0:
            return node.view(-1), edge.view(-1)
        edges = self._check_edges(edges, x.size(0), y.size(0)).to(p.device)
        return self._propagate(node, edge, edges)

    def forward(self, retrieval: Retrieval | Tensor, edge_embeddings: Tensor | None = None,
                question_embedding: Tensor | None = None,
                edges: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gates for a :class:`Retrieval`, or for ``(node_embeddings, edge_embeddings,
        question_embedding)`` tensors (and ``edges``, ``(m, 2)``, when ``num_steps > 0``).

        Returns:
            ``(node_gate, edge_gate)``: ``(n,)`` and ``(m,)`` in (0, 1).
        """
        if isinstance(retrieval, Retrieval):
            if retrieval.question_embedding is None:
                raise InvalidArgumentError("the retrieval has no question embedding (a "
                                           "khop_baseline without question=...); retrieve "
                                           "with a question to gate it")
            x, y, q = (retrieval.node_embeddings, retrieval.edge_embeddings,
                       retrieval.question_embedding)
            edges = retrieval.graph.edges
        else:
            if edge_embeddings is None or question_embedding is None:
                raise InvalidArgumentError("pass a Retrieval, or node_embeddings, "
                                           "edge_embeddings and question_embedding")
            x, y, q = retrieval, edge_embeddings, question_embedding
        node, edge = self.logits(x, y, q, edges=edges)
        return node.sigmoid(), edge.sigmoid()

    @torch.no_grad()
    def prune(self, retrieval: Retrieval, threshold: float = 0.5) -> Retrieval:
        """Keep the members whose gate exceeds ``threshold``.

        The rule: an edge is kept when its own gate exceeds the threshold, and it keeps both
        its endpoints (a fact cannot be stated without its entities, and the answer entity
        is often reached only through a relevant edge); a node is also kept when its own
        gate exceeds the threshold, even if none of its edges is (an answer entity may be
        relevant on its own). Edges between kept nodes whose own gate is low are dropped:
        the result is *not* an induced subgraph.

        Returns:
            Retrieval: ``method="pruned"``, with the kept members, their scores and
            embeddings, ``node_gates`` / ``edge_gates``, and :attr:`~Retrieval.roots` by
            descending node gate.
        """
        if not isinstance(retrieval, Retrieval):
            raise DTypeError(f"prune() takes a Retrieval, got {type(retrieval).__name__}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
                0.0 <= threshold < 1.0):
            raise InvalidArgumentError(f"threshold must be a float in [0, 1), got {threshold!r}")
        was_training = self.training
        self.eval()
        try:
            node_gate, edge_gate = (g.cpu() for g in self(retrieval))
        finally:
            self.train(was_training)
        keep_edge = edge_gate > threshold
        keep_node = node_gate > threshold
        ends = retrieval.graph.edges[keep_edge]
        keep_node[ends.reshape(-1)] = True
        local_nodes = keep_node.nonzero().view(-1)
        local_edges = keep_edge.nonzero().view(-1)
        remap = torch.full((retrieval.num_nodes,), -1, dtype=torch.long)
        remap[local_nodes] = torch.arange(local_nodes.numel())
        graph = TextGraph([retrieval.graph.node_text[i] for i in local_nodes.tolist()],
                          remap[ends], [retrieval.graph.edge_text[e] for e in local_edges.tolist()])
        def pick(t: Tensor | None, idx: Tensor) -> Tensor | None:
            return None if t is None else t.index_select(0, idx)

        kept_gates = pick(node_gate, local_nodes)

        return Retrieval(
            question=retrieval.question, graph=graph,
            node_ids=pick(retrieval.node_ids, local_nodes),
            edge_ids=pick(retrieval.edge_ids, local_edges),
            node_scores=pick(retrieval.node_scores, local_nodes),
            edge_scores=pick(retrieval.edge_scores, local_edges),
            roots=torch.argsort(kept_gates, descending=True, stable=True),
            ego_roots=retrieval.ego_roots, ego_scores=retrieval.ego_scores,
            question_embedding=retrieval.question_embedding,
            node_embeddings=pick(retrieval.node_embeddings, local_nodes),
            edge_embeddings=pick(retrieval.edge_embeddings, local_edges),
            node_gates=kept_gates, edge_gates=pick(edge_gate, local_edges), method="pruned")


# ---------------------------------------------------------------------------- supervision
@dataclass(frozen=True, eq=False)
class PruningExample:
    """One retrieved subgraph with relevance labels, for :func:`train_pruner`.

    Attributes:
        node_embeddings (Tensor): ``(n, d)``.
        edge_embeddings (Tensor): ``(m, d)``.
        question_embedding (Tensor): ``(d,)``.
        node_labels (Tensor): ``(n,)`` float, 1 for a relevant node.
        edge_labels (Tensor): ``(m,)`` float, 1 for a relevant edge.
        edges (Tensor, optional): ``(m, 2)`` long local ``(head, tail)`` ids of the edges,
            needed to train a :class:`SoftPruner` with ``num_steps > 0``.
    """

    node_embeddings: Tensor
    edge_embeddings: Tensor
    question_embedding: Tensor
    node_labels: Tensor
    edge_labels: Tensor
    edges: Tensor | None = None

    @classmethod
    def from_retrieval(cls, retrieval: Retrieval, answers: Iterable[str],
                       path: Iterable[Sequence[str]] = ()) -> PruningExample:
        """Label ``retrieval`` with :func:`pruning_labels`."""
        if retrieval.question_embedding is None:
            raise InvalidArgumentError("the retrieval has no question embedding; retrieve "
                                       "with a question")
        node_labels, edge_labels = pruning_labels(retrieval, answers, path)
        return cls(retrieval.node_embeddings, retrieval.edge_embeddings,
                   retrieval.question_embedding, node_labels, edge_labels,
                   retrieval.graph.edges)


def pruning_labels(retrieval: Retrieval, answers: Iterable[str],
                   path: Iterable[Sequence[str]] = ()) -> tuple[Tensor, Tensor]:
    """Relevance labels of a retrieved subgraph's members.

    A node is relevant (1.0) when its text is one of ``answers`` (exact match, as
    PathQuestion's answers are KB node texts); an edge when its ``(head, relation, tail)``
    texts are a triple of ``path``, the gold relation path from the topic entity
    (:attr:`TextGraphQAExample.path <graphlearn.datasets.textgraph.TextGraphQAExample.path>`).

    Returns:
        ``(node_labels, edge_labels)``: ``(n,)`` and ``(m,)`` float32.
    """
    if isinstance(answers, str):
        answers = [answers]
    answer_set = set(answers)
    path_set = {tuple(t) for t in path}
    node_labels = torch.tensor([t in answer_set for t in retrieval.graph.node_text],
                               dtype=torch.float32)
    edge_labels = torch.tensor([t in path_set for t in retrieval.graph.triples()],
                               dtype=torch.float32)
    return node_labels, edge_labels


def make_pruning_examples(index: GraphIndex, qa_examples: Iterable[Any], *, k: int = 5,
                          retriever: str = "grag") -> list[PruningExample]:
    """Retrieve each question and label the result (:func:`pruning_labels`).

    Args:
        index (GraphIndex): The index of the shared knowledge base.
        qa_examples: Objects with ``question``, ``answers`` and ``path`` (and, for
            ``retriever="khop"``, ``topic_entities``), e.g. PathQuestion's
            :class:`~graphlearn.datasets.textgraph.TextGraphQAExample`.
        k (int): Ego-graphs (``"grag"``) or triples (``"text_rag"``) per question; ignored by
            ``"khop"``, which expands the first topic entity by ``index.num_hops``.
        retriever (str): ``"grag"``, ``"text_rag"`` or ``"khop"``. (default: ``"grag"``)
    """
    if retriever not in ("grag", "text_rag", "khop"):
        raise InvalidArgumentError(f"retriever must be 'grag', 'text_rag' or 'khop', got "
                                   f"{retriever!r}")
    out = []
    for ex in qa_examples:
        if retriever == "grag":
            r = retrieve(index, ex.question, k)
        elif retriever == "text_rag":
            r = text_rag(index, ex.question, k)
        else:
            if not ex.topic_entities:
                raise InvalidArgumentError(f"example {getattr(ex, 'id', ex)!r} names no topic "
                                           f"entity for retriever='khop'")
            r = khop_baseline(index, ex.topic_entities[0], question=ex.question)
        out.append(PruningExample.from_retrieval(r, ex.answers, getattr(ex, "path", ())))
    return out


# ---------------------------------------------------------------------------- training
def _pos_weights(examples: Sequence[PruningExample], pos_weight: Any) -> tuple[Tensor, Tensor]:
    if pos_weight is None:
        return torch.tensor(1.0), torch.tensor(1.0)
    if pos_weight == "balanced":
        out = []
        for attr in ("node_labels", "edge_labels"):
            labels = [getattr(ex, attr) for ex in examples]
            pos = sum(float(t.sum()) for t in labels)
            total = sum(t.numel() for t in labels)
            out.append(torch.tensor((total - pos) / pos if pos > 0 else 1.0))
        return out[0], out[1]
    if isinstance(pos_weight, bool) or not isinstance(pos_weight, (int, float)) or pos_weight <= 0:
        raise InvalidArgumentError(f"pos_weight must be 'balanced', a positive number or None, "
                                   f"got {pos_weight!r}")
    return torch.tensor(float(pos_weight)), torch.tensor(float(pos_weight))


def _batch_loss(pruner: SoftPruner, batch: Sequence[PruningExample], node_pw: Tensor,
                edge_pw: Tensor) -> Tensor:
    p = next(pruner.parameters())
    x = torch.cat([ex.node_embeddings for ex in batch])
    y = torch.cat([ex.edge_embeddings for ex in batch])
    qx = torch.cat([ex.question_embedding.view(1, -1).expand(ex.node_embeddings.size(0), -1)
                    for ex in batch])
    qy = torch.cat([ex.question_embedding.view(1, -1).expand(ex.edge_embeddings.size(0), -1)
                    for ex in batch])
    edges = None
    if pruner.num_steps:
        if any(ex.edges is None for ex in batch):
            raise InvalidArgumentError("a SoftPruner with num_steps > 0 trains on the "
                                       "subgraphs' edges, but an example has none; build the "
                                       "examples with PruningExample.from_retrieval or "
                                       "make_pruning_examples")
        offsets = torch.tensor([0] + [ex.node_embeddings.size(0) for ex in batch[:-1]]).cumsum(0)
        edges = torch.cat([ex.edges + int(o) for ex, o in zip(batch, offsets, strict=True)])
    node_logit, edge_logit = pruner.logits(x, y, qx, qy, edges)
    loss = p.new_zeros(())
    if node_logit.numel():
        target = torch.cat([ex.node_labels for ex in batch]).to(p)
        loss = loss + F.binary_cross_entropy_with_logits(node_logit, target,
                                                         pos_weight=node_pw.to(p))
    if edge_logit.numel():
        target = torch.cat([ex.edge_labels for ex in batch]).to(p)
        loss = loss + F.binary_cross_entropy_with_logits(edge_logit, target,
                                                         pos_weight=edge_pw.to(p))
    return loss


def _check_examples(examples: Iterable[PruningExample]) -> list[PruningExample]:
    out = list(examples)
    if not out:
        raise InvalidArgumentError("no pruning examples; build them with "
                                   "make_pruning_examples(index, qa_examples)")
    for i, ex in enumerate(out):
        if not isinstance(ex, PruningExample):
            raise DTypeError(f"examples[{i}] is {type(ex).__name__}, not a PruningExample")
    return out


@torch.no_grad()
def pruning_loss(pruner: SoftPruner, examples: Iterable[PruningExample], *,
                 pos_weight: Any = "balanced", batch_size: int = 64) -> float:
    """Mean (over batches of ``batch_size`` examples) of the node BCE plus the edge BCE,
    as :func:`train_pruner` minimises it, in eval mode."""
    examples = _check_examples(examples)
    batch_size = _check_int(batch_size, "batch_size", 1)
    node_pw, edge_pw = _pos_weights(examples, pos_weight)
    was_training = pruner.training
    pruner.eval()
    try:
        losses = [float(_batch_loss(pruner, examples[s:s + batch_size], node_pw, edge_pw))
                  for s in range(0, len(examples), batch_size)]
    finally:
        pruner.train(was_training)
    return sum(losses) / len(losses)


def train_pruner(pruner: SoftPruner, examples: Iterable[PruningExample], *, epochs: int = 10,
                 lr: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 32,
                 pos_weight: Any = "balanced", seed: int | None = 0,
                 progress: bool | None = None) -> list[float]:
    """Fit the gates with binary cross-entropy on labelled retrievals (Adam).

    The loss of a batch is the node BCE plus the edge BCE (each a mean over the batch's
    members), so edges and nodes weigh the same whatever their numbers.

    Args:
        pruner (SoftPruner): Trained in place (on its current device).
        examples (list of PruningExample): From :func:`make_pruning_examples`.
        epochs (int): Passes over the examples. (default: :obj:`10`)
        lr (float): Adam's learning rate. (default: :obj:`1e-3`)
        weight_decay (float): Adam's weight decay. (default: :obj:`0.0`)
        batch_size (int): Examples per step. (default: :obj:`32`)
        pos_weight (str, float or None): Weight of positive labels: ``"balanced"``
            (negatives / positives over the examples, separately for nodes and edges; relevant
            members are rare), a number, or ``None`` (1). (default: ``"balanced"``)
        seed (int, optional): Seeds the shuffling (initialise the pruner under
            ``torch.manual_seed`` for a fully reproducible run). (default: :obj:`0`)
        progress (bool, optional): ``tqdm`` bar over epochs (``None``: for more than 20).

    Returns:
        list[float]: the mean training loss of each epoch.
    """
    if not isinstance(pruner, SoftPruner):
        raise DTypeError(f"pruner must be a SoftPruner, got {type(pruner).__name__}")
    examples = _check_examples(examples)
    epochs = _check_int(epochs, "epochs", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
        raise InvalidArgumentError(f"lr must be a positive float, got {lr!r}")
    node_pw, edge_pw = _pos_weights(examples, pos_weight)
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else int(torch.seed() % (2 ** 63)))
    optimizer = torch.optim.Adam(pruner.parameters(), lr=lr, weight_decay=weight_decay)
    epoch_iter: Iterable[int] = range(epochs)
    if progress or (progress is None and epochs > 20):
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="training SoftPruner", unit="epoch", leave=False)
    history = []
    pruner.train()
    for _ in epoch_iter:
        order = torch.randperm(len(examples), generator=generator).tolist()
        total, steps = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = [examples[i] for i in order[start:start + batch_size]]
            loss = _batch_loss(pruner, batch, node_pw, edge_pw)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        history.append(total / steps)
    pruner.eval()
    return history
