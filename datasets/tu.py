r"""Graph classification benchmarks from the TU collection: MUTAG, PROTEINS and ENZYMES.

From `"TUDataset: A collection of benchmark datasets for learning with graphs"
<https://arxiv.org/abs/2007.08663>`_ (Morris et al., GRL+ workshop 2020), in the TU text
format: ``<NAME>_A.txt`` (1-based edge list of all graphs), ``_graph_indicator.txt`` (graph id
of each node), ``_graph_labels.txt``, ``_node_labels.txt`` and, where present,
``_node_attributes.txt`` and ``_edge_labels.txt``.

Files are parsed with PyG's :func:`torch_geometric.io.read_tu_data` after a strict check
that names the offending file and line (a non-integer entry, an edge endpoint outside the
node range, an edge between two graphs, row counts that disagree). Options follow
:class:`torch_geometric.datasets.TUDataset`'s defaults: node features are the one-hot node
labels (``use_node_attr=False``) and ``edge_attr`` holds the one-hot edge labels where a
dataset has them (``use_edge_attr=False`` drops only continuous edge attributes).

The default split is a stratified 80% / 10% / 10% train / val / test split drawn with seed 0;
:meth:`~graphlearn.data.dataset.GraphClassificationDataset.folds` gives stratified k-fold
cross-validation instead.

**STATS:**

.. list-table::
    :widths: 20 10 10 10 10 10
    :header-rows: 1

    * - Name
      - #graphs
      - #nodes
      - #edges
      - #features
      - #classes
    * - MUTAG
      - 188
      - ~17.9
      - ~39.6
      - 7
      - 2
    * - PROTEINS
      - 1,113
      - ~39.1
      - ~145.6
      - 3 (4 with ``use_node_attr``)
      - 2
    * - ENZYMES
      - 600
      - ~32.6
      - ~124.3
      - 3 (21 with ``use_node_attr``)
      - 6

#nodes and #edges are per-graph averages; edges are directed pairs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.io import read_tu_data

from graphlearn.data.dataset import (
    DatasetInfo,
    GraphClassificationDataset,
    TaskKind,
    register_dataset,
)
from graphlearn.data.files import cached_tensors, download_url, require_raw_files
from graphlearn.errors import DataFormatError, IndexOutOfRangeError

from .karate import stratified_split

__all__ = [
    "MUTAG",
    "PROTEINS",
    "ENZYMES",
    "TU_URL",
    "SPLIT_SEED",
    "TUGraphs",
    "check_tu_files",
    "read_tu",
    "load_tu",
]

TU_URL = "https://www.chrsmrrs.com/graphkerneldatasets"
"""Where ``<NAME>.zip`` is downloaded from (PyG's ``TUDataset.url``)."""

SPLIT_SEED = 0
"""Seed of the default stratified 80/10/10 split."""

# Bump when the processing below changes, so stale caches are rebuilt.
_PROCESSING_VERSION = "tu-1"

_SIZE_KEYS = ("num_node_attributes", "num_node_labels", "num_edge_attributes", "num_edge_labels")

_TUDATASET_CITATION = (
    "Morris, C., Kriege, N. M., Bause, F., Kersting, K., Mutzel, P. and Neumann, M. TUDataset: "
    "A collection of benchmark datasets for learning with graphs. ICML 2020 Workshop on Graph "
    "Representation Learning and Beyond (GRL+ 2020). arXiv:2007.08663"
)
_LICENSE = (
    "No explicit licence; distributed for research use by the TUDataset collection "
    "(https://chrsmrrs.github.io/datasets/); cite the original source given in README.txt"
)
_SPLITS = (
    f"stratified 80% / 10% / 10% train / val / test split of the graphs with seed {SPLIT_SEED} "
    "(sklearn train_test_split); stratified k-fold via folds(k)"
)


def _info(
    name: str, tu_name: str, files: tuple[str, ...], description: str, citation: str,
    stats: dict[str, int],
) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        task=TaskKind.GRAPH_CLASSIFICATION,
        description=description,
        metric="accuracy",
        splits=_SPLITS,
        url=f"{TU_URL}/{tu_name}.zip",
        citation=f"{citation} Collection: {_TUDATASET_CITATION}.",
        license=_LICENSE,
        raw_dir=f"tu/{tu_name}/raw",
        raw_files=tuple(f"{tu_name}_{f}.txt" for f in files),
        stats=stats,
    )


