"""`graphlearn.kg.grag.openai_compat`: the OpenAI-compatible chat-completions generator,
against an ``httpx.MockTransport`` (no network)."""

import json
import socket
import threading

import pytest
from graphlearn.kg.grag import (
    DEFAULT_TEMPLATE,
    Generator,
    GraphIndex,
    HashingEncoder,
    TextGraph,
    build_prompt,
    retrieve,
)
from graphlearn.kg.grag.openai_compat import (
    DEFAULT_SYSTEM_PROMPT,
    EndpointError,
    OpenAICompatibleGenerator,
)

from graphlearn.errors import DTypeError, GraphLearnError, InvalidArgumentError

httpx = pytest.importorskip("httpx")

URL = "http://llm.test:8000/v1"
QUESTION = "where does bob live?"


@pytest.fixture(scope="module")
def retrieval():
    g = TextGraph.from_triples([("bob", "lives in", "paris"), ("paris", "capital of", "france")])
    return retrieve(GraphIndex.build(g, HashingEncoder(32)), QUESTION, k=2)


def completion(content):
    return {"id": "c1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}


def chunk(delta, finish=None):
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"


def mock(handler, **kwargs):
    """A generator whose requests go to ``handler`` (recorded in ``.requests``)."""
    requests = []

    def record(request):
        requests.append(request)
        return handler(request)

    gen = OpenAICompatibleGenerator(URL, "qwen-7b", transport=httpx.MockTransport(record),
                                    **kwargs)
    gen.requests = requests
    return gen


def test_generate_request_and_answer(retrieval, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gen = mock(lambda request: httpx.Response(200, json=completion(" paris")), api_key="sk-test",
               extra_body={"top_p": 0.9, "seed": 1})
    assert isinstance(gen, Generator)
    assert repr(gen) == f"OpenAICompatibleGenerator({URL!r}, model='qwen-7b')"
    assert gen.generate(QUESTION, retrieval) == " paris"
    request = gen.requests[-1]
    assert request.method == "POST" and str(request.url) == f"{URL}/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body == {"model": "qwen-7b", "max_tokens": 256, "temperature": 0.0, "stream": False,
                    "top_p": 0.9, "seed": 1, "messages": [
                        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                        {"role": "user", "content": build_prompt(QUESTION, retrieval)}]}
    assert retrieval.description in body["messages"][1]["content"]
    # per-call limit; a null content (e.g. a tool call) is an empty answer
    gen2 = mock(lambda request: httpx.Response(200, json=completion(None)),
                system_prompt=None, temperature=0.7, template="Q: {question}\n{description}")
    assert gen2.generate(QUESTION, None, max_new_tokens=7) == ""
    body = json.loads(gen2.requests[-1].content)
    assert body["max_tokens"] == 7 and body["temperature"] == 0.7
    assert body["messages"] == [{"role": "user", "content": f"Q: {QUESTION}\n"}]
    assert "authorization" not in gen2.requests[-1].headers


def test_api_key_from_environment_and_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    gen = OpenAICompatibleGenerator(URL + "/", "m", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json=completion(request.headers["authorization"]))))
    assert gen.url == f"{URL}/chat/completions"
    assert gen.generate(QUESTION, None) == "Bearer sk-env"
    with gen:
        pass  # the context manager closes the client
    with pytest.raises(RuntimeError):
        gen.generate(QUESTION, None)


def test_stream_parses_server_sent_events(retrieval):
    events = [": keep-alive\n\n", chunk({"role": "assistant"}), chunk({"content": "Par"}),
              chunk({"content": None}), chunk({"content": "is"}), "event: ping\n\n",
              chunk({"content": ", France"}), chunk({}, finish="stop"), "data: [DONE]\n\n",
              chunk({"content": "after done"})]
    raw = "".join(events).encode()
    # split the bytes across chunk boundaries that cut lines in half
    parts = [raw[i:i + 17] for i in range(0, len(raw), 17)]
    gen = mock(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(parts)))
    pieces = list(gen.stream(QUESTION, retrieval, max_new_tokens=5))
    assert pieces == ["Par", "is", ", France"]
    body = json.loads(gen.requests[-1].content)
    assert body["stream"] is True and body["max_tokens"] == 5
    assert gen.requests[-1].headers["accept"] == "text/event-stream"
    # BaseGenerator's contract: the joined stream is the answer
    assert "".join(pieces) == "Paris, France"


