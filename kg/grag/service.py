"""GRAG as an HTTP service (FastAPI): ``graphlearn grag serve`` runs :func:`create_app`.

Endpoints:

- ``GET /health``: ``{"status": "ok", "nodes": ..., "edges": ..., "encoder": ...,
  "generator": ..., "pruner": ..., "version": ...}``.
- ``POST /retrieve`` with ``{"question": str, "k": int?, "prune": bool?,
  "description": bool = true}``: the subgraph as JSON
  (:func:`~graphlearn.kg.grag.pipeline.retrieval_to_dict`: node texts, triples, scores,
  gates, description) plus ``latency_ms``.
- ``POST /answer`` with the same fields plus ``"stream": bool = false`` and
  ``"max_new_tokens": int?``: ``{"question", "answer", "retrieval", "latency_ms"}``; with
  ``"stream": true`` a ``text/event-stream`` of server-sent events: one ``retrieval`` event
  (the JSON above), then one unnamed event per answer piece (``{"text": piece}``), then
  ``done`` (``{"answer": full text}``), or ``error`` if the generator fails midway.

Bad requests get a 4xx whose JSON ``error`` says what to fix: a blank question or a bad
field is 422, a question over ``max_question_chars`` or a body over ``max_body_bytes`` is
413, a :class:`~graphlearn.errors.GraphLearnError` raised by the pipeline is 400, and an
unreachable or failing LLM server (:class:`~graphlearn.errors.EndpointError`) is 502. Handlers
are plain functions, which FastAPI runs on its thread pool, so requests are served
concurrently; :class:`~graphlearn.kg.grag.GRAG` is thread-safe.

Example (a test client, no server)::

    from fastapi.testclient import TestClient
    from graphlearn.kg.grag import GRAG, TextGraph
    from graphlearn.kg.grag.service import create_app

    grag = GRAG.build(TextGraph.from_triples([("paris", "capital of", "france")]), "hashing")
    client = TestClient(create_app(grag))
    client.post("/retrieve", json={"question": "capital of france?"}).json()["triples"]
    # [['paris', 'capital of', 'france']]
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at
# runtime, and the request models are local to create_app.
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from graphlearn.errors import EndpointError, GraphLearnError, InvalidArgumentError

from .pipeline import GRAG, Answer, retrieval_to_dict

__all__ = ["create_app", "serve"]


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(grag: GRAG, *, max_question_chars: int = 2000, max_k: int = 50,
               max_new_tokens: int = 1024, max_body_bytes: int = 64_000,
               max_workers: int | None = None):
    """The FastAPI application serving ``grag``.

    Args:
        grag (GRAG): The pipeline (shared by all requests).
        max_question_chars (int): Longest question accepted (413 above). (default: 2000)
        max_k (int): Largest ``k`` a request may ask for. (default: 50)
        max_new_tokens (int): Largest ``max_new_tokens`` a request may ask for.
            (default: 1024)
        max_body_bytes (int): Largest request body (413 above, before it is parsed).
            (default: 64000)
        max_workers (int, optional): Retrievals computed at once; more requests wait their
            turn. Retrieval is CPU work, so more threads than cores only thrash; generation
            (often waiting on an LLM server) is not limited. (default: the number of CPUs)
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, StreamingResponse
        from pydantic import BaseModel, ConfigDict, Field
    except ImportError as exc:
        raise ImportError("the GRAG service needs FastAPI: `pip install graphlearn[grag]` "
                          "(or `pip install fastapi uvicorn`)") from exc
    import graphlearn

    if not isinstance(grag, GRAG):
        raise InvalidArgumentError(f"create_app serves a GRAG, got {type(grag).__name__}")
    if max_workers is None:
        max_workers = os.cpu_count() or 1
    for name, value in (("max_question_chars", max_question_chars), ("max_k", max_k),
                        ("max_new_tokens", max_new_tokens), ("max_body_bytes", max_body_bytes),
                        ("max_workers", max_workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")

    token_limit = max_new_tokens
    workers = threading.BoundedSemaphore(max_workers)

    def retrieve(question: str, req) -> Any:
        with workers:
            return grag.retrieve(question, req.k, prune=req.prune)

    class RetrieveRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: str = Field(description="The question (non-blank, at most "
                                          f"{max_question_chars} characters).")
        k: int | None = Field(None, ge=1, le=max_k, description="Ego-graphs to merge.")
        prune: bool | None = Field(None, description="Soft-prune (default: when a pruner "
                                                     "is loaded).")
        description: bool = Field(True, description="Include the text description.")

    class AnswerRequest(RetrieveRequest):
        stream: bool = Field(False, description="Stream server-sent events.")
        max_new_tokens: int | None = Field(None, ge=1, le=token_limit)

    class ClientError(Exception):
        def __init__(self, status: int, message: str) -> None:
            super().__init__(message)
            self.status = status

    app = FastAPI(title="graphlearn GRAG", version=graphlearn.__version__,
                  description="Graph retrieval-augmented generation over one text graph.")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(status_code=413, content={
                "error": f"request body has {length} bytes; the limit is {max_body_bytes}"})
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(status_code=422, content={
            "error": "invalid request: " + "; ".join(problems)
                     + ' (send JSON like {"question": "...", "k": 5})'})

    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError):
        return JSONResponse(status_code=exc.status, content={"error": str(exc)})

    @app.exception_handler(GraphLearnError)
    async def graphlearn_error(request: Request, exc: GraphLearnError):
        # the LLM server behind us failed: 502, not the client's fault
        status = 502 if isinstance(exc, EndpointError) else 400
        return JSONResponse(status_code=status, content={"error": str(exc)})

    def check(req: RetrieveRequest) -> str:
        q = req.question
        if not q.strip():
            raise ClientError(422, 'question is empty; send {"question": "<your question>"}')
        if len(q) > max_question_chars:
            raise ClientError(413, f"question has {len(q)} characters; the limit is "
                                   f"{max_question_chars} (shorten it, or start the server "
                                   f"with a larger --max-question-chars)")
        return q

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "nodes": grag.num_nodes, "edges": grag.num_edges,
                "encoder": grag.index.encoder.name, "generator": type(grag.generator).__name__,
                "pruner": grag.pruner is not None, "k": grag.k,
                "version": graphlearn.__version__}

    @app.post("/retrieve")
    def post_retrieve(req: RetrieveRequest) -> dict[str, Any]:
        start = time.perf_counter()
        r = retrieve(check(req), req)
        with workers:
            out = retrieval_to_dict(r, description=req.description)
        out["latency_ms"] = round(1000 * (time.perf_counter() - start), 3)
        return out

    @app.post("/answer")
    def post_answer(req: AnswerRequest):
        start = time.perf_counter()
        question = check(req)
        r = retrieve(question, req)
        if not req.stream:
            text = grag.generator.generate(question, r, max_new_tokens=req.max_new_tokens)
            out = Answer(question, text, r).to_dict(description=req.description)
            out["latency_ms"] = round(1000 * (time.perf_counter() - start), 3)
            return out
        pieces = iter(grag.generator.stream(question, r, max_new_tokens=req.max_new_tokens))

        def events() -> Iterator[str]:
            yield _sse(retrieval_to_dict(r, description=req.description), "retrieval")
            text = []
            try:
                for piece in pieces:
                    text.append(piece)
                    yield _sse({"text": piece})
            except Exception as exc:  # the status line is sent; report in the stream
                yield _sse({"error": f"{type(exc).__name__}: {exc}"}, "error")
                return
            yield _sse({"answer": "".join(text),
                        "latency_ms": round(1000 * (time.perf_counter() - start), 3)}, "done")

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app


def serve(grag: GRAG, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", keep_alive: int = 75, **app_options: Any) -> None:
    """Run the service with uvicorn until interrupted (one process; requests share
    ``grag`` through FastAPI's thread pool)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError("`graphlearn grag serve` needs uvicorn: `pip install "
                          "graphlearn[grag]`") from exc
    # keep idle connections longer than uvicorn's 5 s default: a client that reuses a pooled
    # connection the server has just closed sees a read error under bursts of slow requests
    uvicorn.run(create_app(grag, **app_options), host=host, port=port, log_level=log_level,
                timeout_keep_alive=keep_alive)
