"""Text-graph QA datasets: PathQuestion and ExplaGraphs from the real files, WebQSP and MetaQA
parsers on small hand-made files, and the offline errors.

Tests on the real files skip without them (fail with ``GRAPHLEARN_REQUIRE_DATA=1``, see
``tests/conftest.py``); they read local files only (``download=False``).
"""

from collections import Counter, defaultdict
from pathlib import Path

import pytest
import torch
from graphlearn.datasets.textgraph import (
    EXPLA_GRAPHS_PROMPT,
    PATHQUESTION_VARIANTS,
    TextGraphQADataset,
    TextGraphQAExample,
    _webqsp_example,
    parse_pathquestion_answers,
    parse_pathquestion_path,
)
from graphlearn.kg.grag import TextGraph, describe, parse_description

from graphlearn import datasets
from graphlearn.data.dataset import TaskKind
from graphlearn.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

PQ_LINES = {"PQ-2H": 1908, "PQ-3H": 5198, "PQL-2H": 1594, "PQL-3H": 1031, "PQL-3H_more": 2062}
PQ_HOPS = {"PQ-2H": 2, "PQ-3H": 3, "PQL-2H": 2, "PQL-3H": 3, "PQL-3H_more": 3}


def _pathquestion(data_root, variant: str, **options) -> TextGraphQADataset:
    qa, kb, *_ = PATHQUESTION_VARIANTS[variant]
    root = data_root(f"textgraph/pathquestion/{qa}", f"textgraph/pathquestion/{kb}")
    return datasets.load("pathquestion", root=root, variant=variant, download=False, **options)


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").split("\n") if line.strip())


# ---------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", ["pathquestion", "expla_graphs", "webqsp", "metaqa"])
def test_registered_with_task_kind_and_source(name):
    info = datasets.info(name)
    assert info.task is TaskKind.TEXT_GRAPH_QA and info.name == name
    assert info.url.startswith("https://") and info.citation and info.license
    assert info.raw_dir.startswith("textgraph/") and info.raw_files
    assert info.metric in ("accuracy", "hits@1")


def test_option_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match="variant must be one of PQ-2H, PQ-3H"):
        datasets.load("pathquestion", root=tmp_path, variant="PQ-4H")
    with pytest.raises(InvalidArgumentError, match="split_seed must be an int"):
        datasets.load("pathquestion", root=tmp_path, split_seed="0")
    with pytest.raises(InvalidArgumentError, match="hops must be 1, 2 or 3"):
        datasets.load("metaqa", root=tmp_path, hops=4)
    with pytest.raises(InvalidArgumentError, match="does not take option.*'hops'"):
        datasets.load("webqsp", root=tmp_path, hops=1)


# ---------------------------------------------------------------------------- offline errors
@pytest.mark.parametrize(("name", "options", "files"), [
    ("webqsp", {}, ["train-00000-of-00002-d810a36ed97bc2cc.parquet",
                    "validation-00000-of-00001-6ee6adc5b154643a.parquet",
                    "test-00001-of-00002-773a7b8213e159f5.parquet"]),
    ("metaqa", {"hops": 2}, ["kb.txt", "2-hop/vanilla/qa_train.txt", "2-hop/vanilla/qa_dev.txt",
                             "2-hop/vanilla/qa_test.txt"]),
    ("pathquestion", {"variant": "PQL-3H"}, ["PQL-3H.txt", "PQL3-KB.txt"]),
    ("expla_graphs", {}, ["train_dev.tsv"]),
])
def test_offline_error_names_files_and_folder(tmp_path, name, options, files):
    info = datasets.info(name)
    with pytest.raises(DataNotFoundError) as err:
        datasets.load(name, root=tmp_path, download=False, **options)
    msg = str(err.value)
    for f in files:
        assert f in msg
    assert str(tmp_path / info.raw_dir) in msg and "Downloads are disabled" in msg
    assert info.url.split("?")[0] in msg
    if name == "metaqa":
        assert "1-hop" not in msg  # only the files the asked variant needs
    if name == "pathquestion":
        assert "PQ-2H.txt" not in msg


