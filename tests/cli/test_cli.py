"""The `graphlearn` command, run as a subprocess exactly as a user runs it."""

import json
import os
import subprocess
import sys

import pytest


def run(*args, cwd=None, timeout=240):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "graphlearn.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def test_help_does_not_import_torch():
    code = ("import sys, graphlearn.cli.main; "
            "print(sorted(m for m in ('torch', 'lightning', 'torch_geometric') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    res = run("--help")
    assert res.returncode == 0 and "fit" in res.stdout and "datasets" in res.stdout


def test_fit_success_prints_metric_and_run_dir(tmp_path):
    out = tmp_path / "run"
    res = run("fit", "--epochs", "20", "--seed", "0", "--out", str(out), "--set",
              "trainer.progress_bar=false")
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout
    assert f"run directory: {out}" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "gatv2" and summary["dataset"] == "karate" and summary["seed"] == 0
    for key in ("epochs", "best_epoch", "wall_s"):
        assert key in summary
    assert set(summary["metrics"]) == {"val", "test"}


def test_default_run_dir_is_under_cwd(tmp_path):
    res = run("fit", "--epochs", "3", "--seed", "1", "--set", "trainer.progress_bar=false",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("gatv2-karate-")
    assert (runs[0] / "summary.json").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("fit", "--model", "nope"), "unknown model 'nope'"),
        (("fit", "--dataset", "coar"), "Did you mean 'cora'?"),
        (("fit", "--set", "trainer.max_epoch=3"), "'trainer.max_epoch' is not recognised"),
        (("fit", "--set", "model.hidden=3", "--epochs", "1"), "'model.hidden' is not a hyperparameter"),
        (("fit", "--config", "missing.yaml"), "does not exist"),
        (("fit", "--set", "oops"), "key=value"),
        (("fit", "--resume", "no-such-run"), "cannot resume"),
        (("datasets", "info", "nope"), "unknown dataset 'nope'"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, needle, tmp_path):
    res = run(*args, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("graphlearn: error: ") and needle in lines[0]
    assert "Traceback" not in res.stderr


def test_debug_shows_traceback(tmp_path):
    res = run("--debug", "fit", "--model", "nope", cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" in res.stderr and "UnknownNameError" in res.stderr


def test_datasets_and_models_listing():
    res = run("datasets", "list", "--json")
    assert res.returncode == 0, res.stderr
    infos = {d["name"]: d for d in json.loads(res.stdout)}
    assert {"karate", "cora", "citeseer", "pubmed", "mutag", "proteins", "enzymes"} <= set(infos)
    assert infos["cora"]["task"] == "node_classification" and infos["cora"]["metric"] == "accuracy"
    res = run("datasets", "info", "cora")
    assert res.returncode == 0 and "citation" in res.stdout and "planetoid" in res.stdout.lower()
    res = run("models", "list", "--json")
    assert res.returncode == 0
    assert "gatv2" in {m["name"] for m in json.loads(res.stdout)}
