"""Analysis tools for trained models (over-smoothing diagnostics)."""

from graphlearn.analysis.oversmoothing import (
    dirichlet_energy,
    layer_statistics,
    plot_energy_curves,
    plot_layer_statistics,
)

__all__ = ["dirichlet_energy", "layer_statistics", "plot_energy_curves",
           "plot_layer_statistics"]
