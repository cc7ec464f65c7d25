import os
import pickle
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch
from torch_geometric.utils import is_undirected

from graphlearn import datasets
from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    GraphLearnError,
    InvalidArgumentError,
    UnsafeFileError,
)

planetoid = datasets.planetoid

EXPECTED = {  # PyG Planetoid(split="public") numbers
    "cora": dict(nodes=2708, edges=10556, features=1433, classes=7, train=140),
    "citeseer": dict(nodes=3327, edges=9104, features=3703, classes=6, train=120),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _copy_raw(src_root: Path, name: str, dst_root: Path) -> Path:
    """Copy the raw files of ``name`` into a scratch data root; return the raw folder."""
    dst = dst_root / "planetoid" / name / "raw"
    shutil.copytree(src_root / "planetoid" / name / "raw", dst)
    for path in dst.iterdir():
        path.chmod(0o644)
    return dst


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHLEARN_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stats_match_pyg(data_root, name):
    root = data_root(f"planetoid/{name}/raw")
    ds = datasets.load(name, root=root, download=False)
    exp = EXPECTED[name]
    data = ds.data
    assert data.num_nodes == exp["nodes"] and data.num_edges == exp["edges"]
    assert ds.num_features == exp["features"] and ds.num_classes == exp["classes"]
    assert ds.split_sizes() == {"train": exp["train"], "val": 500, "test": 1000}
    assert not (data.train_mask & data.val_mask).any()
    assert not ((data.train_mask | data.val_mask) & data.test_mask).any()
    assert is_undirected(data.edge_index, num_nodes=data.num_nodes)
    assert data.x.dtype == torch.float and set(data.x.unique().tolist()) <= {0.0, 1.0}
    info = ds.info.stats
    assert (info["num_nodes"], info["num_edges"], info["num_features"], info["num_classes"]) == (
        exp["nodes"], exp["edges"], exp["features"], exp["classes"])


def test_matches_pyg_reader_exactly(data_root):
    """Same tensors as torch_geometric.io.read_planetoid_data (which uses plain pickle)."""
    from torch_geometric.io import read_planetoid_data

    root = data_root("planetoid/citeseer/raw")
    ours = datasets.load("citeseer", root=root).data  # exercises the CiteSeer fix
    ref = read_planetoid_data(str(root / "planetoid" / "citeseer" / "raw"), "citeseer")
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[key], ref[key]), key


def test_normalize_features_option(data_root):
    root = data_root("planetoid/cora/raw")
    raw = datasets.load("cora", root=root).data.x
    normed = datasets.load("cora", root=root, normalize_features=True).data.x
    sums = normed.sum(1)
    assert torch.allclose(sums[raw.sum(1) > 0], torch.ones(1))
    assert torch.equal(normed > 0, raw > 0)
    with pytest.raises(InvalidArgumentError, match="normalize_features.*True or False"):
        datasets.load("cora", root=root, normalize_features="yes")


def test_loading_does_not_write_into_the_data_root(data_root, fresh_cache):
    root = data_root("planetoid/cora/raw")
    before = _snapshot(root / "planetoid")
    datasets.load("cora", root=root)
    datasets.load("cora", root=root)
    assert _snapshot(root / "planetoid") == before
    assert list((fresh_cache / "processed").glob("planetoid-cora-*.pt"))


def test_processed_cache_is_used_the_second_time(data_root, fresh_cache, monkeypatch):
    root = data_root("planetoid/cora/raw")
    calls = []
    real = planetoid.read_planetoid
    monkeypatch.setattr(planetoid, "read_planetoid", lambda *a: calls.append(a) or real(*a))
    first = datasets.load("cora", root=root).data
    second = datasets.load("cora", root=root).data
    assert len(calls) == 1
    assert torch.equal(first.x, second.x) and torch.equal(first.edge_index, second.edge_index)


def test_pubmed_missing_allx_is_named(data_root, fresh_cache):
    root = data_root("planetoid/pubmed/raw")
    folder = root / "planetoid" / "pubmed" / "raw"
    if (folder / "ind.pubmed.allx").exists():
        pytest.skip("this data root has ind.pubmed.allx")
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("pubmed", root=root, download=False)
    msg = str(info.value)
    assert "missing 1 raw file(s): ind.pubmed.allx." in msg
    assert str(folder) in msg
    assert "ind.pubmed.tx" not in msg  # only the missing file is listed
    assert isinstance(info.value, FileNotFoundError)