MUTAG = _info(
    "mutag",
    "MUTAG",
    ("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels"),
    "MUTAG: 188 nitroaromatic compounds (atoms and bonds), labelled by mutagenic effect "
    "on Salmonella typhimurium",
    "Debnath, A. K., Lopez de Compadre, R. L., Debnath, G., Shusterman, A. J. and Hansch, C. "
    "Structure-activity relationship of mutagenic aromatic and heteroaromatic nitro compounds. "
    "Correlation with molecular orbital energies and hydrophobicity. J. Med. Chem. "
    "34(2):786-797, 1991.",
    {"num_graphs": 188, "num_nodes": 3371, "num_edges": 7442, "num_features": 7,
     "num_classes": 2, "num_edge_features": 4},
)
PROTEINS = _info(
    "proteins",
    "PROTEINS",
    ("A", "graph_indicator", "graph_labels", "node_labels", "node_attributes"),
    "PROTEINS: 1,113 protein structures (secondary-structure elements), labelled enzyme "
    "or non-enzyme",
    "Borgwardt, K. M., Ong, C. S., Schoenauer, S., Vishwanathan, S. V. N., Smola, A. J. and "
    "Kriegel, H.-P. Protein function prediction via graph kernels. Bioinformatics "
    "21(suppl 1):i47-i56, 2005; Dobson, P. D. and Doig, A. J. Distinguishing enzyme structures "
    "from non-enzymes without alignments. J. Mol. Biol. 330(4):771-783, 2003.",
    {"num_graphs": 1113, "num_nodes": 43471, "num_edges": 162088, "num_features": 3,
     "num_classes": 2, "num_node_attributes": 1},
)
ENZYMES = _info(
    "enzymes",
    "ENZYMES",
    ("A", "graph_indicator", "graph_labels", "node_labels", "node_attributes"),
    "ENZYMES: 600 protein tertiary structures, labelled by their EC top-level enzyme class",
    "Borgwardt, K. M., Ong, C. S., Schoenauer, S., Vishwanathan, S. V. N., Smola, A. J. and "
    "Kriegel, H.-P. Protein function prediction via graph kernels. Bioinformatics "
    "21(suppl 1):i47-i56, 2005; Schomburg, I. et al. BRENDA, the enzyme database: updates and "
    "major new developments. Nucleic Acids Research 32(suppl 1):D431-D433, 2004.",
    {"num_graphs": 600, "num_nodes": 19580, "num_edges": 74564, "num_features": 3,
     "num_classes": 6, "num_node_attributes": 18},
)
_TU_NAMES = {"mutag": "MUTAG", "proteins": "PROTEINS", "enzymes": "ENZYMES"}


class TUGraphs(InMemoryDataset):
    r"""The collated graphs of one TU dataset: ``graphs[i]`` is a ``Data``, ``graphs.y`` all labels.

    A read-only :class:`~torch_geometric.data.InMemoryDataset` (no root, no processing)
    built from the output of :func:`torch_geometric.io.read_tu_data`.

    Args:
        name (str): TU name (``"MUTAG"``).
        data (Data): Collated storage.
        slices (dict[str, Tensor]): Per-attribute slice boundaries.
        sizes (dict[str, int]): ``num_node_attributes``, ``num_node_labels``,
            ``num_edge_attributes`` and ``num_edge_labels``, as in ``TUDataset.sizes``.
    """

    def __init__(self, name: str, data: Data, slices: dict[str, Tensor], sizes: dict[str, int]):
        super().__init__(root=None)
        self.name = name
        self.data, self.slices = data, slices
        self.sizes = dict(sizes)

    @property
    def num_node_labels(self) -> int:
        return self.sizes["num_node_labels"]

    @property
    def num_node_attributes(self) -> int:
        return self.sizes["num_node_attributes"]

    @property
    def num_edge_labels(self) -> int:
        return self.sizes["num_edge_labels"]

    @property
    def num_edge_attributes(self) -> int:
        return self.sizes["num_edge_attributes"]

    def __repr__(self) -> str:
        return f"{self.name}({len(self)})"


# ---------------------------------------------------------------------------------------
# Checking and parsing the raw files
# ---------------------------------------------------------------------------------------


