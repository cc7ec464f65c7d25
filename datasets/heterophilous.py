r"""The heterophilous node-classification benchmarks of Platonov et al.

From `"A critical look at the evaluation of GNNs under heterophily: Are we really making
progress?" <https://arxiv.org/abs/2302.11640>`_ (Platonov, Kuznedelev, Diskin, Babenko and
Prokhorenkova, ICLR 2023): five graphs with low homophily, built to replace the small,
leaky Chameleon/Squirrel benchmarks.

- **roman-empire**: words of the English Wikipedia article on the Roman Empire, linked when
  adjacent or syntactically dependent; label = syntactic role (18 classes).
- **amazon-ratings**: Amazon products, linked when often bought together; label = the
  average rating bucket (5 classes).
- **minesweeper**: a 100 x 100 Minesweeper grid; label = whether the cell is a mine
  (binary, ROC AUC).
- **tolokers**: workers of the Toloka crowdsourcing platform, linked when they worked on
  the same task; label = whether the worker was banned (binary, ROC AUC).
- **questions**: users of the Yandex Q question-answering site, linked when one answered
  the other; label = whether the user stayed active (binary, ROC AUC).

Each dataset ships 10 official random 50% / 25% / 25% train/val/test splits, held here as
masks of shape (|V|, 10); pick one with :meth:`~graphlearn.data.dataset.
NodeClassificationDataset.split` (``dataset.split=i`` in a config).

The raw files are the authors' ``data/<name>.npz`` (the same files
:class:`torch_geometric.datasets.HeterophilousGraphDataset` downloads). They are read with
``numpy.load(allow_pickle=False)``, so a file holding pickled objects is refused, never
unpickled. Edges are stored once per undirected pair; like the authors'
``dgl.to_bidirected``, loading adds the reverse direction
(:func:`torch_geometric.utils.to_undirected`).

**STATS:**

.. list-table::
    :widths: 10 10 10 10 10 10
    :header-rows: 1

    * - Name
      - #nodes
      - #edges
      - #features
      - #classes
      - metric
    * - Roman-empire
      - 22,662
      - 65,854
      - 300
      - 18
      - accuracy
    * - Amazon-ratings
      - 24,492
      - 186,100
      - 300
      - 5
      - accuracy
    * - Minesweeper
      - 10,000
      - 78,804
      - 7
      - 2
      - ROC AUC
    * - Tolokers
      - 11,758
      - 1,038,000
      - 10
      - 2
      - ROC AUC
    * - Questions
      - 48,921
      - 307,080
      - 301
      - 2
      - ROC AUC

#edges counts directed pairs (twice the paper's undirected counts).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphlearn.data.dataset import (
    DatasetInfo,
    NodeClassificationDataset,
    TaskKind,
    register_dataset,
)
from graphlearn.data.files import cached_tensors, download_url, require_raw_files
from graphlearn.errors import DataFormatError

__all__ = [
    "ROMAN_EMPIRE",
    "AMAZON_RATINGS",
    "MINESWEEPER",
    "TOLOKERS",
    "QUESTIONS",
    "HETEROPHILOUS_URL",
    "read_heterophilous",
    "load_heterophilous",
]

HETEROPHILOUS_URL = "https://github.com/yandex-research/heterophilous-graphs/raw/main/data"
"""Where the raw ``<name>.npz`` files are downloaded from (PyG's ``HeterophilousGraphDataset``
uses the same address)."""

NPZ_KEYS = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")
"""The arrays every raw ``.npz`` file must hold."""

# Bump when the processing below changes, so stale caches are rebuilt.
_PROCESSING_VERSION = "heterophilous-1"

_CITATION = (
    "Platonov, O., Kuznedelev, D., Diskin, M., Babenko, A. and Prokhorenkova, L. A critical "
    "look at the evaluation of GNNs under heterophily: Are we really making progress? "
    "ICLR 2023. arXiv:2302.11640."
)
_LICENSE = "MIT (the yandex-research/heterophilous-graphs repository that distributes the files)"
_SPLITS = "10 official random splits (50/25/25), select with dataset.split=i"


def _info(name: str, description: str, metric: str, stats: dict[str, int]) -> DatasetInfo:
    file = f"{name.replace('-', '_')}.npz"
    return DatasetInfo(
        name=name,
        task=TaskKind.NODE_CLASSIFICATION,
        description=description,
        metric=metric,
        splits=_SPLITS,
        url=f"{HETEROPHILOUS_URL}/{file}",
        citation=_CITATION,
        license=_LICENSE,
        raw_dir="heterophilous",
        raw_files=(file,),
        stats={**stats, "num_splits": 10},
    )


# num_edges counts directed pairs: twice the undirected edges stored in the .npz.
# Tolokers and Minesweeper were checked against the raw files.
TOLOKERS = _info(
    "tolokers",
    "Toloka crowd workers linked by shared tasks; predict which workers were banned",
    "roc_auc",
    {"num_nodes": 11758, "num_edges": 1038000, "num_features": 10, "num_classes": 2},
)
MINESWEEPER = _info(
    "minesweeper",
    "100x100 Minesweeper grid; predict which cells are mines from neighbour counts",
    "roc_auc",
    {"num_nodes": 10000, "num_edges": 78804, "num_features": 7, "num_classes": 2},
)
# The raw files of the next three are not in the shared data folder: these numbers are the
# paper's (Table 1: 32,927 / 93,050 / 153,540 undirected edges), doubled for num_edges.
ROMAN_EMPIRE = _info(
    "roman-empire",
    "Words of the Wikipedia article on the Roman Empire; predict each word's syntactic role",
    "accuracy",
    {"num_nodes": 22662, "num_edges": 65854, "num_features": 300, "num_classes": 18},
)
AMAZON_RATINGS = _info(
    "amazon-ratings",
    "Amazon products linked when co-purchased; predict the product's average rating class",
    "accuracy",
    {"num_nodes": 24492, "num_edges": 186100, "num_features": 300, "num_classes": 5},
)
QUESTIONS = _info(
    "questions",
    "Yandex Q users linked by answers; predict which users stayed active",
    "roc_auc",
    {"num_nodes": 48921, "num_edges": 307080, "num_features": 301, "num_classes": 2},
)


def _describe(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)} and dtype {array.dtype}"


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read :data:`NPZ_KEYS` from ``path`` without unpickling anything."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # np.load refuses a raw pickle with ValueError (allow_pickle=False), a truncated
        # archive with BadZipFile, an empty file with EOFError.
        raise DataFormatError(
            f"{path} is not a readable .npz archive ({type(exc).__name__}: {exc}); "
            f"re-download it from {HETEROPHILOUS_URL}"
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(
            f"{path} should be an .npz archive of the arrays {', '.join(NPZ_KEYS)}, "
            f"got a single .npy array of {_describe(npz)}"
        )
    with npz:
        missing = [key for key in NPZ_KEYS if key not in npz.files]
        if missing:
            raise DataFormatError(
                f"{path} lacks key(s) {', '.join(map(repr, missing))}; it holds "
                f"{', '.join(map(repr, npz.files)) or 'nothing'}. Re-download it from "
                f"{HETEROPHILOUS_URL}"
            )
        out = {}
        for key in NPZ_KEYS:
            try:
                out[key] = npz[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                why = (
                    "it holds pickled Python objects, which graphlearn never unpickles"
                    if "allow_pickle" in str(exc)
                    else f"the file is corrupt; re-download it from {HETEROPHILOUS_URL}"
                )
                raise DataFormatError(
                    f"{path}: key {key!r} cannot be read ({type(exc).__name__}: {exc}); {why}"
                ) from exc
        return out


def read_heterophilous(path: str | os.PathLike) -> dict[str, Tensor]:
    """Parse one raw ``<name>.npz`` file of Platonov et al. into tensors.

    Args:
        path (path): The ``.npz`` file.

    Returns:
        dict: ``x`` (|V|, F) float, ``edge_index`` (2, |E|) long with both directions of
        every stored edge, ``y`` (|V|,) long and boolean ``train_mask``/``val_mask``/
        ``test_mask`` of shape (|V|, S), one column per official split.

    Raises:
        DataFormatError: The file is not an ``.npz`` archive, holds pickled objects, lacks
            a key, or an array has the wrong shape, dtype or values; the message names the
            file and the key.
    """
    path = Path(path)
    arrays = _read_arrays(path)

    features = arrays["node_features"]
    if features.ndim != 2 or features.dtype.kind not in "biuf":
        raise DataFormatError(
            f"{path}: key 'node_features' should be a 2-D numeric array (|V|, F), "
            f"got {_describe(features)}"
        )
    num_nodes = features.shape[0]

    labels = arrays["node_labels"]
    if labels.shape != (num_nodes,) or labels.dtype.kind not in "iu":
        raise DataFormatError(
            f"{path}: key 'node_labels' should be an integer array of shape ({num_nodes},) "
            f"(one label per row of node_features), got {_describe(labels)}"
        )
    if labels.size and labels.min() < 0:
        raise DataFormatError(f"{path}: key 'node_labels' holds negative label {labels.min()}")

    edges = arrays["edges"]
    if edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype.kind not in "iu":
        raise DataFormatError(
            f"{path}: key 'edges' should be an integer array of shape (|E|, 2), "
            f"got {_describe(edges)}"
        )
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        bad = edges.min() if edges.min() < 0 else edges.max()
        raise DataFormatError(
            f"{path}: key 'edges' holds node id {bad}, outside [0, {num_nodes}) for the "
            f"{num_nodes} rows of node_features"
        )

    masks = {}
    num_splits = None
    for key in ("train_masks", "val_masks", "test_masks"):
        mask = arrays[key]
        if mask.ndim != 2 or mask.shape[1] != num_nodes or mask.dtype != np.bool_:
            raise DataFormatError(
                f"{path}: key {key!r} should be a bool array of shape (splits, {num_nodes}), "
                f"got {_describe(mask)}"
            )
        if num_splits is not None and mask.shape[0] != num_splits:
            raise DataFormatError(
                f"{path}: key {key!r} has {mask.shape[0]} splits but train_masks has "
                f"{num_splits}"
            )
        num_splits = mask.shape[0]
        masks[key.replace("_masks", "_mask")] = torch.from_numpy(mask).t().contiguous()

    edge_index = torch.from_numpy(edges.astype(np.int64, copy=False)).t().contiguous()
    return {
        "x": torch.from_numpy(features).to(torch.float),
        "edge_index": to_undirected(edge_index, num_nodes=num_nodes),
        "y": torch.from_numpy(labels.astype(np.int64, copy=False)),
        **masks,
    }


def _fetcher(file: str) -> Callable[[Path], None]:
    """``fetch(folder)``: download ``file`` from :data:`HETEROPHILOUS_URL` into ``folder``."""

    def fetch(folder: Path) -> None:
        download_url(f"{HETEROPHILOUS_URL}/{file}", folder)

    return fetch


def load_heterophilous(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> NodeClassificationDataset:
    """Load one of the heterophilous graphs with its 10 official splits.

    Args:
        info (DatasetInfo): :data:`ROMAN_EMPIRE`, :data:`AMAZON_RATINGS`,
            :data:`MINESWEEPER`, :data:`TOLOKERS` or :data:`QUESTIONS`.
        root (path, optional): Data root holding ``heterophilous/<name>.npz`` (underscores
            in the file name: ``roman_empire.npz``); defaults to ``$GRAPHLEARN_DATA``, then
            the download cache.
        download (bool, optional): Download a missing file from :data:`HETEROPHILOUS_URL`
            into the cache. (default: :obj:`True`)

    Returns:
        NodeClassificationDataset: One graph with masks of shape (|V|, 10); ``.split(i)``
        gives split ``i`` with 1-D masks.
    """
    (file,) = info.raw_files
    folder = require_raw_files(info, root, download=download, fetch=_fetcher(file))
    path = folder / file

    def build() -> dict[str, Tensor]:
        return read_heterophilous(path)

    tensors = cached_tensors(
        f"heterophilous-{info.name}", [path], build, version=_PROCESSING_VERSION
    )
    return NodeClassificationDataset(info, Data(**tensors))


for _dataset_info in (ROMAN_EMPIRE, AMAZON_RATINGS, MINESWEEPER, TOLOKERS, QUESTIONS):
    register_dataset(_dataset_info)(load_heterophilous)
del _dataset_info
