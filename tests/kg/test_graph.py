"""`KnowledgeGraph`: construction, TSV round trips, malformed input, inverse relations."""

import pytest
import torch
from graphlearn.kg import INVERSE_SUFFIX, KnowledgeGraph
from graphlearn.kg.graph import read_triples_tsv

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    GraphLearnError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

TRIPLES = {
    "facts": [("alice", "knows", "bob"), ("bob", "knows", "carol")],
    "train": [("alice", "likes", "carol"), ("dave", "knows", "alice")],
    "valid": [("carol", "likes", "bob")],
    "test": [("bob", "likes", "alice"), ("erin", "knows", "dave")],
}


def _kg(**kwargs) -> KnowledgeGraph:
    return KnowledgeGraph.from_triples(TRIPLES, name="toy", **kwargs)


def test_from_triples_ids_follow_split_order():
    kg = _kg()
    # vocabularies grow over facts, train, valid, test in that order
    assert kg.entities == ["alice", "bob", "carol", "dave", "erin"]
    assert kg.relations == ["knows", "likes"]
    assert kg.splits["facts"].tolist() == [[0, 0, 1], [1, 0, 2]]
    assert kg.labeled_triples("test") == TRIPLES["test"]
    assert kg.triples("valid", "test").shape == (3, 3)
    assert kg.triples().shape == (7, 3)
    assert list(kg.splits) == list(TRIPLES)
    assert kg.entity_id("dave") == 3 and kg.relation_id("likes") == 1
    assert repr(kg) == ("KnowledgeGraph('toy', entities=5, relations=2, facts=2, train=2, valid=1, "
                        "test=2)")


def test_from_triples_fixed_vocab():
    kg = _kg(entities=["erin", "dave", "carol", "bob", "alice"], relations=["likes", "knows"])
    assert kg.entity_id("erin") == 0 and kg.relation_id("knows") == 1
    with pytest.raises(IndexOutOfRangeError, match="extend_vocab"):
        KnowledgeGraph.from_triples([("a", "r", "b")], entities=["a"], extend_vocab=False)


def test_single_list_is_train_and_empty_split():
    kg = KnowledgeGraph.from_triples([("a", "r", "b")])
    assert list(kg.splits) == ["train"]
    kg = KnowledgeGraph.from_triples({"train": [("a", "r", "b")], "test": []})
    assert kg.splits["test"].shape == (0, 3)


def test_unknown_label_lists_close_matches():
    kg = _kg()
    with pytest.raises(IndexOutOfRangeError, match="closest: 'alice'"):
        kg.entity_id("alicee")
    with pytest.raises(IndexOutOfRangeError, match="relation 'nope'"):
        kg.relation_id("nope")
    with pytest.raises(InvalidArgumentError, match="no split 'extra'"):
        kg.triples("extra")


@pytest.mark.parametrize("vocab", [True, False])
def test_tsv_round_trip(tmp_path, vocab):
    kg = _kg(entities=["erin", "dave", "carol", "bob", "alice"])  # not first-appearance order
    kg.to_tsv(tmp_path, vocab=vocab)
    assert (tmp_path / "entities.txt").is_file() == vocab
    back = KnowledgeGraph.from_tsv(tmp_path)
    assert back.name == tmp_path.name
    assert set(back.splits) == set(kg.splits)
    for split in kg.splits:
        assert back.labeled_triples(split) == kg.labeled_triples(split)
        if vocab:  # identical ids
            assert torch.equal(back.splits[split], kg.splits[split])
    if vocab:
        assert back.entities == kg.entities and back.relations == kg.relations
    else:
        assert set(back.entities) == set(kg.entities)


def test_tsv_round_trip_unicode_and_inner_spaces(tmp_path):
    kg = KnowledgeGraph.from_triples([("Zürich city", "größer als", "Genève"), ("a#b", "r", '"q"')])
    back = KnowledgeGraph.from_tsv(kg.to_tsv(tmp_path / "g"))
    assert back.entities == kg.entities and back.labeled_triples("train") == kg.labeled_triples("train")


@pytest.mark.parametrize("label", ["tab\there", "new\nline", " padded", ""])
def test_to_tsv_refuses_unstorable_labels(tmp_path, label):
    kg = KnowledgeGraph([label, "b"], ["r"], {"train": torch.tensor([[0, 0, 1]])})
    with pytest.raises(InvalidArgumentError, match="to_rdf"):
        kg.to_tsv(tmp_path)


def test_from_tsv_mapping_and_tsv_extension(tmp_path):
    (tmp_path / "train.tsv").write_text("a\tr\tb\nb\tr\tc\n")
    (tmp_path / "mine.txt").write_text("\nc\tr\ta\n\n")  # blank lines are skipped
    kg = KnowledgeGraph.from_tsv(tmp_path)
    assert kg.labeled_triples("train") == [("a", "r", "b"), ("b", "r", "c")]
    kg = KnowledgeGraph.from_tsv({"train": tmp_path / "train.tsv", "test": tmp_path / "mine.txt"})
    assert kg.labeled_triples("test") == [("c", "r", "a")] and kg.name == "kg"