def _first_bad_line(path: Path, kind: type, columns: int | None) -> str:
    """Describe the first line of ``path`` that is not ``columns`` comma-separated ``kind``s."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.split(",")
            try:
                [kind(v) for v in fields]
            except ValueError:
                return f"line {number} is {line.rstrip()!r}"
            if columns is not None and len(fields) != columns:
                return f"line {number} has {len(fields)} values, expected {columns}"
    return "the file could not be parsed"


def _load_table(path: Path, kind: type, columns: int | None = None) -> np.ndarray:
    """Read a comma-separated TU table as a 2-D array, naming the file and line on failure."""
    what = "integers" if kind is int else "numbers"
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path} is empty; it should hold comma-separated {what}")
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise DataFormatError(
                f"{path} does not end with a newline, so its last line would be dropped by the "
                f"TU parser; restore the original file (or append a newline)"
            )
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64 if kind is int else np.float64,
                           ndmin=2)
    except ValueError as exc:
        raise DataFormatError(
            f"{path} should hold comma-separated {what}, but {_first_bad_line(path, kind, columns)}"
        ) from exc
    if columns is not None and table.shape[1] != columns:
        raise DataFormatError(
            f"{path} should hold {columns} comma-separated {what} per line, got {table.shape[1]}"
        )
    return table


def _check_rows(path: Path, table: np.ndarray, expected: int, of: str) -> None:
    if table.shape[0] != expected:
        raise DataFormatError(
            f"{path} has {table.shape[0]} lines but should have one per {of} ({expected}); "
            f"the files do not belong together"
        )


def check_tu_files(folder: str | os.PathLike, prefix: str) -> None:
    """Check the TU files ``<prefix>_*.txt`` in ``folder`` before PyG parses them.

    PyG's parser trusts its input: an edge endpoint of 0 silently wraps around to the last
    node, and a malformed line surfaces as a bare ``ValueError``. This check raises a
    graphlearn error naming the file (and line) instead.

    Raises:
        DataFormatError: A file is empty, holds a non-numeric entry, or its row count or
            graph ids disagree with the other files, or an edge joins two graphs.
        IndexOutOfRangeError: ``<prefix>_A.txt`` holds a node id outside ``[1, n]``.
    """
    folder = Path(folder)
    path = {p.name[len(prefix) + 1:-4]: p for p in folder.glob(f"{prefix}_*.txt")}
    for required in ("A", "graph_indicator"):
        if required not in path:
            raise DataFormatError(f"{folder} has no {prefix}_{required}.txt")

    edges = _load_table(path["A"], int, columns=2)
    indicator = _load_table(path["graph_indicator"], int, columns=1)[:, 0]
    num_nodes = indicator.shape[0]
    steps = np.diff(indicator)
    if indicator[0] != 1 or ((steps != 0) & (steps != 1)).any():
        line = 1 if indicator[0] != 1 else int(np.flatnonzero((steps != 0) & (steps != 1))[0]) + 2
        raise DataFormatError(
            f"{path['graph_indicator']} line {line} holds graph id {indicator[line - 1]}; graph "
            f"ids must start at 1 and grow by at most 1 per line (nodes listed graph by graph)"
        )
    num_graphs = int(indicator[-1])

    out_of_range = (edges < 1) | (edges > num_nodes)
    if out_of_range.any():
        row, col = (int(i) for i in np.argwhere(out_of_range)[0])
        raise IndexOutOfRangeError(
            f"{path['A']} line {row + 1} holds node id {edges[row, col]}, outside [1, {num_nodes}] "
            f"({num_nodes} nodes are listed in {path['graph_indicator'].name}); node ids are "
            f"1-based line numbers of the graph indicator"
        )
    crossing = indicator[edges[:, 0] - 1] != indicator[edges[:, 1] - 1]
    if crossing.any():
        row = int(np.flatnonzero(crossing)[0])
        raise DataFormatError(
            f"{path['A']} line {row + 1} joins node {edges[row, 0]} of graph "
            f"{indicator[edges[row, 0] - 1]} to node {edges[row, 1]} of graph "
            f"{indicator[edges[row, 1] - 1]}; an edge must stay inside one graph"
        )

    per_line = {
        "graph_labels": (int, num_graphs, "graph"),
        "graph_attributes": (float, num_graphs, "graph"),
        "node_labels": (int, num_nodes, "node"),
        "node_attributes": (float, num_nodes, "node"),
        "edge_labels": (int, edges.shape[0], f"edge of {path['A'].name}"),
        "edge_attributes": (float, edges.shape[0], f"edge of {path['A'].name}"),
    }
    for key, (kind, expected, of) in per_line.items():
        if key in path:
            _check_rows(path[key], _load_table(path[key], kind), expected, of)


def read_tu(folder: str | os.PathLike, prefix: str) -> tuple[Data, dict[str, Tensor], dict[str, int]]:
    """Check, then parse the TU files of ``prefix`` with :func:`torch_geometric.io.read_tu_data`.

    Returns:
        ``(data, slices, sizes)`` exactly as ``read_tu_data`` returns them: the collated
        ``Data`` (all node attributes and labels in ``x``), its slices, and the sizes of the
        attribute and label blocks.
    """
    check_tu_files(folder, prefix)
    try:
        return read_tu_data(str(folder), prefix)
    except Exception as exc:  # anything the check above did not foresee
        raise DataFormatError(
            f"the TU files {prefix}_*.txt in {folder} could not be parsed "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _to_tensors(data: Data, slices: dict[str, Tensor], sizes: dict[str, int]) -> dict[str, Tensor]:
    out = {f"data.{key}": value for key, value in data.to_dict().items() if isinstance(value, Tensor)}
    out.update({f"slices.{key}": value for key, value in slices.items()})
    out["sizes"] = torch.tensor([sizes[k] for k in _SIZE_KEYS], dtype=torch.long)
    return out


def _from_tensors(tensors: dict[str, Tensor]) -> tuple[Data, dict[str, Tensor], dict[str, int]]:
    data = Data(**{k[5:]: v for k, v in tensors.items() if k.startswith("data.")})
    slices = {k[7:]: v for k, v in tensors.items() if k.startswith("slices.")}
    sizes = dict(zip(_SIZE_KEYS, tensors["sizes"].tolist(), strict=True))
    return data, slices, sizes


# ---------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------


def _extract(archive: Path, folder: Path, tu_name: str) -> None:
    """Extract ``<tu_name>/<tu_name>_*.txt`` and README.txt from ``archive`` into ``folder``.

    Members are written by base name only, so an archive cannot write outside ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                base = PurePosixPath(member.filename).name
                wanted = (base.startswith(f"{tu_name}_") and base.endswith(".txt")) or (
                    base == "README.txt")
                if member.is_dir() or not wanted:
                    continue
                with zf.open(member) as src, tempfile.NamedTemporaryFile(
                    dir=folder, delete=False
                ) as tmp:
                    shutil.copyfileobj(src, tmp)
                os.replace(tmp.name, folder / base)
    except zipfile.BadZipFile as exc:
        archive.unlink(missing_ok=True)
        raise OSError(f"{archive} is not a valid zip archive ({exc})") from exc


