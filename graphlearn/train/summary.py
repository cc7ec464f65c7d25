"""Aggregate the ``summary.json`` of several runs (seeds) into mean and standard deviation."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from graphlearn.errors import DataFormatError, DataNotFoundError

__all__ = ["summarize_runs"]


def summarize_runs(run_dirs: list[str | Path]) -> list[dict]:
    """Group runs by (model, dataset) and report mean/std of the selection metric.

    The standard deviation is the sample standard deviation (0 for a single run).
    """
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for run in run_dirs:
        path = Path(run) / "summary.json"
        if not path.is_file():
            raise DataNotFoundError(f"{str(path)!r} does not exist; pass run directories written "
                                    f"by `graphlearn fit`")
        try:
            s = json.loads(path.read_text())
            groups[(s["model"], s["dataset"], s["metric"])].append(s)
        except (json.JSONDecodeError, KeyError) as exc:
            raise DataFormatError(f"{str(path)!r} is not a graphlearn summary ({exc})") from None
    rows = []
    for (model, dataset, metric), runs in sorted(groups.items()):
        test = [r["metrics"]["test"][metric] for r in runs]
        val = [r["metrics"]["val"][metric] for r in runs]

        def std(xs: list[float]) -> float:
            return statistics.stdev(xs) if len(xs) > 1 else 0.0

        rows.append({
            "model": model, "dataset": dataset, "metric": metric, "runs": len(runs),
            "seeds": sorted(r["seed"] for r in runs),
            "test_mean": statistics.fmean(test), "test_std": std(test),
            "val_mean": statistics.fmean(val), "val_std": std(val),
            "wall_s_mean": statistics.fmean(r["wall_s"] for r in runs),
        })
    return rows
