"""Tests of graphlearn.nn.HGTConv against torch_geometric.nn.HGTConv (the anchor)."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn

from graphlearn.errors import (
    DeviceError,
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)
from graphlearn.nn import HGTConv
from graphlearn.nn.conv import hgt_conv

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-9)}

# "paper" receives from three edge types, "author" from one, "venue" is the destination of
# an edge type that the graphs below leave out, and "topic" is never a destination.
NODE_TYPES = ["paper", "author", "venue", "topic"]
EDGE_TYPES = [
    ("author", "writes", "paper"),
    ("paper", "cites", "paper"),
    ("topic", "about", "paper"),
    ("paper", "rev_writes", "author"),
    ("paper", "published_in", "venue"),
]
METADATA = (NODE_TYPES, EDGE_TYPES)
NUM_NODES = {"paper": 7, "author": 5, "venue": 3, "topic": 4}


def make_graph(seed, widths=8, dtype=torch.float32, edge_types=EDGE_TYPES[:4], num_edges=14):
    """Random features per node type and random edges (duplicates included) per edge type;
    paper 6 and author 4 receive no edge."""
    gen = torch.Generator().manual_seed(seed)
    widths = widths if isinstance(widths, dict) else dict.fromkeys(NODE_TYPES, widths)
    x_dict = {t: torch.randn(n, widths[t], generator=gen, dtype=dtype)
              for t, n in NUM_NODES.items()}
    edge_index_dict = {}
    for src, rel, dst in edge_types:
        edge_index = torch.stack([
            torch.randint(0, NUM_NODES[src], (num_edges,), generator=gen),
            torch.randint(0, NUM_NODES[dst] - 1, (num_edges,), generator=gen),
        ])
        edge_index[:, 1] = edge_index[:, 0]  # a duplicate edge
        edge_index_dict[src, rel, dst] = edge_index
    return x_dict, edge_index_dict


def pair(seed, in_channels=8, out_channels=8, heads=2, dtype=torch.float32, metadata=METADATA,
         x_dict=None, edge_index_dict=None):
    """A PyG HGTConv with random parameters and our copy (lazy PyG layers run once first)."""
    torch.manual_seed(seed)
    pyg = pyg_nn.HGTConv(in_channels, out_channels, metadata, heads=heads).to(dtype)
    if x_dict is not None:
        pyg(x_dict, edge_index_dict)
    with torch.no_grad():
        for p in pyg.parameters():
            p.copy_(0.5 * torch.randn_like(p))
    return pyg, HGTConv.from_pyg(pyg)


def assert_dict_close(actual, expected, dtype=torch.float32):
    assert list(actual) == list(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], **TOL[dtype],
                                   msg=lambda m, k=key: f"{k}: {m}")


# --------------------------------------------------------------------------- config


def test_repr_matches_pyg():
    assert str(HGTConv(16, 32, METADATA, heads=2)) == "HGTConv(-1, 32, heads=2)"
    assert str(HGTConv(16, 32, METADATA, heads=2)) == str(pyg_nn.HGTConv(16, 32, METADATA, heads=2))


def test_state_dict_matches_pyg_both_ways():
    in_channels = {"paper": 8, "author": 6, "venue": 8, "topic": 4}
    ours = HGTConv(in_channels, 8, METADATA, heads=4)
    pyg = pyg_nn.HGTConv(in_channels, 8, METADATA, heads=4)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in pyg.state_dict().items()}
    pyg.load_state_dict(ours.state_dict())
    ours.load_state_dict(pyg.state_dict())


# --------------------------------------------------------------------------- equality with PyG


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("in_channels", ["same", "mixed", "lazy"])
def test_forward_equals_pyg(in_channels, heads, dtype):
    widths = {"same": 8, "mixed": {"paper": 8, "author": 6, "venue": 8, "topic": 3},
              "lazy": {"paper": 8, "author": 5, "venue": 8, "topic": 8}}[in_channels]
    x_dict, edge_index_dict = make_graph(0, widths, dtype)
    channels = widths if in_channels == "mixed" else (-1 if in_channels == "lazy" else 8)
    pyg, ours = pair(1, channels, 8, heads, dtype, x_dict=x_dict, edge_index_dict=edge_index_dict)
    expected = pyg(x_dict, edge_index_dict)
    actual = ours(x_dict, edge_index_dict)
    # "topic" is never a destination: left out, as in PyG; "venue" has no edges in this
    # graph but is a destination in the metadata: the output of a zero message.
    assert list(actual) == ["paper", "author", "venue"]
    assert_dict_close(actual, expected, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("heads", [1, 4])
def test_gradients_equal_pyg(heads, dtype):
    widths = {"paper": 8, "author": 8, "venue": 8, "topic": 5}  # skip gate on 3 of 4 types
    x_dict, edge_index_dict = make_graph(2, widths, dtype)
    pyg, ours = pair(3, widths, 8, heads, dtype)
    grads = []
    for conv in (pyg, ours):
        inputs = {t: x.clone().requires_grad_() for t, x in x_dict.items()}
        out = conv(inputs, edge_index_dict)
        torch.manual_seed(0)
        loss = sum((y * torch.randn_like(y)).sum() for y in out.values())
        conv.zero_grad()
        loss.backward()
        grads.append(({n: p.grad for n, p in conv.named_parameters()},
                      {t: x.grad for t, x in inputs.items()}))
    (p_params, p_inputs), (o_params, o_inputs) = grads
    assert p_params.keys() == o_params.keys()
    for name, expected in p_params.items():
        actual = o_params[name]
        if expected is None:  # unused: out_lin of "topic", p_rel of an absent edge type
            assert actual is None or not actual.any(), name
            continue
        torch.testing.assert_close(actual, expected, **TOL[dtype],
                                   msg=lambda m, n=name: f"{n}: {m}")
    for t in x_dict:
        if p_inputs[t] is None:
            assert o_inputs[t] is None or not o_inputs[t].any(), t
        else:
            torch.testing.assert_close(o_inputs[t], p_inputs[t], **TOL[dtype])


@pytest.mark.parametrize("case", ["one-edge-type", "empty-edge-type", "all-edge-types",
                                  "no-edges", "empty-node-type", "int32"])
def test_graph_cases_equal_pyg(case):
    metadata, edge_types = METADATA, EDGE_TYPES[:4]
    if case == "one-edge-type":
        metadata, edge_types = (["paper", "author"], [EDGE_TYPES[0]]), [EDGE_TYPES[0]]
    if case == "all-edge-types":
        edge_types = EDGE_TYPES
    x_dict, edge_index_dict = make_graph(4, edge_types=edge_types)
    x_dict = {t: x for t, x in x_dict.items() if t in metadata[0]}
    if case == "empty-edge-type":
        edge_index_dict[EDGE_TYPES[1]] = torch.zeros(2, 0, dtype=torch.long)
    if case == "no-edges":
        edge_index_dict = {e: torch.zeros(2, 0, dtype=torch.long) for e in edge_index_dict}
    if case == "empty-node-type":
        x_dict["author"] = x_dict["author"][:0]
        edge_index_dict = {e: v for e, v in edge_index_dict.items() if "author" not in e}
    pyg, ours = pair(5, 8, 8, 2, metadata=metadata)
    expected = pyg(x_dict, edge_index_dict)
    if case == "int32":
        edge_index_dict = {e: v.int() for e, v in edge_index_dict.items()}
    assert_dict_close(ours(x_dict, edge_index_dict), expected)


def test_result_does_not_depend_on_the_order_of_edge_index_dict():
    """PyG's relation transform assumes metadata order; ours is order-free."""
    x_dict, edge_index_dict = make_graph(6, dtype=torch.float64)
    pyg, ours = pair(7, dtype=torch.float64)
    expected = pyg(x_dict, edge_index_dict)
    reversed_dict = dict(reversed(list(edge_index_dict.items())))
    assert_dict_close(ours(x_dict, reversed_dict), expected, torch.float64)
    assert_dict_close(ours(dict(reversed(x_dict.items())), edge_index_dict), expected,
                      torch.float64)


