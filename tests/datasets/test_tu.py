import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from graphlearn import datasets
from graphlearn.data.dataset import GraphClassificationDataset, TaskKind
from graphlearn.errors import DataFormatError, DataNotFoundError, IndexOutOfRangeError

tu = datasets.tu

EXPECTED = {  # PyG TUDataset (use_node_attr=False) numbers
    "mutag": dict(graphs=188, classes=2, features=7, features_attr=7, nodes=3371, edges=7442),
    "proteins": dict(graphs=1113, classes=2, features=3, features_attr=4, nodes=43471,
                     edges=162088),
    "enzymes": dict(graphs=600, classes=6, features=3, features_attr=21, nodes=19580,
                    edges=74564),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHLEARN_CACHE", str(cache))
    return cache


@pytest.fixture
def mutag_copy(data_root, tmp_path):
    """A scratch data root holding a writable copy of MUTAG's raw files."""
    src = data_root("tu/MUTAG/raw") / "tu" / "MUTAG" / "raw"
    dst = tmp_path / "root" / "tu" / "MUTAG" / "raw"
    shutil.copytree(src, dst)
    for path in dst.iterdir():
        path.chmod(0o644)
    return dst


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stats_match_pyg(data_root, name):
    exp = EXPECTED[name]
    root = data_root(f"tu/{name.upper()}/raw")
    ds = datasets.load(name, root=root, download=False)
    assert isinstance(ds, GraphClassificationDataset)
    assert ds.task is TaskKind.GRAPH_CLASSIFICATION
    assert len(ds.graphs) == exp["graphs"] and ds.num_classes == exp["classes"]
    assert ds.num_features == exp["features"]
    assert ds.graphs.y.shape == (exp["graphs"],)
    assert isinstance(ds.graphs[0], Data) and ds.graphs[0].y.shape == (1,)
    assert sum(g.num_nodes for g in ds.graphs) == exp["nodes"]
    assert sum(g.num_edges for g in ds.graphs) == exp["edges"]
    stats = ds.info.stats
    assert (stats["num_graphs"], stats["num_classes"], stats["num_features"]) == (
        exp["graphs"], exp["classes"], exp["features"])
    assert (stats["num_nodes"], stats["num_edges"]) == (exp["nodes"], exp["edges"])


@pytest.mark.parametrize("name", ["proteins", "enzymes"])
def test_use_node_attr(data_root, name):
    root = data_root(f"tu/{name.upper()}/raw")
    plain = datasets.load(name, root=root)
    with_attr = datasets.load(name, root=root, use_node_attr=True)
    assert with_attr.num_features == EXPECTED[name]["features_attr"]
    # the one-hot node labels are the last columns either way
    assert torch.equal(with_attr.graphs[5].x[:, -plain.num_features:], plain.graphs[5].x)


def test_mutag_keeps_one_hot_edge_labels_like_pyg(data_root):
    ds = datasets.load("mutag", root=data_root("tu/MUTAG/raw"))
    edge_attr = ds.graphs[0].edge_attr
    assert edge_attr.shape[1] == 4 and torch.equal(edge_attr.sum(1), torch.ones(len(edge_attr)))


def test_default_split_is_stratified_80_10_10(data_root):
    ds = datasets.load("proteins", root=data_root("tu/PROTEINS/raw"))
    sizes = ds.split_sizes()
    assert sizes == {"train": 890, "val": 111, "test": 112}
    every = torch.cat(list(ds.split_index.values()))
    assert torch.equal(every.sort().values, torch.arange(1113))
    overall = torch.bincount(ds.labels).float() / 1113
    for index in ds.split_index.values():
        share = torch.bincount(ds.labels[index], minlength=2).float() / index.numel()
        assert torch.allclose(share, overall, atol=0.02)
    again = datasets.load("proteins", root=data_root("tu/PROTEINS/raw"))
    assert all(torch.equal(ds.split_index[k], again.split_index[k]) for k in ds.split_index)
    assert len(ds.subset(ds.split_index["val"])) == 111


def test_loading_does_not_write_into_the_data_root(data_root, fresh_cache):
    root = data_root("tu/MUTAG/raw")
    before = _snapshot(root / "tu")
    datasets.load("mutag", root=root)
    assert _snapshot(root / "tu") == before
    assert list((fresh_cache / "processed").glob("tu-MUTAG-*.pt"))


def test_processed_cache_is_used_the_second_time(data_root, fresh_cache, monkeypatch):
    root = data_root("tu/MUTAG/raw")
    calls = []
    real = tu.read_tu
    monkeypatch.setattr(tu, "read_tu", lambda *a: calls.append(a) or real(*a))
    first = datasets.load("mutag", root=root)
    second = datasets.load("mutag", root=root)
    assert len(calls) == 1
    assert torch.equal(first.graphs.y, second.graphs.y)
    assert torch.equal(first.graphs[7].edge_index, second.graphs[7].edge_index)


def test_missing_root_names_every_file(tmp_path, fresh_cache):
    with pytest.raises(DataNotFoundError) as info:
        datasets.load("mutag", root=tmp_path / "nowhere", download=False)
    msg = str(info.value)
    for name in datasets.info("mutag").raw_files:
        assert name in msg
    assert str(tmp_path / "nowhere" / "tu" / "MUTAG" / "raw") in msg


def test_download_extracts_the_zip(mutag_copy, tmp_path, fresh_cache, monkeypatch):
    """The fetch path, offline: a fake download_url serves a TU-style zip."""
    archive = tmp_path / "MUTAG.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in mutag_copy.iterdir():
            zf.write(path, f"MUTAG/{path.name}")
        zf.writestr("../../escape.txt", "must not be written outside the raw folder")
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)
    urls = []

    def serve(url, folder, filename=None):
        urls.append(url)
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(archive, folder / "MUTAG.zip"))

    monkeypatch.setattr(tu, "download_url", serve)
    ds = datasets.load("mutag", root=tmp_path / "empty-root")
    assert len(ds.graphs) == 188
    assert urls == ["https://www.chrsmrrs.com/graphkerneldatasets/MUTAG.zip"]
    raw = fresh_cache / "raw" / "tu" / "MUTAG" / "raw"
    assert {p.name for p in raw.iterdir()} == {p.name for p in mutag_copy.iterdir()}
    assert not list(fresh_cache.rglob("escape.txt"))


