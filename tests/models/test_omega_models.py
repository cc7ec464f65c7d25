"""Tests of the omegaGCN/omegaGAT models and their plain GCN/GAT baselines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError, IndexOutOfRangeError, InvalidArgumentError
from graphlearn.models import GAT, GCN, MODELS, OmegaGAT, OmegaGCN
from graphlearn.models.omega import OmegaLayer
from graphlearn.nn import OmegaGATConv, OmegaGCNConv
from graphlearn.tasks import build_model

BOTH_TASKS = {TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION}
ALL = ["omega-gcn", "omega-gat", "gcn", "gat"]


def graph(num_nodes=6, seed=0):
    """Two small graphs in one batch: a path 0-1-2-3 and an edge 4-5 (undirected)."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 4, 5], [1, 0, 2, 1, 3, 2, 5, 4]])
    return (torch.randn(num_nodes, 5, generator=gen), edge_index,
            torch.tensor([0, 0, 0, 0, 1, 1]))


def small(name, **kwargs):
    """A small instance of a registered model (5 input features -> 3 classes)."""
    kwargs.setdefault("hidden_channels", 8 if name != "gat" else 4)
    if name == "gat":
        kwargs.setdefault("heads", 2)
    return MODELS.get(name).cls(5, 3, **kwargs)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name,cls,doc", [
    ("omega-gcn", OmegaGCN, "omegaGCN network"),
    ("omega-gat", OmegaGAT, "omegaGAT network"),
    ("gcn", GCN, "GCN network"),
    ("gat", GAT, "GAT network"),
])
def test_registry_entries(name, cls, doc):
    spec = MODELS.get(name)
    assert spec.cls is cls
    assert spec.tasks == BOTH_TASKS
    assert spec.description.startswith(doc)
    assert MODELS.canonical(name) == name
    assert name in MODELS.names()


def test_aliases_resolve():
    assert MODELS.get("OmegaGCN").cls is OmegaGCN
    assert MODELS.get("omega_gat").cls is OmegaGAT


# --------------------------------------------------------------------------- shapes, convs


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("num_layers", [1, 2, 8])
def test_node_task_shapes_and_convs(name, num_layers):
    x, edge_index, _ = graph()
    model = small(name, num_layers=num_layers).eval()
    assert len(model.convs) == num_layers
    assert model(x, edge_index).shape == (6, 3)
    assert str(model) == f"{type(model).__name__}(5, 3, num_layers={num_layers})"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("num_layers", [1, 2, 8])
@pytest.mark.parametrize("readout", ["mean", "sum", "max"])
def test_graph_task_shapes_and_permutation_invariance(name, num_layers, readout):
    x, edge_index, batch = graph()
    model = small(name, num_layers=num_layers, readout=readout).eval()
    assert len(model.convs) == num_layers
    out = model(x, edge_index, batch=batch)
    assert out.shape == (2, 3)
    perm = torch.tensor([1, 0, 3, 2, 5, 4])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(6)
    torch.testing.assert_close(model(x[perm], inv[edge_index], batch=batch[perm]), out,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["omega-gcn", "omega-gat"])
@pytest.mark.parametrize("num_layers", [1, 2, 8])
def test_omega_convs_convention(name, num_layers):
    """convs[i] is the i-th layer module: its output is the representation after layer i."""
    x, edge_index, _ = graph()
    model = small(name, num_layers=num_layers).eval()
    conv_cls = OmegaGCNConv if name == "omega-gcn" else OmegaGATConv
    outputs = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outputs.append(o))
             for layer in model.convs]
    logits = model(x, edge_index)
    for h in hooks:
        h.remove()
    assert len(outputs) == num_layers
    for i, layer in enumerate(model.convs):
        assert isinstance(layer, OmegaLayer) and isinstance(layer.conv, conv_cls)
        assert layer.omega is layer.conv.omega
        assert layer.omega.shape == (8,) and torch.all(layer.omega == 1.0)
        assert outputs[i].shape == (6, 8)
        assert torch.all(outputs[i] >= 0)  # after the ReLU
    assert [o.data_ptr() for o in model.omegas] == [c.omega.data_ptr() for c in model.convs]
    # the closing layer reads the last layer's output (eval: no dropout)
    torch.testing.assert_close(logits, model.close(outputs[-1]))


