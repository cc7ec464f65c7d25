"""LinkPredictionTask in the trainer: config checks, fact graphs, both objectives end to end."""

import json

import pytest
import torch
from graphlearn.kg import MessageGraph, message_graph
from graphlearn.kg.task import TASK_OPTIONS, check_task_options

import graphlearn
from graphlearn.errors import ConfigError


def _write_kg(folder, n=12, seed=0):
    """A small KG with learnable structure: r0 = successor on a ring, r1 = its inverse."""
    folder.mkdir()
    g = torch.Generator().manual_seed(seed)
    triples = [(f"e{i}", "next", f"e{(i + 1) % n}") for i in range(n)]
    triples += [(f"e{(i + 1) % n}", "prev", f"e{i}") for i in range(n)]
    perm = torch.randperm(len(triples), generator=g).tolist()
    triples = [triples[i] for i in perm]
    splits = {"train": triples[:-6], "valid": triples[-6:-3], "test": triples[-3:]}
    for name, rows in splits.items():
        (folder / f"{name}.txt").write_text("".join("\t".join(t) + "\n" for t in rows))
    return folder


def test_task_options_defaults_and_errors():
    opts = check_task_options({})
    assert opts["objective"] == "1-n" and opts["loss"] == "ce"
    assert check_task_options({"objective": "negative-sampling"})["loss"] == "nssa"
    assert set(opts) == set(TASK_OPTIONS)
    with pytest.raises(ConfigError, match="task.num_negative'.*valid keys"):
        check_task_options({"num_negative": 3})
    with pytest.raises(ConfigError, match="does not go with objective"):
        check_task_options({"objective": "1-n", "loss": "nssa"})
    with pytest.raises(ConfigError, match="task.sides"):
        check_task_options({"sides": ["left"]})
    assert check_task_options({"sides": "tail"})["sides"] == ["tail"]


def test_message_graph_has_inverses_and_drops_batch_edges():
    facts = torch.tensor([[0, 0, 1], [1, 1, 2], [2, 0, 0]])
    g = message_graph(facts, num_entities=3, num_relations=2)
    assert isinstance(g, MessageGraph) and g.num_edges == 6
    assert g.edge_index[:, 3:].tolist() == [[1, 2, 0], [0, 1, 2]]
    assert g.edge_type.tolist() == [0, 1, 0, 2, 3, 2]
    dropped = g.without(facts[1:2])
    assert dropped.num_edges == 4
    kept = set(zip(dropped.edge_index[0].tolist(), dropped.edge_type.tolist(),
                   dropped.edge_index[1].tolist(), strict=True))
    # (source, edge type, target): the fact (1, r1, 2) and its inverse (2, r1 + 2, 1) are gone
    assert kept == {(0, 0, 1), (2, 0, 0), (1, 2, 0), (0, 2, 2)}


def test_classification_rejects_task_section(tmp_path):
    with pytest.raises(ConfigError, match="configures link prediction"):
        graphlearn.fit(model="gatv2", dataset="karate", epochs=1, seed=0, out=tmp_path / "r",
                       **{"task.objective": "1-n"})


def test_unknown_task_key_fails_before_training(tmp_path):
    kg = _write_kg(tmp_path / "ring")
    with pytest.raises(ConfigError, match="task.objectiv'"):
        graphlearn.fit(model="distmult", dataset=str(kg), epochs=1, seed=0, out=tmp_path / "r",
                       **{"task.objectiv": "1-n"})


def test_kg_model_on_node_dataset_and_node_model_on_kg_are_clear(tmp_path):
    kg = _write_kg(tmp_path / "ring")
    with pytest.raises(ConfigError, match="does not serve link_prediction"):
        graphlearn.fit(model="gatv2", dataset=str(kg), epochs=1, seed=0, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="does not serve node_classification"):
        graphlearn.fit(model="distmult", dataset="karate", epochs=1, seed=0, out=tmp_path / "b")


@pytest.mark.parametrize("objective", ["1-n", "negative-sampling"])
def test_fit_on_a_user_tsv_folder_writes_ranking_metrics(tmp_path, objective):
    kg = _write_kg(tmp_path / "ring")
    result = graphlearn.fit(
        model="distmult", dataset=str(kg), epochs=3, seed=0, out=tmp_path / "run",
        **{"task.objective": objective, "model.dim": 8, "trainer.batch_size": 8,
           "optim.weight_decay": 0.0, "eval.metric": "hits@10"})
    assert result.task == "link_prediction" and result.metric == "hits@10"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for stage in ("val", "test"):
        m = summary["metrics"][stage]
        assert {"mrr", "mr", "hits@1", "hits@3", "hits@10", "head/mrr", "tail/mrr"} <= set(m)
        assert 0 < m["mrr"] <= 1 and 1 <= m["mr"] <= 12
        # the overall MRR is the mean of the two sides (each side has the same query count)
        assert m["mrr"] == pytest.approx((m["head/mrr"] + m["tail/mrr"]) / 2, rel=1e-5)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_kg_models_are_listed_by_the_model_registry():
    from graphlearn.data.dataset import TaskKind
    from graphlearn.models import MODELS

    assert "distmult" in MODELS
    assert TaskKind.LINK_PREDICTION in MODELS.get("distmult").tasks