def _edit_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_non_integer_edge_line(mutag_copy, fresh_cache):
    _edit_line(mutag_copy / "MUTAG_A.txt", 3, "2, x")
    with pytest.raises(DataFormatError) as info:
        datasets.load("mutag", root=mutag_copy.parents[2])
    msg = str(info.value)
    assert str(mutag_copy / "MUTAG_A.txt") in msg and "line 3" in msg


@pytest.mark.parametrize("bad", ["99999", "0"])
def test_edge_id_out_of_range(mutag_copy, fresh_cache, bad):
    _edit_line(mutag_copy / "MUTAG_A.txt", 5, f"{bad}, 1")
    with pytest.raises(IndexOutOfRangeError) as info:
        datasets.load("mutag", root=mutag_copy.parents[2])
    msg = str(info.value)
    assert str(mutag_copy / "MUTAG_A.txt") in msg and "line 5" in msg and bad in msg


def test_edge_between_graphs(mutag_copy, fresh_cache):
    _edit_line(mutag_copy / "MUTAG_A.txt", 1, "1, 3371")
    with pytest.raises(DataFormatError, match="MUTAG_A.txt line 1 joins node 1 of graph 1"):
        datasets.load("mutag", root=mutag_copy.parents[2])


def test_row_count_mismatch(mutag_copy, fresh_cache):
    path = mutag_copy / "MUTAG_graph_labels.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-3]))
    with pytest.raises(DataFormatError, match="MUTAG_graph_labels.txt has 185 lines .*188"):
        datasets.load("mutag", root=mutag_copy.parents[2])


def test_unsorted_graph_indicator(mutag_copy, fresh_cache):
    _edit_line(mutag_copy / "MUTAG_graph_indicator.txt", 2, "5")
    with pytest.raises(DataFormatError, match="MUTAG_graph_indicator.txt line 2 holds graph id 5"):
        datasets.load("mutag", root=mutag_copy.parents[2])


def test_missing_final_newline(mutag_copy, fresh_cache):
    path = mutag_copy / "MUTAG_node_labels.txt"
    path.write_text(path.read_text().rstrip("\n"))
    with pytest.raises(DataFormatError, match="MUTAG_node_labels.txt does not end with a newline"):
        datasets.load("mutag", root=mutag_copy.parents[2])