def test_pubmed_offline_download_failure_is_named(data_root, fresh_cache, monkeypatch):
    root = data_root("planetoid/pubmed/raw")
    folder = root / "planetoid" / "pubmed" / "raw"
    if (folder / "ind.pubmed.allx").exists():
        pytest.skip("this data root has ind.pubmed.allx")
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)
    urls = []

    def offline(url, folder, filename=None):
        urls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(planetoid, "download_url", offline)
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("pubmed", root=root)
    msg = str(info.value)
    assert "ind.pubmed.allx" in msg and str(folder) in msg
    assert "failed" in msg and "network is unreachable" in msg
    assert urls and urls[0].startswith("https://github.com/kimiyoung/planetoid/raw/master/data/")


def test_download_fills_the_cache(data_root, tmp_path, fresh_cache, monkeypatch):
    """The fetch path, offline: a fake download_url serves the shared files."""
    src = data_root("planetoid/cora/raw") / "planetoid" / "cora" / "raw"
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)

    def serve(url, folder, filename=None):
        folder.mkdir(parents=True, exist_ok=True)
        name = url.rsplit("/", 1)[-1]
        shutil.copyfile(src / name, folder / name)
        return folder / name

    monkeypatch.setattr(planetoid, "download_url", serve)
    ds = datasets.load("cora", root=tmp_path / "empty-root")
    assert ds.data.num_nodes == 2708
    assert len(list((fresh_cache / "raw" / "planetoid" / "cora" / "raw").iterdir())) == 8


def test_missing_root_names_every_file(tmp_path, fresh_cache):
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("cora", root=tmp_path / "nowhere", download=False)
    msg = str(info.value)
    assert "missing 8 raw file(s)" in msg
    for suffix in planetoid.SUFFIXES:
        assert f"ind.cora.{suffix}" in msg
    assert str(tmp_path / "nowhere" / "planetoid" / "cora" / "raw") in msg


def test_malicious_pickle_is_refused_and_not_run(data_root, tmp_path, fresh_cache):
    raw = _copy_raw(data_root("planetoid/cora/raw"), "cora", tmp_path / "root")
    marker = tmp_path / "pwned"

    class RunsShell:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (raw / "ind.cora.graph").write_bytes(pickle.dumps(RunsShell(), protocol=2))
    with pytest.raises(UnsafeFileError) as info:
        datasets.load("cora", root=tmp_path / "root")
    msg = str(info.value)
    assert str(raw / "ind.cora.graph") in msg and "system" in msg and "not trusted" in msg
    assert not marker.exists()


def test_truncated_pickle_is_a_format_error(data_root, tmp_path, fresh_cache):
    raw = _copy_raw(data_root("planetoid/cora/raw"), "cora", tmp_path / "root")
    path = raw / "ind.cora.allx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataFormatError) as info:
        datasets.load("cora", root=tmp_path / "root")
    assert str(path) in str(info.value)


def test_mismatched_files_are_a_format_error(data_root, tmp_path, fresh_cache):
    root = data_root("planetoid/cora/raw", "planetoid/citeseer/raw")
    raw = _copy_raw(root, "cora", tmp_path / "root")
    shutil.copyfile(root / "planetoid/citeseer/raw/ind.citeseer.ty", raw / "ind.cora.ty")
    with pytest.raises(DataFormatError, match="ind.cora.y.*ind.cora.ty|ind.cora.tx.*ind.cora.ty"):
        datasets.load("cora", root=tmp_path / "root")


def test_bad_test_index_is_a_format_error(data_root, tmp_path, fresh_cache):
    raw = _copy_raw(data_root("planetoid/cora/raw"), "cora", tmp_path / "root")
    path = raw / "ind.cora.test.index"
    lines = path.read_text().splitlines()
    lines[3] = "seventeen"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(GraphLearnError, match="ind.cora.test.index"):
        datasets.load("cora", root=tmp_path / "root")
