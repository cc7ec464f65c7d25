r"""Filtered ranking evaluation for link prediction.

For a test triple :math:`(h, r, t)` and the *tail* side, every entity :math:`e` is scored as
a tail of :math:`(h, r, ?)`; entities :math:`e \ne t` with :math:`(h, r, e)` among the
*filter* triples (known true facts) are removed, and the rank of :math:`t` among the rest is
recorded. The *head* side does the same for :math:`(?, r, t)`. Ties between the true entity
and others are resolved as (Berrendorf et al., 2020, as PyKEEN):

- ``optimistic``: :math:`1 + |\{e: s_e > s_t\}|`,
- ``pessimistic``: :math:`|\{e: s_e \ge s_t\}|` (the true entity included),
- ``realistic``: their mean, the expected rank under random tie breaking.

Metrics are MR (mean rank), MRR (mean reciprocal rank) and Hits@k (fraction of ranks
:math:`\le k`), per side and over both sides (each triple counted once per side).

Memory is bounded by scoring ``batch_size`` queries at a time: at most ``batch_size x
num_entities`` scores live at once; filtering is a gather over a sorted key index, no dense
mask of the filter set is ever built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from graphlearn.errors import InvalidArgumentError, NonFiniteError, ShapeError

__all__ = ["FilterIndex", "evaluate", "filtered_ranks", "rank_metrics", "SIDES", "TIES"]

SIDES = ("head", "tail")
TIES = ("realistic", "optimistic", "pessimistic")

ScoreFn = Callable[[Tensor, Tensor, str], Tensor]


class FilterIndex:
    """Known answers per query, for both sides: ``(h, r) -> {t}`` and ``(r, t) -> {h}``.

    Built once from the filter triples (sorted keys + answers, a CSR layout); lookups are
    vectorised binary searches.

    Args:
        triples (Tensor): ``(n, 3)`` long ``(head, relation, tail)`` ids.
        num_entities (int): Number of entities.
        num_relations (int, optional): Number of relations (default: from ``triples``).
    """

    def __init__(self, triples: Tensor, num_entities: int, num_relations: int | None = None) -> None:
        triples = _check_triples(triples, num_entities, "filter_triples")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations if num_relations is not None
                                 else (int(triples[:, 1].max()) + 1 if triples.numel() else 1))
        h, r, t = triples.unbind(1)
        self._keys: dict[str, Tensor] = {}
        self._answers: dict[str, Tensor] = {}
        for side, key, ans in (("tail", self._key(h, r), t), ("head", self._key(t, r), h)):
            # sort by (key, answer) and drop duplicate triples
            combined = torch.unique(key * self.num_entities + ans)
            self._keys[side] = combined // self.num_entities
            self._answers[side] = combined % self.num_entities

    def _key(self, anchor: Tensor, relation: Tensor) -> Tensor:
        return relation.long() * self.num_entities + anchor.long()

    def to(self, device) -> FilterIndex:
        for d in (self._keys, self._answers):
            for k in d:
                d[k] = d[k].to(device)
        return self

    def answers(self, anchors: Tensor, relations: Tensor, side: str) -> tuple[Tensor, Tensor]:
        """Known answers of each query as ``(row, entity)`` pairs (row indexes the batch).

        ``side="tail"``: ``anchors`` are heads and the answers are tails of ``(h, r, ?)``;
        ``side="head"``: ``anchors`` are tails and the answers heads of ``(?, r, t)``.
        """
        keys, answers = self._keys[side], self._answers[side]
        query = self._key(anchors, relations).to(keys.device)
        lo = torch.searchsorted(keys, query, side="left")
        hi = torch.searchsorted(keys, query, side="right")
        counts = hi - lo
        rows = torch.repeat_interleave(torch.arange(query.numel(), device=keys.device), counts)
        starts = torch.repeat_interleave(lo - torch.cumsum(counts, 0) + counts, counts)
        pos = starts + torch.arange(rows.numel(), device=keys.device)
        return rows, answers[pos]

    def targets(self, anchors: Tensor, relations: Tensor, side: str) -> Tensor:
        """A dense ``(batch, num_entities)`` 0/1 float matrix of the known answers (1-N training)."""
        rows, ents = self.answers(anchors, relations, side)
        out = torch.zeros(anchors.numel(), self.num_entities, device=rows.device)
        out[rows, ents] = 1.0
        return out


def _check_triples(triples: Tensor, num_entities: int, what: str) -> Tensor:
    triples = torch.as_tensor(triples)
    if triples.dim() != 2 or triples.size(1) != 3:
        raise ShapeError(f"{what} must have shape (n, 3) (head, relation, tail), got "
                         f"{tuple(triples.shape)}")
    if triples.dtype not in (torch.int64, torch.int32):
        raise InvalidArgumentError(f"{what} must hold integer ids, got dtype {triples.dtype}")
    triples = triples.long()
    if triples.numel():
        ents = triples[:, [0, 2]]
        lo, hi = int(ents.min()), int(ents.max())
        if lo < 0 or hi >= num_entities:
            raise InvalidArgumentError(
                f"{what} holds entity id {hi if hi >= num_entities else lo} outside [0, "
                f"{num_entities}); pass the num_entities of the graph these triples come from")
        if int(triples[:, 1].min()) < 0:
            raise InvalidArgumentError(f"{what} holds a negative relation id")
    return triples


def filtered_ranks(scores: Tensor, true: Tensor, filter_rows: Tensor | None = None,
                   filter_entities: Tensor | None = None, ties: str = "realistic") -> Tensor:
    """Rank of each row's true entity among its scores, known answers filtered out.

    Args:
        scores (Tensor): ``(B, E)`` scores, higher is better.
        true (Tensor): ``(B,)`` true entity per row.
        filter_rows, filter_entities (Tensor, optional): ``(row, entity)`` pairs to remove
            (the true entity of a row is kept even if listed).
        ties (str): ``"realistic"``, ``"optimistic"`` or ``"pessimistic"``.

    Returns:
        ``(B,)`` float64 ranks (1 is best; realistic ranks may be halves).
    """
    if ties not in TIES:
        raise InvalidArgumentError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    if scores.dim() != 2 or true.dim() != 1 or true.numel() != scores.size(0):
        raise ShapeError(f"scores must be (B, E) and true (B,), got {tuple(scores.shape)} and "
                         f"{tuple(true.shape)}")
    rows = torch.arange(scores.size(0), device=scores.device)
    true = true.to(scores.device)
    target = scores[rows, true].unsqueeze(1)
    if bool(torch.isnan(target).any()) or bool(torch.isnan(scores).any()):
        raise NonFiniteError("the score function returned NaN; check the model (diverged "
                             "training, log of zero) before evaluating")
    above = scores > target
    tied = scores == target  # includes the true entity itself
    if filter_rows is not None and filter_rows.numel():
        # a filtered entity drops out of both counts (a mask, not a -inf score, so a true
        # entity scored -inf does not tie with the filtered ones)
        keep = filter_entities != true[filter_rows]
        above[filter_rows[keep], filter_entities[keep]] = False
        tied[filter_rows[keep], filter_entities[keep]] = False
    greater = above.sum(1)
    if ties == "optimistic":
        return (greater + 1).double()
    equal = tied.sum(1)
    pessimistic = (greater + equal).double()
    if ties == "pessimistic":
        return pessimistic
    return ((greater + 1).double() + pessimistic) / 2


def rank_metrics(ranks: Tensor, ks: Sequence[int] = (1, 3, 10)) -> dict[str, float]:
    """MR, MRR and Hits@k of a rank vector (``nan`` for an empty one)."""
    if ranks.numel() == 0:
        return {"mrr": float("nan"), "mr": float("nan"), **{f"hits@{k}": float("nan") for k in ks}}
    ranks = ranks.double()
    out = {"mrr": float((1.0 / ranks).mean()), "mr": float(ranks.mean())}
    for k in ks:
        out[f"hits@{k}"] = float((ranks <= k).double().mean())
    return out


@torch.no_grad()
def evaluate(
    score_fn: ScoreFn,
    triples: Tensor,
    filter_triples: Tensor | FilterIndex | None,
    num_entities: int,
    sides: Sequence[str] = SIDES,
    ties: str = "realistic",
    *,
    batch_size: int = 256,
    ks: Sequence[int] = (1, 3, 10),
    return_ranks: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Filtered ranking metrics of ``score_fn`` on ``triples``.

    Args:
        score_fn: ``score_fn(entities, relations, side) -> (B, num_entities)`` scores (higher
            is better): for ``side="tail"`` the ``entities`` are heads and the scores rank
            candidate tails; for ``side="head"`` they are tails and the scores rank heads.
        triples (Tensor): ``(n, 3)`` evaluation triples.
        filter_triples (Tensor or FilterIndex, optional): Known true triples to filter out
            (validation: train + valid; test: train + valid + test). ``None``: raw ranking.
        num_entities (int): Number of candidate entities.
        sides: ``("head", "tail")``, or one of them.
        ties (str): ``"realistic"`` (default), ``"optimistic"`` or ``"pessimistic"``.
        batch_size (int): Queries scored at once; bounds memory to ``batch_size x
            num_entities`` scores.
        ks: The k of Hits@k.
        return_ranks (bool): Also return the rank tensors under ``"ranks"`` (per side).
        progress (bool): Show a progress bar over batches.

    Returns:
        ``{"mrr", "mr", "hits@1", "hits@3", "hits@10"}`` over both sides plus the same keys
        prefixed ``"head/"`` and ``"tail/"`` per side.

    Example:
        >>> import torch
        >>> from graphlearn.kg import evaluate
        >>> table = torch.randn(5, 4, 5)  # a score for every (head, relation, tail)
        >>> def score_fn(ent, rel, side):
        ...     return table[ent, rel] if side == "tail" else table[:, rel, ent].T
        >>> triples = torch.tensor([[0, 1, 2], [3, 0, 4]])
        >>> sorted(evaluate(score_fn, triples, triples, num_entities=5))[:3]
        ['head/hits@1', 'head/hits@10', 'head/hits@3']
    """
    triples = _check_triples(triples, num_entities, "triples")
    for side in sides:
        if side not in SIDES:
            raise InvalidArgumentError(f"sides must be drawn from {SIDES}, got {side!r}")
    if not sides:
        raise InvalidArgumentError("sides is empty; pass ('head', 'tail') or one of them")
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size}")
    if filter_triples is None or isinstance(filter_triples, FilterIndex):
        index = filter_triples
    else:
        index = FilterIndex(filter_triples, num_entities)

    ranks: dict[str, list[Tensor]] = {side: [] for side in sides}
    chunks = list(torch.split(triples, batch_size))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chunks) * len(sides), desc="ranking", unit="batch", leave=False)
    for side in sides:
        for chunk in chunks:
            h, r, t = chunk.unbind(1)
            anchor, true = (h, t) if side == "tail" else (t, h)
            scores = score_fn(anchor, r, side)
            if scores.shape != (chunk.size(0), num_entities):
                raise ShapeError(f"score_fn returned shape {tuple(scores.shape)} for {side} "
                                 f"queries; expected ({chunk.size(0)}, {num_entities})")
            if index is not None:
                rows, ents = index.answers(anchor, r, side)
                rows, ents = rows.to(scores.device), ents.to(scores.device)
            else:
                rows = ents = None
            ranks[side].append(filtered_ranks(scores, true, rows, ents, ties).cpu())
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    per_side = {side: torch.cat(v) if v else torch.empty(0, dtype=torch.float64)
                for side, v in ranks.items()}
    out = rank_metrics(torch.cat(list(per_side.values())), ks)
    for side, r in per_side.items():
        out.update({f"{side}/{k}": v for k, v in rank_metrics(r, ks).items()})
    if return_ranks:
        out["ranks"] = per_side  # type: ignore[assignment]
    return out