# --------------------------------------------------------------------------- exact math


def slow_hgt(conv, x_dict, edge_index_dict):
    """HGT written destination by destination in float64 from the paper's formulas."""
    H, F_out = conv.heads, conv.out_channels
    D = F_out // H
    num_rel = len(conv.edge_types)

    def kqv(t):
        lin = conv.kqv_lin.lins[t]
        y = x_dict[t].double() @ lin.weight.double().t() + lin.bias.double()
        return y[:, :F_out].view(-1, H, D), y[:, F_out:2 * F_out].view(-1, H, D), \
            y[:, 2 * F_out:].view(-1, H, D)

    proj = {t: kqv(t) for t in x_dict}
    out = {}
    for dst_type in x_dict:
        if dst_type not in conv.dst_node_types:
            continue
        rows = []
        for i in range(x_dict[dst_type].size(0)):
            logits, values = [], []
            for edge_type, edge_index in edge_index_dict.items():
                if edge_type[2] != dst_type:
                    continue
                r = conv.edge_types.index(edge_type)
                prior = conv.p_rel["__".join(edge_type)].double().view(H)
                for j in edge_index[0, edge_index[1] == i].tolist():
                    k, v = proj[edge_type[0]][0][j], proj[edge_type[0]][2][j]
                    w_k = [conv.k_rel.weight[h * num_rel + r].double() for h in range(H)]
                    w_v = [conv.v_rel.weight[h * num_rel + r].double() for h in range(H)]
                    q = proj[dst_type][1][i]
                    logits.append(torch.stack([
                        (q[h] * (k[h] @ w_k[h])).sum() * prior[h] / math.sqrt(D)
                        for h in range(H)]))
                    values.append(torch.stack([v[h] @ w_v[h] for h in range(H)]))
            message = torch.zeros(H, D, dtype=torch.float64)
            if logits:
                alpha = torch.softmax(torch.stack(logits), dim=0)  # over all edge types
                message = (alpha.unsqueeze(-1) * torch.stack(values)).sum(0)
            rows.append(message.reshape(-1))
        lin = conv.out_lin.lins[dst_type]
        y = F.gelu(torch.stack(rows)) @ lin.weight.double().t() + lin.bias.double()
        if x_dict[dst_type].size(1) == F_out:
            gate = conv.skip[dst_type].double().sigmoid()
            y = gate * y + (1 - gate) * x_dict[dst_type].double()
        out[dst_type] = y
    return out


