r"""Over-smoothing diagnostics: Dirichlet energy of node features, layer by layer.

The Dirichlet energy of node features :math:`\mathbf{X}` on a graph with edges
:math:`\mathcal{E}` is (Rusch, Bronstein and Mishra, "A Survey on Oversmoothing in Graph
Neural Networks", 2023, Def. 3.1)

.. math::
    E(\mathbf{X}) = \frac{1}{|\mathcal{V}|} \sum_{(i, j) \in \mathcal{E}}
        \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2^2 .

A network over-smooths when :math:`E` decays to zero with depth: all nodes of a connected
component end up with the same features. :func:`layer_statistics` records :math:`E` after
every propagation layer of a model (the modules in ``model.convs``) together with the
layer's learned :math:`\omega` where it has one (omegaGNN).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from graphlearn.data.validation import check_edge_index, check_node_features
from graphlearn.errors import InvalidArgumentError

__all__ = ["dirichlet_energy", "layer_statistics", "plot_energy_curves", "plot_layer_statistics"]


def dirichlet_energy(x: Tensor, edge_index: Tensor) -> float:
    """Dirichlet energy of ``x`` (|V|, F) over the directed edges ``edge_index`` (2, |E|).

    An undirected graph stored with both directions counts each edge twice, as in the
    survey's sum over ordered neighbour pairs.
    """
    x = check_node_features(x.detach().float(), caller="dirichlet_energy")
    check_edge_index(edge_index, num_nodes=x.size(0), caller="dirichlet_energy")
    diff = x.index_select(0, edge_index[0]) - x.index_select(0, edge_index[1])
    return float(diff.pow(2).sum() / x.size(0))


def _omega_summary(module: torch.nn.Module) -> dict[str, float] | None:
    omega = getattr(module, "omega", None)
    if not isinstance(omega, Tensor):
        return None
    # the omega the layer applies (OmegaGCN/OmegaGAT with diffusion_time store it scaled)
    w = omega.detach().float().view(-1) * float(getattr(module, "omega_scale", 1.0))
    return {"omega_mean": float(w.mean()), "omega_min": float(w.min()), "omega_max": float(w.max())}


@torch.no_grad()
def layer_statistics(model: torch.nn.Module, data) -> list[dict[str, float]]:
    """Per-layer Dirichlet energy and omega values of ``model`` on graph ``data``.

    Runs one forward pass in eval mode with hooks on each module of ``model.convs`` (the
    convention of graphlearn's registered models). Row 0 describes the input features (absent for featureless graphs).

    Returns:
        A list of ``{"layer", "dirichlet_energy", ["omega_mean", "omega_min", "omega_max"]}``.
    """
    convs = getattr(model, "convs", None)
    if not isinstance(convs, torch.nn.ModuleList) or len(convs) == 0:
        raise InvalidArgumentError(
            f"{type(model).__name__} has no `convs` ModuleList of propagation layers; "
            f"layer_statistics needs one to hook"
        )
    from graphlearn.models.registry import call_model

    outputs: list[Tensor] = []
    handles = [conv.register_forward_hook(lambda m, args, out: outputs.append(
        out[0] if isinstance(out, tuple) else out)) for conv in convs]
    was_training = model.training
    model.eval()
    try:
        call_model(model, data)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # featureless graphs (x is None) have no input energy to report
    rows = [] if data.x is None else [
        {"layer": 0, "dirichlet_energy": dirichlet_energy(data.x, data.edge_index)}]
    for i, (conv, out) in enumerate(zip(convs, outputs, strict=True), start=1):
        row = {"layer": i, "dirichlet_energy": dirichlet_energy(out, data.edge_index)}
        row.update(_omega_summary(conv) or {})
        rows.append(row)
    return rows


def plot_layer_statistics(rows: list[dict[str, float]], out_png: str | Path, *, title: str = "") -> Path:
    """Plot Dirichlet energy (log scale) and, where present, omega against layer."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    has_omega = any("omega_mean" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if has_omega else 1, figsize=(10 if has_omega else 5, 4),
                             squeeze=False)
    ax = axes[0][0]
    layers = [r["layer"] for r in rows]
    energy = [max(r["dirichlet_energy"], 1e-30) for r in rows]
    ax.semilogy(layers, energy, marker="o")
    ax.set(xlabel="layer", ylabel="Dirichlet energy", title=title or "Dirichlet energy")
    if has_omega:
        ax = axes[0][1]
        om = [r for r in rows if "omega_mean" in r]
        xs = [r["layer"] for r in om]
        ax.plot(xs, [r["omega_mean"] for r in om], marker="o", label="mean")
        ax.fill_between(xs, [r["omega_min"] for r in om], [r["omega_max"] for r in om], alpha=0.3,
                        label="min-max over channels")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel="layer", ylabel="omega", title="learned omega")
        ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def plot_energy_curves(curves: Mapping[str, list[dict[str, float]]], out_png: str | Path, *,
                       title: str = "Dirichlet energy by layer") -> Path:
    """Overlay the Dirichlet-energy curves of several runs (a depth study) on one log plot.

    ``curves`` maps a label (``"omegaGCN, 64 layers"``) to the rows of one run's
    ``layer_stats.json`` (:func:`layer_statistics`). The x axis is the relative depth
    ``layer / num_layers``, so networks of different depths share it.

    Example:
        >>> import json
        >>> rows = json.load(open("runs/omega-gcn-cora-seed0/layer_stats.json"))  # doctest: +SKIP
        >>> plot_energy_curves({"omegaGCN, 16 layers": rows}, "energy.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not curves:
        raise InvalidArgumentError("plot_energy_curves needs at least one curve; pass "
                                   "{label: rows of layer_stats.json}")
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rows in curves.items():
        depth = max(r["layer"] for r in rows) or 1
        ax.semilogy([r["layer"] / depth for r in rows],
                    [max(r["dirichlet_energy"], 1e-30) for r in rows], marker=".", label=label)
    ax.set(xlabel="layer / number of layers", ylabel="Dirichlet energy", title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