@pytest.mark.parametrize(
    ("content", "lineno"),
    [
        ("a\tr\tb\na\tr\n", 2),
        ("a\tr\tb\n\na r b\n", 3),
        ("a\tr\tb\tc\n", 1),
        ("a\t\tb\n", 1),
    ],
)
def test_malformed_tsv_names_file_and_line(tmp_path, content, lineno):
    path = tmp_path / "train.txt"
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        KnowledgeGraph.from_tsv(tmp_path)
    assert f"{path}:{lineno}:" in str(info.value) and "3 tab-separated fields" in str(info.value)
    with pytest.raises(DataFormatError):
        read_triples_tsv(path)


def test_missing_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a folder"):
        KnowledgeGraph.from_tsv(tmp_path / "nope")
    (tmp_path / "valid.txt").write_text("a\tr\tb\n")
    with pytest.raises(DataNotFoundError, match="no train.txt"):
        KnowledgeGraph.from_tsv(tmp_path)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_triples_tsv(tmp_path / "missing.txt")


def test_duplicate_vocab_labels(tmp_path):
    with pytest.raises(InvalidArgumentError, match="'a' occurs twice"):
        KnowledgeGraph(["a", "b", "a"], ["r"])
    with pytest.raises(InvalidArgumentError, match="relation label 'r' occurs twice"):
        KnowledgeGraph(["a"], ["r", "r"])
    (tmp_path / "train.txt").write_text("a\tr\tb\n")
    (tmp_path / "entities.txt").write_text("a\nb\na\n")
    with pytest.raises(InvalidArgumentError, match="occurs twice"):
        KnowledgeGraph.from_tsv(tmp_path)
    assert isinstance(InvalidArgumentError("x"), GraphLearnError)


def test_vocab_files_with_ids_column(tmp_path):
    (tmp_path / "train.txt").write_text("b\tr\ta\n")
    (tmp_path / "entities.txt").write_text("a\t0\nb\t1\n")
    kg = KnowledgeGraph.from_tsv(tmp_path)
    assert kg.entities == ["a", "b"] and kg.splits["train"].tolist() == [[1, 0, 0]]


def test_split_checks():
    with pytest.raises(ShapeError, match=r"\(n, 3\)"):
        KnowledgeGraph(["a", "b"], ["r"], {"train": torch.zeros(2, 2, dtype=torch.long)})
    with pytest.raises(IndexOutOfRangeError, match="tail id 2 outside"):
        KnowledgeGraph(["a", "b"], ["r"], {"train": torch.tensor([[0, 0, 2]])})
    with pytest.raises(IndexOutOfRangeError, match="relation id 1"):
        KnowledgeGraph(["a", "b"], ["r"], {"train": torch.tensor([[0, 1, 1]])})


def test_with_inverse():
    kg = _kg()
    inv = kg.with_inverse()
    R = kg.num_relations
    assert inv.num_base_relations == R and inv.num_relations == 2 * R
    assert inv.relations == ["knows", "likes", "knows" + INVERSE_SUFFIX, "likes" + INVERSE_SUFFIX]
    assert inv.entities == kg.entities
    for split, t in kg.splits.items():
        both = inv.splits[split]
        assert both.size(0) == 2 * t.size(0)
        assert torch.equal(both[: t.size(0)], t)
        assert torch.equal(both[t.size(0):], torch.stack([t[:, 2], t[:, 1] + R, t[:, 0]], 1))
    assert ("alice", "likes" + INVERSE_SUFFIX, "bob") in inv.labeled_triples("test")
    assert inv.with_inverse() is inv  # idempotent
    assert kg.num_relations == R  # the original is untouched


def test_conversion_methods_delegate():
    kg = _kg()
    data = kg.to_pyg("train")
    assert data.edge_type.tolist() == kg.splits["train"][:, 1].tolist()
    assert KnowledgeGraph.from_pyg(data).labeled_triples("train") == kg.labeled_triples("train")
    g = kg.to_networkx()
    assert KnowledgeGraph.from_networkx(g).entities == kg.entities
    rdf = kg.to_rdf("test")
    assert len(rdf) == 2
    assert set(KnowledgeGraph.from_rdf(rdf).labeled_triples("train")) == set(TRIPLES["test"])


def test_tsv_round_trip_keeps_ids_for_unicode_line_separators(tmp_path):
    # str.splitlines() splits at these; a vocabulary file must not
    labels = ["a\u2028z", "x\x0cy", "p\x85q", "b"]
    kg = KnowledgeGraph.from_triples([(labels[0], "r\x1er", labels[1]), (labels[2], "r", labels[3])])
    back = KnowledgeGraph.from_tsv(kg.to_tsv(tmp_path))
    assert back.entities == kg.entities and back.relations == kg.relations
    assert torch.equal(back.splits["train"], kg.splits["train"])