def test_concurrent_calls(retrieval):
    def echo(request):
        question = json.loads(request.content)["messages"][-1]["content"].split("Question: ")[1]
        return httpx.Response(200, json=completion(question.split("\n")[0]))

    gen = mock(echo)
    questions = [f"question {i}?" for i in range(16)]
    results = [None] * len(questions)

    def work(i):
        results[i] = gen.generate(questions[i], retrieval)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == questions


# ---------------------------------------------------------------------------- errors
def raising(exc_type):
    def handler(request):
        raise exc_type("boom", request=request)
    return handler


@pytest.mark.parametrize("streaming", [False, True])
def test_transport_errors(retrieval, streaming):
    for exc_type, match in [(httpx.ConnectError, r"could not be reached .*vllm serve"),
                            (httpx.ReadTimeout, r"timed out after 60 s")]:
        gen = mock(raising(exc_type))
        with pytest.raises(EndpointError, match=match) as info:
            if streaming:
                list(gen.stream(QUESTION, retrieval))
            else:
                gen.generate(QUESTION, retrieval)
        assert URL in str(info.value) and info.value.status is None
        assert isinstance(info.value, ConnectionError) and isinstance(info.value, GraphLearnError)


def test_connection_refused_for_real():
    """A real socket to a closed local port (no mock)."""
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", "m", timeout=5.0)
    with pytest.raises(EndpointError, match=rf"http://127.0.0.1:{port}/v1/chat/completions "
                                            rf"(could not be reached|timed out)"):
        gen.generate(QUESTION, None)


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(("status", "body", "match"), [
    (500, {"error": {"message": "model overloaded", "type": "server_error"}},
     r"HTTP 500 Internal Server Error: model overloaded"),
    (401, {"error": "invalid api key"}, r"HTTP 401 .*invalid api key; pass api_key"),
    (404, "Not Found: /v1/chat/completions", r"HTTP 404 .*Not Found: .*ends in /v1"),
    (422, {"detail": [{"msg": "field required"}]}, r"HTTP 422 .*field required"),
])
def test_http_errors(retrieval, streaming, status, body, match):
    def handler(request):
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    gen = mock(handler)
    with pytest.raises(EndpointError, match=match) as info:
        if streaming:
            list(gen.stream(QUESTION, retrieval))
        else:
            gen.generate(QUESTION, retrieval)
    assert info.value.status == status and f"{URL}/chat/completions" in str(info.value)


def test_malformed_responses(retrieval):
    gen = mock(lambda request: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(EndpointError, match=r"HTTP 200\) answered with a body that is not JSON"):
        gen.generate(QUESTION, retrieval)
    gen = mock(lambda request: httpx.Response(200, json={"result": "paris"}))
    with pytest.raises(EndpointError, match=r"without choices\[0\]\.message"):
        gen.generate(QUESTION, retrieval)
    gen = mock(lambda request: httpx.Response(200, text="data: {not json\n\n"))
    with pytest.raises(EndpointError, match="an event that is not JSON"):
        list(gen.stream(QUESTION, retrieval))
    error_event = 'data: {"error": {"message": "context length exceeded"}}\n\n'
    gen = mock(lambda request: httpx.Response(200, text=chunk({"content": "a"}) + error_event))
    pieces = gen.stream(QUESTION, retrieval)
    assert next(pieces) == "a"
    with pytest.raises(EndpointError, match="while streaming: context length exceeded"):
        next(pieces)


def test_argument_errors(retrieval):
    gen = mock(lambda request: pytest.fail("no request may be sent"))
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        gen.generate("  ", retrieval)
    with pytest.raises(InvalidArgumentError, match="question is empty"):
        gen.stream("", retrieval)  # checked on the call, before iterating
    with pytest.raises(InvalidArgumentError, match="max_new_tokens"):
        gen.generate(QUESTION, retrieval, max_new_tokens=0)
    with pytest.raises(DTypeError, match="Retrieval"):
        gen.generate(QUESTION, "context")
    with pytest.raises(InvalidArgumentError, match="API root"):
        OpenAICompatibleGenerator("localhost:8000", "m")
    with pytest.raises(InvalidArgumentError, match="model"):
        OpenAICompatibleGenerator(URL, "")
    with pytest.raises(InvalidArgumentError, match="temperature"):
        OpenAICompatibleGenerator(URL, "m", temperature=-1)
    with pytest.raises(InvalidArgumentError, match=r"\{question\}"):
        OpenAICompatibleGenerator(URL, "m", template="{description}")
    assert DEFAULT_TEMPLATE.endswith("Answer:")
