"""Filtered ranking (`graphlearn.kg.evaluation`) against a brute-force Python oracle."""

import math

import pytest
import torch
from graphlearn.kg.evaluation import FilterIndex, evaluate, filtered_ranks, rank_metrics

from graphlearn.errors import GraphLearnError, NonFiniteError, ShapeError

E, R = 7, 3


def _table(seed: int, low: int = 0, high: int = 4) -> torch.Tensor:
    """A score for every (head, relation, tail): small integers, so ties are everywhere."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (E, R, E), generator=gen).float()


def _score_fn(table):
    def score(entities, relations, side):
        if side == "tail":
            return table[entities, relations]
        return table[:, relations, entities].T

    return score


def _triples(seed: int, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, E, (n,), generator=gen),
                        torch.randint(0, R, (n,), generator=gen),
                        torch.randint(0, E, (n,), generator=gen)], 1)


def _brute_ranks(table, triples, filter_triples, side, ties):
    known = {tuple(t) for t in filter_triples.tolist()} if filter_triples is not None else set()
    ranks = []
    for h, r, t in triples.tolist():
        true = t if side == "tail" else h
        s_true = float(table[h, r, t])
        greater = equal = 0
        for e in range(E):
            cand = (h, r, e) if side == "tail" else (e, r, t)
            if e != true and cand in known:
                continue
            s = float(table[cand])
            greater += s > s_true
            equal += s == s_true  # the true entity counts itself
        optimistic, pessimistic = greater + 1, greater + equal
        ranks.append({"optimistic": optimistic, "pessimistic": pessimistic,
                      "realistic": (optimistic + pessimistic) / 2}[ties])
    return ranks


def _metrics(ranks):
    out = {"mrr": sum(1 / r for r in ranks) / len(ranks), "mr": sum(ranks) / len(ranks)}
    for k in (1, 3, 10):
        out[f"hits@{k}"] = sum(r <= k for r in ranks) / len(ranks)
    return out


@pytest.mark.parametrize("ties", ["realistic", "optimistic", "pessimistic"])
@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 16, 1000])
def test_evaluate_matches_brute_force(ties, filtered, batch_size):
    table = _table(seed=batch_size)
    triples = _triples(seed=1, n=23)
    filt = torch.cat([triples, _triples(seed=2, n=40)]) if filtered else None
    out = evaluate(_score_fn(table), triples, filt, E, ties=ties, batch_size=batch_size,
                   return_ranks=True)
    per_side = {}
    for side in ("head", "tail"):
        expected = _brute_ranks(table, triples, filt, side, ties)
        per_side[side] = expected
        assert out["ranks"][side].tolist() == expected
        for key, value in _metrics(expected).items():
            assert math.isclose(out[f"{side}/{key}"], value, rel_tol=1e-12), (side, key)
    both = per_side["head"] + per_side["tail"]
    for key, value in _metrics(both).items():
        assert math.isclose(out[key], value, rel_tol=1e-12), key


@pytest.mark.parametrize("side", ["head", "tail"])
def test_one_side_and_batching_invariance(side):
    table = _table(seed=5, high=3)
    triples = _triples(seed=6, n=31)
    filt = _triples(seed=7, n=50)
    results = [evaluate(_score_fn(table), triples, filt, E, sides=(side,), batch_size=b,
                        return_ranks=True)["ranks"][side] for b in (1, 2, 7, 31, 64)]
    for r in results[1:]:
        assert torch.equal(r, results[0])
    assert results[0].tolist() == _brute_ranks(table, triples, filt, side, "realistic")


def test_filter_index_object_equals_tensor_filter():
    table = _table(seed=8)
    triples, filt = _triples(seed=9, n=20), _triples(seed=10, n=60)
    a = evaluate(_score_fn(table), triples, filt, E)
    b = evaluate(_score_fn(table), triples, FilterIndex(filt, E), E)
    assert a == b


def test_all_scores_tied_gives_middle_rank():
    table = torch.zeros(E, R, E)
    triples = _triples(seed=11, n=5)
    out = evaluate(_score_fn(table), triples, None, E, return_ranks=True)
    assert out["ranks"]["tail"].tolist() == [(1 + E) / 2] * 5
    out = evaluate(_score_fn(table), triples, None, E, ties="optimistic", return_ranks=True)
    assert out["ranks"]["head"].tolist() == [1.0] * 5


@pytest.mark.parametrize("seed", range(4))
def test_filter_index_answers_equal_set_lookup(seed):
    filt = _triples(seed=seed, n=80)  # duplicates included
    index = FilterIndex(filt, E, R)
    known = {tuple(t) for t in filt.tolist()}
    anchors = torch.arange(E).repeat_interleave(R)
    relations = torch.arange(R).repeat(E)
    for side in ("head", "tail"):
        rows, ents = index.answers(anchors, relations, side)
        got = {(int(r), int(e)) for r, e in zip(rows, ents, strict=True)}
        assert len(got) == rows.numel()  # each answer once
        expected = set()
        for row, (a, r) in enumerate(zip(anchors.tolist(), relations.tolist(), strict=True)):
            for e in range(E):
                if ((a, r, e) if side == "tail" else (e, r, a)) in known:
                    expected.add((row, e))
        assert got == expected
        targets = index.targets(anchors, relations, side)
        assert {tuple(x) for x in targets.nonzero().tolist()} == expected


def test_filter_index_empty_and_missing_queries():
    index = FilterIndex(torch.empty(0, 3, dtype=torch.long), E)
    rows, ents = index.answers(torch.tensor([0, 1]), torch.tensor([0, 0]), "tail")
    assert rows.numel() == 0 and ents.numel() == 0


def test_filtered_ranks_keeps_true_entity_when_listed():
    scores = torch.tensor([[3.0, 5.0, 3.0, 1.0]])
    true = torch.tensor([0])
    # entity 1 (better) and the true entity 0 are "known": 1 is removed, 0 kept
    ranks = filtered_ranks(scores, true, torch.tensor([0, 0]), torch.tensor([1, 0]), "pessimistic")
    assert ranks.tolist() == [2.0]  # ties with entity 2


def test_rank_metrics_empty_is_nan():
    out = rank_metrics(torch.empty(0))
    assert all(math.isnan(v) for v in out.values())


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"triples": torch.zeros(3, 2, dtype=torch.long)}, ShapeError, "shape (n, 3)"),
        ({"triples": torch.tensor([[0, 0, E]])}, GraphLearnError, "outside [0, 7)"),
        ({"triples": torch.tensor([[-1, 0, 0]])}, GraphLearnError, "outside"),
        ({"triples": torch.zeros(2, 3)}, GraphLearnError, "integer ids"),
        ({"filter_triples": torch.tensor([[0, 0, 99]])}, GraphLearnError, "filter_triples"),
        ({"sides": ("left",)}, GraphLearnError, "sides"),
        ({"sides": ()}, GraphLearnError, "sides is empty"),
        ({"ties": "random"}, GraphLearnError, "ties must be one of"),
        ({"batch_size": 0}, GraphLearnError, "batch_size"),
    ],
)
def test_evaluate_errors(kwargs, error, needle):
    args = {"triples": _triples(seed=0, n=4), "filter_triples": None, "num_entities": E}
    args.update(kwargs)
    score = _score_fn(_table(seed=0))
    with pytest.raises(error) as info:
        evaluate(score, args.pop("triples"), args.pop("filter_triples"), args.pop("num_entities"),
                 **args)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nan_scores_raise_non_finite():
    table = _table(seed=3)
    table[0, 0, 0] = float("nan")
    triples = torch.tensor([[0, 0, 1], [2, 1, 3]])
    with pytest.raises(NonFiniteError, match="NaN"):
        evaluate(_score_fn(table), triples, None, E)


def test_wrong_score_shape_raises():
    def score(entities, relations, side):
        return torch.zeros(entities.numel(), E + 1)

    with pytest.raises(ShapeError, match="expected"):
        evaluate(score, _triples(seed=0, n=3), None, E)


def test_filtered_entities_never_tie_with_minus_inf_true_score():
    inf = float("inf")
    scores = torch.tensor([[-inf, 0.0, -inf, -inf]])
    # entity 2 is filtered: the candidates are 0 (true), 1 and 3
    ranks = filtered_ranks(scores, torch.tensor([0]), torch.tensor([0]), torch.tensor([2]),
                           "pessimistic")
    assert ranks.tolist() == [3.0]
