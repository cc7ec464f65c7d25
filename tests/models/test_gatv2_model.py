import pytest
import torch

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError, InvalidArgumentError
from graphlearn.models import MODELS, GATv2
from graphlearn.nn import GATv2Conv
from graphlearn.tasks import build_model


def graph():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    return torch.randn(5, 6), edge_index, torch.tensor([0, 0, 0, 1, 1])


def test_registry_entry():
    spec = MODELS.get("GATv2")
    assert spec.cls is GATv2
    assert spec.tasks == {TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION}
    assert spec.description.startswith("GATv2 network")


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_node_model_layers_and_shapes(num_layers):
    x, edge_index, _ = graph()
    model = GATv2(6, 3, hidden_channels=4, heads=2, num_layers=num_layers).eval()
    assert len(model.convs) == num_layers
    assert all(isinstance(c, GATv2Conv) for c in model.convs)
    assert model(x, edge_index).shape == (5, 3)
    assert str(model) == f"GATv2(6, 3, num_layers={num_layers})"


@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_graph_model_pools_per_graph(readout):
    x, edge_index, batch = graph()
    model = GATv2(6, 2, hidden_channels=4, heads=2, readout=readout).eval()
    out = model(x, edge_index, batch=batch)
    assert out.shape == (2, 2)
    # permuting the nodes of the batch (and the edges with them) leaves graph outputs unchanged
    perm = torch.tensor([1, 0, 2, 4, 3])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(5)
    out_perm = model(x[perm], inv[edge_index], batch=batch[perm])
    torch.testing.assert_close(out, out_perm, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="num_layers of GATv2 must be an integer >= 1, got 0"):
        GATv2(6, 3, num_layers=0)
    with pytest.raises(InvalidArgumentError, match="readout='median'"):
        GATv2(6, 3, readout="median")


def test_build_model_checks_names_and_fills_task_arguments():
    model = build_model("gatv2", TaskKind.GRAPH_CLASSIFICATION, 6, 2, edge_dim=3, heads=2)
    assert model.readout is not None and model.convs[0].edge_dim == 3
    node_model = build_model("gatv2", TaskKind.NODE_CLASSIFICATION, 6, 2)
    assert node_model.readout is None and node_model.convs[0].edge_dim is None
    with pytest.raises(ConfigError, match="'model.readout' is not a hyperparameter"):
        build_model("gatv2", TaskKind.NODE_CLASSIFICATION, 6, 2, readout="sum")
    with pytest.raises(ConfigError, match="does not serve link_prediction"):
        build_model("gatv2", TaskKind.LINK_PREDICTION, 6, 2)
