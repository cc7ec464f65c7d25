import networkx as nx
import pytest
import torch
from torch_geometric.utils import is_undirected

from graphlearn import datasets
from graphlearn.data.dataset import NodeClassificationDataset, TaskKind
from graphlearn.errors import InvalidArgumentError


def test_stats_features_and_labels():
    ds = datasets.load("karate")
    assert isinstance(ds, NodeClassificationDataset) and ds.task is TaskKind.NODE_CLASSIFICATION
    data = ds.data
    assert data.num_nodes == 34 and data.num_edges == 156
    assert ds.num_features == 34 and ds.num_classes == 2
    assert torch.equal(data.x, torch.eye(34))
    assert is_undirected(data.edge_index, num_nodes=34)
    club = nx.get_node_attributes(nx.karate_club_graph(), "club")
    assert [datasets.karate.KARATE_CLASSES[int(c)] for c in data.y] == [club[i] for i in range(34)]
    stats = ds.info.stats
    assert (stats["num_nodes"], stats["num_edges"], stats["num_features"], stats["num_classes"]) == (
        34, 156, 34, 2)


def test_split_is_stratified_disjoint_and_fixed():
    ds = datasets.load("karate")
    data = ds.data
    assert ds.split_sizes() == {"train": 17, "val": 7, "test": 10}
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert torch.equal(masks.sum(0), torch.ones(34, dtype=torch.long))  # a partition
    for mask in masks:  # both factions in every part, as balanced as sizes allow
        counts = torch.bincount(data.y[mask], minlength=2)
        assert int(counts.min()) >= int(mask.sum()) // 2 - 1
    again = datasets.load("Karate").data
    for key in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], again[key])


def test_info_and_options():
    info = datasets.info("karate")
    assert info.raw_files == () and "Zachary" in info.citation and "1977" in info.citation
    assert info.metric == "accuracy"
    datasets.load("karate", root="/nonexistent", download=False)  # embedded: root unused
    with pytest.raises(InvalidArgumentError, match="does not take option.*'normalize'"):
        datasets.load("karate", normalize=True)
