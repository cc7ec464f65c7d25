import io
import os
import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import is_undirected

from graphlearn import datasets
from graphlearn.data.dataset import NodeClassificationDataset, TaskKind
from graphlearn.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

heterophilous = datasets.heterophilous

EXPECTED = {  # counted from the raw files (edges: both directions of each stored pair)
    "tolokers": dict(nodes=11758, edges=1038000, features=10, classes=2, stored_edges=519000),
    "minesweeper": dict(nodes=10000, edges=78804, features=7, classes=2, stored_edges=39402),
}
METRICS = {"tolokers": "roc_auc", "minesweeper": "roc_auc", "questions": "roc_auc",
           "roman-empire": "accuracy", "amazon-ratings": "accuracy"}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _raw(data_root, name: str) -> tuple[Path, Path]:
    """(data root, raw file) of ``name``, through the ``data_root`` fixture."""
    relative = f"heterophilous/{name}.npz"
    root = data_root(relative)
    return root, root / relative


def _scratch_root(tmp_path: Path, name: str, payload: bytes) -> Path:
    folder = tmp_path / "root" / "heterophilous"
    folder.mkdir(parents=True)
    (folder / f"{name}.npz").write_bytes(payload)
    return tmp_path / "root"


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHLEARN_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def loaded():
    """Each real dataset loaded once per module (tolokers has ~1M directed edges)."""
    cache: dict[str, NodeClassificationDataset] = {}

    def get(data_root, name: str) -> NodeClassificationDataset:
        root, _ = _raw(data_root, name)
        if name not in cache:
            cache[name] = datasets.load(name, root=root, download=False)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_and_stats(data_root, loaded, name):
    ds = loaded(data_root, name)
    exp = EXPECTED[name]
    data = ds.data
    assert isinstance(ds, NodeClassificationDataset) and ds.task is TaskKind.NODE_CLASSIFICATION
    assert data.num_nodes == exp["nodes"] and data.num_edges == exp["edges"]
    assert ds.num_features == exp["features"] and ds.num_classes == exp["classes"]
    assert data.x.shape == (exp["nodes"], exp["features"]) and data.x.dtype == torch.float
    assert data.y.shape == (exp["nodes"],) and data.y.dtype == torch.long
    stats = ds.info.stats
    assert (stats["num_nodes"], stats["num_edges"], stats["num_features"], stats["num_classes"],
            stats["num_splits"]) == (exp["nodes"], exp["edges"], exp["features"], exp["classes"], 10)
    assert ds.split_sizes()["train"] == exp["nodes"] // 2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edges_are_symmetric_and_in_range(data_root, loaded, name):
    data = loaded(data_root, name).data
    ei = data.edge_index
    assert ei.dtype == torch.long and ei.shape == (2, EXPECTED[name]["edges"])
    assert int(ei.min()) >= 0 and int(ei.max()) < data.num_nodes
    assert is_undirected(ei, num_nodes=data.num_nodes)
    assert not bool((ei[0] == ei[1]).any())
    # Every stored pair appears once in each direction, nothing else.
    _, path = _raw(data_root, name)
    with np.load(path, allow_pickle=False) as npz:
        stored = torch.from_numpy(npz["edges"]).t()
    assert stored.size(1) == EXPECTED[name]["stored_edges"]
    both = torch.cat([stored, stored.flip(0)], dim=1)
    n = data.num_nodes
    assert torch.equal((both[0] * n + both[1]).sort()[0], (ei[0] * n + ei[1]).sort()[0])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ten_disjoint_splits(data_root, loaded, name):
    ds = loaded(data_root, name)
    data = ds.data
    assert ds.num_splits == 10
    for key in ("train_mask", "val_mask", "test_mask"):
        assert data[key].shape == (data.num_nodes, 10) and data[key].dtype == torch.bool
    assert not (data.train_mask & data.val_mask).any()
    assert not (data.train_mask & data.test_mask).any()
    assert not (data.val_mask & data.test_mask).any()
    # 50/25/25 of all nodes in every split
    covered = (data.train_mask | data.val_mask | data.test_mask).sum(0)
    assert torch.all(covered == data.num_nodes)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_split_matches_the_raw_masks(data_root, loaded, name):
    ds = loaded(data_root, name)
    _, path = _raw(data_root, name)
    view = ds.split(3)
    with np.load(path, allow_pickle=False) as npz:
        for key in ("train", "val", "test"):
            mask = view[f"{key}_mask"]
            assert mask.dim() == 1
            assert torch.equal(mask, torch.from_numpy(npz[f"{key}_masks"][3]))
        assert torch.equal(view.y, torch.from_numpy(npz["node_labels"]))
        assert torch.equal(view.x, torch.from_numpy(npz["node_features"]))
    assert ds.data.train_mask.dim() == 2  # split() leaves the dataset alone
    with pytest.raises(InvalidArgumentError, match="10 splits; split=10"):
        ds.split(10)


