"""A GRAG generator backed by any server that speaks the OpenAI chat-completions API.

`vLLM <https://docs.vllm.ai>`_ (``vllm serve <model>``), `llama.cpp
<https://github.com/ggml-org/llama.cpp>`_'s ``llama-server``, text-generation-inference,
Ollama and OpenAI itself all accept ``POST {base_url}/chat/completions``.
:class:`OpenAICompatibleGenerator` sends the question with GRAG's text description of the
retrieved subgraph (:func:`~graphlearn.kg.grag.build_prompt`) as the user message; the graph
reaches the model as text only (soft prompts need the weights:
:class:`~graphlearn.kg.grag.hf.SoftPromptGenerator`).

Example::

    from graphlearn.kg.grag.openai_compat import OpenAICompatibleGenerator

    gen = OpenAICompatibleGenerator("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
    for piece in gen.stream("where does bob live?", retrieval):
        print(piece, end="", flush=True)

``httpx`` is imported when a generator is built, not with :mod:`graphlearn.kg.grag`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graphlearn.errors import DTypeError, EndpointError, InvalidArgumentError

from .generate import DEFAULT_TEMPLATE, BaseGenerator, build_prompt
from .index import _check_int
from .retrieve import _check_question

if TYPE_CHECKING:
    import httpx

    from .retrieve import Retrieval

__all__ = ["OpenAICompatibleGenerator", "EndpointError", "DEFAULT_SYSTEM_PROMPT"]

#: The system message sent before the prompt (``None`` in the constructor sends none).
DEFAULT_SYSTEM_PROMPT = ("You answer questions about a knowledge graph. Use the graph "
                         "description given with the question; answer briefly.")

_START_HINT = ("is the server running? Start one with e.g. `vllm serve <model>` or "
               "`llama-server -m <model>.gguf --port 8080`, and pass its API root as "
               "base_url (e.g. http://localhost:8000/v1)")


def _server_message(response: httpx.Response) -> str:
    """The error text of a failed response: OpenAI's ``{"error": {"message": ...}}``,
    ``{"error": "..."}``, FastAPI's ``{"detail": ...}`` or the raw body (shortened)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if error:
            return str(error)
    text = response.text.strip()
    return text[:500] + ("..." if len(text) > 500 else "") if text else "(empty body)"


