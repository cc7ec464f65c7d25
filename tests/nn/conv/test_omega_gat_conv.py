"""Tests of graphlearn.nn.OmegaGATConv: exact reductions to GAT attention and the identity."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.nn as pyg_nn
from torch_geometric.utils import scatter

from graphlearn.errors import (
    DeviceError,
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.nn import OmegaGATConv


def make_graph(seed, num_nodes=7, num_edges=20, channels=6, dtype=torch.float32):
    """A random directed graph with duplicate edges and some self-loops."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, channels, generator=gen, dtype=dtype)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    if num_edges > 1 and num_nodes > 1:
        edge_index[:, :2] = torch.tensor([[0, 1], [0, 1]])
    return x, edge_index


def pyg_twin(conv):
    """torch_geometric GATConv with an identity weight, no bias and ``conv``'s attention."""
    heads, channels = conv.heads, conv.channels
    pyg = pyg_nn.GATConv(channels, channels // heads, heads=heads, bias=False,
                         add_self_loops=conv.add_self_loops, negative_slope=conv.negative_slope,
                         dropout=conv.dropout).to(conv.att_src.dtype)
    with torch.no_grad():
        pyg.lin.weight.copy_(torch.eye(channels, dtype=conv.att_src.dtype))
        pyg.att_src.copy_(conv.att_src)
        pyg.att_dst.copy_(conv.att_dst)
    return pyg


def set_omega(conv, value):
    with torch.no_grad():
        conv.omega.copy_(torch.as_tensor(value, dtype=conv.omega.dtype).expand_as(conv.omega))
    return conv


# --------------------------------------------------------------------------- repr, parameters


def test_repr_is_pinned():
    assert str(OmegaGATConv(16)) == "OmegaGATConv(16, heads=1, omega='channel')"
    assert str(OmegaGATConv(16, heads=4, omega="layer")) == (
        "OmegaGATConv(16, heads=4, omega='layer')")
    shared = torch.nn.Parameter(torch.ones(1))
    assert str(OmegaGATConv(16, omega=shared)) == "OmegaGATConv(16, heads=1, omega='global')"


@pytest.mark.parametrize("omega,shape", [("channel", (8,)), ("layer", (1,)), ("global", (1,))])
def test_parameters_and_granularity(omega, shape):
    conv = OmegaGATConv(8, heads=2, omega=omega)
    assert conv.omega.shape == shape and torch.all(conv.omega == 1.0)
    assert conv.att_src.shape == conv.att_dst.shape == (1, 2, 4)
    assert sorted(n for n, _ in conv.named_parameters()) == ["att_dst", "att_src", "omega"]


def test_reset_parameters():
    conv = OmegaGATConv(6, heads=3)
    with torch.no_grad():
        for p in conv.parameters():
            p.fill_(0.5)
    conv.reset_parameters()
    assert torch.all(conv.omega == 1.0)
    assert not torch.all(conv.att_src == 0.5) and not torch.all(conv.att_dst == 0.5)


def test_shared_global_omega():
    shared = torch.nn.Parameter(torch.ones(1))
    convs = torch.nn.ModuleList(OmegaGATConv(6, heads=2, omega=shared) for _ in range(3))
    assert all(c.omega is shared for c in convs)
    x, edge_index = make_graph(0)
    for conv in convs:
        x = conv(x, edge_index)
    x.pow(2).sum().backward()
    assert shared.grad is not None and shared.grad.abs().item() > 0


# --------------------------------------------------------------------------- exact reductions


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("add_self_loops", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_omega_one_is_gat_attention_propagation(heads, add_self_loops, dtype):
    for seed in range(3):
        torch.manual_seed(seed)
        conv = OmegaGATConv(6, heads=heads, add_self_loops=add_self_loops).to(dtype)
        pyg = pyg_twin(conv)
        x, edge_index = make_graph(seed, num_edges=10 + 7 * seed, dtype=dtype)
        out, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
        expected, (ei_p, alpha_p) = pyg(x, edge_index, return_attention_weights=True)
        tol = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12,
                                                                             rtol=1e-10)
        torch.testing.assert_close(out, expected, **tol)
        assert torch.equal(ei, ei_p)
        torch.testing.assert_close(alpha, alpha_p, **tol)


@pytest.mark.parametrize("heads", [1, 2])
def test_omega_zero_is_the_identity(heads):
    x, edge_index = make_graph(1)
    for omega in ("channel", "layer", "global"):
        conv = set_omega(OmegaGATConv(6, heads=heads, omega=omega), 0.0)
        assert torch.equal(conv(x, edge_index), x)


def test_general_omega_mixes_identity_and_attention():
    x, edge_index = make_graph(2, dtype=torch.float64)
    torch.manual_seed(0)
    conv = OmegaGATConv(6, heads=2).double()
    sx = conv(x, edge_index)  # omega = 1
    omega = torch.tensor([1.0, 0.0, 0.5, 1.7, -0.3, 2.5], dtype=torch.float64)
    set_omega(conv, omega)
    torch.testing.assert_close(conv(x, edge_index), x - omega * (x - sx), atol=1e-12, rtol=1e-10)


def test_attention_rows_sum_to_one_per_head():
    x, edge_index = make_graph(3)
    conv = OmegaGATConv(6, heads=3).eval()
    _, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    assert alpha.shape == (ei.size(1), 3)
    sums = scatter(alpha, ei[1], dim=0, dim_size=7, reduce="sum")
    torch.testing.assert_close(sums, torch.ones_like(sums))
    # a constant signal is a fixed point of a row-stochastic operator, for every omega
    const = torch.ones(7, 6)
    set_omega(conv, torch.linspace(-1, 3, 6))
    torch.testing.assert_close(conv(const, edge_index), const)