def test_metaqa_download_without_gdown_says_so(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gdown(name, *args, **kwargs):
        if name == "gdown":
            raise ImportError("no gdown")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gdown)
    monkeypatch.delenv("GRAPHLEARN_OFFLINE", raising=False)
    with pytest.raises(DataNotFoundError, match="pip install gdown.*place them in"):
        datasets.load("metaqa", root=tmp_path, hops=1)


# ---------------------------------------------------------------------------- PathQuestion
def test_pathquestion_field_parsers():
    assert parse_pathquestion_answers("united_kingdom(united_kingdom/)") == ("united_kingdom",)
    assert parse_pathquestion_answers("Hard_Times_(live)(Hard_Times_(live)/Hard_Times/)") == \
        ("Hard_Times_(live)", "Hard_Times")
    assert parse_pathquestion_answers("b(a/b/c/)") == ("a", "b", "c")
    for bad in ("x", "x(y/)", "(a/)x"):
        with pytest.raises(DataFormatError, match="answer field"):
            parse_pathquestion_answers(bad)
    assert parse_pathquestion_path("s#r1#e1#r2#a#<end>#a") == (("s", "r1", "e1"), ("e1", "r2", "a"))
    assert parse_pathquestion_path("s#r1#a") == (("s", "r1", "a"),)
    for bad in ("s#r1#a#<end>#b", "s#r1", "s", "s##a", "s#r1#e1#r2"):
        with pytest.raises(DataFormatError, match="path"):
            parse_pathquestion_path(bad)


