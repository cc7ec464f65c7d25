import json

import pytest

from graphlearn.errors import DataFormatError, DataNotFoundError
from graphlearn.train.summary import summarize_runs


def write(tmp_path, name, seed, test, val, dataset="cora"):
    run = tmp_path / name
    run.mkdir()
    summary = {"model": "gatv2", "dataset": dataset, "metric": "accuracy", "seed": seed,
               "wall_s": 2.0, "metrics": {"val": {"accuracy": val}, "test": {"accuracy": test}}}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_mean_and_sample_std_per_group(tmp_path):
    runs = [write(tmp_path, "a", 0, 0.80, 0.7), write(tmp_path, "b", 1, 0.84, 0.9),
            write(tmp_path, "c", 0, 0.70, 0.7, dataset="citeseer")]
    rows = summarize_runs(runs)
    assert [(r["dataset"], r["runs"]) for r in rows] == [("citeseer", 1), ("cora", 2)]
    cora = rows[1]
    assert cora["test_mean"] == pytest.approx(0.82)
    assert cora["test_std"] == pytest.approx(0.02828427, rel=1e-6)
    assert cora["val_mean"] == pytest.approx(0.8) and cora["seeds"] == [0, 1]
    assert rows[0]["test_std"] == 0.0


def test_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="summary.json"):
        summarize_runs([tmp_path / "nope"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not a graphlearn summary"):
        summarize_runs([bad])