def test_omega_gcn_first_layer_is_relu_of_s_x_at_init():
    """omega = 1 and K = I at initialisation: layer 0 returns ReLU(S relu(open(x)))."""
    x, edge_index, _ = graph()
    model = small("omega-gcn", num_layers=3).eval()
    h0 = F.relu(model.open(x))
    ei, w = gcn_norm(edge_index, None, 6)
    S = torch.zeros(6, 6).index_put_((ei[1], ei[0]), w, accumulate=True)
    out = model.convs[0](h0, ei, w)
    torch.testing.assert_close(out, F.relu(S @ h0))
    assert torch.equal(model.convs[0].lin.weight, torch.eye(8))


@pytest.mark.parametrize("name", ["omega-gcn", "omega-gat"])
def test_channel_mixing_off_is_the_identity_k(name):
    """channel_mixing=False drops K; it computes what the K = I initialisation computes."""
    x, edge_index, _ = graph()
    torch.manual_seed(0)
    mixed = small(name, num_layers=4).eval()
    torch.manual_seed(0)
    fixed = small(name, num_layers=4, channel_mixing=False).eval()
    assert all(layer.lin is None for layer in fixed.convs)
    assert not any(".lin." in n for n, _ in fixed.named_parameters())
    state = {k: v for k, v in mixed.state_dict().items() if ".lin." not in k}
    fixed.load_state_dict(state)
    torch.testing.assert_close(fixed(x, edge_index), mixed(x, edge_index))
    fixed(x, edge_index).sum().backward()
    assert all(layer.omega.grad is not None for layer in fixed.convs)


@pytest.mark.parametrize("name", ["omega-gcn", "omega-gat"])
def test_omega_granularities_in_models(name):
    layer = small(name, num_layers=3, omega="layer")
    assert [tuple(c.omega.shape) for c in layer.convs] == [(1,)] * 3
    assert len({id(c.omega) for c in layer.convs}) == 3
    shared = small(name, num_layers=3, omega="global")
    assert len({id(c.omega) for c in shared.convs}) == 1
    omegas = [p for n, p in shared.named_parameters() if n.endswith("omega")]
    assert len(omegas) == 1 and omegas[0].shape == (1,)
    x, edge_index, _ = graph()
    shared(x, edge_index).sum().backward()
    assert shared.convs[0].omega.grad is not None


