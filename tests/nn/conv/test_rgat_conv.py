"""Tests of graphlearn.nn.RGATConv against torch_geometric.nn.RGATConv (the anchor)."""

from __future__ import annotations

import copy
import io
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
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
from graphlearn.nn import RGATConv
from graphlearn.nn.conv import rgat_conv

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-9)}
MECHANISMS = ["across-relation", "within-relation"]
MODES = ["additive-self-attention", "multiplicative-self-attention"]
MODS = [None, "additive", "scaled", "f-additive", "f-scaled"]
DECOMPOSITIONS = [{}, {"num_bases": 2}, {"num_blocks": 2}]


def make_graph(seed, num_nodes=9, num_edges=40, num_relations=4, in_channels=8, edge_dim=None,
               dtype=torch.float32, used_relations=None):
    """Random typed multigraph: unsorted edges and types, duplicates, self-loops, and an
    isolated destination (node ``num_nodes - 1`` receives no edge)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, in_channels, generator=gen, dtype=dtype)
    src = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes - 1, (num_edges,), generator=gen)
    edge_index = torch.stack([src, dst])
    relations = torch.tensor(used_relations if used_relations is not None
                             else range(num_relations))
    edge_type = relations[torch.randint(0, relations.numel(), (num_edges,), generator=gen)]
    if num_edges >= 4:  # a duplicate edge and a repeated (source, relation) pair
        edge_index[:, 1] = edge_index[:, 0]
        edge_type[1] = edge_type[0]
        edge_index[0, 2] = edge_index[0, 3]
        edge_type[2] = edge_type[3]
    edge_attr = None
    if edge_dim is not None:
        edge_attr = torch.randn(num_edges, edge_dim, generator=gen, dtype=dtype)
    return x, edge_index, edge_type, edge_attr


def pair(seed, in_channels=8, out_channels=4, num_relations=4, dtype=torch.float32, **kwargs):
    """A PyG RGATConv with random parameters (l2 is uninitialised in PyG) and our copy."""
    torch.manual_seed(seed)
    pyg = pyg_nn.RGATConv(in_channels, out_channels, num_relations, **kwargs).to(dtype)
    with torch.no_grad():
        for p in pyg.parameters():
            p.copy_(0.5 * torch.randn_like(p))
    return pyg.eval(), RGATConv.from_pyg(pyg).eval()


def options(mode, **kwargs):
    return dict(attention_mode=mode, dim=2 if mode.startswith("multiplicative") else 1, **kwargs)


def assert_close(actual, expected, dtype=torch.float32, msg=None):
    torch.testing.assert_close(actual, expected, **TOL[dtype], msg=msg)


# --------------------------------------------------------------------------- config


def test_repr_matches_pyg():
    assert str(RGATConv(16, 32, 5, heads=2)) == "RGATConv(16, 32, heads=2)"
    assert str(RGATConv(16, 32, 5, heads=2)) == str(pyg_nn.RGATConv(16, 32, 5, heads=2))


@pytest.mark.parametrize("kwargs", [
    dict(edge_dim=3, heads=2),
    dict(num_bases=3, attention_mode="multiplicative-self-attention", dim=2, concat=False),
    dict(num_blocks=2, heads=2, bias=False),
])
def test_state_dict_matches_pyg_both_ways(kwargs):
    ours = RGATConv(8, 4, 5, **kwargs)
    pyg = pyg_nn.RGATConv(8, 4, 5, **kwargs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in pyg.state_dict().items()}
    pyg.load_state_dict(ours.state_dict())
    ours.load_state_dict(pyg.state_dict())


def test_reset_parameters_initialises_everything():
    conv = RGATConv(8, 4, 3, edge_dim=2, heads=2, mod="scaled")
    with torch.no_grad():
        for p in conv.parameters():
            p.fill_(float("nan"))
    conv.reset_parameters()
    assert all(bool(torch.isfinite(p).all()) for p in conv.parameters())
    assert torch.all(conv.l2 == 0.25) and torch.all(conv.w == 1) and torch.all(conv.bias == 0)


# --------------------------------------------------------------------------- equality with PyG


@pytest.mark.parametrize("decomposition", DECOMPOSITIONS, ids=["dense", "bases", "blocks"])
@pytest.mark.parametrize("mod", MODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_forward_and_attention_equal_pyg(mechanism, mode, mod, decomposition):
    """Every supported option combination; heads, concat and edge features looped inside."""
    for heads, concat, edge_dim in itertools.product([1, 2], [True, False], [None, 3]):
        pyg, ours = pair(0, heads=heads, concat=concat, edge_dim=edge_dim, mod=mod,
                         attention_mechanism=mechanism, **options(mode, **decomposition))
        x, edge_index, edge_type, edge_attr = make_graph(1, edge_dim=edge_dim)
        expected, (ei_p, alpha_p) = pyg(x, edge_index, edge_type, edge_attr,
                                        return_attention_weights=True)
        actual, (ei_o, alpha_o) = ours(x, edge_index, edge_type, edge_attr,
                                       return_attention_weights=True)
        case = f"heads={heads} concat={concat} edge_dim={edge_dim}"
        assert actual.shape == expected.shape, case
        assert_close(actual, expected, msg=lambda m, c=case: f"{c}: {m}")
        assert_close(alpha_o, alpha_p, msg=lambda m, c=case: f"{c} alpha: {m}")
        assert ei_o is edge_index


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("mod", MODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_equal_pyg(mechanism, mode, mod, dtype):
    """Gradients w.r.t. x, edge_attr and every parameter (the decomposition cycles)."""
    decomposition = DECOMPOSITIONS[(MODS.index(mod) + MODES.index(mode)) % 3]
    pyg, ours = pair(2, heads=2, edge_dim=3, mod=mod, attention_mechanism=mechanism,
                     dtype=dtype, **options(mode, **decomposition))
    x, edge_index, edge_type, edge_attr = make_graph(3, edge_dim=3, dtype=dtype)
    grads = []
    for conv in (pyg, ours):
        xi, ea = x.clone().requires_grad_(), edge_attr.clone().requires_grad_()
        out, (_, alpha) = conv(xi, edge_index, edge_type, ea, return_attention_weights=True)
        torch.manual_seed(0)
        loss = (out * torch.randn_like(out)).sum() + (alpha * torch.randn_like(alpha)).sum()
        conv.zero_grad()
        loss.backward()
        grads.append(({n: p.grad for n, p in conv.named_parameters()}, xi.grad, ea.grad))
    (p_params, p_x, p_ea), (o_params, o_x, o_ea) = grads
    assert p_params.keys() == o_params.keys()
    for name, expected in p_params.items():
        if expected is None:  # unused by this configuration in PyG too
            assert o_params[name] is None or not o_params[name].any(), name
            continue
        assert_close(o_params[name], expected, dtype, msg=lambda m, n=name: f"{n}: {m}")
    assert_close(o_x, p_x, dtype)
    assert_close(o_ea, p_ea, dtype)


@pytest.mark.parametrize("case", ["one-relation", "missing-relation", "no-edges", "one-edge",
                                  "sorted-types", "int32"])
def test_graph_shapes_equal_pyg(case):
    num_relations = {"one-relation": 1}.get(case, 5)
    used = {"one-relation": [0], "missing-relation": [0, 1, 3, 4]}.get(case)
    num_edges = {"no-edges": 0, "one-edge": 1}.get(case, 40)
    x, edge_index, edge_type, _ = make_graph(4, num_edges=num_edges, num_relations=num_relations,
                                             used_relations=used)
    if case == "sorted-types":
        edge_type, order = edge_type.sort()
        edge_index = edge_index[:, order]
    for mechanism, mod in itertools.product(MECHANISMS, [None, "additive", "f-additive"]):
        pyg, ours = pair(5, num_relations=num_relations, heads=2, attention_mechanism=mechanism,
                         mod=mod)
        if case == "no-edges" and mod == "f-additive":
            continue  # PyG's where() on an empty alpha fails; ours returns the bias
        expected = pyg(x, edge_index, edge_type)
        if case == "int32":
            edge_index, edge_type = edge_index.int(), edge_type.int()
        assert_close(ours(x, edge_index, edge_type), expected)


def test_bipartite_flow_and_size_equal_pyg():
    gen = torch.Generator().manual_seed(6)
    x_src, x_dst = torch.randn(7, 8, generator=gen), torch.randn(5, 8, generator=gen)
    edge_index = torch.stack([torch.randint(0, 7, (30,), generator=gen),
                              torch.randint(0, 5, (30,), generator=gen)])
    edge_type = torch.randint(0, 4, (30,), generator=gen)
    pyg, ours = pair(7, heads=2, attention_mechanism="within-relation", mod="scaled")
    assert_close(ours((x_src, x_dst), edge_index, edge_type, size=(7, 5)),
                 pyg((x_src, x_dst), edge_index, edge_type, size=(7, 5)))
    torch.manual_seed(7)
    pyg_t = pyg_nn.RGATConv(8, 4, 4, heads=2, flow="target_to_source")
    ours_t = RGATConv.from_pyg(pyg_t)
    assert ours_t.flow == "target_to_source"
    x, square, square_type, _ = make_graph(8)
    assert_close(ours_t(x, square.flip(0), square_type), pyg_t(x, square.flip(0), square_type))
    # Bipartite input with flow="target_to_source" (PyG's RGATConv fails on it): row 0
    # indexes x[0], the destinations, so it equals the source_to_target layer.
    ours_s = RGATConv(8, 4, 4, heads=2)
    ours_s.load_state_dict(ours_t.state_dict())
    out = ours_t((x_dst, x_src), edge_index.flip(0), edge_type)
    assert out.shape == (5, 8)
    assert_close(out, ours_s((x_src, x_dst), edge_index, edge_type))


# --------------------------------------------------------------------------- exact math


def slow_rgat(conv, x, edge_index, edge_type):
    """The RGAT update written edge by edge in float64 from the paper's formulas."""
    x, H, C, d = x.double(), conv.heads, conv.out_channels, conv.dim
    R, n = conv.num_relations, x.size(0)
    if conv.num_bases is not None:
        weight = torch.einsum("rb,bio->rio", conv.att.double(), conv.basis.double())
    elif conv.num_blocks is not None:
        weight = torch.stack([torch.block_diag(*conv.weight[r].double()) for r in range(R)])
    else:
        weight = conv.weight.double()
    q, k = conv.q.double(), conv.k.double()
    edges = [(int(j), int(i), int(r)) for (j, i), r in zip(edge_index.t(), edge_type, strict=True)]
    logit = {}
    for e, (j, i, r) in enumerate(edges):
        qi, kj = (x[i] @ weight[r]) @ q, (x[j] @ weight[r]) @ k
        if conv.attention_mode == "additive-self-attention":
            logit[e] = F.leaky_relu(qi + kj, conv.negative_slope)
        else:
            logit[e] = qi * kj
    alpha = {}
    for e, (_, i, r) in enumerate(edges):
        group = [f for f, (_, i2, r2) in enumerate(edges) if i2 == i and
                 (r2 == r or conv.attention_mechanism == "across-relation")]
        den = sum(torch.exp(logit[f]) for f in group)
        alpha[e] = torch.exp(logit[e]) / den
    out = torch.zeros(n, H, d, C, dtype=torch.float64)
    degree = [sum(1 for (_, i2, _) in edges if i2 == i) for i in range(n)]
    for e, (j, i, r) in enumerate(edges):
        v = (x[j] @ weight[r]).view(H, 1, C)
        a = alpha[e].view(H, d, 1)
        if conv.mod == "f-additive":
            a = torch.where(a > 0, a + 1, a)
        message = a * v
        if conv.mod == "additive":
            message = message + conv.w.double() * v
        if conv.mod == "scaled":
            psi = torch.relu(degree[i] * conv.l1.double() + conv.b1.double()) @ conv.l2.double()
            message = message * (psi + conv.b2.double()).view(1, 1, C)
        if conv.mod == "f-scaled":
            message = message * degree[i]
        out[i] += message
    out = out.reshape(n, -1) if conv.concat else out.mean(dim=1).reshape(n, -1)
    return out + conv.bias.double()


