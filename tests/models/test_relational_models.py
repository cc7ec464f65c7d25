"""Relational models (rgcn, rgat, hgt) through the registry and the trainer on real AIFB."""

from __future__ import annotations

import json

import pytest
import torch

import graphlearn
from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError, InvalidArgumentError
from graphlearn.models.registry import call_model
from graphlearn.tasks.classification import build_model

QUIET = {"trainer.progress_bar": False}
RECIPE = {"trainer.patience": None, "trainer.monitor": "loss", "optim.lr": 0.01}


def aifb(data_root):
    from graphlearn import datasets

    names = datasets.info("aifb").raw_files
    root = data_root(*(f"rdf/aifb/{name}" for name in names))
    return datasets.load("aifb", root=root, download=False), root


def test_registry_fills_graph_stats():
    stats = {"num_nodes": 10, "num_relations": 4, "num_node_types": 2,
             "typed_edges": [[0, 1, 1], [1, 2, 0]]}
    rgcn = build_model("rgcn", TaskKind.NODE_CLASSIFICATION, 0, 3, graph_stats=stats)
    assert rgcn.convs[0].in_channels == 10 and rgcn.convs[0].num_relations == 4
    hgt = build_model("hgt", TaskKind.NODE_CLASSIFICATION, 0, 3, graph_stats=stats)
    assert len(hgt.edge_keys) == 2
    with pytest.raises(InvalidArgumentError, match="num_nodes"):
        build_model("rgcn", TaskKind.NODE_CLASSIFICATION, 0, 3, graph_stats={"num_relations": 4})


def test_missing_edge_type_is_a_config_error():
    model = build_model("rgcn", TaskKind.NODE_CLASSIFICATION, 5, 2,
                        graph_stats={"num_relations": 2})
    from torch_geometric.data import Data

    data = Data(x=torch.randn(4, 5), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ConfigError, match="edge_type"):
        call_model(model, data)


def test_hgt_rejects_an_unknown_edge_type():
    stats = {"num_relations": 2, "num_node_types": 2, "typed_edges": [[0, 0, 1]],
             "num_nodes": 3}
    model = build_model("hgt", TaskKind.NODE_CLASSIFICATION, 0, 2, graph_stats=stats)
    with pytest.raises(InvalidArgumentError, match="typed_edges"):
        model(None, torch.tensor([[1], [0]]), edge_type=torch.tensor([1]),
              node_type=torch.tensor([0, 1, 1]))


@pytest.mark.parametrize("model,epochs,minimum", [("rgcn", 30, 0.88), ("rgat", 50, 0.75),
                                                  ("hgt", 50, 0.7)])
def test_fit_learns_aifb(model, epochs, minimum, data_root, tmp_path):
    """`graphlearn fit` trains each relational model on real, featureless AIFB."""
    dataset, root = aifb(data_root)
    result = graphlearn.fit(model=model, dataset="aifb", seed=0, epochs=epochs,
                            out=tmp_path / model, **{"dataset.root": str(root)}, **RECIPE,
                            **QUIET)
    test = dataset.data.test_mask
    majority = torch.bincount(dataset.data.y[test]).max().item() / int(test.sum())
    accuracy = result.metrics["test"]["accuracy"]
    assert accuracy >= minimum > majority + 0.25, (accuracy, majority)
    summary = json.loads((tmp_path / model / "summary.json").read_text())
    assert summary["model"] == model


def test_rgcn_flat_glorot_init_scales_like_the_original():
    torch.manual_seed(0)
    stats = {"num_nodes": 50, "num_relations": 6}
    flat = build_model("rgcn", TaskKind.NODE_CLASSIFICATION, 0, 3, graph_stats=stats,
                       num_bases=4, init="flat-glorot")
    w = flat.convs[0].weight  # (bases, in, out) = (4, 50, 16): Glorot over (4 * 50, 16)
    bound = (6 / (4 * 50 + 16)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    with pytest.raises(InvalidArgumentError, match="init"):
        build_model("rgcn", TaskKind.NODE_CLASSIFICATION, 0, 3, graph_stats=stats, init="he")
