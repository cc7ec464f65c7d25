"""Tests of graphlearn.nn.OmegaGCNConv: exact reductions to GCN's operator and the identity."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg_nn
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphlearn.errors import (
    DeviceError,
    DTypeError,
    GraphLearnError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.nn import OmegaGCNConv


def make_graph(seed, num_nodes=7, num_edges=20, channels=6, dtype=torch.float32):
    """A random directed graph with duplicate edges and some self-loops, plus edge weights."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, channels, generator=gen, dtype=dtype)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    if num_edges > 1 and num_nodes > 1:
        edge_index[:, :2] = torch.tensor([[0, 1], [0, 1]])  # make sure self-loops exist
    edge_weight = torch.rand(num_edges, generator=gen, dtype=dtype) + 0.1
    return x, edge_index, edge_weight


def pyg_propagation(channels, x, edge_index, edge_weight=None, **kwargs):
    """torch_geometric GCNConv with an identity weight and no bias: exactly S x."""
    conv = pyg_nn.GCNConv(channels, channels, bias=False, **kwargs).to(x.dtype)
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(channels, dtype=x.dtype))
    return conv(x, edge_index, edge_weight)


def dense_operator(edge_index, edge_weight, num_nodes, **kwargs):
    """The dense float64 S = D^-1/2 (A + I) D^-1/2 (messages flow row 0 -> row 1)."""
    ei, w = gcn_norm(edge_index, None if edge_weight is None else edge_weight.double(),
                     num_nodes, dtype=torch.float64, **kwargs)
    dense = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    dense.index_put_((ei[1], ei[0]), w, accumulate=True)
    return dense


def set_omega(conv, value):
    with torch.no_grad():
        conv.omega.copy_(torch.as_tensor(value, dtype=conv.omega.dtype).expand_as(conv.omega))
    return conv


# --------------------------------------------------------------------------- repr, parameters


def test_repr_is_pinned():
    assert str(OmegaGCNConv(16)) == "OmegaGCNConv(16, omega='channel')"
    assert str(OmegaGCNConv(16, omega="layer")) == "OmegaGCNConv(16, omega='layer')"
    assert str(OmegaGCNConv(16, omega="global")) == "OmegaGCNConv(16, omega='global')"
    shared = torch.nn.Parameter(torch.ones(1))
    assert str(OmegaGCNConv(16, omega=shared)) == "OmegaGCNConv(16, omega='global')"


@pytest.mark.parametrize("omega,shape", [("channel", (6,)), ("layer", (1,)), ("global", (1,))])
def test_omega_granularity_shapes_and_init(omega, shape):
    conv = OmegaGCNConv(6, omega=omega)
    assert isinstance(conv.omega, torch.nn.Parameter)
    assert conv.omega.shape == shape
    assert torch.all(conv.omega == 1.0)
    assert conv.omega_granularity == omega
    assert [name for name, _ in conv.named_parameters()] == ["omega"]


def test_shared_global_omega_is_one_parameter_for_all_layers():
    shared = torch.nn.Parameter(torch.ones(1))
    convs = torch.nn.ModuleList(OmegaGCNConv(6, omega=shared) for _ in range(3))
    assert all(c.omega is shared for c in convs)
    assert len(list(convs.parameters())) == 1
    x, edge_index, _ = make_graph(0)
    out = x
    for conv in convs:
        out = conv(out, edge_index)
    out.pow(2).sum().backward()
    assert shared.grad is not None and shared.grad.abs().item() > 0
    # a per-channel shared parameter is accepted too
    per_channel = torch.nn.Parameter(torch.ones(6))
    assert OmegaGCNConv(6, omega=per_channel).omega is per_channel


def test_reset_parameters_restores_omega_and_clears_cache():
    conv = OmegaGCNConv(6, cached=True)
    x, edge_index, _ = make_graph(0)
    conv(x, edge_index)
    assert conv._cached_edge_index is not None
    set_omega(conv, 0.3)
    conv.reset_parameters()
    assert torch.all(conv.omega == 1.0)
    assert conv._cached_edge_index is None


# --------------------------------------------------------------------------- exact reductions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("improved", [False, True])
@pytest.mark.parametrize("omega", ["channel", "layer", "global"])
def test_omega_one_is_pyg_gcn_propagation(dtype, weighted, improved, omega):
    for seed in range(3):
        x, edge_index, edge_weight = make_graph(seed, num_edges=10 + 7 * seed, dtype=dtype)
        edge_weight = edge_weight if weighted else None
        conv = OmegaGCNConv(6, omega=omega, improved=improved).to(dtype)
        expected = pyg_propagation(6, x, edge_index, edge_weight, improved=improved)
        actual = conv(x, edge_index, edge_weight)
        assert actual.dtype == dtype
        torch.testing.assert_close(actual, expected, atol=0, rtol=0)


