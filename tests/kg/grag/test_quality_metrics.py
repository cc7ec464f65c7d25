"""`graphlearn.kg.grag.metrics`: answer and gold-path recall of a retrieved subgraph."""

import math

import pytest
from graphlearn.kg.grag import GraphIndex, HashingEncoder, TextGraph, khop_baseline, retrieve
from graphlearn.kg.grag.metrics import (
    answer_coverage,
    answer_recall,
    full_path_recall,
    mean_retrieval_quality,
    path_recall,
    retrieval_quality,
)

from graphlearn.errors import DTypeError, InvalidArgumentError

KB = [("anna", "children", "rudolf"), ("rudolf", "parents", "enno"),
      ("enno", "place_of_birth", "aurich"), ("anna", "gender", "female"),
      ("enno", "gender", "male"), ("rudolf", "parents", "anna")]
PATH = [("anna", "children", "rudolf"), ("rudolf", "parents", "enno"),
        ("enno", "place_of_birth", "aurich")]


@pytest.fixture(scope="module")
def kb():
    return TextGraph.from_triples(KB)


def test_exact_values(kb):
    # the first two path edges and not the third; "aurich" is a node only of the full KB
    part = TextGraph.from_triples(KB[:2] + KB[3:])
    assert answer_recall(kb, ["aurich"]) == 1.0
    assert answer_recall(part, ["aurich"]) == 0.0
    assert answer_recall(part, "enno") == 1.0  # one answer as a str
    assert answer_coverage(part, ["aurich", "enno", "male"]) == pytest.approx(2 / 3)
    assert answer_coverage(part, ["enno", "enno"]) == 1.0  # distinct answers
    assert path_recall(kb, PATH) == 1.0 and full_path_recall(kb, PATH) == 1.0
    assert path_recall(part, PATH) == pytest.approx(2 / 3)
    assert full_path_recall(part, PATH) == 0.0
    # a triple repeated in the path counts once; a node on the path is not its edge
    assert path_recall(part, PATH + [PATH[0]]) == pytest.approx(2 / 3)
    assert path_recall(TextGraph.from_triples([], nodes=["anna", "rudolf"]), PATH[:1]) == 0.0
    # direction and relation text matter
    assert path_recall(TextGraph.from_triples([("rudolf", "children", "anna")]), PATH[:1]) == 0


def test_retrieval_quality_and_mean(kb):
    index = GraphIndex.build(kb, HashingEncoder(32))
    r = khop_baseline(index, "anna", 1)
    row = retrieval_quality(r, ["aurich", "enno"], PATH)  # a Retrieval is accepted
    assert row == {"num_nodes": 3.0, "num_edges": 3.0, "answer_recall": 0.0,
                   "answer_coverage": 0.0, "path_recall": pytest.approx(1 / 3),
                   "full_path_recall": 0.0}
    full = retrieval_quality(khop_baseline(index, "anna", 3), ["aurich"], PATH)
    assert full["full_path_recall"] == 1.0 and full["num_edges"] == 6.0 and full["num_nodes"] == 6
    no_path = retrieval_quality(retrieve(index, "who are anna's children?", k=1), ["rudolf"])
    assert no_path["path_recall"] is None and no_path["full_path_recall"] is None
    mean = mean_retrieval_quality([row, full, no_path])
    assert mean["num_questions"] == 3
    assert mean["num_nodes"] == pytest.approx((3 + 6 + no_path["num_nodes"]) / 3)
    # path measures average over the rows that have a path
    assert mean["path_recall"] == pytest.approx((1 / 3 + 1) / 2)
    assert mean["full_path_recall"] == pytest.approx(0.5)
    assert math.isnan(mean_retrieval_quality([no_path])["path_recall"])


def test_bad_inputs(kb):
    with pytest.raises(InvalidArgumentError, match="answers is empty"):
        answer_recall(kb, [])
    with pytest.raises(InvalidArgumentError, match="path is empty"):
        path_recall(kb, [])
    with pytest.raises(InvalidArgumentError, match=r"path\[0\]"):
        path_recall(kb, [("anna", "children")])
    with pytest.raises(DTypeError, match="TextGraph or a Retrieval"):
        answer_recall(KB, ["anna"])
    with pytest.raises(InvalidArgumentError, match="no rows"):
        mean_retrieval_quality([])
