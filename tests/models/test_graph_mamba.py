import pytest
import torch
import torch.nn.functional as F

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import (
    ConfigError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
)
from graphlearn.models import MODELS, GraphMambaNetwork
from graphlearn.tasks import build_model

SMALL = dict(hidden_channels=16, num_layers=1, expand=1, state_dim=4)


def two_graphs():
    # graph 0: a 5-cycle; graph 1: a star with 4 leaves
    e0 = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]
    e1 = [(5, 6), (5, 7), (5, 8), (5, 9)]
    edges = torch.tensor(e0 + e1).t()
    edge_index = torch.cat([edges, edges.flip(0)], 1)
    return torch.randn(10, 3), edge_index, torch.tensor([0] * 5 + [1] * 5)


def test_registry_entry_and_build():
    spec = MODELS.get("graph-mamba")
    assert spec.cls is GraphMambaNetwork and MODELS.get("gmn") is spec
    assert spec.tasks == {TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION}
    model = build_model("graph-mamba", TaskKind.GRAPH_CLASSIFICATION, 3, 2, **SMALL)
    assert model.readout is not None
    with pytest.raises(ConfigError, match="'model.heads' is not a hyperparameter"):
        build_model("graph-mamba", TaskKind.NODE_CLASSIFICATION, 3, 2, heads=2)


@pytest.mark.parametrize("kwargs", [
    dict(tokenizer="random-walk", local_encoder="gcn"),
    dict(tokenizer="random-walk", local_encoder="gatv2", repeats=2, non_backtracking=True),
    dict(tokenizer="random-walk", local_encoder="rwf", mpnn="gatv2", pe="rwse"),
    dict(tokenizer="node", order="degree", pe="laplacian", pe_dim=3),
    dict(tokenizer="node", order="degree-noise", eval_samples=3, mpnn=None),
])
def test_shapes_gradients_and_deterministic_evaluation(kwargs):
    torch.manual_seed(0)
    x, edge_index, batch = two_graphs()
    node = GraphMambaNetwork(3, 4, **SMALL, **kwargs)
    out = node(x, edge_index)
    assert out.shape == (10, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in node.parameters() if p.requires_grad)
    node.eval()
    torch.testing.assert_close(node(x, edge_index), node(x, edge_index))
    graph = GraphMambaNetwork(3, 2, **SMALL, **kwargs, readout="mean").eval()
    assert graph(x, edge_index, batch=batch).shape == (2, 2)


def test_node_tokens_batch_equals_each_graph_alone():
    """Packed per-graph sequences (ptr) make a batch give each graph's own output."""
    torch.manual_seed(0)
    x, edge_index, batch = two_graphs()
    model = GraphMambaNetwork(3, 2, **SMALL, tokenizer="node", order="degree",
                              readout="mean").eval()
    both = model(x, edge_index, batch=batch)
    first = model(x[:5], edge_index[:, :5].clone().repeat(1, 1)[:, :5].new_tensor(
        [[0, 1, 2, 3, 4, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 0, 1, 2, 3, 4]]),
        batch=torch.zeros(5, dtype=torch.long))
    star = edge_index[:, edge_index[0] >= 5] - 5
    second = model(x[5:], star, batch=torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(both, torch.cat([first, second]))


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="tokenizer='bfs'"):
        GraphMambaNetwork(3, 2, tokenizer="bfs")
    with pytest.raises(InvalidArgumentError, match="local_encoder='mlp'"):
        GraphMambaNetwork(3, 2, local_encoder="mlp")
    with pytest.raises(InvalidArgumentError, match="pe='spd'"):
        GraphMambaNetwork(3, 2, pe="spd")
    with pytest.raises(InvalidArgumentError, match="dropout"):
        GraphMambaNetwork(3, 2, dropout=1.5)


def test_bad_graphs_get_clear_errors():
    x, edge_index, _ = two_graphs()
    model = GraphMambaNetwork(3, 2, **SMALL)
    bad = edge_index.clone()
    bad[0, 0] = 10
    with pytest.raises(IndexOutOfRangeError, match="GraphMambaNetwork"):
        model(x, bad)
    nan = x.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="GraphMambaNetwork"):
        model(nan, edge_index)


def _train(model, data, epochs, lr=0.01):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(-1)
    return (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()


def test_reads_beyond_two_hops_where_gcn_cannot():
    """On the long-range path probe at distance 3, Graph Mamba (3-hop walk tokens) solves
    the task and a 2-layer GCN stays near chance (1/4)."""
    from graphlearn import datasets
    from graphlearn.models import GCN

    data = datasets.load("long-range-path", distance=3, num_paths=120).data
    torch.manual_seed(0)
    gmn = GraphMambaNetwork(6, 4, hidden_channels=16, num_layers=1, max_hops=3, num_walks=1,
                            non_backtracking=True, expand=1, state_dim=4, dropout=0.0)
    gcn = GCN(6, 4, hidden_channels=32, num_layers=2, dropout=0.0)
    assert _train(gmn, data, 100) >= 0.9
    assert _train(gcn, data, 100) <= 0.45


def test_learns_mutag(data_root):
    """Real slice: MUTAG graph classification (fold 0 of the seeded 10-fold split), 15 epochs
    of a small model; held-out accuracy well above the majority class."""
    from torch_geometric.loader import DataLoader

    from graphlearn import datasets

    ds = datasets.load("mutag", root=data_root("tu/MUTAG/raw"))
    split = next(iter(ds.folds(10, seed=0)))
    train = [ds.graphs[i] for i in split["train"].tolist()]
    held = [ds.graphs[i] for i in torch.cat([split["val"], split["test"]]).tolist()]
    torch.manual_seed(0)
    model = GraphMambaNetwork(ds.num_features, 2, hidden_channels=32, num_layers=1, expand=1,
                              state_dim=8, dropout=0.1, readout="mean")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(15):
        model.train()
        for batch in DataLoader(train, batch_size=32, shuffle=True):
            opt.zero_grad()
            F.cross_entropy(model(batch.x, batch.edge_index, batch=batch.batch), batch.y).backward()
            opt.step()
    model.eval()
    batch = next(iter(DataLoader(held, batch_size=len(held))))
    with torch.no_grad():
        accuracy = (model(batch.x, batch.edge_index, batch=batch.batch).argmax(-1)
                    == batch.y).float().mean().item()
    majority = torch.bincount(batch.y).max().item() / batch.y.numel()
    assert accuracy >= max(0.8, majority + 0.1), (accuracy, majority)