def test_omega_one_is_pyg_without_self_loops_and_with_flow():
    x, edge_index, edge_weight = make_graph(3)
    conv = OmegaGCNConv(6, add_self_loops=False)
    torch.testing.assert_close(conv(x, edge_index, edge_weight),
                               pyg_propagation(6, x, edge_index, edge_weight, add_self_loops=False))
    conv = OmegaGCNConv(6, flow="target_to_source")
    expected = pyg_propagation(6, x, edge_index, flow="target_to_source")
    torch.testing.assert_close(conv(x, edge_index), expected)
    # target_to_source on edge_index equals source_to_target on the flipped edges
    torch.testing.assert_close(conv(x, edge_index), OmegaGCNConv(6)(x, edge_index.flip(0)))


@pytest.mark.parametrize("weighted", [False, True])
def test_omega_zero_is_the_identity(weighted):
    x, edge_index, edge_weight = make_graph(1)
    for omega in ("channel", "layer", "global"):
        conv = set_omega(OmegaGCNConv(6, omega=omega), 0.0)
        assert torch.equal(conv(x, edge_index, edge_weight if weighted else None), x)


@pytest.mark.parametrize("normalize", [True, False])
def test_general_omega_matches_dense_operator_float64(normalize):
    x, edge_index, edge_weight = make_graph(2, dtype=torch.float64)
    omega = torch.tensor([1.0, 0.0, 0.5, 1.7, -0.3, 2.5], dtype=torch.float64)
    conv = set_omega(OmegaGCNConv(6, normalize=normalize, add_self_loops=normalize).double(),
                     omega)
    if normalize:
        S = dense_operator(edge_index, edge_weight, 7)
    else:  # the given weights are S as is
        S = torch.zeros(7, 7, dtype=torch.float64).index_put_(
            (edge_index[1], edge_index[0]), edge_weight, accumulate=True)
    expected = (1 - omega) * x + omega * (S @ x)
    expected_alt = x - omega * (x - S @ x)  # the paper's form
    actual = conv(x, edge_index, edge_weight)
    torch.testing.assert_close(actual, expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(actual, expected_alt, atol=1e-12, rtol=1e-10)


def test_layer_omega_scales_all_channels_alike():
    x, edge_index, _ = make_graph(4, dtype=torch.float64)
    layer = set_omega(OmegaGCNConv(6, omega="layer").double(), 0.4)
    channel = set_omega(OmegaGCNConv(6, omega="channel").double(), 0.4)
    torch.testing.assert_close(layer(x, edge_index), channel(x, edge_index))


def test_no_edges():
    x, _, _ = make_graph(0)
    empty = torch.empty(2, 0, dtype=torch.long)
    # with self-loops S = I, so every omega returns x
    conv = set_omega(OmegaGCNConv(6), 0.7)
    torch.testing.assert_close(conv(x, empty), x)
    # without self-loops S = 0 and the layer scales x by 1 - omega
    conv = set_omega(OmegaGCNConv(6, add_self_loops=False), 0.25)
    torch.testing.assert_close(conv(x, empty), 0.75 * x)
    assert OmegaGCNConv(6)(x[:0], empty).shape == (0, 6)


def test_int32_edge_index_and_repeat_calls():
    x, edge_index, edge_weight = make_graph(5)
    conv = set_omega(OmegaGCNConv(6), torch.linspace(-1, 2, 6))
    out = conv(x, edge_index, edge_weight)
    torch.testing.assert_close(conv(x, edge_index.int(), edge_weight), out)
    assert torch.equal(conv(x, edge_index, edge_weight), out)


def test_cached_reuses_the_first_normalisation():
    x, edge_index, _ = make_graph(0)
    cached = OmegaGCNConv(6, cached=True)
    first = cached(x, edge_index)
    other = make_graph(9)[1]
    # like PyG's GCNConv(cached=True): the operator of the first call is kept
    torch.testing.assert_close(cached(x, other), first)
    torch.testing.assert_close(OmegaGCNConv(6)(x, other), pyg_propagation(6, x, other))


# --------------------------------------------------------------------------- gradients


def test_gradients_flow_to_omega_and_x():
    x, edge_index, edge_weight = make_graph(0)
    x.requires_grad_()
    conv = OmegaGCNConv(6)
    out = conv(x, edge_index, edge_weight)
    (out * torch.randn_like(out)).sum().backward()
    assert conv.omega.grad is not None and conv.omega.grad.shape == (6,)
    assert torch.all(conv.omega.grad != 0)
    assert x.grad is not None and x.grad.abs().sum() > 0
    # d out / d omega_c = (S x - x)_c: check against the closed form
    S = dense_operator(edge_index, edge_weight, 7)
    g = torch.randn(7, 6, dtype=torch.float64)
    conv.zero_grad()
    conv.double()(x.detach().double(), edge_index, edge_weight.double()).backward(g)
    xd = x.detach().double()
    torch.testing.assert_close(conv.omega.grad, ((S @ xd - xd) * g).sum(0))


@pytest.mark.parametrize("omega", ["channel", "layer"])
def test_gradcheck_float64(omega):
    x, edge_index, edge_weight = make_graph(1, num_nodes=5, num_edges=9, channels=3,
                                            dtype=torch.float64)
    conv = OmegaGCNConv(3, omega=omega).double()
    set_omega(conv, torch.tensor([0.3, 1.2, -0.5], dtype=torch.float64)[: conv.omega.numel()])

    def fn(x, w, omega_value):
        return torch.func.functional_call(conv, {"omega": omega_value}, (x, edge_index, w))

    inputs = (x.requires_grad_(), edge_weight.requires_grad_(),
              conv.omega.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs)


# --------------------------------------------------------------------------- compile


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()
    x, edge_index, edge_weight = make_graph(0)
    conv = set_omega(OmegaGCNConv(6), torch.linspace(0, 2, 6))
    compiled = torch.compile(conv, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(x, edge_index, edge_weight), conv(x, edge_index, edge_weight),
                               atol=1e-6, rtol=1e-5)
    compiled(x, edge_index).sum().backward()
    assert conv.omega.grad is not None


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture
def graph():
    return make_graph(0)


def test_omega_scale_multiplies_the_stored_omega():
    """omega_scale=s applies s * theta: the layer equals an unscaled one holding s * theta."""
    x, edge_index, edge_weight = make_graph(5, dtype=torch.float64)
    theta = torch.tensor([1.0, 0.0, 0.5, 1.7, -0.3, 2.5], dtype=torch.float64)
    scaled = set_omega(OmegaGCNConv(6, omega_scale=0.25).double(), theta)
    plain = set_omega(OmegaGCNConv(6).double(), 0.25 * theta)
    torch.testing.assert_close(scaled(x, edge_index, edge_weight),
                               plain(x, edge_index, edge_weight), atol=1e-12, rtol=1e-10)
    assert str(OmegaGCNConv(16, omega_scale=0.5)) == "OmegaGCNConv(16, omega='channel', omega_scale=0.5)"
    # reset_parameters sets the stored theta to 1, so the applied omega starts at the scale
    assert torch.all(OmegaGCNConv(6, omega_scale=0.25).omega == 1.0)


def test_bad_constructor_arguments():
    for bad in (0.0, -1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(InvalidArgumentError, match="omega_scale of OmegaGCNConv"):
            OmegaGCNConv(6, omega_scale=bad)
    with pytest.raises(InvalidArgumentError, match="omega of OmegaGCNConv must be one of"):
        OmegaGCNConv(6, omega="node")
    with pytest.raises(InvalidArgumentError, match=r"shape \(1,\) or \(6,\)"):
        OmegaGCNConv(6, omega=torch.nn.Parameter(torch.ones(3)))
    with pytest.raises(InvalidArgumentError, match="channels of OmegaGCNConv"):
        OmegaGCNConv(0)
    with pytest.raises(InvalidArgumentError, match="cannot add self-loops when normalize=False"):
        OmegaGCNConv(6, normalize=False, add_self_loops=True)
    with pytest.raises(InvalidArgumentError, match="aggr must be 'add'"):
        OmegaGCNConv(6, aggr="mean")
    assert OmegaGCNConv(6, normalize=False).add_self_loops is False


def test_node_feature_errors(graph):
    x, edge_index, _ = graph
    conv = OmegaGCNConv(6)
    with pytest.raises(DTypeError, match="floating-point"):
        conv(x.long(), edge_index)
    with pytest.raises(ShapeError, match=r"view\(-1, 1\)"):
        conv(x[:, 0], edge_index)
    with pytest.raises(ShapeError, match="channels=6"):
        conv(x[:, :4], edge_index)
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        conv(bad, edge_index)
    with pytest.raises(InvalidArgumentError, match="tuple of node features"):
        conv((x, x), edge_index)


def test_edge_index_errors(graph):
    x, edge_index, _ = graph
    conv = OmegaGCNConv(6)
    bad = edge_index.clone()
    bad[1, 3] = 7
    with pytest.raises(IndexOutOfRangeError, match=r"node id 7, outside \[0, 7\)"):
        conv(x, bad)
    with pytest.raises(DTypeError, match="torch.long"):
        conv(x, edge_index.float())
    with pytest.raises(ShapeError, match=r"edge_index.t\(\)"):
        conv(x, edge_index.t())
    with pytest.raises(DTypeError, match="sparse"):
        conv(x, edge_index.to_sparse())


def test_edge_weight_errors(graph):
    x, edge_index, edge_weight = graph
    conv = OmegaGCNConv(6)
    with pytest.raises(ShapeError, match=r"shape \(20,\)"):
        conv(x, edge_index, edge_weight[:-1])
    with pytest.raises(DTypeError, match="edge_weight.*floating-point"):
        conv(x, edge_index, edge_weight.long())
    bad = edge_weight.clone()
    bad[0] = float("inf")
    with pytest.raises(NonFiniteError, match="edge_weight"):
        conv(x, edge_index, bad)


def test_device_errors(graph):
    x, edge_index, _ = graph
    with pytest.raises(DeviceError, match="meta"):
        OmegaGCNConv(6)(x, edge_index.to("meta"))
    with pytest.raises(DeviceError, match=r"conv.to\(x.device\)"):
        OmegaGCNConv(6).to("meta")(x, edge_index)


def test_errors_are_graphlearn_errors(graph):
    x, edge_index, _ = graph
    with pytest.raises(GraphLearnError):
        OmegaGCNConv(6)(x[:, :2], edge_index)