class OpenAICompatibleGenerator(BaseGenerator):
    """A :class:`~graphlearn.kg.grag.Generator` calling an OpenAI-compatible chat-completions
    endpoint.

    :meth:`generate` posts one request with ``"stream": false`` and returns
    ``choices[0].message.content``; :meth:`stream` posts ``"stream": true`` and yields each
    ``choices[0].delta.content`` of the server-sent events until ``data: [DONE]``. The
    request body is ``{"model", "messages": [system, user], "max_tokens", "temperature",
    "stream"}`` plus ``extra_body``. One ``httpx.Client`` (thread-safe, with connection
    pooling) serves every call; :meth:`close` it, or use the generator as a context manager.

    Args:
        base_url (str): The API root, e.g. ``"http://localhost:8000/v1"`` (vLLM),
            ``"http://localhost:8080/v1"`` (llama.cpp) or ``"https://api.openai.com/v1"``.
        model (str): The model name the server expects (vLLM: the served model's name).
        api_key (str, optional): Sent as ``Authorization: Bearer``; default: the
            ``OPENAI_API_KEY`` environment variable when set, else no header.
        template (str): Prompt template with ``{description}`` and ``{question}``.
            (default: :data:`~graphlearn.kg.grag.DEFAULT_TEMPLATE`)
        system_prompt (str, optional): The system message (``None``: none).
            (default: :data:`DEFAULT_SYSTEM_PROMPT`)
        temperature (float): Sampling temperature; ``0`` is greedy. (default: :obj:`0.0`)
        max_new_tokens (int): Default ``max_tokens``. (default: :obj:`256`)
        timeout (float): Seconds to wait to connect and between bytes received.
            (default: :obj:`60.0`)
        extra_body (dict, optional): More request fields (``top_p``, ``stop``, ``seed``...).
        transport (httpx.BaseTransport, optional): The client's transport (tests pass an
            ``httpx.MockTransport``).

    Raises:
        EndpointError: (from the calls) the server is unreachable, times out, answers with a
            non-2xx status or with a body that is not a chat completion; the message names
            the URL, the status and the server's own message.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 template: str = DEFAULT_TEMPLATE,
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT, temperature: float = 0.0,
                 max_new_tokens: int = 256, timeout: float = 60.0,
                 extra_body: dict[str, Any] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"base_url must be an http(s) URL of the API root, e.g. "
                                       f"'http://localhost:8000/v1', got {base_url!r}")
        if not isinstance(model, str) or not model.strip():
            raise InvalidArgumentError(f"model must be the served model's name, got {model!r}")
        build_prompt("?", None, template)  # checks the template
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise DTypeError(f"system_prompt must be a str or None, got "
                             f"{type(system_prompt).__name__}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or (
                temperature < 0):
            raise InvalidArgumentError(f"temperature must be a float >= 0, got {temperature!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a positive number of seconds, got "
                                       f"{timeout!r}")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise DTypeError(f"extra_body must be a dict, got {type(extra_body).__name__}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.template = template
        self.system_prompt = system_prompt
        self.temperature = float(temperature)
        self.max_new_tokens = _check_int(max_new_tokens, "max_new_tokens", 1)
        self.timeout = float(timeout)
        self.extra_body = dict(extra_body or {})
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY") or None
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout),
                                    transport=transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        """Close the HTTP client's connections."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def messages(self, question: str, retrieval: Retrieval | None) -> list[dict[str, str]]:
        """The chat messages sent for ``question``: the system prompt, then the filled
        template."""
        out = [] if self.system_prompt is None else [{"role": "system",
                                                      "content": self.system_prompt}]
        out.append({"role": "user", "content": build_prompt(question, retrieval, self.template)})
        return out

    def _body(self, question: str, retrieval: Retrieval | None, max_new_tokens: int | None,
              stream: bool) -> dict[str, Any]:
        _check_question(question)
        if retrieval is not None and not hasattr(retrieval, "description"):
            raise DTypeError(f"retrieval must be a graphlearn.kg.grag.Retrieval or None, got "
                             f"{type(retrieval).__name__}")
        limit = (self.max_new_tokens if max_new_tokens is None else
                 _check_int(max_new_tokens, "max_new_tokens", 1))
        return {**self.extra_body, "model": self.model,
                "messages": self.messages(question, retrieval), "max_tokens": limit,
                "temperature": self.temperature, "stream": stream}

    def _transport_error(self, exc: Exception) -> EndpointError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            what = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
            hint = "raise timeout=..., or check that the server is not overloaded"
        else:
            what = f"could not be reached ({type(exc).__name__}: {exc})"
            hint = _START_HINT
        return EndpointError(f"the chat-completions endpoint {self.url} {what}; {hint}",
                             url=self.url)

    def _check_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        hint = {401: "; pass api_key=... or set OPENAI_API_KEY",
                403: "; pass api_key=... or set OPENAI_API_KEY",
                404: "; check that base_url is the API root (it usually ends in /v1) and "
                     "that the model name is served"}.get(response.status_code, "")
        raise EndpointError(f"POST {self.url} failed with HTTP {response.status_code} "
                            f"{response.reason_phrase}: {_server_message(response)}{hint}",
                            url=self.url, status=response.status_code)

    def _malformed(self, what: str, status: int) -> EndpointError:
        return EndpointError(f"POST {self.url} (HTTP {status}) answered with {what}, not an "
                             f"OpenAI chat completion; check that base_url points at an "
                             f"OpenAI-compatible API", url=self.url, status=status)

    # ------------------------------------------------------------------ the two calls
    def generate(self, question: str, retrieval: Retrieval | None, *,
                 max_new_tokens: int | None = None) -> str:
        """The whole answer (``choices[0].message.content``).

        Raises:
            InvalidArgumentError: ``question`` is blank or ``max_new_tokens < 1``.
            EndpointError: The request failed (see the class).
        """
        import httpx

        body = self._body(question, retrieval, max_new_tokens, stream=False)
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        self._check_status(response)
        try:
            data = response.json()
        except ValueError:
            raise self._malformed(f"a body that is not JSON ({response.text[:200]!r})",
                                  response.status_code) from None
        try:
            content = data["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._malformed(f"JSON without choices[0].message "
                                  f"({json.dumps(data)[:200]})", response.status_code) from None
        if content is not None and not isinstance(content, str):
            raise self._malformed(f"a non-text message content ({content!r:.200})",
                                  response.status_code)
        return content or ""

    def stream(self, question: str, retrieval: Retrieval | None, *,
               max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer in the pieces the server streams (``choices[0].delta.content``).

        Arguments are checked when called, before iteration; request errors are raised while
        iterating. Closing the iterator early closes the connection.

        Raises:
            InvalidArgumentError: ``question`` is blank or ``max_new_tokens < 1``.
            EndpointError: The request failed, or an event is not valid JSON.
        """
        body = self._body(question, retrieval, max_new_tokens, stream=True)
        return self._stream(body)

    def _stream(self, body: dict[str, Any]) -> Iterator[str]:
        import httpx

        try:
            with self._client.stream("POST", self.url, json=body,
                                     headers={"Accept": "text/event-stream"}) as response:
                if not response.is_success:
                    response.read()
                    self._check_status(response)
                status = response.status_code
                for line in response.iter_lines():
                    line = line.strip()
                    if not line.startswith("data:"):
                        continue  # blank separators, ": keep-alive" comments, event: lines
                    payload = line[len("data:"):].strip()
                    if payload == "[DONE]":
                        return
                    try:
                        event = json.loads(payload)
                    except ValueError:
                        raise self._malformed(f"an event that is not JSON ({payload[:200]!r})",
                                              status) from None
                    if not isinstance(event, dict):
                        raise self._malformed(f"an event that is not an object "
                                              f"({payload[:200]!r})", status)
                    if "error" in event:
                        error = event["error"]
                        message = error.get("message", error) if isinstance(error, dict) else error
                        raise EndpointError(f"POST {self.url} reported an error while "
                                            f"streaming: {message}", url=self.url, status=status)
                    choices = event.get("choices")
                    first = choices[0] if isinstance(choices, list) and choices else None
                    delta = first.get("delta") if isinstance(first, dict) else None
                    content = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(content, str) and content:
                        yield content
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