@pytest.mark.parametrize("mechanism,mode,mod,decomposition", [
    ("across-relation", MODES[0], None, {}),
    ("within-relation", MODES[0], "additive", {"num_blocks": 2}),
    ("across-relation", MODES[1], "scaled", {"num_bases": 2}),
    ("within-relation", MODES[1], "f-additive", {}),
    ("across-relation", MODES[0], "f-scaled", {"num_blocks": 4}),
])
def test_exact_values_against_a_slow_float64_loop(mechanism, mode, mod, decomposition):
    pyg, _ = pair(8, num_relations=3, heads=2, mod=mod, attention_mechanism=mechanism,
                  dtype=torch.float64, **options(mode, **decomposition))
    conv = RGATConv.from_pyg(pyg)
    x, edge_index, edge_type, _ = make_graph(9, num_nodes=5, num_edges=12, num_relations=3,
                                             dtype=torch.float64)
    assert_close(conv(x, edge_index, edge_type), slow_rgat(conv, x, edge_index, edge_type),
                 torch.float64)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_attention_sums_to_one_per_softmax_group(mechanism):
    _, ours = pair(10, heads=3, attention_mechanism=mechanism)
    x, edge_index, edge_type, _ = make_graph(11)
    _, (_, alpha) = ours(x, edge_index, edge_type, return_attention_weights=False)  # as PyG
    assert alpha.shape == (edge_index.size(1), 3)
    group = edge_index[1] if mechanism == "across-relation" else edge_index[1] * 4 + edge_type
    sums = scatter(alpha, group, dim=0, reduce="sum")
    assert_close(sums[torch.unique(group)], torch.ones(torch.unique(group).numel(), 3))
    assert isinstance(ours(x, edge_index, edge_type), torch.Tensor)


