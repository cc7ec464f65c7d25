"""Unit tests of graphlearn.data.validation: one validator per input kind."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlearn.data.validation import (
    check_edge_index,
    check_node_features,
    check_positive_int,
    check_same_device,
    validate,
    value_checks_enabled,
)
from graphlearn.errors import (
    DeviceError,
    DTypeError,
    EmptyGraphError,
    GraphLearnError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)


@pytest.fixture
def edge_index():
    return torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])


@pytest.fixture
def graph(edge_index):
    return Data(x=torch.randn(4, 3), edge_index=edge_index, edge_attr=torch.randn(4, 2),
                y=torch.tensor([0, 1, 0, 1]))


# --------------------------------------------------------------------------- value_checks_enabled


def test_value_checks_enabled_by_device(monkeypatch):
    monkeypatch.delenv("GRAPHLEARN_VALIDATE", raising=False)
    cpu, meta = torch.zeros(1), torch.zeros(1, device="meta")
    assert value_checks_enabled(cpu, None)
    assert value_checks_enabled()
    assert not value_checks_enabled(cpu, meta)


@pytest.mark.parametrize("flag,expected", [("1", True), ("true", True), ("ON", True),
                                           ("0", False), ("false", False), ("off", False)])
def test_value_checks_env_override(monkeypatch, flag, expected):
    monkeypatch.setenv("GRAPHLEARN_VALIDATE", flag)
    assert value_checks_enabled(torch.zeros(1)) is expected
    assert value_checks_enabled(torch.zeros(1, device="meta")) is expected


def test_value_checks_unknown_env_falls_back_to_device(monkeypatch):
    monkeypatch.setenv("GRAPHLEARN_VALIDATE", "maybe")
    assert value_checks_enabled(torch.zeros(1))
    assert not value_checks_enabled(torch.zeros(1, device="meta"))


# --------------------------------------------------------------------------- check_edge_index


def test_edge_index_ok_returns_same_tensor(edge_index):
    assert check_edge_index(edge_index, num_nodes=4) is edge_index
    assert check_edge_index(edge_index.int(), num_nodes=4).dtype == torch.int32
    assert check_edge_index(torch.empty(2, 0, dtype=torch.long), num_nodes=0).shape == (2, 0)


def test_edge_index_not_a_tensor():
    with pytest.raises(DTypeError, match="must be a torch.Tensor.*got list"):
        check_edge_index([[0, 1], [1, 0]])


def test_edge_index_dtype(edge_index):
    with pytest.raises(DTypeError, match=r"torch.long, got torch.float32.*edge_index.long\(\)"):
        check_edge_index(edge_index.float())


def test_edge_index_transposed_gets_hint(edge_index):
    with pytest.raises(ShapeError, match=r"\(2, num_edges\), got \(4, 2\).*edge_index.t\(\)"):
        check_edge_index(edge_index.t())


@pytest.mark.parametrize("shape", [(8,), (3, 4), (2, 2, 2)])
def test_edge_index_wrong_shape_no_transpose_hint(shape):
    with pytest.raises(ShapeError) as info:
        check_edge_index(torch.zeros(shape, dtype=torch.long))
    assert str(tuple(shape)) in str(info.value)
    assert ".t()" not in str(info.value)


def test_edge_index_out_of_range(edge_index):
    with pytest.raises(IndexOutOfRangeError, match=r"node id 3, outside \[0, 3\).*3 source"):
        check_edge_index(edge_index, num_nodes=3)
    negative = edge_index.clone()
    negative[1, 0] = -2
    with pytest.raises(IndexOutOfRangeError, match="destination node id -2"):
        check_edge_index(negative, num_nodes=4)


def test_edge_index_bipartite_range(edge_index):
    check_edge_index(edge_index, num_nodes=(4, 4))
    with pytest.raises(IndexOutOfRangeError, match=r"destination node id 3, outside \[0, 2\)"):
        check_edge_index(torch.tensor([[3], [3]]), num_nodes=(4, 2))


def test_edge_index_range_check_can_be_skipped(edge_index):
    check_edge_index(edge_index, num_nodes=2, ensure_in_range=False)
    check_edge_index(edge_index)  # no num_nodes: nothing to check against


def test_edge_index_message_names_caller_and_input(edge_index):
    with pytest.raises(DTypeError, match="adj passed to MyLayer"):
        check_edge_index(edge_index.float(), caller="MyLayer", input_name="adj")


# --------------------------------------------------------------------------- check_node_features


def test_node_features_ok():
    x = torch.randn(4, 3)
    assert check_node_features(x) is x
    assert check_node_features(torch.randn(0, 3), allow_empty=True).shape == (0, 3)


def test_node_features_errors():
    with pytest.raises(DTypeError, match="must be a torch.Tensor"):
        check_node_features([[1.0]])
    with pytest.raises(DTypeError, match=r"floating-point.*torch.int64.*x.float\(\)"):
        check_node_features(torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"got \(4,\).*x.view\(-1, 1\)"):
        check_node_features(torch.randn(4))
    with pytest.raises(ShapeError, match=r"got \(2, 2, 2\)"):
        check_node_features(torch.randn(2, 2, 2))


def test_node_features_empty_graph():
    with pytest.raises(EmptyGraphError, match="0 nodes"):
        check_node_features(torch.randn(0, 3))


def test_node_features_non_finite_counts_rows():
    x = torch.randn(5, 3)
    x[1, 0] = float("nan")
    x[3, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"2 of 5 rows.*nan_to_num"):
        check_node_features(x, caller="GATv2Conv", input_name="x")
    check_node_features(x, ensure_finite=False)


# --------------------------------------------------------------------------- check_same_device


def test_same_device():
    cpu = torch.zeros(1)
    check_same_device(("a", cpu), ("b", cpu), ("c", None))
    check_same_device()
    with pytest.raises(DeviceError, match=r"b is on meta but a is on cpu in L.*b.to\(a.device\)"):
        check_same_device(("a", cpu), ("b", torch.zeros(1, device="meta")), caller="L")


# --------------------------------------------------------------------------- validate(Data)


def test_validate_good_graph(graph):
    assert validate(graph) is graph
    assert validate(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2)) is not None


@pytest.mark.filterwarnings("ignore:Unable to accurately infer")
def test_validate_empty_graph():
    with pytest.raises(EmptyGraphError, match="no nodes"):
        validate(Data(x=torch.randn(0, 3), edge_index=torch.empty(2, 0, dtype=torch.long)))
    with pytest.raises(EmptyGraphError):
        validate(Data())


def test_validate_bad_edge_index(graph):
    graph.edge_index = torch.tensor([[0, 1], [1, 4]])
    graph.edge_attr = torch.randn(2, 2)
    with pytest.raises(IndexOutOfRangeError, match="data.edge_index.*node id 4"):
        validate(graph)


def test_validate_bad_features(graph):
    graph.x[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="data.x"):
        validate(graph)


def test_validate_edge_attr_rows(graph):
    graph.edge_attr = torch.randn(3, 2)
    with pytest.raises(ShapeError, match="3 rows but edge_index has 4 edges"):
        validate(graph)


def test_validate_non_finite_edge_attr_and_labels(graph):
    graph.edge_attr[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="edge_attr"):
        validate(graph)
    graph.edge_attr[0, 0] = 0.0
    graph.y = torch.tensor([0.0, float("nan"), 1.0, 1.0])
    with pytest.raises(NonFiniteError, match="labels"):
        validate(graph)


def test_validate_device_mismatch(graph):
    # An empty edge_index on meta: no value is read, so only the device check can fail.
    graph.edge_index = torch.empty(2, 0, dtype=torch.long, device="meta")
    graph.edge_attr = None
    with pytest.raises(DeviceError, match="data.edge_index is on meta but data.x is on cpu"):
        validate(graph)


# --------------------------------------------------------------------------- misc


def test_check_positive_int():
    assert check_positive_int(3, "heads") == 3
    assert check_positive_int(0, "k", minimum=0) == 0
    for bad in (0, -1, True, 2.0, "3"):
        with pytest.raises(InvalidArgumentError, match="heads of L must be an integer >= 1"):
            check_positive_int(bad, "heads", caller="L")


def test_errors_subclass_builtins(edge_index):
    with pytest.raises(TypeError):
        check_edge_index(edge_index.float())
    with pytest.raises(ValueError):
        check_edge_index(edge_index.t())
    with pytest.raises(IndexError):
        check_edge_index(edge_index, num_nodes=1)
    with pytest.raises(ValueError):
        check_node_features(torch.tensor([[float("nan")]]))
    with pytest.raises(GraphLearnError):
        check_node_features(torch.randn(0, 1))
