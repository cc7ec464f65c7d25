r"""The Planetoid citation graphs Cora, CiteSeer and PubMed with the public split.

From `"Revisiting Semi-Supervised Learning with Graph Embeddings"
<https://arxiv.org/abs/1603.08861>`_ (Yang, Cohen and Salakhutdinov, ICML 2016). Nodes are
documents, edges are citations, features are binary bag-of-words vectors (TF-IDF for
PubMed) and labels are topics. The public split trains on 20 nodes per class, validates on
the next 500 nodes and tests on 1,000 fixed nodes, as in :class:`torch_geometric.datasets.
Planetoid` with ``split="public"``.

The raw files are the Planetoid release ``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}``
(Python-2 pickles plus one text file). They are parsed with
:func:`graphlearn.data.safe_pickle.safe_load`, never ``pickle.load``, and processed exactly
as :func:`torch_geometric.io.read_planetoid_data` does, including the CiteSeer fix that adds
zero rows for the 15 isolated test nodes missing from ``tx``/``ty``.

**STATS:**

.. list-table::
    :widths: 10 10 10 10 10 10 10 10
    :header-rows: 1

    * - Name
      - #nodes
      - #edges
      - #features
      - #classes
      - #train
      - #val
      - #test
    * - Cora
      - 2,708
      - 10,556
      - 1,433
      - 7
      - 140
      - 500
      - 1,000
    * - CiteSeer
      - 3,327
      - 9,104
      - 3,703
      - 6
      - 120
      - 500
      - 1,000
    * - PubMed
      - 19,717
      - 88,648
      - 500
      - 3
      - 60
      - 500
      - 1,000

Edges are directed pairs (each undirected citation appears twice), with self-loops and
duplicates removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.io import read_txt_array
from torch_geometric.io.planetoid import edge_index_from_dict
from torch_geometric.transforms import NormalizeFeatures
from torch_geometric.utils import index_to_mask

from graphlearn.data.dataset import (
    DatasetInfo,
    NodeClassificationDataset,
    TaskKind,
    register_dataset,
)
from graphlearn.data.files import cached_tensors, download_url, require_raw_files
from graphlearn.data.safe_pickle import safe_load
from graphlearn.errors import DataFormatError, IndexOutOfRangeError

__all__ = ["CORA", "CITESEER", "PUBMED", "PLANETOID_URL", "read_planetoid", "load_planetoid"]

PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
"""Where the raw files are downloaded from (PyG's ``Planetoid.url``)."""

SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
"""The raw file suffixes: ``ind.<name>.<suffix>``."""

# Bump when the processing below changes, so stale caches are rebuilt.
_PROCESSING_VERSION = "planetoid-1"

_CITATION = (
    "Yang, Z., Cohen, W. W. and Salakhutdinov, R. Revisiting Semi-Supervised Learning with "
    "Graph Embeddings. ICML 2016. arXiv:1603.08861. "
    "Data: Sen, P. et al. Collective Classification in Network Data. AI Magazine 29(3), 2008."
)
_LICENSE = (
    "MIT (the Planetoid and GCN repositories that distribute the files); the underlying "
    "citation data (Sen et al. 2008) carries no explicit licence"
)
_SPLITS = (
    "Planetoid public split (PyG split='public'): train = the first {train} nodes "
    "(20 per class), val = the next 500 nodes, test = the 1,000 nodes in ind.{name}.test.index"
)


def _info(name: str, description: str, stats: dict[str, int]) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        task=TaskKind.NODE_CLASSIFICATION,
        description=description,
        metric="accuracy",
        splits=_SPLITS.format(train=stats["num_train"], name=name),
        url=PLANETOID_URL,
        citation=_CITATION,
        license=_LICENSE,
        raw_dir=f"planetoid/{name}/raw",
        raw_files=tuple(f"ind.{name}.{suffix}" for suffix in SUFFIXES),
        stats=stats,
    )


CORA = _info(
    "cora",
    "Cora citation graph: machine-learning papers, binary bag-of-words features, 7 topics",
    {"num_nodes": 2708, "num_edges": 10556, "num_features": 1433, "num_classes": 7,
     "num_train": 140, "num_val": 500, "num_test": 1000},
)
CITESEER = _info(
    "citeseer",
    "CiteSeer citation graph: computer-science papers, binary bag-of-words features, 6 topics",
    {"num_nodes": 3327, "num_edges": 9104, "num_features": 3703, "num_classes": 6,
     "num_train": 120, "num_val": 500, "num_test": 1000},
)
PUBMED = _info(
    "pubmed",
    "PubMed diabetes citation graph: TF-IDF word features, 3 diabetes types",
    {"num_nodes": 19717, "num_edges": 88648, "num_features": 500, "num_classes": 3,
     "num_train": 60, "num_val": 500, "num_test": 1000},
)


