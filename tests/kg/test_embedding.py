import pytest
import torch
from graphlearn.kg.models.embedding import ComplEx, DistMult, RotatE, TransE

import graphlearn
from graphlearn.errors import ConfigError

E, R = 7, 3
CASES = [
    (TransE, {"p": 1, "gamma": 2.0}),
    (TransE, {"p": 2}),
    (DistMult, {}),
    (ComplEx, {}),
    (RotatE, {"gamma": 6.0}),
    (RotatE, {"norm": "l1"}),
]
IDS = ["transe-l1", "transe-l2", "distmult", "complex", "rotate-l2", "rotate-l1"]


def _model(cls, kwargs, reciprocal=False, dtype=torch.float64):
    torch.manual_seed(0)
    return cls(E, R, dim=5, reciprocal=reciprocal, **kwargs).to(dtype)


@pytest.mark.parametrize("reciprocal", [False, True])
@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_score_all_matches_score_triples(cls, kwargs, reciprocal):
    model = _model(cls, kwargs, reciprocal)
    anchors = torch.tensor([0, 3, 6, 2])
    rels = torch.tensor([0, 1, 2, 1])
    ents = torch.arange(E)
    for side in ("head", "tail"):
        scores = model.score_all(anchors, rels, side)
        assert scores.shape == (4, E)
        for i in range(4):
            a = anchors[i].expand(E)
            r = rels[i].expand(E)
            if side == "tail":
                expected = model.score_triples(a, r, ents)
            elif reciprocal:  # (?, r, t) is the tail query (t, r + R, ?)
                expected = model.score_triples(a, r + R, ents)
            else:
                expected = model.score_triples(ents, r, a)
            torch.testing.assert_close(scores[i], expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("cls,kwargs", CASES, ids=IDS)
def test_score_all_float32_close_and_differentiable(cls, kwargs):
    model = _model(cls, kwargs, dtype=torch.float32)
    anchors, rels = torch.tensor([1, 4]), torch.tensor([2, 0])
    scores = model.score_all(anchors, rels, "tail")
    ref = torch.stack([model.score_triples(a.expand(E), r.expand(E), torch.arange(E))
                       for a, r in zip(anchors, rels, strict=True)])
    torch.testing.assert_close(scores, ref, rtol=1e-4, atol=1e-4)
    scores.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_gemm_expansion_equals_naive_distance():
    torch.manual_seed(1)
    model = RotatE(E, R, dim=6).double()
    h, r = torch.tensor([0, 5]), torch.tensor([1, 2])
    ent = torch.view_as_complex(model.entity.weight.view(E, 2, 6).transpose(1, 2).contiguous())
    w = torch.polar(torch.ones(2, 6, dtype=torch.float64), model.phases(r))
    naive_tail = -(ent[h].unsqueeze(1) * w.unsqueeze(1) - ent.unsqueeze(0)).abs().pow(2).sum(-1).sqrt()
    naive_head = -(ent.unsqueeze(0) * w.unsqueeze(1) - ent[h].unsqueeze(1)).abs().pow(2).sum(-1).sqrt()
    torch.testing.assert_close(model.score_all(h, r, "tail"), naive_tail, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.score_all(h, r, "head"), naive_head, rtol=1e-12, atol=1e-12)

    transe = TransE(E, R, dim=6, p=2).double()
    q = transe.entity(h) + transe.relation(r)
    naive = -(q.unsqueeze(1) - transe.entity.weight.unsqueeze(0)).pow(2).sum(-1).sqrt()
    torch.testing.assert_close(transe.score_all(h, r, "tail"), naive, rtol=1e-12, atol=1e-12)
    # the zero distance of an entity to itself is exact and has a finite gradient
    transe.relation.weight.data.zero_()
    scores = transe.score_all(h, r, "tail")
    assert abs(scores[0, 0]) < 1e-100 and abs(scores[1, 5]) < 1e-100
    scores.sum().backward()
    assert torch.isfinite(transe.entity.weight.grad).all()


def test_regularizers_by_hand():
    h, r, t = torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([3, 3])
    model = DistMult(E, R, dim=4, regularizer="n3", regularizer_weight=0.5).double()
    x = model.entity.weight
    w = model.relation.weight
    expected = 0.5 * sum((x[h[i]].abs() ** 3).sum() + (w[r[i]].abs() ** 3).sum()
                         + (x[t[i]].abs() ** 3).sum() for i in range(2)) / 2
    torch.testing.assert_close(model.regularization(h, r, t), expected)

    model = ComplEx(E, R, dim=4, regularizer="n3", regularizer_weight=0.1,
                    reciprocal=True).double()
    x = torch.view_as_complex(model.entity.weight.view(E, 2, 4).transpose(1, 2).contiguous())
    w = torch.view_as_complex(model.relation.weight.view(2 * R, 2, 4).transpose(1, 2).contiguous())
    expected = 0.1 * sum((x[h[i]].abs() ** 3).sum() + (x[t[i]].abs() ** 3).sum()
                         + ((w[r[i]].abs() ** 3).sum() + (w[r[i] + R].abs() ** 3).sum()) / 2
                         for i in range(2)) / 2
    torch.testing.assert_close(model.regularization(h, r, t), expected)

    model = TransE(E, R, dim=4, regularizer="l2", regularizer_weight=2.0).double()
    x, w = model.entity.weight, model.relation.weight
    expected = 2.0 * (x[h].pow(2).sum() + w[r].pow(2).sum() + x[t].pow(2).sum()) / 2
    torch.testing.assert_close(model.regularization(h, r, t), expected)

    rot = RotatE(E, R, dim=4, regularizer="n3", regularizer_weight=1.0).double()
    x = torch.view_as_complex(rot.entity.weight.view(E, 2, 4).transpose(1, 2).contiguous())
    expected = (x[h].abs().pow(3).sum() + 4 * 2 + x[t].abs().pow(3).sum()) / 2  # |w_r,i| = 1
    torch.testing.assert_close(rot.regularization(h, r, t), expected)
    assert DistMult(E, R).regularization(h, r, t) == 0


def test_rotate_init_and_options():
    model = RotatE(100, 4, dim=10, gamma=6.0)
    rho = (6.0 + 2.0) / 10
    assert model.embedding_range == pytest.approx(rho)
    assert model.entity.weight.abs().max() <= rho
    phases = model.phases(torch.arange(4))
    assert phases.abs().max() <= torch.pi + 1e-6
    assert model.relation.weight.shape == (4, 10) and model.entity.weight.shape == (100, 20)
    assert RotatE(5, 4, dim=3, reciprocal=True).relation.weight.shape == (8, 3)
    assert str(TransE(5, 2, dim=3, reciprocal=True)).startswith("TransE(\n  5, 2, dim=3, reciprocal=True")
    with pytest.raises(ConfigError, match="model.norm"):
        RotatE(5, 2, norm="l3")
    with pytest.raises(ConfigError, match="model.regularizer"):
        ComplEx(5, 2, regularizer="n2")
    with pytest.raises(ConfigError, match="model.p"):
        TransE(5, 2, p=3)


def test_rotate_matches_pykeen_formula():
    """``norm="l2"``, ``gamma=0`` is PyKEEN's RotatEInteraction: ``-||h * r - t||_2`` over C^d."""
    torch.manual_seed(2)
    model = RotatE(E, R, dim=4).double()
    h, r, t = torch.tensor([0, 1]), torch.tensor([2, 1]), torch.tensor([5, 6])
    ent = torch.view_as_complex(model.entity.weight.view(E, 2, 4).transpose(1, 2).contiguous())
    w = torch.polar(torch.ones(2, 4, dtype=torch.float64), model.phases(r))
    expected = -torch.linalg.vector_norm(ent[h] * w - ent[t], ord=2, dim=-1)
    torch.testing.assert_close(model.score_triples(h, r, t), expected)


@pytest.mark.parametrize("model,overrides", [
    ("complex", {"model.dim": 64, "model.reciprocal": True, "model.regularizer": "n3",
                 "model.regularizer_weight": 0.01, "optim.lr": 0.05}),
    ("rotate", {"model.dim": 64, "model.gamma": 6.0, "optim.lr": 0.05}),
])
def test_learns_umls(data_root, tmp_path, model, overrides):
    data_root("kg/transductive/umls/train.txt")
    result = graphlearn.fit(model=model, dataset="umls", epochs=6, seed=0, out=tmp_path / model,
                            **{"trainer.batch_size": 256, "task.objective": "1-n",
                               "optim.weight_decay": 0.0, "eval.every": 6,
                               "trainer.progress_bar": False, **overrides})
    assert result.metrics["test"]["mrr"] > 0.5  # a random ranking of 135 entities: ~0.04


def test_rotate_batch_paths_agree():
    """score_triples rotates the relation table once for large batches (more triples than
    relations) and per triple for small ones; both give the same scores and gradients."""
    model = _model(RotatE, {"gamma": 3.0})
    gen = torch.Generator().manual_seed(1)
    h, r, t = (torch.randint(0, n, (4 * R,), generator=gen) for n in (E, R, E))
    big = model.score_triples(h, r, t)
    (g_big,) = torch.autograd.grad(big.sum(), model.relation.weight)
    small = torch.cat([model.score_triples(h[i:i + R], r[i:i + R], t[i:i + R])
                       for i in range(0, h.numel(), R)])
    (g_small,) = torch.autograd.grad(small.sum(), model.relation.weight)
    torch.testing.assert_close(big, small, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_big, g_small, rtol=1e-10, atol=1e-12)
