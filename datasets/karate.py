r"""Zachary's karate club: 34 members of a club that split in two.

From `"An Information Flow Model for Conflict and Fission in Small Groups"
<https://doi.org/10.1086/jar.33.4.3629752>`_ (Zachary, 1977). Nodes are club members, edges
are friendships observed outside the club, and each member is labelled with the faction
they joined after the split: ``0 = "Mr. Hi"`` (the instructor) or ``1 = "Officer"`` (the
administrator). The graph is embedded (built from :func:`networkx.karate_club_graph`), so
there are no raw files to download.

Features are the one-hot identity matrix, as in :class:`torch_geometric.datasets.KarateClub`.
Unlike PyG's KarateClub (four modularity-based communities, one training node per class),
labels are the two factions Zachary recorded (the ``club`` attribute), and the split is a
fixed stratified 50% / 20% / 30% train / val / test split drawn with seed 0.

**STATS:**

.. list-table::
    :widths: 10 10 10 10 10 10 10
    :header-rows: 1

    * - #nodes
      - #edges
      - #features
      - #classes
      - #train
      - #val
      - #test
    * - 34
      - 156
      - 34
      - 2
      - 17
      - 7
      - 10
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import index_to_mask, to_undirected

from graphlearn.data.dataset import (
    DatasetInfo,
    NodeClassificationDataset,
    TaskKind,
    register_dataset,
)

__all__ = ["KARATE", "KARATE_CLASSES", "SPLIT_SEED", "load_karate", "stratified_split"]

KARATE_CLASSES = ("Mr. Hi", "Officer")
"""Class names; label ``i`` is ``KARATE_CLASSES[i]``."""

SPLIT_SEED = 0
"""Seed of the fixed stratified split."""

KARATE = DatasetInfo(
    name="karate",
    task=TaskKind.NODE_CLASSIFICATION,
    description=(
        "Zachary's karate club: 34 members, 78 friendships; predict the faction "
        "('Mr. Hi' or 'Officer') each member joined after the club split"
    ),
    metric="accuracy",
    splits=(
        f"fixed stratified split with seed {SPLIT_SEED}: train 50% (17 nodes), "
        "val 20% (7 nodes), test 30% (10 nodes)"
    ),
    url="http://www-personal.umich.edu/~mejn/netdata/karate.zip",
    citation=(
        "Zachary, W. W. An Information Flow Model for Conflict and Fission in Small Groups. "
        "Journal of Anthropological Research 33(4):452-473, 1977. doi:10.1086/jar.33.4.3629752"
    ),
    license=(
        "Published research data (Zachary 1977); embedded from networkx "
        "(BSD-3-Clause), no download"
    ),
    raw_dir="",
    raw_files=(),
    stats={"num_nodes": 34, "num_edges": 156, "num_features": 34, "num_classes": 2,
           "num_train": 17, "num_val": 7, "num_test": 10},
)


def stratified_split(
    y: Tensor, *, train: float, val: float, seed: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Split item ids (nodes or graphs) into stratified train / val / test index tensors.

    Sizes are ``round(train * n)`` and ``round(val * n)``; the test set takes the rest.

    Args:
        y (Tensor): Labels, shape (n,), long.
        train (float): Fraction of nodes for training.
        val (float): Fraction of nodes for validation.
        seed (int): Random state of :func:`sklearn.model_selection.train_test_split`.
    """
    from sklearn.model_selection import train_test_split

    labels = y.numpy()
    index = np.arange(labels.shape[0])
    n_train = round(train * len(index))
    n_val = round(val * len(index))
    train_idx, rest = train_test_split(
        index, train_size=n_train, stratify=labels, random_state=seed
    )
    val_idx, test_idx = train_test_split(
        rest, train_size=n_val, stratify=labels[rest], random_state=seed
    )
    return tuple(torch.as_tensor(np.sort(i), dtype=torch.long) for i in (train_idx, val_idx, test_idx))


def karate_data() -> Data:
    """Build the karate club graph: identity features, faction labels, seeded masks."""
    import networkx as nx

    graph = nx.karate_club_graph()
    num_nodes = graph.number_of_nodes()
    edges = torch.tensor(sorted(graph.edges()), dtype=torch.long).t()
    edge_index = to_undirected(edges, num_nodes=num_nodes)
    club = nx.get_node_attributes(graph, "club")
    y = torch.tensor([KARATE_CLASSES.index(club[i]) for i in range(num_nodes)], dtype=torch.long)
    train_idx, val_idx, test_idx = stratified_split(y, train=0.5, val=0.2, seed=SPLIT_SEED)
    return Data(
        x=torch.eye(num_nodes, dtype=torch.float),
        edge_index=edge_index,
        y=y,
        train_mask=index_to_mask(train_idx, size=num_nodes),
        val_mask=index_to_mask(val_idx, size=num_nodes),
        test_mask=index_to_mask(test_idx, size=num_nodes),
    )


@register_dataset(KARATE)
def load_karate(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> NodeClassificationDataset:
    """Load Zachary's karate club.

    Args:
        info (DatasetInfo): :data:`KARATE`.
        root (path, optional): Ignored; the dataset is embedded.
        download (bool, optional): Ignored; there is nothing to download.
            (default: :obj:`True`)

    Returns:
        NodeClassificationDataset: One graph with 1-D boolean masks.
    """
    del root, download  # embedded data: accepted for a uniform load() signature
    return NodeClassificationDataset(info, karate_data())