def test_metrics_urls_and_aliases():
    for name, metric in METRICS.items():
        info = datasets.info(name)
        assert info.metric == metric
        assert info.task is TaskKind.NODE_CLASSIFICATION
        file = name.replace("-", "_") + ".npz"
        assert info.raw_dir == "heterophilous" and info.raw_files == (file,)
        assert info.url == f"https://github.com/yandex-research/heterophilous-graphs/raw/main/data/{file}"
        assert "Platonov" in info.citation and "ICLR 2023" in info.citation
        assert "MIT" in info.license
        assert info.splits == "10 official random splits (50/25/25), select with dataset.split=i"
    assert datasets.info("roman_empire") is datasets.info("roman-empire")
    assert datasets.info("Amazon_Ratings") is datasets.info("amazon-ratings")
    assert datasets.info("questions").stats["num_features"] == 301


def _roman_empire_folder(data_root) -> Path:
    root = data_root("heterophilous")
    if (root / "heterophilous" / "roman_empire.npz").exists():
        pytest.skip("this data root has roman_empire.npz")
    return root


def test_missing_file_is_named(data_root, fresh_cache):
    root = _roman_empire_folder(data_root)
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("roman-empire", root=root, download=False)
    msg = str(info.value)
    assert "missing 1 raw file(s): roman_empire.npz." in msg
    assert str(root / "heterophilous") in msg
    assert "heterophilous-graphs/raw/main/data/roman_empire.npz" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_offline_download_failure_is_named(data_root, fresh_cache, monkeypatch):
    root = _roman_empire_folder(data_root)
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)
    urls = []

    def offline(url, folder, filename=None):
        urls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(heterophilous, "download_url", offline)
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("roman_empire", root=root)
    msg = str(info.value)
    assert "roman_empire.npz" in msg and str(root / "heterophilous") in msg
    assert "failed" in msg and "network is unreachable" in msg
    assert urls == ["https://github.com/yandex-research/heterophilous-graphs/raw/main/data/"
                    "roman_empire.npz"]


def test_download_fills_the_cache(data_root, tmp_path, fresh_cache, monkeypatch):
    """The fetch path, offline: a fake download_url serves the shared file."""
    _, src = _raw(data_root, "minesweeper")
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)

    def serve(url, folder, filename=None):
        assert url.endswith("/minesweeper.npz")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / "minesweeper.npz")
        return folder / "minesweeper.npz"

    monkeypatch.setattr(heterophilous, "download_url", serve)
    ds = datasets.load("minesweeper", root=tmp_path / "empty-root")
    assert ds.data.num_nodes == 10000
    assert (fresh_cache / "raw" / "heterophilous" / "minesweeper.npz").is_file()


def test_loading_does_not_write_into_the_data_root(data_root, fresh_cache):
    root, _ = _raw(data_root, "minesweeper")
    before = _snapshot(root / "heterophilous")
    first = datasets.load("minesweeper", root=root).data
    second = datasets.load("minesweeper", root=root).data  # from the processed cache
    assert _snapshot(root / "heterophilous") == before
    assert list((fresh_cache / "processed").glob("heterophilous-minesweeper-*.pt"))
    assert torch.equal(first.edge_index, second.edge_index)
    assert torch.equal(first.train_mask, second.train_mask)


def test_corrupt_npz_is_a_format_error(data_root, tmp_path, fresh_cache):
    _, src = _raw(data_root, "minesweeper")
    root = _scratch_root(tmp_path, "minesweeper", src.read_bytes()[:50_000])
    with pytest.raises(DataFormatError) as info:
        datasets.load("minesweeper", root=root)
    assert str(root / "heterophilous" / "minesweeper.npz") in str(info.value)