def test_train_dropout_matches_pyg_and_alpha_is_before_dropout():
    pyg, ours = pair(12, heads=2, dropout=0.4)
    pyg.train()
    ours.train()
    x, edge_index, edge_type, _ = make_graph(13)
    torch.manual_seed(99)
    expected, (_, alpha_p) = pyg(x, edge_index, edge_type, return_attention_weights=True)
    torch.manual_seed(99)
    actual, (_, alpha_o) = ours(x, edge_index, edge_type, return_attention_weights=True)
    assert_close(actual, expected)
    assert_close(alpha_o, alpha_p)
    torch.manual_seed(100)
    assert not torch.allclose(ours(x, edge_index, edge_type), actual)


def test_explain_edge_mask_matches_pyg():
    x, edge_index, edge_type, _ = make_graph(14)
    mask = torch.randn(edge_index.size(1))
    for mod in (None, "additive", "f-additive"):
        pyg, ours = pair(15, heads=2, mod=mod)
        for conv in (pyg, ours):
            conv.explain = True
            conv._edge_mask = mask
        assert_close(ours(x, edge_index, edge_type), pyg(x, edge_index, edge_type))
    ours._edge_mask = mask[:-1]
    with pytest.raises(ShapeError, match="one mask entry per edge"):
        ours(x, edge_index, edge_type)
    ours._edge_mask = None
    with pytest.raises(InvalidArgumentError, match="no edge mask"):
        ours(x, edge_index, edge_type)