def _fetcher(tu_name: str) -> Callable[[Path], None]:
    """``fetch(folder)``: download ``<tu_name>.zip`` next to ``folder`` and extract it."""

    def fetch(folder: Path) -> None:
        archive = download_url(f"{TU_URL}/{tu_name}.zip", folder.parent)
        _extract(archive, folder, tu_name)

    return fetch


# ---------------------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------------------


def load_tu(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    use_node_attr: bool = False,
) -> GraphClassificationDataset:
    """Load MUTAG, PROTEINS or ENZYMES.

    Args:
        info (DatasetInfo): :data:`MUTAG`, :data:`PROTEINS` or :data:`ENZYMES`.
        root (path, optional): Data root holding ``tu/<NAME>/raw/``; defaults to
            ``$GRAPHLEARN_DATA``, then the download cache.
        download (bool, optional): Download ``<NAME>.zip`` from :data:`TU_URL` into the cache
            when files are missing. (default: :obj:`True`)
        use_node_attr (bool, optional): Prepend the continuous node attributes (PROTEINS: 1,
            ENZYMES: 18) to the one-hot node labels in ``x``. (default: :obj:`False`)

    Returns:
        GraphClassificationDataset: The graphs (a :class:`TUGraphs`) and a stratified
        80/10/10 split with seed :data:`SPLIT_SEED`.
    """
    tu_name = _TU_NAMES[info.name]
    folder = require_raw_files(info, root, download=download, fetch=_fetcher(tu_name))
    raw_paths = sorted(folder.glob(f"{tu_name}_*.txt"))  # what read_tu_data reads

    def build() -> dict[str, Tensor]:
        return _to_tensors(*read_tu(folder, tu_name))

    tensors = cached_tensors(f"tu-{tu_name}", raw_paths, build, version=_PROCESSING_VERSION)
    data, slices, sizes = _from_tensors(tensors)
    # TUDataset's defaults: drop continuous attributes unless asked, keep one-hot labels.
    if data.x is not None and not use_node_attr:
        data.x = data.x[:, sizes["num_node_attributes"]:]
    if data.edge_attr is not None:
        data.edge_attr = data.edge_attr[:, sizes["num_edge_attributes"]:]
    graphs = TUGraphs(tu_name, data, slices, sizes)

    train, val, test = stratified_split(graphs.y.view(-1), train=0.8, val=0.1, seed=SPLIT_SEED)
    return GraphClassificationDataset(info, graphs, {"train": train, "val": val, "test": test})


for _dataset_info in (MUTAG, PROTEINS, ENZYMES):
    register_dataset(_dataset_info)(load_tu)
del _dataset_info
