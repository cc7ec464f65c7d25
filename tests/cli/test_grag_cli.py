"""`graphlearn grag index|query|serve`, run as a subprocess exactly as a user runs it."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

FACTS = ("alice\tknows\tbob\nbob\tlives in\tparis\nparis\tcapital of\tfrance\n"
         "carol\tlives in\trome\nrome\tcapital of\titaly\n")


def run(*args, timeout=240, **env_vars):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **env_vars}
    return subprocess.run([sys.executable, "-m", "graphlearn.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grag")
    (tmp / "facts.tsv").write_text(FACTS)
    out = tmp / "facts.grag"
    res = run("grag", "index", str(tmp / "facts.tsv"), "--out", str(out), "--encoder",
              "hashing", "-k", "1")
    assert res.returncode == 0, res.stderr
    assert f"wrote {out}" in res.stdout and "7 nodes, 5 edges" in res.stderr
    return out


def test_query_prints_the_description_and_json(folder):
    res = run("grag", "query", str(folder), "where does carol live?")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("# Graph:") and "lives in" in res.stdout
    res = run("grag", "query", str(folder), "where does carol live?", "--json", "-k", "2")
    body = json.loads(res.stdout)
    assert ["carol", "lives in", "rome"] in body["triples"] and body["method"] == "grag"
    res = run("grag", "query", str(folder), "where does carol live?", "--answer", "--json")
    assert json.loads(res.stdout)["answer"].startswith("# Graph:")


def test_errors_are_one_line_and_exit_2(folder, tmp_path):
    res = run("grag", "query", str(tmp_path / "nothing"), "q")
    assert res.returncode == 2 and "no GRAG folder" in res.stderr and "Traceback" not in res.stderr
    res = run("grag", "query", str(folder), "   ")
    assert res.returncode == 2 and "question is empty" in res.stderr
    res = run("grag", "index", "no-such-thing", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "neither a file nor a registered dataset" in res.stderr
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n")
    res = run("grag", "index", str(bad), "--out", str(tmp_path / "x"), "--encoder", "hashing")
    assert res.returncode == 2 and "bad.tsv:1" in res.stderr
    res = run("grag", "index", "pathquestion", "--option", "variant", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "--option expects key=value" in res.stderr
    res = run("grag", "query", str(folder), "q", "--answer", "--generator", "openai")
    assert res.returncode == 2 and "--base-url" in res.stderr


def test_index_a_dataset_and_train_its_pruner(tmp_path, data_root):
    root = data_root("textgraph/pathquestion/PQ-2H.txt", "textgraph/pathquestion/2H-kb.txt")
    out = tmp_path / "pq.grag"
    res = run("grag", "index", "pathquestion", "--option", "variant=PQ-2H", "--out", str(out),
              "--encoder", "hashing", "--train-pruner", "--epochs", "3", GRAPHLEARN_DATA=str(root))
    assert res.returncode == 0, res.stderr
    assert "pruner: loss" in res.stderr and (out / "pruner.safetensors").is_file()
    res = run("grag", "query", str(out), "what is the nationality of ernest_augustus_i_of_hanover ?",
              "--json")
    body = json.loads(res.stdout)
    assert body["method"] == "pruned" and body["node_gates"] is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_http(folder):
    port = free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "graphlearn.cli.main", "grag", "serve",
                             str(folder), "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.time() < deadline, "server did not come up"
                time.sleep(0.2)
        assert health.json()["nodes"] == 7
        res = httpx.post(f"{url}/retrieve", json={"question": "where does bob live?"})
        assert res.status_code == 200 and ["bob", "lives in", "paris"] in res.json()["triples"]
        res = httpx.post(f"{url}/answer", json={"question": ""})
        assert res.status_code == 422 and "question is empty" in res.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