# --------------------------------------------------------------------------- compact + cache


def test_typed_transforms_run_once_per_unique_pair(monkeypatch):
    """Compact materialization: the grouped GEMMs see unique (node, relation) pairs only."""
    rows = []
    real = rgat_conv.gather_scatter_matmul

    def spy(x, weight, ptr, gather_index=None, *args, **kwargs):
        rows.append(gather_index.numel())
        return real(x, weight, ptr, gather_index, *args, **kwargs)

    monkeypatch.setattr(rgat_conv, "gather_scatter_matmul", spy)
    x, edge_index, edge_type, _ = make_graph(16, num_edges=60)
    RGATConv(8, 4, 4, heads=2)(x, edge_index, edge_type)
    src_pairs = torch.unique(edge_type * 9 + edge_index[0]).numel()
    dst_pairs = torch.unique(edge_type * 9 + edge_index[1]).numel()
    assert rows == [src_pairs, dst_pairs] and max(rows) < 60
    rows.clear()
    RGATConv(8, 4, 4, heads=2, num_blocks=4)(x, edge_index, edge_type)
    assert rows == [4 * src_pairs, dst_pairs]


def test_structure_is_cached_per_graph():
    conv = RGATConv(8, 4, 4, heads=2).eval()
    x, edge_index, edge_type, _ = make_graph(17)
    first = conv(x, edge_index, edge_type)
    plan = conv._structure._entries[0][3]
    assert torch.equal(conv(x, edge_index, edge_type), first)
    assert conv._structure._entries[0][3] is plan and len(conv._structure) == 1
    edge_type[0] = (edge_type[0] + 1) % 4  # in place: the version changes, so it rebuilds
    changed = conv(x, edge_index, edge_type)
    assert conv._structure._entries[0][3] is not plan
    fresh = RGATConv(8, 4, 4, heads=2).eval()
    fresh.load_state_dict(conv.state_dict())
    assert torch.equal(changed, fresh(x, edge_index, edge_type))
    conv(x, edge_index.clone(), edge_type)  # equal values, new tensor: a miss, LRU of two
    assert len(conv._structure) == 2
    with torch.inference_mode():  # inference tensors bypass the cache
        assert_close(conv(x, edge_index.clone(), edge_type.clone()), changed)


