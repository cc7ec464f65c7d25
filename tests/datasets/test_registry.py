import json

import pytest

from graphlearn import datasets
from graphlearn.data.dataset import DatasetInfo, TaskKind
from graphlearn.errors import GraphLearnError, InvalidArgumentError, UnknownNameError

ALL = datasets.names()
FOUNDATION = {"citeseer", "cora", "enzymes", "karate", "mutag", "proteins", "pubmed"}
HETEROPHILOUS = {"amazon-ratings", "minesweeper", "questions", "roman-empire", "tolokers"}


def test_registry_lists_every_dataset_sorted():
    assert FOUNDATION | HETEROPHILOUS <= set(ALL)
    assert ALL == sorted(ALL)
    assert [name for name, _ in datasets.DATASETS.items()] == ALL


@pytest.mark.parametrize("name", ALL)
def test_info_is_complete(name):
    from graphlearn.tasks.metrics import METRICS

    info = datasets.info(name)
    assert isinstance(info, DatasetInfo) and info.name == name
    for field in ("description", "metric", "splits", "url", "citation", "license"):
        assert getattr(info, field).strip(), field
    assert info.url.startswith("http")
    if info.task is TaskKind.LINK_PREDICTION:
        from graphlearn.kg.task import RANKING_METRICS

        assert info.metric in RANKING_METRICS
    elif info.task is TaskKind.TEXT_GRAPH_QA:  # scored by the QA answer, not a trainer metric
        assert info.metric in ("accuracy", "hits@1")
    else:
        assert info.metric in METRICS
    if info.task is TaskKind.NODE_CLASSIFICATION:
        assert {"num_nodes", "num_edges", "num_features", "num_classes"} <= set(info.stats)
    elif info.task is TaskKind.LINK_PREDICTION:
        assert "_v" in name or {"entities", "relations", "train", "test"} <= set(info.stats)
    elif info.task is TaskKind.TEXT_GRAPH_QA:
        pass
    else:
        assert info.task is TaskKind.GRAPH_CLASSIFICATION
        assert {"num_graphs", "num_features", "num_classes"} <= set(info.stats)
    if name not in ("karate", "long-range-path"):  # embedded or generated: no raw files
        assert info.raw_dir and info.raw_files
    json.dumps(info.to_dict())


def test_lookup_ignores_case():
    assert datasets.info("CiteSeer") is datasets.info("citeseer")
    assert datasets.info("PROTEINS").raw_dir == "tu/PROTEINS/raw"


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownNameError) as info:
        datasets.load("coraa")
    msg = str(info.value)
    assert "Did you mean 'cora'?" in msg
    assert "Choices: " + ", ".join(ALL) in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, GraphLearnError)
    with pytest.raises(UnknownNameError):
        datasets.info("imagenet")


def test_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="'cora' does not take option.*'use_node_attr'.*"
                                                   "it takes: download, normalize_features"):
        datasets.load("cora", root=tmp_path, use_node_attr=True)
    with pytest.raises(InvalidArgumentError, match="download .* must be True or False"):
        datasets.load("mutag", root=tmp_path, download="no")
    with pytest.raises(InvalidArgumentError, match="root must be a path"):
        datasets.load("mutag", root=3)


def test_public_api():
    for name in datasets.__all__:
        assert hasattr(datasets, name)
    assert {"load", "info", "names"} <= set(datasets.__all__)