@pytest.mark.parametrize("heads", [1, 2])
def test_exact_values_against_a_slow_float64_loop(heads):
    widths = {"paper": 8, "author": 8, "venue": 8, "topic": 5}
    x_dict, edge_index_dict = make_graph(8, widths, torch.float64, edge_types=EDGE_TYPES,
                                         num_edges=6)
    _, ours = pair(9, widths, 8, heads, torch.float64)
    assert_dict_close(ours(x_dict, edge_index_dict), slow_hgt(ours, x_dict, edge_index_dict),
                      torch.float64)


# --------------------------------------------------------------------------- compact + cache


def test_relation_transforms_run_once_per_unique_source_pair(monkeypatch):
    """Compact materialization: K/V relation rows = 2H x unique (source, edge type) pairs
    (PyG transforms every node of the source type once per edge type)."""
    rows, segment_calls = [], []
    real_gather, real_segment = hgt_conv.gather_scatter_matmul, hgt_conv.segment_matmul

    def spy_gather(x, weight, ptr, gather_index=None, *args, **kwargs):
        rows.append(gather_index.numel())
        return real_gather(x, weight, ptr, gather_index, *args, **kwargs)

    def spy_segment(x, ptr, weight):
        segment_calls.append(weight.size(0))
        return real_segment(x, ptr, weight)

    monkeypatch.setattr(hgt_conv, "gather_scatter_matmul", spy_gather)
    monkeypatch.setattr(hgt_conv, "segment_matmul", spy_segment)
    x_dict, edge_index_dict = make_graph(10, num_edges=30)
    HGTConv(8, 8, METADATA, heads=2)(x_dict, edge_index_dict)
    pairs = sum(torch.unique(ei[0]).numel() for ei in edge_index_dict.values())
    every_node = sum(NUM_NODES[e[0]] for e in edge_index_dict)
    assert rows == [2 * 2 * pairs] and pairs < every_node
    assert segment_calls == [4, 3]  # K/Q/V of 4 node types, output of 3 destination types