def test_deepcopy_and_pickle_start_with_an_empty_cache():
    conv = RGATConv(8, 4, 4, heads=2).eval()
    x, edge_index, edge_type, _ = make_graph(18)
    out = conv(x, edge_index, edge_type)
    clone = copy.deepcopy(conv)
    assert len(clone._structure) == 0
    assert torch.equal(clone(x, edge_index, edge_type), out)
    buffer = io.BytesIO()
    torch.save(conv, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert len(loaded._structure) == 0
    assert torch.equal(loaded(x, edge_index, edge_type), out)


@pytest.mark.parametrize("kwargs", [dict(mod="additive", edge_dim=2),
                                    dict(num_blocks=2, attention_mechanism="within-relation")])
def test_torch_compile_fullgraph_matches_eager(kwargs):
    """The structure (torch.unique) has data-dependent sizes: fullgraph=True needs them
    captured as unbacked sizes; the default fullgraph=False works without the flag."""
    torch._dynamo.reset()
    x, edge_index, edge_type, edge_attr = make_graph(19, edge_dim=kwargs.get("edge_dim"))
    conv = RGATConv(8, 4, 4, heads=2, **kwargs).eval()
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(conv, backend="aot_eager", fullgraph=True)
        assert_close(compiled(x, edge_index, edge_type, edge_attr),
                     conv(x, edge_index, edge_type, edge_attr))
        compiled(x, edge_index, edge_type, edge_attr).sum().backward()
    assert conv.q.grad is not None


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def graph():
    return make_graph(20)


def test_edge_type_errors(graph):
    x, edge_index, edge_type, _ = graph
    conv = RGATConv(8, 4, 4)
    bad = edge_type.clone()
    bad[3] = 4
    with pytest.raises(IndexOutOfRangeError, match=r"relation id 4, outside \[0, 4\).*num_relations=5"):
        conv(x, edge_index, bad)
    bad[3] = -1
    with pytest.raises(IndexOutOfRangeError, match="relation id -1"):
        conv(x, edge_index, bad)
    with pytest.raises(InvalidArgumentError, match="edge_type passed to RGATConv is None"):
        conv(x, edge_index)
    with pytest.raises(DTypeError, match="integer tensor of relation ids.*edge_type.long"):
        conv(x, edge_index, edge_type.float())
    with pytest.raises(ShapeError, match=r"shape \(40,\)"):
        conv(x, edge_index, edge_type[:-1])


def test_feature_and_index_errors(graph):
    x, edge_index, edge_type, _ = graph
    conv = RGATConv(8, 4, 4)
    nan = x.clone()
    nan[2, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        conv(nan, edge_index, edge_type)
    with pytest.raises(ShapeError, match="in_channels=8"):
        conv(x[:, :5], edge_index, edge_type)
    with pytest.raises(DTypeError, match="torch.nn.Embedding"):
        conv(torch.arange(9), edge_index, edge_type)
    with pytest.raises(DTypeError, match="conv.to"):
        conv(x.double(), edge_index, edge_type)
    bad = edge_index.clone()
    bad[1, 0] = 9
    with pytest.raises(IndexOutOfRangeError, match=r"node id 9, outside \[0, 9\)"):
        conv(x, bad, edge_type)
    with pytest.raises(ShapeError, match=r"\(2, num_edges\)"):
        conv(x, edge_index.t(), edge_type)
    with pytest.raises(ShapeError, match="size"):
        conv(x, edge_index, edge_type, size=(9, 5))
    sparse = torch.sparse_coo_tensor(edge_index, torch.ones(40), (9, 9), check_invariants=True)
    with pytest.raises(DTypeError, match="not supported"):
        conv(x, sparse, edge_type)


def test_device_mismatch(graph):
    x, edge_index, edge_type, _ = graph
    conv = RGATConv(8, 4, 4)
    with pytest.raises(DeviceError, match="edge_index is on cpu but x is on meta"):
        conv(x.to("meta"), edge_index, edge_type)
    with pytest.raises(DeviceError, match="edge_type is on meta"):
        conv(x, edge_index, edge_type.to("meta"))
    with pytest.raises(DeviceError, match="parameters of RGATConv"):
        conv(x.to("meta"), edge_index.to("meta"), edge_type.to("meta"))


def test_edge_attr_errors(graph):
    x, edge_index, edge_type, _ = graph
    with pytest.raises(InvalidArgumentError, match="edge_dim=None"):
        RGATConv(8, 4, 4)(x, edge_index, edge_type, torch.randn(40, 2))
    conv = RGATConv(8, 4, 4, edge_dim=2)
    with pytest.raises(ShapeError, match="one row per edge"):
        conv(x, edge_index, edge_type, torch.randn(41, 2))
    with pytest.raises(ShapeError, match="edge_dim=3"):
        conv(x, edge_index, edge_type, torch.randn(40, 3))
    bad = torch.randn(40, 2)
    bad[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="edge_attr"):
        conv(x, edge_index, edge_type, bad)
    assert conv(x, edge_index, edge_type).shape == (9, 4)  # edge_dim without edge_attr: as PyG


@pytest.mark.parametrize("kwargs,match", [
    (dict(attention_mechanism="per-relation"), "attention_mechanism"),
    (dict(attention_mode="dot"), "attention_mode"),
    (dict(dim=2), "additive-self-attention needs dim=1"),
    (dict(mod="additive", dropout=0.5), "dropout must be 0"),
    (dict(mod="multiplicative"), "mod of RGATConv"),
    (dict(num_bases=2, num_blocks=2), "at most one"),
    (dict(num_blocks=3), "num_blocks=3 must divide"),
    (dict(aggr="mean"), "aggr"),
    (dict(heads=0), "heads"),
    (dict(dropout=1.5), "dropout"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        RGATConv(8, 4, 4, **kwargs)


def test_from_pyg_rejects_other_layers():
    with pytest.raises(InvalidArgumentError, match="expects a torch_geometric.nn.RGATConv"):
        RGATConv.from_pyg(pyg_nn.GATConv(8, 4))


# --------------------------------------------------------------------------- learning


@pytest.fixture
def one_thread():
    """Learning tests run single-threaded: fast and stable on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_two_layer_rgat_learns_aifb(data_root, one_thread):
    from graphlearn import datasets

    names = datasets.info("aifb").raw_files
    root = data_root(*(f"rdf/aifb/{name}" for name in names))
    data = datasets.load("aifb", root=root, download=False).data
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(data.num_nodes, 16)
            self.conv1 = RGATConv(16, 16, data.num_relations, heads=2, concat=False)
            self.conv2 = RGATConv(16, 4, data.num_relations)

        def forward(self):
            h = self.conv1(self.embedding.weight, data.edge_index, data.edge_type).relu()
            return self.conv2(h, data.edge_index, data.edge_type)

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(40):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model()[data.train_idx], data.y[data.train_idx])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model().argmax(dim=-1)
    train_acc = (pred[data.train_idx] == data.y[data.train_idx]).float().mean().item()
    test_acc = (pred[data.test_idx] == data.y[data.test_idx]).float().mean().item()
    assert math.isfinite(loss.item()) and train_acc >= 0.95
    assert test_acc >= 0.75, f"test accuracy {test_acc:.3f} (majority class: 15/36 = 0.417)"
