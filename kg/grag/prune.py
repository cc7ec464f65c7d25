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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlearn.errors import DTypeError, InvalidArgumentError, ShapeError

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
    logit each (module docstring).

    Args:
        in_channels (int): Embedding size :math:`d` (the index's ``dim``).
        hidden_channels (int): Hidden width. (default: :obj:`128`)
        num_layers (int): Linear layers per MLP (``1``: logistic regression on the
            distance). (default: :obj:`2`)
        dropout (float): Dropout between layers. (default: :obj:`0.0`)
        distance (str): ``"abs"`` or ``"difference"``. (default: ``"abs"``)

    Shapes:
        - **input:** node embeddings :math:`(n, d)`, edge embeddings :math:`(m, d)`, question
          :math:`(d,)` (or one per row, :math:`(n, d)` / :math:`(m, d)`)
        - **output:** node gates :math:`(n,)`, edge gates :math:`(m,)`
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128, num_layers: int = 2,
                 dropout: float = 0.0, distance: str = "abs") -> None:
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
        channels = [in_channels] + [hidden_channels] * (num_layers - 1) + [1]
        self.node_mlp = MLP(channels, dropout=self.dropout, norm=None)
        self.edge_mlp = MLP(channels, dropout=self.dropout, norm=None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.node_mlp.reset_parameters()
        self.edge_mlp.reset_parameters()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, hidden_channels="
                f"{self.hidden_channels}, num_layers={self.num_layers}, "
                f"distance={self.distance!r})")

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
        return diff.abs() if self.distance == "abs" else diff

    def logits(self, node_embeddings: Tensor, edge_embeddings: Tensor,
               question_embedding: Tensor,
               edge_question_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gate logits ``(n,)`` and ``(m,)`` (for ``binary_cross_entropy_with_logits``).

        ``question_embedding`` is ``(d,)`` or one row per node; ``edge_question_embedding``
        (one row per edge) defaults to ``question_embedding``.
        """
        p = next(self.parameters())
        x = node_embeddings.to(p)
        y = edge_embeddings.to(p)
        q = question_embedding.to(p)
        qe = q if edge_question_embedding is None else edge_question_embedding.to(p)
        node = self.node_mlp(self._features(x, q, "node_embeddings")).view(-1)
        edge = self.edge_mlp(self._features(y, qe, "edge_embeddings")).view(-1)
        return node, edge

    def forward(self, retrieval: Retrieval | Tensor, edge_embeddings: Tensor | None = None,
                question_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gates for a :class:`Retrieval`, or for ``(node_embeddings, edge_embeddings,
        question_embedding)`` tensors.

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
        else:
            if edge_embeddings is None or question_embedding is None:
                raise InvalidArgumentError("pass a Retrieval, or node_embeddings, "
                                           "edge_embeddings and question_embedding")
            x, y, q = retrieval, edge_embeddings, question_embedding
        node, edge = self.logits(x, y, q)
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
    """

    node_embeddings: Tensor
    edge_embeddings: Tensor
    question_embedding: Tensor
    node_labels: Tensor
    edge_labels: Tensor

    @classmethod
    def from_retrieval(cls, retrieval: Retrieval, answers: Iterable[str],
                       path: Iterable[Sequence[str]] = ()) -> PruningExample:
        """Label ``retrieval`` with :func:`pruning_labels`."""
        if retrieval.question_embedding is None:
            raise InvalidArgumentError("the retrieval has no question embedding; retrieve "
                                       "with a question")
        node_labels, edge_labels = pruning_labels(retrieval, answers, path)
        return cls(retrieval.node_embeddings, retrieval.edge_embeddings,
                   retrieval.question_embedding, node_labels, edge_labels)


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
    node_logit, edge_logit = pruner.logits(x, y, qx, qy)
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
