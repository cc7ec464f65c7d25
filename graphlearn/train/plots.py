"""The learning-curve plot of a run directory."""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = ["plot_learning_curve"]


def plot_learning_curve(metrics_csv: str | Path, out_png: str | Path, *, metric: str) -> Path:
    """Draw train/validation loss and the validation ``metric`` against epoch into a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with Path(metrics_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))

    def series(key: str) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for r in rows:
            v = r.get(key)
            if v not in (None, "") and not math.isnan(float(v)):
                xs.append(int(r["epoch"]))
                ys.append(float(v))
        return xs, ys

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train/loss", "train"), ("val/loss", "validation")):
        ax_loss.plot(*series(key), label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_loss.legend()
    for key, label in ((f"train/{metric}", "train"), (f"val/{metric}", "validation")):
        xs, ys = series(key)
        if xs:
            ax_metric.plot(xs, ys, label=label)
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
    ax_metric.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