def test_structure_is_cached_per_graph():
    conv = HGTConv(8, 8, METADATA, heads=2)
    x_dict, edge_index_dict = make_graph(11)
    first = conv(x_dict, edge_index_dict)
    plan = conv._structure._entries[0][3]
    again = conv({t: x.clone() for t, x in x_dict.items()}, edge_index_dict)
    assert conv._structure._entries[0][3] is plan and len(conv._structure) == 1
    assert_dict_close(again, first)
    edge_index_dict[EDGE_TYPES[0]][0, 0] = 4  # in place: rebuilt
    changed = conv(x_dict, edge_index_dict)
    assert conv._structure._entries[0][3] is not plan
    fresh = copy.deepcopy(conv)
    assert len(fresh._structure) == 0
    assert_dict_close(fresh(x_dict, edge_index_dict), changed)
    fewer = {t: x[:-1] for t, x in x_dict.items()}  # other node counts: a miss
    conv(fewer, {e: v.clamp(max=2) for e, v in edge_index_dict.items()})
    assert len(conv._structure) == 2


def test_lazy_in_channels_and_pickle():
    x_dict, edge_index_dict = make_graph(12, {"paper": 8, "author": 5, "venue": 8, "topic": 3})
    conv = HGTConv(-1, 8, METADATA, heads=2)
    out = conv(x_dict, edge_index_dict)
    assert conv.kqv_lin.lins["author"].weight.shape == (24, 5)
    assert {t: y.shape for t, y in out.items()} == {t: (NUM_NODES[t], 8) for t in out}
    buffer = io.BytesIO()
    torch.save(conv, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert_dict_close(loaded(x_dict, edge_index_dict), out)


def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    x_dict, edge_index_dict = make_graph(13, {"paper": 8, "author": 6, "venue": 8, "topic": 8})
    conv = HGTConv({"paper": 8, "author": 6, "venue": 8, "topic": 8}, 8, METADATA, heads=2)
    with torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True):
        compiled = torch.compile(conv, backend="aot_eager", fullgraph=True)
        assert_dict_close(compiled(x_dict, edge_index_dict), conv(x_dict, edge_index_dict))
        sum(y.sum() for y in compiled(x_dict, edge_index_dict).values()).backward()
    assert conv.k_rel.weight.grad is not None


# --------------------------------------------------------------------------- bad input


def test_edge_errors():
    x_dict, edge_index_dict = make_graph(14)
    conv = HGTConv(8, 8, METADATA, heads=2)
    with pytest.raises(InvalidArgumentError, match="not in the metadata"):
        conv(x_dict, {**edge_index_dict, ("author", "likes", "paper"): edge_index_dict[
            EDGE_TYPES[0]]})
    with pytest.raises(InvalidArgumentError, match=r"source node type 'topic'.*x_dict\['topic'\]"):
        conv({t: x for t, x in x_dict.items() if t != "topic"}, edge_index_dict)
    bad = {**edge_index_dict, EDGE_TYPES[0]: edge_index_dict[EDGE_TYPES[0]].clone()}
    bad[EDGE_TYPES[0]][1, 2] = 7
    with pytest.raises(IndexOutOfRangeError, match=r"destination node id 7, outside \[0, 7\)"):
        conv(x_dict, bad)
    bad[EDGE_TYPES[0]][1, 2] = -1
    with pytest.raises(IndexOutOfRangeError, match="node id -1"):
        conv(x_dict, bad)
    with pytest.raises(ShapeError, match=r"\(2, num_edges\)"):
        conv(x_dict, {EDGE_TYPES[0]: edge_index_dict[EDGE_TYPES[0]].t()})
    with pytest.raises(DTypeError, match="torch.long"):
        conv(x_dict, {EDGE_TYPES[0]: edge_index_dict[EDGE_TYPES[0]].float()})
    with pytest.raises(DTypeError, match="dict"):
        conv(x_dict, list(edge_index_dict.values()))


