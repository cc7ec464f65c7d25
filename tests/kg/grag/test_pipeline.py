"""`graphlearn.kg.grag.GRAG`: the pipeline object (build, retrieve, prune, answer, save/load)."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch
from graphlearn.kg.grag import (
    GRAG,
    BaseGenerator,
    GraphIndex,
    HashingEncoder,
    RetrievalOnlyGenerator,
    SoftPruner,
    TextGraph,
    build_prompt,
    retrieval_to_dict,
    retrieve,
)

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    InvalidArgumentError,
)

FACTS = [
    ("marie curie", "born in", "warsaw"),
    ("warsaw", "capital of", "poland"),
    ("pierre curie", "married to", "marie curie"),
    ("pierre curie", "born in", "paris"),
    ("paris", "capital of", "france"),
    ("albert einstein", "born in", "ulm"),
    ("ulm", "located in", "germany"),
    ("isaac newton", "born in", "woolsthorpe"),
    ("woolsthorpe", "located in", "england"),
]


def make_grag(**kwargs) -> GRAG:
    return GRAG.build(TextGraph.from_triples(FACTS), HashingEncoder(dim=128), **kwargs)


def test_build_retrieve_equals_the_functional_api():
    grag = make_grag(k=2)
    r = grag.retrieve("where was albert einstein born?")
    ref = retrieve(grag.index, "where was albert einstein born?", 2)
    assert r.triples() == ref.triples()
    assert ("albert einstein", "born in", "ulm") in r.triples()
    assert repr(grag).startswith("GRAG(nodes=12, edges=9")
    assert grag.retrieve("where was albert einstein born?", k=1).num_nodes <= r.num_nodes


def test_answer_and_stream_with_the_default_generator():
    grag = make_grag(k=1)
    a = grag.answer("where was isaac newton born?")
    assert isinstance(grag.generator, RetrievalOnlyGenerator)
    assert a.text == a.retrieval.description
    r, pieces = grag.stream("where was isaac newton born?")
    assert "".join(pieces) == a.text and r.triples() == a.retrieval.triples()
    d = a.to_dict()
    assert d["answer"] == a.text and d["retrieval"]["triples"] == [list(t) for t in r.triples()]
    json.dumps(d)  # JSON-ready


class Echo(BaseGenerator):
    def __init__(self):
        self.seen = []

    def generate(self, question, retrieval, *, max_new_tokens=None):
        self.seen.append((question, retrieval.num_edges, max_new_tokens))
        return build_prompt(question, retrieval, "Q={question}|{description}")


def test_custom_generator_gets_question_retrieval_and_options():
    gen = Echo()
    grag = make_grag(k=1, generator=gen)
    a = grag.answer("where was isaac newton born?", max_new_tokens=7)
    assert gen.seen == [("where was isaac newton born?", a.retrieval.num_edges, 7)]
    assert a.text.startswith("Q=where was isaac newton born?|# Graph:")
    assert list(gen.stream("q", a.retrieval)) == [gen.generate("q", a.retrieval)]


def test_bad_arguments_are_clear_errors():
    grag = make_grag()
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        grag.retrieve("   ")
    with pytest.raises(InvalidArgumentError, match="k must be"):
        grag.retrieve("x", k=0)
    with pytest.raises(InvalidArgumentError, match="no pruner"):
        grag.retrieve("x", prune=True)
    with pytest.raises(InvalidArgumentError, match="SoftPruner\\(128\\)"):
        grag.set_pruner(SoftPruner(64))
    with pytest.raises(DTypeError, match="generate"):
        GRAG(grag.index, generator=object())
    with pytest.raises(DTypeError, match="GraphIndex"):
        GRAG("not an index")
    with pytest.raises(InvalidArgumentError, match="threshold"):
        GRAG(grag.index, threshold=1.5)
    with pytest.raises(InvalidArgumentError, match="template"):
        build_prompt("q", None, "no placeholders")


def qa_examples():
    # questions whose answer is the birthplace; the gold path is the "born in" fact
    people = [(h, t) for h, r, t in FACTS if r == "born in"]
    return [SimpleNamespace(question=f"where was {h} born?", answers=(t,),
                            path=((h, "born in", t),)) for h, t in people] * 4


def test_fit_pruner_lowers_loss_prunes_and_survives_save_load(tmp_path):
    grag = make_grag(k=2)
    history = grag.fit_pruner(qa_examples(), hidden_channels=32, epochs=30, lr=1e-2)
    assert history[-1] < 0.7 * history[0]
    r = grag.retrieve("where was marie curie born?")
    assert r.method == "pruned" and r.node_gates is not None
    full = grag.retrieve("where was marie curie born?", prune=False)
    assert r.num_edges <= full.num_edges and full.method == "grag"

    folder = grag.save(tmp_path / "g")
    assert sorted(p.name for p in folder.iterdir()) == ["grag.json", "index", "pruner.safetensors"]
    back = GRAG.load(folder)
    assert back.k == 2 and back.threshold == grag.threshold and back.pruner is not None
    r2 = back.retrieve("where was marie curie born?")
    assert r2.triples() == r.triples()
    torch.testing.assert_close(r2.node_gates, r.node_gates)

    # saving again without a pruner removes the stale weights
    grag.set_pruner(None)
    grag.save(folder)
    assert not (folder / "pruner.safetensors").exists()
    assert GRAG.load(folder).pruner is None


def test_a_message_passing_pruner_survives_save_load(tmp_path):
    grag = make_grag(k=2)
    grag.fit_pruner(qa_examples(), hidden_channels=16, num_steps=2, product=True, epochs=3)
    assert grag.pruner.num_steps == 2 and grag.pruner.product
    r = grag.retrieve("where was albert einstein born?")
    back = GRAG.load(grag.save(tmp_path / "g"))
    assert back.pruner.config() == grag.pruner.config()
    r2 = back.retrieve("where was albert einstein born?")
    assert r2.triples() == r.triples()
    torch.testing.assert_close(r2.edge_gates, r.edge_gates)


def test_load_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="grag index"):
        GRAG.load(tmp_path / "missing")
    grag = make_grag()
    grag.fit_pruner(qa_examples()[:3], hidden_channels=8, epochs=1)
    folder = grag.save(tmp_path / "g")
    (folder / "pruner.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="pruner"):
        GRAG.load(folder)
    (folder / "grag.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        GRAG.load(folder)
    (folder / "grag.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DataFormatError, match="not a GRAG config"):
        GRAG.load(folder)
    (folder / "pruner.safetensors").unlink()
    (folder / "grag.json").write_text(json.dumps({
        "format": "graphlearn.grag.GRAG", "format_version": 1, "k": 5, "threshold": 0.5,
        "pruner": {"in_channels": 128}}))
    with pytest.raises(DataNotFoundError, match="pruner.safetensors"):
        GRAG.load(folder)


def test_concurrent_retrievals_match_sequential_ones():
    grag = make_grag(k=2)
    questions = [f"where was {h} born?" for h, r, _ in FACTS if r == "born in"] * 8
    expected = [grag.retrieve(q).triples() for q in questions]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: grag.retrieve(q).triples(), questions))
    assert got == expected


def test_add_while_retrieving_is_safe_and_visible():
    grag = make_grag(k=1)
    errors = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                r = grag.retrieve("where was isaac newton born?")
                assert r.num_nodes >= 1
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(10):
        grag.add([(f"scientist {i}", "born in", f"town {i}")])
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert grag.num_edges == len(FACTS) + 10
    assert ("scientist 7", "born in", "town 7") in grag.retrieve("scientist 7 born in town 7").triples()


def test_retrieval_to_dict_is_json_and_complete():
    grag = make_grag(k=1)
    r = grag.retrieve("capital of france")
    d = retrieval_to_dict(r, description=False)
    assert "description" not in d and d["num_edges"] == r.num_edges
    assert d["nodes"] == list(r.graph.node_text)
    assert len(d["node_scores"]) == r.num_nodes and d["node_gates"] is None
    assert json.loads(json.dumps(d)) == d


def test_build_accepts_encoder_names(tmp_path):
    g = TextGraph.from_triples(FACTS[:2])
    assert GRAG.build(g, "hashing").index.encoder.name.startswith("hashing")
    with pytest.raises(DTypeError, match="encoder must be"):
        GRAG.build(g, 42)
    index = GraphIndex.build(g, HashingEncoder(dim=32))
    assert GRAG(index).index is index
