"""`graphlearn.kg.grag.service`: the HTTP endpoints, their validation, streaming and
concurrency (a test client, and a real uvicorn server on loopback)."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from graphlearn.kg.grag import GRAG, BaseGenerator, HashingEncoder, TextGraph
from graphlearn.kg.grag.service import create_app

FACTS = [
    ("marie curie", "born in", "warsaw"),
    ("warsaw", "capital of", "poland"),
    ("pierre curie", "married to", "marie curie"),
    ("albert einstein", "born in", "ulm"),
    ("ulm", "located in", "germany"),
]


@pytest.fixture(scope="module")
def grag():
    return GRAG.build(TextGraph.from_triples(FACTS), HashingEncoder(dim=128), k=1)


@pytest.fixture(scope="module")
def client(grag):
    return TestClient(create_app(grag, max_question_chars=100, max_k=5, max_body_bytes=2000))


def parse_sse(text: str) -> list[tuple[str | None, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
        events.append((name, data))
    return events


def test_health(client, grag):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["nodes"] == grag.num_nodes
    assert body["edges"] == len(FACTS) and body["pruner"] is False
    assert body["generator"] == "RetrievalOnlyGenerator"


def test_retrieve(client, grag):
    res = client.post("/retrieve", json={"question": "where was albert einstein born?"})
    assert res.status_code == 200
    body = res.json()
    ref = grag.retrieve("where was albert einstein born?")
    assert body["triples"] == [list(t) for t in ref.triples()]
    assert ["albert einstein", "born in", "ulm"] in body["triples"]
    assert body["description"] == ref.description and body["latency_ms"] >= 0
    body = client.post("/retrieve", json={"question": "ulm", "k": 3, "description": False}).json()
    assert "description" not in body and body["num_nodes"] >= 3


@pytest.mark.parametrize("payload, status, message", [
    ({"question": ""}, 422, "question is empty"),
    ({"question": " \n\t "}, 422, "question is empty"),
    ({"question": "x" * 101}, 413, "101 characters; the limit is 100"),
    ({}, 422, "question: Field required"),
    ({"question": "q", "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"question": "q", "k": 6}, 422, "k: Input should be less than or equal to 5"),
    ({"question": "q", "top": 3}, 422, "top: Extra inputs are not permitted"),
    ({"question": 3}, 422, "question: Input should be a valid string"),
    ({"question": "q", "prune": True}, 400, "no pruner"),
])
def test_bad_requests_get_a_clear_4xx(client, payload, status, message):
    for path in ("/retrieve", "/answer"):
        res = client.post(path, json=payload)
        assert res.status_code == status, res.text
        assert message in res.json()["error"]


def test_malformed_and_oversized_bodies(client):
    res = client.post("/retrieve", content=b"{not json", headers={"content-type": "application/json"})
    assert res.status_code == 422 and "JSON decode error" in res.json()["error"]
    res = client.post("/retrieve", content=json.dumps({"question": "x" * 3000}),
                      headers={"content-type": "application/json"})
    assert res.status_code == 413 and "limit is 2000" in res.json()["error"]


def test_answer_plain_and_streaming(client, grag):
    q = "where was marie curie born?"
    body = client.post("/answer", json={"question": q}).json()
    assert body["answer"] == grag.answer(q).text and body["retrieval"]["question"] == q
    with client.stream("POST", "/answer", json={"question": q, "stream": True}) as res:
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(res.read().decode())
    assert events[0][0] == "retrieval" and events[0][1]["triples"] == body["retrieval"]["triples"]
    assert events[-1][0] == "done"
    pieces = [data["text"] for name, data in events[1:-1] if name is None]
    assert len(pieces) > 1 and "".join(pieces) == body["answer"] == events[-1][1]["answer"]


class Failing(BaseGenerator):
    def stream(self, question, retrieval, *, max_new_tokens=None):
        yield "partial "
        raise RuntimeError("model crashed")


def test_a_generator_failing_midstream_sends_an_error_event(grag):
    failing = GRAG(grag.index, generator=Failing())
    client = TestClient(create_app(failing))
    with client.stream("POST", "/answer", json={"question": "ulm?", "stream": True}) as res:
        events = parse_sse(res.read().decode())
    assert [name for name, _ in events] == ["retrieval", None, "error"]
    assert events[-1][1]["error"] == "RuntimeError: model crashed"


class Unreachable(BaseGenerator):
    def generate(self, question, retrieval, *, max_new_tokens=None):
        from graphlearn.errors import EndpointError

        raise EndpointError("the chat-completions endpoint http://llm/v1 is unreachable",
                            url="http://llm/v1")


def test_a_failing_llm_server_is_a_502(grag):
    client = TestClient(create_app(GRAG(grag.index, generator=Unreachable())))
    res = client.post("/answer", json={"question": "ulm?"})
    assert res.status_code == 502 and "unreachable" in res.json()["error"]
    assert client.post("/retrieve", json={"question": "ulm?"}).status_code == 200


def test_create_app_checks_its_options(grag):
    from graphlearn.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="max_k"):
        create_app(grag, max_k=0)
    with pytest.raises(InvalidArgumentError, match="serves a GRAG"):
        create_app(grag.index)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_server_under_concurrent_requests(grag):
    """A uvicorn server on loopback answers 64 concurrent requests without errors, each
    equal to the single-threaded retrieval."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(grag), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 30
        while not server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        people = [h for h, r, _ in FACTS if r == "born in"]
        questions = [f"where was {people[i % len(people)]} born? ({i})" for i in range(64)]
        expected = {q: [list(t) for t in grag.retrieve(q).triples()] for q in questions}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          limits=httpx.Limits(max_connections=64)) as http:
            def ask(q):
                res = http.post("/retrieve", json={"question": q, "description": False})
                return q, res.status_code, res.json()

            with ThreadPoolExecutor(32) as pool:
                results = list(pool.map(ask, questions))
        assert all(status == 200 for _, status, _ in results)
        assert all(body["triples"] == expected[q] for q, _, body in results)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