@pytest.mark.parametrize("name", ["complex", "rotate", "distmult"])
def test_score_answers_matches_score_all(name):
    """A query's answers score as the query's row of ``score_all`` on both sides, reciprocal
    or not: negative sampling trains what ranking evaluates."""
    from graphlearn.kg.task import build_kg_model

    torch.manual_seed(0)
    for reciprocal in (False, True):
        model = build_kg_model(name, 7, 3, dim=4, reciprocal=reciprocal)
        anchors, rels = torch.tensor([0, 5, 2]), torch.tensor([2, 0, 1])
        answers = torch.tensor([6, 1, 2])
        for side in ("head", "tail"):
            rows = model.score_all(anchors, rels, side)
            expected = rows.gather(1, answers[:, None]).squeeze(1)
            got = model.score_answers(anchors, rels, answers, side)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        with pytest.raises(ConfigError, match="side must be 'head' or 'tail'"):
            model.score_answers(anchors, rels, answers, "left")


@pytest.mark.parametrize(("name", "options"), [
    ("complex", {}), ("distmult", {}), ("rotate", {}), ("rotate", {"norm": "l1"}),
    ("transe", {"p": 2}), ("transe", {"p": 1})])
def test_score_candidates_gathered_equals_scored_one_by_one(name, options):
    """The whole-entity-set path of negative sampling (one GEMM, then gather) gives the
    scores and parameter gradients of scoring each candidate on its own."""
    from graphlearn.kg.model import KGModel
    from graphlearn.kg.models import embedding
    from graphlearn.kg.task import build_kg_model

    torch.manual_seed(0)
    for reciprocal in (False, True):
        model = build_kg_model(name, 7, 3, dim=4, reciprocal=reciprocal, **options)
        anchors, rels = torch.tensor([0, 5, 2]), torch.tensor([2, 0, 1])
        candidates = torch.tensor([[6, 1, 1, 0], [1, 5, 3, 2], [2, 2, 4, 6]])
        assert 7 <= embedding._DENSE_ENTITIES_PER_CANDIDATE * 4  # this size takes the GEMM path
        for side in ("head", "tail"):
            got, grads = [], []
            for method in (type(model).score_candidates, KGModel._score_candidates):
                model.zero_grad()
                scores = method(model, anchors, rels, candidates, side)
                (scores * torch.arange(12.0).view(3, 4)).sum().backward()
                got.append(scores.detach())
                grads.append([p.grad.clone() for p in model.parameters()])
            torch.testing.assert_close(got[0], got[1], rtol=1e-5, atol=1e-5)
            for a, b in zip(*grads, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_score_candidates_shape_errors():
    from graphlearn.kg.task import build_kg_model

    from graphlearn.errors import ShapeError

    model = build_kg_model("complex", 7, 3, dim=4)
    anchors, rels = torch.tensor([0, 5, 2]), torch.tensor([2, 0, 1])
    with pytest.raises(ShapeError, match=r"candidates of shape \(B, n\).*got candidates \(12,\)"):
        model.score_candidates(anchors, rels, torch.zeros(12, dtype=torch.long), "tail")
    with pytest.raises(ShapeError, match="got candidates \\(2, 4\\), 3 anchors"):
        model.score_candidates(anchors, rels, torch.zeros(2, 4, dtype=torch.long), "tail")
    with pytest.raises(ShapeError, match="3 anchors, 2 relations"):
        model.score_candidates(anchors, rels[:2], torch.zeros(3, 4, dtype=torch.long), "tail")


def test_negative_sampling_trains_inverse_relations_of_reciprocal_models():
    """Head corruptions of a reciprocal model go through ``r + R``: those rows get gradient
    (before, only the base relations did, and head queries were ranked with untrained rows)."""
    from graphlearn.kg.task import LinkPredictionTask

    task = LinkPredictionTask("complex", {"dim": 4, "reciprocal": True}, num_entities=6,
                              num_relations=2, task_options={"objective": "negative-sampling",
                                                             "num_negatives": 4})
    batch = torch.tensor([[0, 0, 1], [2, 1, 3]])
    loss = task._negative_sampling_loss(*batch.unbind(1))
    loss.backward()
    grad = task.model.relation.weight.grad
    assert grad[[0, 1]].abs().sum() > 0 and grad[[2, 3]].abs().sum() > 0
    only_tail = LinkPredictionTask("complex", {"dim": 4, "reciprocal": True}, num_entities=6,
                                   num_relations=2,
                                   task_options={"objective": "negative-sampling",
                                                 "sides": ["tail"]})
    only_tail._negative_sampling_loss(*batch.unbind(1)).backward()
    assert only_tail.model.relation.weight.grad[[2, 3]].abs().sum() == 0


def test_train_queries_all_uses_every_known_triple(data_root):
    """``task.train_queries: all`` on a facts/train dataset: every known triple is a training
    query, the training graph is the validation graph, and a batch never sees its own edges."""
    from graphlearn.kg.task import LinkPredictionTask, check_task_options, train_stage

    from graphlearn import datasets

    info = datasets.info("family")
    root = data_root(*(f"{info.raw_dir}/{f}" for f in info.raw_files))
    ds = datasets.load("family", root=root, download=False)
    split = train_stage(ds, check_task_options({}))
    assert torch.equal(split.queries, ds.graph.splits["train"])
    every = train_stage(ds, check_task_options({"train_queries": "all"}))
    known = ds.stage("val").facts
    assert torch.equal(every.queries, known) and every.facts is every.queries
    assert known.size(0) == ds.graph.splits["facts"].size(0) + ds.graph.splits["train"].size(0)
    task = LinkPredictionTask("red-gnn", {"hidden_dim": 4, "attn_dim": 2, "num_layers": 1},
                              num_entities=ds.num_entities, num_relations=ds.num_relations,
                              task_options={"train_queries": "all"}, dataset=ds)
    assert task._queries_are_facts()
    with pytest.raises(ConfigError, match="train_queries"):
        check_task_options({"train_queries": "facts"})


def test_resplit_partitions_the_known_triples_per_epoch():
    from graphlearn.kg.resplit import ResplitSampler, resplit

    facts, queries = resplit(101, 0.75, seed=3, epoch=0)
    assert facts.numel() == 75 and queries.numel() == 26
    assert sorted(facts.tolist() + queries.tolist()) == list(range(101))
    again, _ = resplit(101, 0.75, seed=3, epoch=0)
    other, _ = resplit(101, 0.75, seed=3, epoch=1)
    assert torch.equal(facts, again) and not torch.equal(facts, other)
    sampler = ResplitSampler(101, 0.75, seed=3)
    sampler.set_epoch(1)
    assert len(sampler) == 26 and list(sampler) == resplit(101, 0.75, 3, 1)[1].tolist()
    for bad in (0.0, 1.0, 0.001):
        with pytest.raises(ConfigError, match="fact_ratio"):
            resplit(101, bad, 0, 0)
    with pytest.raises(ConfigError, match="fact_ratio"):
        check_task_options({"fact_ratio": 1.5})


def test_resplit_training_reasons_over_the_epochs_other_triples(tmp_path, monkeypatch):
    """``task.train_queries: resplit``: each epoch's batches are queries of that epoch's split
    and the graph they reason over is the rest of the known triples, never their own edges;
    ``optim.lr_decay`` multiplies the learning rate once per epoch."""
    from graphlearn.kg.task import LinkPredictionTask

    seen = []
    original = LinkPredictionTask.training_graph

    def spy(self, batch):
        graph = original(self, batch)
        seen.append((int(self.current_epoch), batch.clone(), graph,
                     self.trainer.optimizers[0].param_groups[0]["lr"]))
        return graph

    monkeypatch.setattr(LinkPredictionTask, "training_graph", spy)
    kg = _write_kg(tmp_path / "ring", n=20)
    graphlearn.fit(model="red-gnn", dataset=str(kg), epochs=3, seed=0, out=tmp_path / "run",
                   **{"task.train_queries": "resplit", "model.hidden_dim": 4, "model.attn_dim": 2,
                      "model.num_layers": 2, "trainer.batch_size": 4, "optim.lr": 0.01,
                      "optim.lr_decay": 0.5, "trainer.patience": None})
    num_known = 34  # 40 ring triples less 6 held out
    per_epoch: dict[int, list] = {}
    for epoch, batch, graph, lr in seen:
        per_epoch.setdefault(epoch, []).append(batch)
        assert lr == pytest.approx(0.01 * 0.5 ** epoch)
        assert graph.num_edges == 2 * int(num_known * 0.75)
        edges = set(zip(graph.edge_index[0].tolist(), graph.edge_type.tolist(),
                        graph.edge_index[1].tolist(), strict=True))
        assert not any((h, r, t) in edges for h, r, t in batch.tolist())
    assert sorted(per_epoch) == [0, 1, 2]
    queries = [torch.cat(b).tolist() for _, b in sorted(per_epoch.items())]
    assert all(len(q) == num_known - int(num_known * 0.75) for q in queries)
    assert queries[0] != queries[1]