def test_pathquestion_malformed_line_names_file_and_line(tmp_path):
    folder = tmp_path / "textgraph" / "pathquestion"
    folder.mkdir(parents=True)
    (folder / "2H-kb.txt").write_text("s\tr1\te1\ne1\tr2\ta\n", encoding="utf-8")
    (folder / "PQ-2H.txt").write_text("q ?\ta(a/)\ts#r1#e1#r2#a#<end>#a\nq2 ?\ta(a/)\ts#r1\n",
                                      encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"PQ-2H\.txt:2: path 's#r1'"):
        datasets.load("pathquestion", root=tmp_path, download=False)
    (folder / "PQ-2H.txt").write_text("q ?\ta(a/)\ts#r1#e1#r2#a#<end>#a\n", encoding="utf-8")
    ds = datasets.load("pathquestion", root=tmp_path, download=False)
    assert len(ds) == 1 and ds[0].answers == ("a",) and ds[0].relation_path == ("r1", "r2")
    (folder / "2H-kb.txt").write_text("s\tr1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"2H-kb\.txt:1: expected subject"):
        datasets.load("pathquestion", root=tmp_path, download=False)


@pytest.mark.parametrize("variant", list(PQ_LINES))
def test_pathquestion_counts_paths_and_kb_coverage(data_root, variant):
    ds = _pathquestion(data_root, variant)
    qa, kb, hops, n_questions, n_triples = PATHQUESTION_VARIANTS[variant]
    assert ds.task is TaskKind.TEXT_GRAPH_QA and ds.info.raw_files == (qa, kb)
    assert len(ds) == PQ_LINES[variant] == n_questions
    g = ds.graph
    assert isinstance(g, TextGraph) and g.num_edges == n_triples
    kb_edges = Counter(g.triples())
    follow = defaultdict(set)
    for h, r, t in g.triples():
        follow[(h, r)].add(t)
    for ex in ds:
        assert len(ex.path) == PQ_HOPS[variant] and ex.graph is None
        assert ex.topic_entities == (ex.path[0][0],)
        assert ex.question == ex.question.strip() and ex.question.endswith("?")
        # the path is connected, lies in the KB, and ends at an answer
        assert all(a[2] == b[0] for a, b in zip(ex.path, ex.path[1:], strict=False))
        assert all(kb_edges[triple] for triple in ex.path)
        assert all(e in g for triple in ex.path for e in (triple[0], triple[2]))
        assert all(a in g for a in ex.answers) and ex.path[-1][2] in ex.answers
        # and the answers are exactly what following the relation path from the topic reaches
        reached = {ex.topic_entities[0]}
        for r in ex.relation_path:
            reached = set().union(*(follow[(e, r)] for e in reached))
        assert reached == set(ex.answers), ex.id


def test_pathquestion_first_lines_and_brackets(data_root):
    ds = _pathquestion(data_root, "PQ-2H")
    first = ds[0]
    assert first.id == "PQ-2H:1"
    assert first.question == "which nationality is frederica_of_mecklenburg-strelitz 's couple ?"
    assert first.answers == ("united_kingdom",)
    assert first.path == (("frederica_of_mecklenburg-strelitz", "spouse", "ernest_augustus_i_of_hanover"),
                          ("ernest_augustus_i_of_hanover", "nationality", "united_kingdom"))
    pql = _pathquestion(data_root, "PQL-2H")
    assert pql[0].question.startswith("what is the notable_types")  # leading space stripped
    bracketed = [ex for ex in pql if "Hard_Times_(live)" in ex.answers]
    assert bracketed and all(set(ex.answers) == {"Hard_Times_(live)", "Hard_Times"} for ex in bracketed)


def test_pathquestion_split_is_seeded_80_10_10(data_root):
    ds = _pathquestion(data_root, "PQ-3H")
    assert ds.split_sizes() == {"train": 4158, "val": 520, "test": 520}
    index = torch.cat(list(ds.split_index.values()))
    assert sorted(index.tolist()) == list(range(len(ds)))
    again = _pathquestion(data_root, "PQ-3H")
    assert all(torch.equal(ds.split_index[k], again.split_index[k]) for k in ds.split_index)
    other = _pathquestion(data_root, "PQ-3H", split_seed=1)
    assert not torch.equal(ds.split_index["test"], other.split_index["test"])
    assert ds.split("val")[0] is ds[int(ds.split_index["val"][0])]
    with pytest.raises(InvalidArgumentError, match="not 'valid'"):
        ds.split("valid")
    assert _pathquestion(data_root, "PQ-2H").split_sizes() == {"train": 1526, "val": 191, "test": 191}


def test_pathquestion_kb_describes_losslessly(data_root):
    ds = _pathquestion(data_root, "PQ-2H")
    ex = ds[0]
    g = ds.graph
    sub, kept = g.k_hop_subgraph([g.node_id(ex.topic_entities[0])], 2)
    text = describe(sub, roots=[sub.node_id(ex.topic_entities[0])])
    assert text.split("\n")[2] == ex.topic_entities[0]  # the topic entity roots the tree
    assert Counter(parse_description(text).triples()) == Counter(sub.triples())
    full = parse_description(describe(g))
    assert Counter(full.triples()) == Counter(g.triples()) and set(full.node_text) == set(g.node_text)


# ---------------------------------------------------------------------------- ExplaGraphs
def test_expla_graphs(data_root):
    info = datasets.info("expla_graphs")
    root = data_root(f"{info.raw_dir}/train_dev.tsv")
    ds = datasets.load("expla_graphs", root=root, download=False)
    path = root / info.raw_dir / "train_dev.tsv"
    assert len(ds) == 2766 == _lines(path) - 1  # the header line
    assert Counter(ex.answers[0] for ex in ds) == {"support": 1534, "counter": 1232}
    assert ds.graph is None and all(isinstance(ex.graph, TextGraph) for ex in ds)
    first = ds[0]
    assert first.fields["arg1"] == "Cannabis should be legal."
    assert first.question.startswith("Argument 1: Cannabis should be legal.\nArgument 2: It's not")
    assert first.question.endswith(EXPLA_GRAPHS_PROMPT)
    assert first.graph.triples()[0] == ("cannabis", "synonym of", "marijuana")
    assert ds.graph_of(0) is first.graph
    quoted = [ex for ex in ds if '"three strikes"' in ex.fields["arg1"]]
    assert len(quoted) == 1 and quoted[0].fields["arg1"].startswith('The "three strikes" law')
    assert sum(ex.graph.num_edges for ex in ds) / len(ds) == pytest.approx(4.246, abs=1e-3)
    # G-Retriever's split: sklearn train_test_split(0.4, random_state=42), then halved
    assert ds.split_sizes() == {"train": 1659, "val": 553, "test": 554}
    index = torch.cat(list(ds.split_index.values()))
    assert sorted(index.tolist()) == list(range(len(ds)))
    import numpy as np
    from sklearn.model_selection import train_test_split

    train, rest = train_test_split(np.arange(len(ds)), test_size=0.4, random_state=42)
    assert ds.split_index["train"].tolist() == sorted(train.tolist())
    for ex in ds.split("test")[:50]:
        assert Counter(parse_description(describe(ex.graph)).triples()) == Counter(ex.graph.triples())


def test_expla_graphs_bad_rows(tmp_path):
    folder = tmp_path / "textgraph" / "expla_graphs"
    folder.mkdir(parents=True)
    header = "arg1\targ2\tlabel\tgraph\n"
    (folder / "train_dev.tsv").write_text(header + "a\tb\tsupport\t(x; y; z)(x; y)\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"train_dev\.tsv:2: malformed graph string at position 9"):
        datasets.load("expla_graphs", root=tmp_path, download=False)
    (folder / "train_dev.tsv").write_text(header + "a\tb\tmaybe\t(x; y; z)\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r":2: label must be 'support' or 'counter'"):
        datasets.load("expla_graphs", root=tmp_path, download=False)
    (folder / "train_dev.tsv").write_text("a\tb\tc\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r":1: expected the header"):
        datasets.load("expla_graphs", root=tmp_path, download=False)


# ---------------------------------------------------------------------------- MetaQA, WebQSP
def test_metaqa_parser_on_hand_made_files(tmp_path):
    folder = tmp_path / "textgraph" / "metaqa"
    (folder / "2-hop" / "vanilla").mkdir(parents=True)
    (folder / "kb.txt").write_text("Kismet|directed_by|William Dieterle\n"
                                   "Kismet|starred_actors|Marlene Dietrich\n"
                                   "Golden Earrings|starred_actors|Marlene Dietrich\n", encoding="utf-8")
    (folder / "2-hop/vanilla/qa_train.txt").write_text(
        "who directed the films starred by [Marlene Dietrich]\tWilliam Dieterle\n", encoding="utf-8")
    (folder / "2-hop/vanilla/qa_dev.txt").write_text(
        "which films share actors with [Kismet]\tGolden Earrings|Kismet\n", encoding="utf-8")
    (folder / "2-hop/vanilla/qa_test.txt").write_text("", encoding="utf-8")
    ds = datasets.load("metaqa", root=tmp_path, hops=2, download=False)
    assert ds.split_sizes() == {"train": 1, "val": 1, "test": 0}
    assert ds.graph.triples()[0] == ("Kismet", "directed_by", "William Dieterle")
    dev = ds.split("val")[0]
    assert dev.topic_entities == ("Kismet",) and dev.answers == ("Golden Earrings", "Kismet")
    assert dev.id == "2-hop/val:1" and ds.info.stats["train"] == 118980
    (folder / "2-hop/vanilla/qa_test.txt").write_text("no topic here\tx\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"qa_test\.txt:1: the question marks no \[topic entity\]"):
        datasets.load("metaqa", root=tmp_path, hops=2, download=False)


def test_webqsp_row_becomes_example_with_its_graph():
    row = {"id": "WebQTrn-0", "question": "what is the name of justin bieber brother",
           "answer": ["Jaxon Bieber"], "q_entity": ["Justin Bieber"], "a_entity": ["Jaxon Bieber"],
           "graph": [["Justin Bieber", "people.person.sibling_s", "m.0gxnnwc"],
                     ["m.0gxnnwc", "people.sibling_relationship.sibling", "Jaxon Bieber"],
                     ["Justin Bieber", "people.person.sibling_s", "m.0gxnnwc"]],
           "choices": []}
    ex = _webqsp_example(row, "x.parquet, row 0")
    assert isinstance(ex, TextGraphQAExample) and ex.id == "WebQTrn-0"
    assert ex.answers == ("Jaxon Bieber",) and ex.topic_entities == ("Justin Bieber",)
    assert ex.graph.num_nodes == 3 and ex.graph.num_edges == 3  # the repeated triple stays
    assert ex.fields["a_entity"] == ("Jaxon Bieber",)
    with pytest.raises(DataFormatError, match="x.parquet, row 0: not a RoG-webqsp row"):
        _webqsp_example({"id": "1"}, "x.parquet, row 0")