def test_omega_gat_heads_and_attention_dropout():
    model = OmegaGAT(5, 3, hidden_channels=8, heads=4, attn_dropout=0.2)
    assert all(layer.conv.heads == 4 and layer.conv.dropout == 0.2 for layer in model.convs)
    with pytest.raises(InvalidArgumentError, match="not divisible by heads=3"):
        OmegaGAT(5, 3, hidden_channels=8, heads=3)


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name):
    x, edge_index, batch = graph()
    model = small(name, num_layers=2, readout="mean")
    model(x, edge_index, batch=batch).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_reset_parameters_restores_omega_and_identity_k():
    model = small("omega-gcn", num_layers=2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.reset_parameters()
    for layer in model.convs:
        assert torch.all(layer.omega == 1.0)
        assert torch.equal(layer.lin.weight, torch.eye(8))


# --------------------------------------------------------------------------- depth, build_model


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("task", [TaskKind.NODE_CLASSIFICATION, TaskKind.GRAPH_CLASSIFICATION])
def test_build_model_at_depth_64(name, task):
    """`--set model.num_layers=64` builds and runs for every model and task."""
    x, edge_index, batch = graph()
    model = build_model(name, task, 5, 3, num_layers=64)
    assert len(model.convs) == 64
    assert (model.readout is not None) == (task is TaskKind.GRAPH_CLASSIFICATION)
    out = model.eval()(x, edge_index, batch=batch)
    assert out.shape == ((2, 3) if task is TaskKind.GRAPH_CLASSIFICATION else (6, 3))
    assert torch.isfinite(out).all()


def test_build_model_checks_names():
    model = build_model("omega-gat", TaskKind.NODE_CLASSIFICATION, 5, 3, heads=2,
                        omega="layer", edge_dim=3)
    assert model.heads == 2 and model.convs[0].omega.shape == (1,)
    with pytest.raises(ConfigError, match="'model.readout' is not a hyperparameter"):
        build_model("omega-gcn", TaskKind.NODE_CLASSIFICATION, 5, 3, readout="sum")
    with pytest.raises(ConfigError, match="'model.heads' is not a hyperparameter"):
        build_model("omega-gcn", TaskKind.NODE_CLASSIFICATION, 5, 3, heads=2)
    with pytest.raises(ConfigError, match="does not serve link_prediction"):
        build_model("gcn", TaskKind.LINK_PREDICTION, 5, 3)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="num_layers of OmegaGCN must be an integer"):
        OmegaGCN(5, 3, num_layers=0)
    with pytest.raises(InvalidArgumentError, match="omega of OmegaGAT must be one of"):
        OmegaGAT(5, 3, omega="node")
    with pytest.raises(InvalidArgumentError, match="dropout of OmegaGCN"):
        OmegaGCN(5, 3, dropout=1.0)
    with pytest.raises(InvalidArgumentError, match="readout='median'"):
        OmegaGCN(5, 3, readout="median")
    with pytest.raises(InvalidArgumentError, match="num_layers of GCN"):
        GCN(5, 3, num_layers=0)
    with pytest.raises(InvalidArgumentError, match="heads of GAT"):
        GAT(5, 3, heads=0)
    x, edge_index, _ = graph()
    bad = edge_index.clone()
    bad[0, 0] = 6
    with pytest.raises(IndexOutOfRangeError, match="OmegaGCN"):
        OmegaGCN(5, 3)(x, bad)


# --------------------------------------------------------------------------- learning on Cora


@pytest.fixture
def cora(data_root):
    from graphlearn import datasets

    root = data_root("planetoid/cora/raw")
    return datasets.load("cora", root=root, normalize_features=True)


def train_node_model(model, data, epochs, lr=0.01, weight_decay=1e-5, eval_every=5):
    """Full-batch Adam on the train mask; test accuracy at the best validation accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_val, test_at_best = -1.0, 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        if epoch % eval_every == 0:
            model.eval()
            with torch.no_grad():
                pred = model(data.x, data.edge_index).argmax(-1)
            val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
            if val > best_val:
                best_val = val
                test_at_best = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
    return best_val, test_at_best


@pytest.mark.parametrize("name,threshold", [("omega-gcn", 0.75), ("omega-gat", 0.70)])
def test_learns_cora(cora, name, threshold):
    """The authors' Cora settings (64 channels, dropout 0.6, lr 0.01, weight decay 1e-5),
    100 epochs on the public split: well above chance (1/7), near the paper's regime."""
    torch.manual_seed(0)
    data = cora.data
    model = MODELS.get(name).cls(cora.num_features, cora.num_classes, hidden_channels=64,
                                 num_layers=2, dropout=0.6)
    best_val, test_acc = train_node_model(model, data, epochs=100)
    assert test_acc >= threshold, (name, best_val, test_acc)
    assert best_val >= threshold - 0.05
    # omega moved away from its initial value of 1: it is being learnt
    assert any(not torch.allclose(layer.omega, torch.ones_like(layer.omega))
               for layer in model.convs)