def test_corrupt_array_in_npz_is_a_format_error(data_root, tmp_path, fresh_cache):
    _, src = _raw(data_root, "minesweeper")
    raw = bytearray(src.read_bytes())
    raw[60_000:60_100] = bytes(b ^ 0xFF for b in raw[60_000:60_100])  # inside a member
    root = _scratch_root(tmp_path, "minesweeper", bytes(raw))
    with pytest.raises(DataFormatError, match=r"minesweeper.npz: key '\w+' cannot be read.*corrupt"):
        datasets.load("minesweeper", root=root)


def test_garbage_file_is_a_format_error(tmp_path, fresh_cache):
    root = _scratch_root(tmp_path, "tolokers", b"<html>404: Not Found</html>")
    with pytest.raises(DataFormatError, match="tolokers.npz is not a readable .npz archive"):
        datasets.load("tolokers", root=root)


def _valid_arrays(n: int = 6) -> dict[str, np.ndarray]:
    masks = np.zeros((10, n), dtype=bool)
    return dict(
        node_features=np.ones((n, 3), dtype=np.float32),
        node_labels=np.arange(n, dtype=np.int64) % 2,
        edges=np.array([[0, 1], [1, 2], [4, 5]], dtype=np.int64),
        train_masks=masks, val_masks=masks.copy(), test_masks=masks.copy(),
    )


def test_tiny_valid_npz_loads(tmp_path, fresh_cache):
    root = _scratch_root(tmp_path, "questions", _npz_bytes(**_valid_arrays()))
    data = datasets.load("questions", root=root).data
    assert data.num_nodes == 6 and data.edge_index.shape == (2, 6)
    assert data.train_mask.shape == (6, 10)


@pytest.mark.parametrize("key, value, match", [
    ("edges", None, r"lacks key\(s\) 'edges'"),
    ("edges", np.array([[0, 1, 2]], dtype=np.int64), r"key 'edges' should be .* \(\|E\|, 2\)"),
    ("edges", np.array([[0, 6]], dtype=np.int64), r"key 'edges' holds node id 6, outside \[0, 6\)"),
    ("node_labels", np.zeros(5, dtype=np.int64), r"key 'node_labels' should be .* \(6,\)"),
    ("node_features", np.ones(6, dtype=np.float32), r"key 'node_features' should be a 2-D"),
    ("train_masks", np.zeros((10, 6), dtype=np.int64), r"key 'train_masks' should be a bool"),
    ("test_masks", np.zeros((9, 6), dtype=bool), r"key 'test_masks' has 9 splits"),
])
def test_malformed_npz_names_file_and_key(tmp_path, fresh_cache, key, value, match):
    arrays = _valid_arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    root = _scratch_root(tmp_path, "questions", _npz_bytes(**arrays))
    with pytest.raises(DataFormatError, match=match) as info:
        datasets.load("questions", root=root)
    assert str(root / "heterophilous" / "questions.npz") in str(info.value)


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickled_object_array_is_refused_and_not_run(tmp_path, fresh_cache):
    marker = tmp_path / "pwned"
    arrays = _valid_arrays()
    evil = np.empty(6, dtype=object)
    evil[:] = [_RunsShell(marker)] * 6
    arrays["node_labels"] = evil
    root = _scratch_root(tmp_path, "amazon_ratings", _npz_bytes(**arrays))
    with pytest.raises(DataFormatError) as info:
        datasets.load("amazon-ratings", root=root)
    msg = str(info.value)
    assert "amazon_ratings.npz" in msg and "'node_labels'" in msg and "never unpickles" in msg
    assert not marker.exists()


def test_raw_pickle_instead_of_npz_is_refused_and_not_run(tmp_path, fresh_cache):
    marker = tmp_path / "pwned"
    root = _scratch_root(tmp_path, "amazon_ratings", pickle.dumps(_RunsShell(marker)))
    with pytest.raises(DataFormatError, match="amazon_ratings.npz is not a readable .npz"):
        datasets.load("amazon-ratings", root=root)
    assert not marker.exists()


def test_single_npy_is_a_format_error(tmp_path, fresh_cache):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    root = _scratch_root(tmp_path, "questions", buffer.getvalue())
    with pytest.raises(DataFormatError, match="should be an .npz archive"):
        datasets.load("questions", root=root)
