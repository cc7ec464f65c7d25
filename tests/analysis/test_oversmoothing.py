import pytest
import torch

from graphlearn.analysis import dirichlet_energy, layer_statistics
from graphlearn.errors import IndexOutOfRangeError, InvalidArgumentError
from graphlearn.models import GCN, OmegaGCN


def test_dirichlet_energy_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    # ||x0-x1||^2 = 1 (twice), ||x1-x2||^2 = 4 (twice) -> (2 + 8) / 3 nodes
    assert dirichlet_energy(x, edge_index) == pytest.approx(10 / 3)
    assert dirichlet_energy(torch.ones(3, 2), edge_index) == 0.0
    with pytest.raises(IndexOutOfRangeError):
        dirichlet_energy(x, torch.tensor([[0], [3]]))


def test_layer_statistics_rows_and_omega():
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    data = type("G", (), {"x": x, "edge_index": edge_index})()
    rows = layer_statistics(OmegaGCN(4, 2, hidden_channels=8, num_layers=3), data)
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    assert all(r["omega_mean"] == pytest.approx(1.0) for r in rows[1:])  # omega starts at 1
    plain = layer_statistics(GCN(4, 2, hidden_channels=8, num_layers=3), data)
    assert "omega_mean" not in plain[1]


def test_layer_statistics_needs_convs():
    with pytest.raises(InvalidArgumentError, match="no `convs` ModuleList"):
        layer_statistics(torch.nn.Linear(2, 2), None)


def test_plot_energy_curves_writes_png(tmp_path):
    from graphlearn.analysis import plot_energy_curves
    from graphlearn.errors import InvalidArgumentError

    rows2 = [{"layer": i, "dirichlet_energy": 1.0 / (i + 1)} for i in range(3)]
    rows8 = [{"layer": i, "dirichlet_energy": 0.0 if i == 8 else 2.0} for i in range(9)]
    out = plot_energy_curves({"2 layers": rows2, "8 layers": rows8}, tmp_path / "e.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidArgumentError, match="at least one curve"):
        plot_energy_curves({}, tmp_path / "x.png")