def _read_matrix(path: Path) -> Tensor:
    """Read a feature (``x``) or one-hot label (``y``) pickle as a dense float tensor."""
    out = safe_load(path)
    out = out.todense() if hasattr(out, "todense") else out
    if not isinstance(out, np.ndarray) or out.ndim != 2 or out.dtype.kind not in "biuf":
        what = f"a {out.ndim}-D {out.dtype} array" if isinstance(out, np.ndarray) else repr(
            type(out).__name__)
        raise DataFormatError(
            f"{path} should hold a 2-D numeric matrix (scipy CSR or numpy array), got {what}"
        )
    return torch.from_numpy(np.asarray(out)).to(torch.float)


def _read_test_index(path: Path) -> Tensor:
    try:
        index = read_txt_array(str(path), dtype=torch.long)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise DataFormatError(
            f"{path} should hold one integer node id per line ({type(exc).__name__}: {exc})"
        ) from exc
    if index.dim() > 1:
        raise DataFormatError(
            f"{path} should hold one integer node id per line, got {index.size(1)} per line"
        )
    return index.view(-1)


def _read_graph(path: Path, num_nodes: int) -> Tensor:
    graph = safe_load(path)
    if not isinstance(graph, Mapping) or len(graph) == 0:
        what = "an empty dict" if isinstance(graph, Mapping) else f"a {type(graph).__name__}"
        raise DataFormatError(
            f"{path} should hold a non-empty dict of adjacency lists, got {what}"
        )
    try:
        edge_index = edge_index_from_dict(graph_dict=graph, num_nodes=num_nodes)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataFormatError(
            f"{path} should map integer node ids to lists of integer node ids "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if edge_index.dtype != torch.long:
        raise DataFormatError(f"{path} holds non-integer node ids ({edge_index.dtype})")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        bad = int(edge_index.min()) if int(edge_index.min()) < 0 else int(edge_index.max())
        raise IndexOutOfRangeError(
            f"{path} holds node id {bad}, outside [0, {num_nodes}) for a graph with "
            f"{num_nodes} nodes; the file does not belong with the other ind.* files"
        )
    return edge_index


def _check_same_size(a: Tensor, b: Tensor, path_a: Path, path_b: Path, dim: int, what: str) -> None:
    if a.size(dim) != b.size(dim):
        raise DataFormatError(
            f"{path_a} and {path_b} disagree on the number of {what} "
            f"({a.size(dim)} vs {b.size(dim)}); the files do not belong together"
        )


def read_planetoid(folder: str | os.PathLike, name: str) -> dict[str, Tensor]:
    """Parse the Planetoid raw files of ``name`` in ``folder`` into tensors.

    Reproduces :func:`torch_geometric.io.read_planetoid_data` for Cora, CiteSeer and PubMed
    but reads the pickles with :func:`~graphlearn.data.safe_pickle.safe_load` and checks
    that the files agree with each other.

    Args:
        folder (path): Folder holding ``ind.<name>.*``.
        name (str): ``"cora"``, ``"citeseer"`` or ``"pubmed"``.

    Returns:
        dict: ``x`` (|V|, F) float, ``edge_index`` (2, |E|) long, ``y`` (|V|,) long and the
        boolean ``train_mask``/``val_mask``/``test_mask`` of shape (|V|,).

    Raises:
        UnsafeFileError: A pickle names a global outside the Planetoid allowlist.
        DataFormatError: A file is truncated, corrupt or inconsistent with the others.
    """
    folder = Path(folder)
    name = name.lower()
    paths = {suffix: folder / f"ind.{name}.{suffix}" for suffix in SUFFIXES}
    x, tx, allx, y, ty, ally = (
        _read_matrix(paths[s]) for s in ("x", "tx", "allx", "y", "ty", "ally")
    )
    test_index = _read_test_index(paths["test.index"])

    _check_same_size(x, y, paths["x"], paths["y"], 0, "rows")
    _check_same_size(tx, ty, paths["tx"], paths["ty"], 0, "rows")
    _check_same_size(allx, ally, paths["allx"], paths["ally"], 0, "rows")
    _check_same_size(x, tx, paths["x"], paths["tx"], 1, "feature columns")
    _check_same_size(x, allx, paths["x"], paths["allx"], 1, "feature columns")
    _check_same_size(y, ty, paths["y"], paths["ty"], 1, "label columns")
    _check_same_size(y, ally, paths["y"], paths["ally"], 1, "label columns")
    if test_index.numel() != tx.size(0):
        raise DataFormatError(
            f"{paths['test.index']} lists {test_index.numel()} test nodes but {paths['tx']} has "
            f"{tx.size(0)} rows; the files do not belong together"
        )

    train_index = torch.arange(y.size(0), dtype=torch.long)
    val_index = torch.arange(y.size(0), y.size(0) + 500, dtype=torch.long)
    sorted_test_index = test_index.sort()[0]

    if name == "citeseer":
        # Some CiteSeer test nodes are isolated and absent from tx/ty, so the test ids are
        # not consecutive: add them as zero rows (PyG and Kipf's GCN do the same).
        len_test_indices = int(test_index.max() - test_index.min()) + 1
        tx_ext = torch.zeros(len_test_indices, tx.size(1), dtype=tx.dtype)
        tx_ext[sorted_test_index - test_index.min(), :] = tx
        ty_ext = torch.zeros(len_test_indices, ty.size(1), dtype=ty.dtype)
        ty_ext[sorted_test_index - test_index.min(), :] = ty
        tx, ty = tx_ext, ty_ext

    num_nodes = allx.size(0) + tx.size(0)
    if int(val_index[-1]) >= num_nodes:
        raise DataFormatError(
            f"{paths['y']} has {y.size(0)} training rows, so the 500 validation nodes after "
            f"them need {y.size(0) + 500} nodes, but {paths['allx'].name} + {paths['tx'].name} "
            f"have only {num_nodes}; the files do not belong together"
        )
    lo, hi = int(test_index.min()), int(test_index.max())
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise DataFormatError(
            f"{paths['test.index']} holds node id {bad}, outside [0, {num_nodes}) for the "
            f"{num_nodes} nodes of {paths['allx'].name} + {paths['tx'].name}"
        )

    x = torch.cat([allx, tx], dim=0)
    x[test_index] = x[sorted_test_index]

    y = torch.cat([ally, ty], dim=0).max(dim=1)[1]
    y[test_index] = y[sorted_test_index]

    edge_index = _read_graph(paths["graph"], num_nodes=y.size(0))
    return {
        "x": x,
        "edge_index": edge_index,
        "y": y,
        "train_mask": index_to_mask(train_index, size=y.size(0)),
        "val_mask": index_to_mask(val_index, size=y.size(0)),
        "test_mask": index_to_mask(test_index, size=y.size(0)),
    }


def _fetcher(name: str) -> Callable[[Path], None]:
    """``fetch(folder)``: download each missing ``ind.<name>.*`` file into ``folder``."""

    def fetch(folder: Path) -> None:
        for suffix in SUFFIXES:
            download_url(f"{PLANETOID_URL}/ind.{name}.{suffix}", folder)

    return fetch


def load_planetoid(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    normalize_features: bool = False,
) -> NodeClassificationDataset:
    """Load Cora, CiteSeer or PubMed with the public split.

    Args:
        info (DatasetInfo): :data:`CORA`, :data:`CITESEER` or :data:`PUBMED`.
        root (path, optional): Data root holding ``planetoid/<name>/raw/``; defaults to
            ``$GRAPHLEARN_DATA``, then the download cache.
        download (bool, optional): Download missing raw files from :data:`PLANETOID_URL`
            into the cache. (default: :obj:`True`)
        normalize_features (bool, optional): Row-normalise ``x`` to sum to one
            (:class:`torch_geometric.transforms.NormalizeFeatures`); off by default so the
            features stay the raw bag-of-words and a model config can choose.
            (default: :obj:`False`)

    Returns:
        NodeClassificationDataset: One graph with 1-D boolean masks.
    """
    folder = require_raw_files(info, root, download=download, fetch=_fetcher(info.name))
    raw_paths = [folder / f for f in info.raw_files]

    def build() -> dict[str, Tensor]:
        return read_planetoid(folder, info.name)

    tensors = cached_tensors(f"planetoid-{info.name}", raw_paths, build, version=_PROCESSING_VERSION)
    data = Data(**tensors)
    if normalize_features:
        data = NormalizeFeatures()(data)
    return NodeClassificationDataset(info, data)


for _dataset_info in (CORA, CITESEER, PUBMED):
    register_dataset(_dataset_info)(load_planetoid)
del _dataset_info
