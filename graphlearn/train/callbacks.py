"""Trainer callbacks: the per-epoch metrics CSV and a one-line-per-run progress bar."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["MetricsCSV", "EpochProgressBar", "RNGState"]


def _epoch_metrics(trainer) -> dict[str, float]:
    out = {}
    for key, value in trainer.callback_metrics.items():
        if key.startswith(("train/", "val/")):
            out[key] = float(value)
    return out


class MetricsCSV(Callback):
    """Append one row per finished epoch (epoch, train/*, val/*) to a CSV file.

    Unlike Lightning's CSVLogger it appends on resume: rows of epochs at or after the
    resumed epoch (written after the last checkpoint) are dropped first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: list[dict] = []

    def on_train_start(self, trainer, pl_module) -> None:
        # on_train_start runs after a resumed checkpoint restored trainer.current_epoch
        self._rows = []
        if self.path.is_file():
            with self.path.open(newline="") as f:
                self._rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < trainer.current_epoch]
            self._write()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._rows.append({"epoch": trainer.current_epoch, **_epoch_metrics(trainer)})
        self._write()

    def _write(self) -> None:
        keys = ["epoch"] + sorted({k for r in self._rows for k in r if k != "epoch"})
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self._rows)
        tmp.replace(self.path)


class EpochProgressBar(Callback):
    """One tqdm bar over epochs, showing train loss and the monitored validation value.

    Full-batch node tasks run one step per epoch, where Lightning's per-epoch bar would
    print a line per epoch; this bar advances once per epoch instead.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self._bar = None

    def on_train_start(self, trainer, pl_module) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=trainer.max_epochs, initial=trainer.current_epoch, unit="epoch",
                         desc="fit", dynamic_ncols=True, leave=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._bar is None:
            return
        metrics = _epoch_metrics(trainer)
        post = {}
        for key in ("train/loss", self.monitor):
            value = metrics.get(key)
            if value is not None and not math.isnan(value):
                post[key] = f"{value:.4f}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(1)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    on_exception = on_train_end  # close the bar on Ctrl-C too


class RNGState(Callback):
    """Save the Python, NumPy and torch random states in checkpoints and restore them.

    Lightning reseeds on resume but does not restore the generators' positions, so dropout
    masks after a resume would differ from an uninterrupted run. With this callback a
    resumed run continues the exact random stream (checked by a test).
    """

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                      "has_gauss": has_gauss, "gauss": gauss},
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["gauss"]))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
