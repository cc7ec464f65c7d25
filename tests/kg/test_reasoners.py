"""GNN reasoners (RED-GNN, RUN-GNN, NBFNet) against slow per-query references."""

import inspect

import pytest
import torch
from graphlearn.kg.model import message_graph
from graphlearn.kg.models.nbfnet import NBFNet
from graphlearn.kg.models.redgnn import REDGNN, RUNGNN

import graphlearn

R = 3


def _graph(num_nodes=12, num_facts=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    facts = torch.stack([torch.randint(0, num_nodes, (num_facts,), generator=gen),
                         torch.randint(0, R, (num_facts,), generator=gen),
                         torch.randint(0, num_nodes, (num_facts,), generator=gen)], 1)
    return message_graph(facts, num_nodes, R)


def _build(name, **kw):
    torch.manual_seed(0)
    if name == "red-gnn":
        model = REDGNN(R, hidden_dim=6, num_layers=3, attn_dim=4, act="tanh", **kw)
    elif name == "red-gnn-plain":
        model = REDGNN(R, hidden_dim=6, num_layers=3, attn_dim=4, gru=False, **kw)
    elif name == "run-gnn":
        model = RUNGNN(R, hidden_dim=6, num_layers=3, num_extra_layers=2, attn_dim=4, **kw)
    elif name == "run-gnn-tied":
        model = RUNGNN(R, hidden_dim=6, num_layers=4, tie_layers=True, act="idd", **kw)
    elif name == "nbfnet-sum":
        model = NBFNet(R, hidden_dim=6, num_layers=3, aggregate="sum", **kw)
    else:
        model = NBFNet(R, hidden_dim=6, num_layers=3, aggregate="pna", **kw)
    for p in model.parameters():  # non-trivial biases and embeddings everywhere
        torch.nn.init.normal_(p, std=0.5)
    return model.double().eval()


MODELS = ["red-gnn", "red-gnn-plain", "run-gnn", "run-gnn-tied", "nbfnet-sum", "nbfnet-pna"]


# ----------------------------------------------------------------- slow references
def _edges_with_loops(graph):
    src, dst = graph.edge_index
    loops = torch.arange(graph.num_nodes)
    return (torch.cat([src, loops]), torch.cat([dst, loops]),
            torch.cat([graph.edge_type, torch.full_like(loops, 2 * R)]))


def _red_reference(model, anchor, q_rel, graph):
    src, dst, rel = _edges_with_loops(graph)
    N, d = graph.num_nodes, model.hidden_dim
    h = torch.zeros(N, d, dtype=torch.float64)
    reached = torch.zeros(N, dtype=torch.bool)
    reached[anchor] = True
    for layer in model.layers:
        emb = layer.rela_embed.weight
        agg = torch.zeros(N, d, dtype=torch.float64)
        new = reached.clone()
        for e in range(src.numel()):
            s, o, r = int(src[e]), int(dst[e]), int(rel[e])
            if not reached[s]:
                continue
            a = torch.relu(layer.Ws_attn(h[s]) + layer.Wr_attn(emb[r]) + layer.Wqr_attn(emb[q_rel]))
            alpha = torch.sigmoid(layer.w_alpha(a))
            agg[o] += alpha * (h[s] + emb[r])
            new[o] = True
        out = layer.act(layer.W_h(agg))
        if model.gate is not None:
            out = model.gate(out, h)  # h is 0 where not reached before
        h = torch.where(new.unsqueeze(1), out, torch.zeros_like(out))
        reached = new
    return torch.where(reached, model.W_final(h).squeeze(-1), torch.zeros(N, dtype=torch.float64))


def _run_layer(layer, h, q_rel, active, src, dst, rel, N):
    emb = layer.rela_embed.weight
    hq = emb[q_rel]
    msgs, logits, targets = [], [], []
    for e in range(src.numel()):
        s, o, r = int(src[e]), int(dst[e]), int(rel[e])
        if not active[s]:
            continue
        m = layer.gate(emb[r:r + 1], hq[None], h[s:s + 1])[0]
        msgs.append(m)
        logits.append(layer.w_alpha(torch.relu(layer.Ws_attn(m) + layer.Wqr_attn(hq))))
        targets.append(o)
    agg = torch.zeros(N, h.size(1), dtype=torch.float64)
    reached = torch.zeros(N, dtype=torch.bool)
    for o in set(targets):
        idx = [i for i, t in enumerate(targets) if t == o]
        w = torch.softmax(torch.cat([logits[i] for i in idx]), 0)
        agg[o] = sum(w[j] * msgs[i] for j, i in enumerate(idx))
        reached[o] = True
    return layer.act(layer.W_h(agg)), hq, reached


def _run_reference(model, anchor, q_rel, graph):
    src, dst, rel = _edges_with_loops(graph)
    N = graph.num_nodes
    h = torch.zeros(N, model.hidden_dim, dtype=torch.float64)
    reached = torch.zeros(N, dtype=torch.bool)
    reached[anchor] = True
    prev = reached
    for i in range(model.num_layers):
        out, hq, new = _run_layer(model._layer(i), h, q_rel, reached, src, dst, rel, N)
        new = new | reached
        upd = model.gate(out, hq.expand(N, -1), h)
        h = torch.where(new.unsqueeze(1), upd, torch.zeros_like(upd))
        prev, reached = reached, new
    for layer in model.extra_layers:  # the last hop again, from the (L-1)-hop entities
        out, hq, _ = _run_layer(layer, h, q_rel, prev, src, dst, rel, N)
        upd = model.gate(out, hq.expand(N, -1), h)
        h = torch.where(reached.unsqueeze(1), upd, torch.zeros_like(upd))
    return torch.where(reached, model.W_final(h).squeeze(-1), torch.zeros(N, dtype=torch.float64))


def _nbf_reference(model, anchor, q_rel, graph):
    src, dst = graph.edge_index
    N, d = graph.num_nodes, model.hidden_dim
    q = model.query.weight[q_rel]
    boundary = torch.zeros(N, d, dtype=torch.float64)
    boundary[anchor] = q
    h = boundary
    for layer in model.layers:
        rel = layer.relation_linear(q).view(2 * R, d)
        msg = h[src] * rel[graph.edge_type]
        rows = []
        deg = torch.tensor([float((dst == v).sum() + 1) for v in range(N)], dtype=torch.float64)
        scale = deg.log() / deg.log().mean()
        for v in range(N):
            m = torch.cat([msg[dst == v], boundary[v:v + 1]])
            if layer.aggregate == "sum":
                rows.append(m.sum(0))
                continue
            mean, sq = m.mean(0), (m * m).mean(0)
            std = (sq - mean ** 2).clamp(min=layer.eps).sqrt()
            feats = torch.stack([mean, m.max(0).values, m.min(0).values, std], -1)  # (d, 4)
            scales = torch.stack([torch.ones(()), scale[v], 1 / scale[v].clamp(min=1e-2)])
            rows.append((feats.unsqueeze(-1) * scales).flatten())
        agg = torch.stack(rows)
        out = torch.relu(layer.layer_norm(layer.linear(torch.cat([h, agg], -1))))
        h = out + h
    return model.mlp(torch.cat([h, q.expand(N, -1)], -1)).squeeze(-1)


def _reference(name, model, anchors, q_rels, graph):
    fn = {"red": _red_reference, "run": _run_reference, "nbf": _nbf_reference}[name[:3]]
    with torch.no_grad():
        return torch.stack([fn(model, int(a), int(r), graph)
                            for a, r in zip(anchors, q_rels, strict=True)])


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("name", MODELS)
def test_matches_per_query_reference(name):
    model, graph = _build(name), _graph()
    anchors, rels = torch.tensor([0, 3, 3, 11]), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        tail = model.score_all(anchors, rels, "tail", graph)
        head = model.score_all(anchors, rels, "head", graph)
    torch.testing.assert_close(tail, _reference(name, model, anchors, rels, graph),
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(head, _reference(name, model, anchors, rels + R, graph),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_head_is_tail_on_inverse_relation(name):
    model, graph = _build(name), _graph(seed=1)
    anchors, rels = torch.tensor([1, 2, 5]), torch.tensor([2, 0, 1])
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(anchors, rels, "head", graph),
                                   model.score_all(anchors, rels + R, "tail", graph))


@pytest.mark.parametrize("name", MODELS)
def test_inductive_and_permutation_invariant(name):
    model = _build(name)  # built for R relations only: no entity count, no entity weights
    assert "num_entities" not in inspect.signature(type(model)).parameters
    small = _graph()
    big = _graph(num_nodes=25, num_facts=60, seed=2)  # entities never seen
    anchors, rels = torch.tensor([0, 4, 24]), torch.tensor([1, 0, 2])
    with torch.no_grad():
        assert model.score_all(anchors[:2], rels[:2], "tail", small).shape == (2, 12)
        scores = model.score_all(anchors, rels, "head", big)
        perm = torch.randperm(25, generator=torch.Generator().manual_seed(3))  # old id -> new id
        src, dst = big.edge_index
        permuted = type(big)(torch.stack([perm[src], perm[dst]]), big.edge_type, 25, R)
        scores_p = model.score_all(perm[anchors], rels, "head", permuted)
    assert scores.shape == (3, 25)
    torch.testing.assert_close(scores_p[:, perm], scores, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["red-gnn", "run-gnn"])
def test_unreached_entities_score_zero(name):
    # a chain 0 - 1 - 2 - 3 - 4 - 5 and a separate component 6 - 7
    facts = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 0, 3], [3, 2, 4], [4, 1, 5], [6, 0, 7]])
    graph = message_graph(facts, 8, R)
    model = _build(name)  # 3 hops
    with torch.no_grad():
        scores = model.score_all(torch.tensor([0]), torch.tensor([0]), "tail", graph)[0]
    assert (scores[4:] == 0).all()  # 4 and 5 lie beyond 3 hops; 6 and 7 are unreachable
    assert (scores[:4] != 0).all()


@pytest.mark.parametrize("name", ["red-gnn", "run-gnn", "nbfnet-pna"])
def test_checkpointing_keeps_gradients(name):
    grads = []
    for ckpt in (False, True):
        model = _build(name, checkpoint=ckpt)
        scores = model.score_all(torch.tensor([0, 3]), torch.tensor([0, 1]), "tail", _graph())
        scores.logsumexp(1).sum().backward()
        grads.append([p.grad for p in model.parameters()])
    assert any(g is not None and g.abs().sum() > 0 for g in grads[0])
    for a, b in zip(*grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)


def test_red_gnn_learns_umls(data_root, tmp_path):
    data_root("kg/redgnn/umls/facts.txt")
    result = graphlearn.fit(model="red-gnn", dataset="umls-redgnn", epochs=1, seed=0,
                            out=tmp_path / "red", **{
                                "model.hidden_dim": 16, "model.num_layers": 2,
                                "optim.lr": 0.02, "optim.weight_decay": 0.0,
                                "trainer.batch_size": 16, "eval.batch_size": 256,
                                "trainer.progress_bar": False})
    assert result.metrics["test"]["mrr"] > 0.3  # a random ranking of 135 entities: ~0.04