def test_feature_errors():
    x_dict, edge_index_dict = make_graph(15)
    conv = HGTConv(8, 8, METADATA, heads=2)
    nan = {**x_dict, "author": x_dict["author"].clone()}
    nan["author"][1, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"x_dict\['author'\].*NaN"):
        conv(nan, edge_index_dict)
    with pytest.raises(ShapeError, match=r"x_dict\['paper'\].*in_channels=8"):
        conv({**x_dict, "paper": x_dict["paper"][:, :6]}, edge_index_dict)
    with pytest.raises(DTypeError, match="conv.to"):
        conv({t: x.double() for t, x in x_dict.items()}, edge_index_dict)
    with pytest.raises(DTypeError, match="floating-point"):
        conv({**x_dict, "paper": x_dict["paper"].long()}, edge_index_dict)
    with pytest.raises(DeviceError, match="parameters of HGTConv"):
        conv({**x_dict, "paper": x_dict["paper"].to("meta")}, edge_index_dict)
    with pytest.raises(DeviceError, match="edge_index_dict"):
        conv(x_dict, {e: v.to("meta") for e, v in edge_index_dict.items()})


@pytest.mark.parametrize("args,kwargs,match", [
    ((8, 6, METADATA), dict(heads=4), r"out_channels \(got 6\) must be divisible by heads \(got 4\)"),
    ((8, 8, METADATA), dict(heads=0), "heads"),
    ((8, 8, METADATA), dict(aggr="mean"), "aggr"),
    ((8, 8, METADATA), dict(flow="target_to_source"), "flow"),
    ((8, 8, (NODE_TYPES, [("paper", "cites", "journal")])), {}, "edge type"),
    ((8, 8, NODE_TYPES), {}, "metadata"),
])
def test_constructor_errors(args, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        HGTConv(*args, **kwargs)


def test_from_pyg_errors():
    with pytest.raises(InvalidArgumentError, match="expects a torch_geometric.nn.HGTConv"):
        HGTConv.from_pyg(pyg_nn.GATConv(8, 4))
    with pytest.raises(InvalidArgumentError, match="forward pass"):
        HGTConv.from_pyg(pyg_nn.HGTConv(-1, 8, METADATA))


# --------------------------------------------------------------------------- learning


@pytest.fixture
def one_thread():
    """Learning tests run single-threaded: fast and stable on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_two_layer_hgt_learns_aifb(data_root, one_thread):
    """AIFB's heterogeneous view (22 node types, 234 edge types): classify Person nodes.

    Nodes get learnable 16-dim embeddings, except the Person nodes, which share one
    learnable vector: with an embedding of their own, the skip connection lets the model
    memorise the 140 training people instead of reading their research group."""
    from graphlearn import datasets

    names = datasets.info("aifb").raw_files
    root = data_root(*(f"rdf/aifb/{name}" for name in names))
    dataset = datasets.load("aifb", root=root, download=False)
    hetero = datasets.rdf.to_hetero(dataset)
    edge_index_dict, node_id = hetero.edge_index_dict, hetero.collect("node_id")
    person = hetero["Person"]
    train = person.train_mask.nonzero().view(-1)
    test = person.test_mask.nonzero().view(-1)
    torch.manual_seed(1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(dataset.data.num_nodes, 16)
            self.person = torch.nn.Parameter(torch.randn(1, 16))
            self.conv1 = HGTConv(16, 16, hetero.metadata(), heads=2)
            self.conv2 = HGTConv(16, 16, hetero.metadata(), heads=2)
            self.classify = torch.nn.Linear(16, 4)

        def forward(self):
            x_dict = {t: self.person.expand(ids.numel(), -1) if t == "Person"
                      else self.embedding.weight[ids] for t, ids in node_id.items()}
            x_dict = {t: h.relu() for t, h in self.conv1(x_dict, edge_index_dict).items()}
            return self.classify(self.conv2(x_dict, edge_index_dict)["Person"])

    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    for _ in range(50):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model()[train], person.y[train])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model().argmax(dim=-1)
    train_acc = (pred[train] == person.y[train]).float().mean().item()
    test_acc = (pred[test] == person.y[test]).float().mean().item()
    assert math.isfinite(loss.item()) and train_acc >= 0.95
    assert test_acc >= 0.75, f"test accuracy {test_acc:.3f} (majority class: 15/36 = 0.417)"
