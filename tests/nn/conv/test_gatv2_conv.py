"""Tests of graphlearn.nn.GATv2Conv against torch_geometric.nn.GATv2Conv (the anchor)."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch_geometric.nn as pyg_nn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import HeteroData
from torch_geometric.nn import to_hetero
from torch_geometric.utils import scatter

from graphlearn.errors import (
    DeviceError,
    DTypeError,
    GraphLearnError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.nn import GATv2Conv

ATOL = {torch.float32: 1e-6, torch.float64: 1e-12}
RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def make_graph(seed, num_src=7, num_dst=None, num_edges=20, f_src=6, f_dst=None, edge_dim=None,
               dtype=torch.float32, self_loops=True):
    """A random (possibly bipartite) graph with duplicate edges and, if asked, self-loops."""
    gen = torch.Generator().manual_seed(seed)
    bipartite = num_dst is not None
    num_dst = num_src if num_dst is None else num_dst
    f_dst = f_src if f_dst is None else f_dst
    x_src = torch.randn(num_src, f_src, generator=gen, dtype=dtype)
    x = (x_src, torch.randn(num_dst, f_dst, generator=gen, dtype=dtype)) if bipartite else x_src
    edge_index = torch.stack([
        torch.randint(0, num_src, (num_edges,), generator=gen),
        torch.randint(0, num_dst, (num_edges,), generator=gen),
    ])
    if self_loops and num_edges > 1:
        edge_index[:, :2] = torch.tensor([[0, 1], [0, 1]])  # make sure some exist
    edge_attr = None
    if edge_dim == 0:  # 1-D edge features
        edge_attr = torch.randn(num_edges, generator=gen, dtype=dtype)
    elif edge_dim is not None:
        edge_attr = torch.randn(num_edges, edge_dim, generator=gen, dtype=dtype)
    return x, edge_index, edge_attr


def pair(seed_layer, in_channels, out_channels, dtype=torch.float32, **kwargs):
    """A PyG layer with random weights (bias included) and its graphlearn conversion."""
    torch.manual_seed(seed_layer)
    pyg = pyg_nn.GATv2Conv(in_channels, out_channels, **kwargs).to(dtype)
    with torch.no_grad():
        for p in pyg.parameters():  # bias starts at zero: randomise it so it is tested
            p.add_(0.1 * torch.randn_like(p))
    return pyg, GATv2Conv.from_pyg(pyg)


def assert_close(actual, expected, dtype=torch.float32):
    torch.testing.assert_close(actual, expected, atol=ATOL[dtype], rtol=RTOL[dtype])


def run_both(pyg, ours, x, edge_index, edge_attr=None, **kwargs):
    return pyg(x, edge_index, edge_attr, **kwargs), ours(x, edge_index, edge_attr, **kwargs)


# --------------------------------------------------------------------------- repr / shapes


def test_repr_is_pinned_and_matches_pyg():
    assert str(GATv2Conv(16, 32, heads=2)) == "GATv2Conv(16, 32, heads=2)"
    assert str(GATv2Conv((8, 16), 32)) == "GATv2Conv((8, 16), 32, heads=1)"
    for args, kwargs in (((16, 32), {"heads": 2}), (((8, 16), 32), {})):
        assert str(GATv2Conv(*args, **kwargs)) == str(pyg_nn.GATv2Conv(*args, **kwargs))


def test_parameters_match_pyg_names_and_shapes():
    kwargs = dict(heads=3, edge_dim=4, residual=True)
    ours = GATv2Conv((5, 6), 7, **kwargs)
    pyg = pyg_nn.GATv2Conv((5, 6), 7, **kwargs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in pyg.state_dict().items()
    }
    assert ours.att.shape == (1, 3, 7)
    # state dicts load both ways, strictly
    pyg.load_state_dict(ours.state_dict())
    ours.load_state_dict(pyg.state_dict())


def test_reset_parameters():
    conv = GATv2Conv(6, 4, heads=2, edge_dim=3, residual=True)
    with torch.no_grad():
        for p in conv.parameters():
            p.fill_(1.0)
    conv.reset_parameters()
    assert not torch.all(conv.att == 1.0)
    assert torch.all(conv.bias == 0.0)
    assert not torch.all(conv.lin_edge.weight == 1.0)
    assert not torch.all(conv.res.weight == 1.0)


@pytest.mark.parametrize("heads", [1, 3])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("bipartite", [False, True])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("edge_dim", [None, 3])
@pytest.mark.parametrize("add_self_loops", [True, False])
def test_output_shapes(heads, concat, bipartite, residual, edge_dim, add_self_loops):
    num_dst = 5 if bipartite else None
    x, edge_index, edge_attr = make_graph(0, num_src=7, num_dst=num_dst, f_dst=4 if bipartite else None,
                                          edge_dim=edge_dim)
    in_channels = (6, 4) if bipartite else 6
    conv = GATv2Conv(in_channels, 8, heads=heads, concat=concat, residual=residual,
                     edge_dim=edge_dim, add_self_loops=add_self_loops)
    out, (ei, alpha) = conv(x, edge_index, edge_attr, return_attention_weights=True)
    n_out = 5 if bipartite else 7
    assert out.shape == (n_out, 8 * heads if concat else 8)
    assert alpha.shape == (ei.size(1), heads)
    if add_self_loops:
        n_loops = int((edge_index[0] == edge_index[1]).sum())
        assert ei.size(1) == edge_index.size(1) - n_loops + min(7, n_out)
    else:
        assert torch.equal(ei, edge_index)
    assert torch.allclose(conv(x, edge_index, edge_attr), out)  # repeat call is deterministic


@pytest.mark.parametrize("fill_value", ["mean", "add", "max", "min", "mul", 0.5,
                                        torch.tensor([1.0, -1.0, 2.0])])
@pytest.mark.parametrize("edge_dim", [0, 3])
def test_fill_value_variants(fill_value, edge_dim):
    if edge_dim == 0 and isinstance(fill_value, torch.Tensor):
        fill_value = fill_value[:1]
    x, edge_index, edge_attr = make_graph(1, edge_dim=edge_dim)
    pyg, ours = pair(0, 6, 4, heads=2, edge_dim=max(edge_dim, 1), fill_value=fill_value)
    expected, actual = run_both(pyg, ours, x, edge_index, edge_attr, return_attention_weights=True)
    assert actual[0].shape == (7, 8)
    assert_close(actual[0], expected[0])
    assert_close(actual[1][1], expected[1][1])


# --------------------------------------------------------------------------- equality with PyG

FLAGS = list(itertools.product(
    [True, False],  # concat
    [1, 3],  # heads
    [False, True],  # bipartite
    [None, 0, 2],  # edge_dim (0 = 1-D edge_attr)
    [False, True],  # residual
    [False, True],  # share_weights
    [True, False],  # add_self_loops
))


@pytest.mark.parametrize("concat,heads,bipartite,edge_dim,residual,share_weights,add_self_loops",
                         FLAGS)
def test_from_pyg_equal_outputs(concat, heads, bipartite, edge_dim, residual, share_weights,
                                add_self_loops):
    in_channels = 6 if (share_weights or not bipartite) else (6, 5)
    pyg, ours = pair(heads, in_channels, 4, heads=heads, concat=concat, residual=residual,
                     share_weights=share_weights, add_self_loops=add_self_loops,
                     edge_dim=None if edge_dim is None else max(edge_dim, 1))
    assert (ours.lin_l is ours.lin_r) == share_weights
    f_dst = 6 if share_weights else 5
    for seed in range(3):
        x, edge_index, edge_attr = make_graph(
            seed, num_src=7, num_dst=4 + seed if bipartite else None,
            f_dst=f_dst if bipartite else None, num_edges=10 + 7 * seed, edge_dim=edge_dim)
        for mode in ("eval", "train"):  # dropout=0: train mode must agree as well
            pyg.train(mode == "train")
            ours.train(mode == "train")
            expected, actual = run_both(pyg, ours, x, edge_index, edge_attr)
            assert_close(actual, expected)


@pytest.mark.parametrize("bipartite", [False, True])
@pytest.mark.parametrize("edge_dim", [None, 3])
def test_from_pyg_equal_float64(bipartite, edge_dim):
    pyg, ours = pair(0, (6, 5) if bipartite else 6, 4, dtype=torch.float64, heads=2,
                     edge_dim=edge_dim, residual=True)
    assert ours.att.dtype == torch.float64
    x, edge_index, edge_attr = make_graph(3, num_dst=5 if bipartite else None,
                                          f_dst=5 if bipartite else None, edge_dim=edge_dim,
                                          dtype=torch.float64)
    expected, actual = run_both(pyg.eval(), ours.eval(), x, edge_index, edge_attr)
    assert actual.dtype == torch.float64
    assert_close(actual, expected, torch.float64)


@settings(max_examples=30, deadline=None)
@given(
    num_nodes=st.integers(1, 12),
    num_edges=st.integers(0, 40),
    heads=st.integers(1, 4),
    concat=st.booleans(),
    add_self_loops=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_from_pyg_random_graphs(num_nodes, num_edges, heads, concat, add_self_loops, seed):
    """Random sizes incl. no edges, isolated nodes, duplicate edges and self-loops."""
    pyg, ours = pair(seed, 5, 3, heads=heads, concat=concat, add_self_loops=add_self_loops)
    x, edge_index, _ = make_graph(seed, num_src=num_nodes, num_edges=num_edges, f_src=5,
                                  self_loops=num_nodes > 1)
    expected, actual = run_both(pyg.eval(), ours.eval(), x, edge_index,
                                return_attention_weights=True)
    assert_close(actual[0], expected[0])
    assert torch.equal(actual[1][0], expected[1][0])
    assert_close(actual[1][1], expected[1][1])


def test_int32_edge_index_and_target_to_source_flow():
    x, edge_index, _ = make_graph(2)
    pyg, ours = pair(0, 6, 4, heads=2)
    assert_close(ours(x, edge_index.int()), pyg(x, edge_index))
    pyg, ours = pair(0, 6, 4, heads=2, flow="target_to_source")
    assert ours.flow == "target_to_source"
    assert_close(ours(x, edge_index), pyg(x, edge_index))
    # Bipartite: row 1 indexes the 7 source nodes, row 0 the 4 destinations, so the layer
    # equals the source_to_target one on the flipped edge_index. (PyG 2.8 sizes this output
    # by x[0] while indexing x[1] with row 0, so it is not a usable reference here.)
    x, edge_index, _ = make_graph(3, num_src=7, num_dst=4, f_dst=5)
    _, s2t = pair(0, (6, 5), 4, heads=2, add_self_loops=False)
    t2s = GATv2Conv((6, 5), 4, heads=2, add_self_loops=False, flow="target_to_source")
    t2s.load_state_dict(s2t.state_dict())
    out = t2s(x, edge_index.flip(0))
    assert out.shape == (4, 8)
    assert_close(out, s2t(x, edge_index))


def test_no_edges_gives_bias_and_residual_only():
    x, _, _ = make_graph(0)
    pyg, ours = pair(0, 6, 4, heads=2, residual=True, add_self_loops=False)
    empty = torch.empty(2, 0, dtype=torch.long)
    expected, actual = run_both(pyg, ours, x, empty)
    assert_close(actual, expected)
    assert_close(actual, ours.res(x) + ours.bias)


def test_lazy_in_channels():
    x, edge_index, _ = make_graph(0)
    pyg = pyg_nn.GATv2Conv(-1, 4, heads=2)
    pyg(x, edge_index)  # materialise the lazy weights
    ours = GATv2Conv.from_pyg(pyg)
    assert_close(ours(x, edge_index), pyg(x, edge_index))
    lazy = GATv2Conv((-1, -1), 4)
    assert lazy((x, x[:3]), edge_index[:, edge_index[1] < 3]).shape == (3, 4)


def test_from_pyg_copies_parameters_and_keeps_mode():
    pyg, ours = pair(0, 6, 4, heads=2, share_weights=True, dropout=0.3)
    pyg.eval()
    ours = GATv2Conv.from_pyg(pyg)
    assert not ours.training and ours.dropout == 0.3 and ours.share_weights
    assert ours.lin_r is ours.lin_l
    assert ours.att.data_ptr() != pyg.att.data_ptr()
    with pytest.raises(InvalidArgumentError, match="expects a torch_geometric.nn.GATv2Conv"):
        GATv2Conv.from_pyg(pyg_nn.GATConv(6, 4))


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("edge_dim", [None, 3])
@pytest.mark.parametrize("bipartite", [False, True])
@pytest.mark.parametrize("concat", [True, False])
def test_gradients_equal_pyg(edge_dim, bipartite, concat):
    in_channels = (6, 5) if bipartite else 6
    pyg, ours = pair(1, in_channels, 4, heads=3, concat=concat, edge_dim=edge_dim, residual=True)
    x, edge_index, edge_attr = make_graph(4, num_dst=5 if bipartite else None,
                                          f_dst=5 if bipartite else None, edge_dim=edge_dim)
    leaves = [x] if not bipartite else list(x)
    if edge_attr is not None:
        leaves.append(edge_attr)
    grads = []
    for conv in (pyg, ours):
        inputs = [t.detach().clone().requires_grad_() for t in leaves]
        xi = inputs[0] if not bipartite else (inputs[0], inputs[1])
        ea = inputs[-1] if edge_attr is not None else None
        out, (_, alpha) = conv(xi, edge_index, ea, return_attention_weights=True)
        torch.manual_seed(0)
        loss = (out * torch.randn_like(out)).sum() + (alpha * torch.randn_like(alpha)).sum()
        conv.zero_grad()
        loss.backward()
        grads.append(({n: p.grad for n, p in conv.named_parameters()}, [t.grad for t in inputs]))
    (pyg_params, pyg_inputs), (our_params, our_inputs) = grads
    assert pyg_params.keys() == our_params.keys()
    for name in pyg_params:
        torch.testing.assert_close(our_params[name], pyg_params[name], atol=1e-5, rtol=1e-5,
                                   msg=lambda m, n=name: f"{n}: {m}")
    for ours_g, pyg_g in zip(our_inputs, pyg_inputs, strict=True):
        torch.testing.assert_close(ours_g, pyg_g, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- attention, dropout


@pytest.mark.parametrize("bipartite", [False, True])
def test_attention_weights_equal_pyg_and_sum_to_one(bipartite):
    pyg, ours = pair(0, (6, 5) if bipartite else 6, 4, heads=3, edge_dim=2)
    x, edge_index, edge_attr = make_graph(5, num_dst=4 if bipartite else None,
                                          f_dst=5 if bipartite else None, edge_dim=2)
    (_, (ei_p, alpha_p)), (_, (ei_o, alpha_o)) = run_both(
        pyg.eval(), ours.eval(), x, edge_index, edge_attr, return_attention_weights=True)
    assert torch.equal(ei_o, ei_p)
    assert_close(alpha_o, alpha_p)
    assert torch.all((alpha_o >= 0) & (alpha_o <= 1))
    num_dst = 4 if bipartite else 7
    sums = scatter(alpha_o, ei_o[1], dim=0, dim_size=num_dst, reduce="sum")
    has_edges = torch.zeros(num_dst, dtype=torch.bool)
    has_edges[ei_o[1]] = True
    assert_close(sums[has_edges], torch.ones_like(sums[has_edges]))
    assert torch.all(sums[~has_edges] == 0)
    # return_attention_weights=False behaves like PyG: output only.
    assert isinstance(ours(x, edge_index, edge_attr, return_attention_weights=False), torch.Tensor)


def test_train_dropout_is_deterministic_given_seed():
    x, edge_index, _ = make_graph(0, num_edges=30)
    conv = GATv2Conv(6, 4, heads=4, dropout=0.5).train()
    torch.manual_seed(123)
    out1, (_, alpha1) = conv(x, edge_index, return_attention_weights=True)
    torch.manual_seed(123)
    out2, (_, alpha2) = conv(x, edge_index, return_attention_weights=True)
    torch.manual_seed(124)
    out3 = conv(x, edge_index)
    assert torch.equal(out1, out2) and torch.equal(alpha1, alpha2)
    assert not torch.equal(out1, out3)
    # Dropped entries are zero, kept ones are softmax / (1 - p).
    conv.eval()
    _, (_, alpha_eval) = conv(x, edge_index, return_attention_weights=True)
    kept = alpha1 != 0
    assert 0 < int(kept.sum()) < kept.numel()
    assert_close(alpha1[kept], alpha_eval[kept] / 0.5)


def test_dropout_mask_is_shared_by_output_and_returned_alpha():
    x, edge_index, _ = make_graph(0, num_edges=30)
    conv = GATv2Conv(6, 4, heads=2, dropout=0.4, bias=False).train()
    torch.manual_seed(7)
    out, (ei, alpha) = conv(x, edge_index, return_attention_weights=True)
    x_l = conv.lin_l(x).view(-1, 2, 4)
    manual = scatter(x_l[ei[0]] * alpha.unsqueeze(-1), ei[1], dim=0, dim_size=7, reduce="sum")
    assert_close(out, manual.view(-1, 8))


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_train_dropout_matches_pyg_on_cpu(p):
    """On CPU, F.dropout draws bernoulli_(1 - p) on a tensor shaped like alpha, as we do."""
    pyg, ours = pair(0, 6, 4, heads=2, dropout=p)
    x, edge_index, _ = make_graph(1)
    pyg.train()
    ours.train()
    torch.manual_seed(99)
    expected = pyg(x, edge_index, return_attention_weights=True)
    torch.manual_seed(99)
    actual = ours(x, edge_index, return_attention_weights=True)
    assert_close(actual[0], expected[0])
    assert_close(actual[1][1], expected[1][1])


def test_explain_edge_mask_matches_pyg():
    pyg, ours = pair(0, 6, 4, heads=2)
    x, edge_index, _ = make_graph(2)
    mask = torch.randn(edge_index.size(1))
    for conv in (pyg, ours):
        conv.explain = True
        conv._edge_mask = mask
        conv._loop_mask = edge_index[0] != edge_index[1]
    expected, actual = run_both(pyg.eval(), ours.eval(), x, edge_index)
    assert_close(actual, expected)
    ours._edge_mask = None
    with pytest.raises(InvalidArgumentError, match="no edge mask"):
        ours(x, edge_index)


# --------------------------------------------------------------------------- compile, hetero


@pytest.mark.parametrize("edge_dim,residual,concat", [(None, False, True), (3, True, False)])
def test_torch_compile_fullgraph_without_self_loops(edge_dim, residual, concat):
    torch._dynamo.reset()
    x, edge_index, edge_attr = make_graph(0, edge_dim=edge_dim)
    conv = GATv2Conv(6, 4, heads=2, concat=concat, residual=residual, edge_dim=edge_dim,
                     add_self_loops=False, dropout=0.2).eval()
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    assert_close(compiled(x, edge_index, edge_attr), conv(x, edge_index, edge_attr))
    conv.train()  # dropout and backward trace too
    compiled(x, edge_index, edge_attr).sum().backward()
    assert conv.att.grad is not None


def test_torch_compile_inductor_with_self_loops_matches_eager():
    """fullgraph=True also holds with add_self_loops=True: remove_self_loops' data-dependent
    edge count is captured as an unbacked size (the default fullgraph=False splits there)."""
    torch._dynamo.reset()
    x, edge_index, edge_attr = make_graph(0, edge_dim=3)
    conv = GATv2Conv(6, 4, heads=2, edge_dim=3).eval()
    compiled = torch.compile(conv, fullgraph=True)
    out, (ei, alpha) = compiled(x, edge_index, edge_attr, return_attention_weights=True)
    out_e, (ei_e, alpha_e) = conv(x, edge_index, edge_attr, return_attention_weights=True)
    torch.testing.assert_close(out, out_e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alpha, alpha_e, atol=1e-5, rtol=1e-5)
    assert torch.equal(ei, ei_e)


def test_to_hetero_matches_pyg():
    data = HeteroData()
    data["paper"].x = torch.randn(6, 5)
    data["author"].x = torch.randn(4, 3)
    writes = torch.stack([torch.randint(0, 4, (12,)), torch.randint(0, 6, (12,))])
    data["author", "writes", "paper"].edge_index = writes
    data["paper", "rev_writes", "author"].edge_index = writes.flip(0)
    data["paper", "cites", "paper"].edge_index = torch.randint(0, 6, (2, 10))

    class Net(torch.nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.conv1 = conv((-1, -1), 8, heads=2, add_self_loops=False)
            self.conv2 = conv((-1, -1), 4, add_self_loops=False)

        def forward(self, x, edge_index):
            return self.conv2(self.conv1(x, edge_index).relu(), edge_index)

    pyg = to_hetero(Net(pyg_nn.GATv2Conv), data.metadata(), aggr="sum")
    ours = to_hetero(Net(GATv2Conv), data.metadata(), aggr="sum")
    expected = pyg(data.x_dict, data.edge_index_dict)
    ours(data.x_dict, data.edge_index_dict)  # materialise lazy weights
    ours.load_state_dict(pyg.state_dict())
    actual = ours(data.x_dict, data.edge_index_dict)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert_close(actual[key], expected[key])


# --------------------------------------------------------------------------- bad inputs


@pytest.fixture
def graph():
    return make_graph(0, edge_dim=None)


def test_edge_index_out_of_range(graph):
    x, edge_index, _ = graph
    bad = edge_index.clone()
    bad[1, 3] = 7
    with pytest.raises(IndexOutOfRangeError, match=r"destination node id 7, outside \[0, 7\)"):
        GATv2Conv(6, 4)(x, bad)
    bad[1, 3] = -1
    with pytest.raises(IndexOutOfRangeError, match="node id -1"):
        GATv2Conv(6, 4, add_self_loops=False)(x, bad)


def test_edge_index_dtype_and_shape(graph):
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4)
    with pytest.raises(DTypeError, match="torch.long"):
        conv(x, edge_index.float())
    with pytest.raises(ShapeError, match=r"\(2, num_edges\).*edge_index.t\(\)"):
        conv(x, edge_index.t().contiguous())
    with pytest.raises(ShapeError, match=r"\(2, num_edges\)"):
        conv(x, edge_index[0])
    sparse = torch.sparse_coo_tensor(edge_index, torch.ones(edge_index.size(1)), (7, 7),
                                     check_invariants=True)
    with pytest.raises(DTypeError, match="not supported"):
        conv(x, sparse)
    with pytest.raises(DTypeError, match="not supported"):
        conv(x, edge_index.tolist())


def test_node_feature_errors(graph):
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4)
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        conv(bad, edge_index)
    with pytest.raises(DTypeError, match="floating-point"):
        conv(x.long(), edge_index)
    with pytest.raises(DTypeError, match="must be a torch.Tensor"):
        conv(x.tolist(), edge_index)
    with pytest.raises(ShapeError, match="num_features"):
        conv(x[:, 0], edge_index)
    with pytest.raises(ShapeError, match="in_channels=6"):
        conv(x[:, :5], edge_index)
    with pytest.raises(InvalidArgumentError, match=r"x\[1\]"):
        GATv2Conv((6, 6), 4)((x, None), edge_index)


def test_overflowing_but_finite_features_pass_the_nan_check(graph):
    """The cheap sum screen overflows to inf here; the exact check must then accept x."""
    x, edge_index, _ = graph
    big = x.clone()
    big[:2, 0] = 3e38
    assert not torch.isfinite(big.sum())
    GATv2Conv(6, 4)(big, edge_index)
    nan_in_dst = (x, x.clone())
    nan_in_dst[1][4, 2] = float("nan")
    with pytest.raises(NonFiniteError, match=r"x\[1\]"):
        GATv2Conv((6, 6), 4)(nan_in_dst, edge_index)


def test_device_mismatch(graph):
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4)
    with pytest.raises(DeviceError, match="edge_index is on cpu but x is on meta"):
        conv(x.to("meta"), edge_index)
    with pytest.raises(DeviceError, match="edge_attr"):
        GATv2Conv(6, 4, edge_dim=2)(x, edge_index, torch.randn(edge_index.size(1), 2,
                                                                  device="meta"))
    with pytest.raises(DeviceError, match="parameters"):
        conv(x.to("meta"), edge_index.to("meta"))


def test_no_host_sync_off_cpu(graph, monkeypatch):
    """Off the CPU no value check runs: a meta forward would fail on any .item()/bool()."""
    monkeypatch.delenv("GRAPHLEARN_VALIDATE", raising=False)
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4, heads=2, edge_dim=3, add_self_loops=False, dropout=0.5).to("meta")
    edge_attr = torch.randn(edge_index.size(1), 3)
    out, (_, alpha) = conv(x.to("meta"), edge_index.to("meta"), edge_attr.to("meta"),
                           return_attention_weights=True)
    assert out.shape == (7, 8) and alpha.shape == (edge_index.size(1), 2)


def test_edge_attr_errors(graph):
    x, edge_index, _ = graph
    num_edges = edge_index.size(1)
    with pytest.raises(InvalidArgumentError, match="edge_dim=None"):
        GATv2Conv(6, 4)(x, edge_index, torch.randn(num_edges, 2))
    conv = GATv2Conv(6, 4, edge_dim=2)
    with pytest.raises(ShapeError, match="one row per edge"):
        conv(x, edge_index, torch.randn(num_edges + 1, 2))
    with pytest.raises(ShapeError, match="edge_dim=3"):
        conv(x, edge_index, torch.randn(num_edges, 3))
    with pytest.raises(DTypeError, match="floating-point"):
        conv(x, edge_index, torch.ones(num_edges, 2, dtype=torch.long))
    bad = torch.randn(num_edges, 2)
    bad[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="edge_attr"):
        conv(x, edge_index, bad)
    # edge_dim set but no edge_attr is fine (as in PyG): no edge term.
    assert conv(x, edge_index).shape == (7, 4)


def test_constructor_errors():
    with pytest.raises(InvalidArgumentError, match="aggr"):
        GATv2Conv(6, 4, aggr="mean")
    with pytest.raises(InvalidArgumentError, match="dropout"):
        GATv2Conv(6, 4, dropout=1.5)
    with pytest.raises(InvalidArgumentError, match="heads"):
        GATv2Conv(6, 4, heads=0)


def test_errors_are_builtin_subclasses(graph):
    x, edge_index, _ = graph
    with pytest.raises(TypeError):
        GATv2Conv(6, 4)(x, edge_index.float())
    with pytest.raises(ValueError):
        GATv2Conv(6, 4)(x, edge_index.t())


def test_graphlearn_validate_0_disables_value_checks(graph, monkeypatch):
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4, add_self_loops=False)
    bad_x = x.clone()
    bad_x[0, 0] = float("nan")
    bad_index = edge_index.clone()
    bad_index[0, 0] = 100
    monkeypatch.setenv("GRAPHLEARN_VALIDATE", "0")
    assert torch.isnan(conv(bad_x, edge_index)).any()  # no NonFiniteError
    with pytest.raises(Exception) as info:  # torch's own indexing error, not ours
        conv(x, bad_index)
    assert not isinstance(info.value, GraphLearnError)
    # dtype/shape checks still run
    with pytest.raises(ShapeError):
        conv(x, edge_index.t())
    monkeypatch.setenv("GRAPHLEARN_VALIDATE", "1")
    with pytest.raises(NonFiniteError):
        conv(bad_x, edge_index)


def test_deepcopy_and_pickle_roundtrip(graph):
    x, edge_index, _ = graph
    conv = GATv2Conv(6, 4, heads=2, share_weights=True).eval()
    clone = copy.deepcopy(conv)
    assert clone.lin_l is clone.lin_r
    assert_close(clone(x, edge_index), conv(x, edge_index))