def test_heads_attend_over_their_own_channel_group():
    """Changing channels of head 1 leaves head 0's attention (and output channels) intact."""
    x, edge_index = make_graph(4)
    torch.manual_seed(0)
    conv = OmegaGATConv(6, heads=2)
    x2 = x.clone()
    x2[:, 3:] = torch.randn(7, 3)
    out1, (_, a1) = conv(x, edge_index, return_attention_weights=True)
    out2, (_, a2) = conv(x2, edge_index, return_attention_weights=True)
    torch.testing.assert_close(a1[:, 0], a2[:, 0])
    torch.testing.assert_close(out1[:, :3], out2[:, :3])
    assert not torch.allclose(a1[:, 1], a2[:, 1])


def test_attention_dropout_train_and_eval():
    x, edge_index = make_graph(0, num_edges=30)
    conv = OmegaGATConv(6, heads=2, dropout=0.5).train()
    torch.manual_seed(1)
    out1, (_, alpha1) = conv(x, edge_index, return_attention_weights=True)
    torch.manual_seed(1)
    out2 = conv(x, edge_index)
    assert torch.equal(out1, out2)
    conv.eval()
    _, (_, alpha_eval) = conv(x, edge_index, return_attention_weights=True)
    kept = alpha1 != 0
    assert 0 < int(kept.sum()) < kept.numel()
    torch.testing.assert_close(alpha1[kept], alpha_eval[kept] / 0.5)


def test_no_edges_with_self_loops_is_identity():
    x, _ = make_graph(0)
    conv = set_omega(OmegaGATConv(6, heads=2), 0.3)
    torch.testing.assert_close(conv(x, torch.empty(2, 0, dtype=torch.long)), x)


# --------------------------------------------------------------------------- gradients, compile


def test_gradients_flow_to_omega_and_attention():
    x, edge_index = make_graph(0)
    conv = OmegaGATConv(6, heads=2)
    out = conv(x, edge_index)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.all(conv.omega.grad != 0)
    assert conv.att_src.grad.abs().sum() > 0 and conv.att_dst.grad.abs().sum() > 0


def test_gradcheck_float64():
    x, edge_index = make_graph(1, num_nodes=5, num_edges=9, channels=4, dtype=torch.float64)
    torch.manual_seed(0)
    conv = OmegaGATConv(4, heads=2).double()
    params = {"omega": torch.tensor([0.3, 1.2, -0.5, 2.0], dtype=torch.float64),
              "att_src": conv.att_src.detach().clone(), "att_dst": conv.att_dst.detach().clone()}

    def fn(x, omega, att_src, att_dst):
        return torch.func.functional_call(
            conv, {"omega": omega, "att_src": att_src, "att_dst": att_dst}, (x, edge_index))

    inputs = (x.requires_grad_(), *(p.requires_grad_() for p in params.values()))
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()
    x, edge_index = make_graph(0)
    conv = set_omega(OmegaGATConv(6, heads=3), torch.linspace(0, 2, 6)).eval()
    compiled = torch.compile(conv, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(x, edge_index), conv(x, edge_index), atol=1e-6, rtol=1e-5)
    compiled(x, edge_index).sum().backward()
    assert conv.omega.grad is not None and conv.att_src.grad is not None


# --------------------------------------------------------------------------- bad inputs


def test_omega_scale_multiplies_the_stored_omega():
    x, edge_index = make_graph(5, dtype=torch.float64)
    theta = torch.tensor([1.0, 0.0, 0.5, 1.7, -0.3, 2.5], dtype=torch.float64)
    torch.manual_seed(0)
    scaled = set_omega(OmegaGATConv(6, heads=2, omega_scale=0.25).double(), theta)
    torch.manual_seed(0)
    plain = set_omega(OmegaGATConv(6, heads=2).double(), 0.25 * theta)
    torch.testing.assert_close(scaled(x, edge_index), plain(x, edge_index),
                               atol=1e-12, rtol=1e-10)
    assert str(OmegaGATConv(16, omega_scale=0.5)) == (
        "OmegaGATConv(16, heads=1, omega='channel', omega_scale=0.5)")
    with pytest.raises(InvalidArgumentError, match="omega_scale of OmegaGATConv"):
        OmegaGATConv(6, omega_scale=0.0)


def test_bad_constructor_arguments():
    with pytest.raises(InvalidArgumentError, match="not divisible by heads=4"):
        OmegaGATConv(6, heads=4)
    with pytest.raises(InvalidArgumentError, match="heads of OmegaGATConv"):
        OmegaGATConv(6, heads=0)
    with pytest.raises(InvalidArgumentError, match="dropout of OmegaGATConv"):
        OmegaGATConv(6, dropout=1.5)
    with pytest.raises(InvalidArgumentError, match="omega of OmegaGATConv must be one of"):
        OmegaGATConv(6, omega="edge")
    with pytest.raises(InvalidArgumentError, match="channels of OmegaGATConv"):
        OmegaGATConv(-1)


def test_bad_inputs():
    x, edge_index = make_graph(0)
    conv = OmegaGATConv(6, heads=2)
    with pytest.raises(ShapeError, match="channels=6"):
        conv(x[:, :4], edge_index)
    with pytest.raises(DTypeError, match="floating-point"):
        conv(x.int(), edge_index)
    bad = edge_index.clone()
    bad[0, 0] = 9
    with pytest.raises(IndexOutOfRangeError, match="source node id 9"):
        conv(x, bad)
    nan = x.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        conv(nan, edge_index)
    with pytest.raises(InvalidArgumentError, match="tuple"):
        conv((x, x), edge_index)
    with pytest.raises(DeviceError):
        conv(x, edge_index.to("meta"))