@pytest.mark.parametrize("granularity", ["channel", "layer", "global"])
def test_omega_is_exempt_from_weight_decay(granularity):
    from graphlearn.tasks import NodeClassificationTask

    task = NodeClassificationTask(model="omega-gcn", model_kwargs={"omega": granularity,
                                                                   "num_layers": 3},
                                  in_channels=5, num_classes=2, weight_decay=5e-4)
    opt = task.configure_optimizers()
    decayed, exempt = opt.param_groups
    assert exempt["weight_decay"] == 0.0 and decayed["weight_decay"] == 5e-4
    omegas = {id(w) for w in task.model.omegas}
    assert {id(p) for p in exempt["params"]} == omegas
    assert not omegas & {id(p) for p in decayed["params"]}


# --------------------------------------------------------------------------- diffusion_time


@pytest.mark.parametrize("name", ["omega-gcn", "omega-gat"])
def test_diffusion_time_scales_only_deeper_stacks(name):
    """L > T layers apply omega = (T / L) * theta; L <= T layers are the unscaled model."""
    x, edge_index, _ = graph()
    torch.manual_seed(0)
    deep = small(name, num_layers=8, diffusion_time=2, channel_mixing=False).eval()
    torch.manual_seed(0)
    plain = small(name, num_layers=8, channel_mixing=False).eval()
    assert deep.omega_scale == 0.25 and all(c.omega_scale == 0.25 for c in deep.convs)
    assert all(torch.all(c.omega == 1.0) for c in deep.convs)  # theta starts at 1
    with torch.no_grad():
        for w in plain.omegas:
            w.fill_(0.25)
    torch.testing.assert_close(deep(x, edge_index), plain(x, edge_index))
    torch.manual_seed(0)
    shallow = small(name, num_layers=2, diffusion_time=4).eval()
    torch.manual_seed(0)
    default = small(name, num_layers=2).eval()
    assert shallow.omega_scale == 1.0
    assert torch.equal(shallow(x, edge_index), default(x, edge_index))


def test_diffusion_time_is_a_reparametrisation_of_omega_for_adam():
    """Adam on theta (omega = s * theta, theta_0 = 1) takes the steps of Adam on omega itself
    started at s with the omega learning rate times s: the scaled deep stack trains like an
    unscaled one with a depth-dependent omega initialisation and learning rate."""
    x, edge_index, _ = graph()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(0)
    scaled = small("omega-gcn", num_layers=8, diffusion_time=2, channel_mixing=False, dropout=0.0)
    torch.manual_seed(0)
    plain = small("omega-gcn", num_layers=8, channel_mixing=False, dropout=0.0)
    with torch.no_grad():
        for w in plain.omegas:
            w.fill_(0.25)

    def optimiser(model, omega_lr):
        omegas = {id(w) for w in model.omegas}
        rest = [p for p in model.parameters() if id(p) not in omegas]
        return torch.optim.Adam([{"params": rest}, {"params": model.omegas, "lr": omega_lr}],
                                lr=0.01)

    opts = [optimiser(scaled, 0.01), optimiser(plain, 0.0025)]
    for _ in range(5):
        for model, opt in zip((scaled, plain), opts, strict=True):
            opt.zero_grad()
            F.cross_entropy(model(x, edge_index), y).backward()
            opt.step()
    for a, b in zip(scaled.convs, plain.convs, strict=True):
        torch.testing.assert_close(a.omega * 0.25, b.omega, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(scaled.convs[0].omega, torch.ones(8))  # it did learn


def test_layer_statistics_report_the_applied_omega():
    from torch_geometric.data import Data

    from graphlearn.analysis import layer_statistics

    x, edge_index, _ = graph()
    model = small("omega-gcn", num_layers=8, diffusion_time=2)
    rows = layer_statistics(model, Data(x=x, edge_index=edge_index))
    omega_rows = [r for r in rows if "omega_mean" in r]
    assert len(omega_rows) == 8
    assert all(r["omega_mean"] == pytest.approx(0.25) for r in omega_rows)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "16", True])
def test_bad_diffusion_time(bad):
    with pytest.raises(InvalidArgumentError, match="diffusion_time of OmegaGCN"):
        OmegaGCN(5, 3, num_layers=4, diffusion_time=bad)
