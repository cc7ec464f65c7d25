"""The generation step of GRAG: a :class:`Generator` turns a question and its retrieved
subgraph into an answer.

Backends:

- :class:`RetrievalOnlyGenerator` (here): no model; the "answer" is the retrieved
  subgraph's description, for apps that hand the context to an LLM of their own.
- :class:`~graphlearn.kg.grag.hf.SoftPromptGenerator`: a Hugging Face causal LM from a local
  path that reads the subgraph twice, as graph soft-prompt tokens (a GNN over the member
  embeddings, pooled and projected into the LM's embedding space) and as GRAG's text
  description; the LM frozen or adapted with LoRA (peft).
- :class:`~graphlearn.kg.grag.openai_compat.OpenAICompatibleGenerator`: any server that speaks the
  OpenAI chat-completions API (vLLM, llama.cpp, text-generation-inference, OpenAI), given the
  description.

Every backend implements :meth:`Generator.generate` (the whole answer) and
:meth:`Generator.stream` (the answer in pieces, as they are produced); both must be safe to
call from several threads at once (the HTTP service does). :func:`build_prompt` is the text
prompt they share.

Example:
    >>> from graphlearn.kg.grag import (GraphIndex, HashingEncoder, RetrievalOnlyGenerator,
    ...                                 TextGraph, retrieve)
    >>> g = TextGraph.from_triples([("paris", "capital of", "france")])
    >>> r = retrieve(GraphIndex.build(g, HashingEncoder()), "capital of france?", k=1)
    >>> answer = RetrievalOnlyGenerator().generate("capital of france?", r)
    >>> answer.splitlines()[-2:]
    ['france', '  <- capital of <- paris']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from graphlearn.errors import DTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from .retrieve import Retrieval

__all__ = ["Generator", "BaseGenerator", "RetrievalOnlyGenerator", "build_prompt",
           "DEFAULT_TEMPLATE"]

#: GRAG's prompt: the hierarchical description of the subgraph, then the question.
DEFAULT_TEMPLATE = "{description}\n\nQuestion: {question}\nAnswer:"


def build_prompt(question: str, retrieval: Retrieval | None,
                 template: str = DEFAULT_TEMPLATE) -> str:
    """The text prompt: ``template`` filled with ``retrieval.description`` (empty without a
    retrieval) and ``question``.

    Raises:
        InvalidArgumentError: ``template`` lacks ``{question}`` or ``{description}``.
    """
    if not isinstance(template, str) or "{question}" not in template \
            or "{description}" not in template:
        raise InvalidArgumentError(f"the prompt template must contain {{question}} and "
                                   f"{{description}}, got {template!r}")
    description = "" if retrieval is None else retrieval.description
    return template.replace("{description}", description).replace("{question}", question)


@runtime_checkable
class Generator(Protocol):
    """What :class:`~graphlearn.kg.grag.GRAG` needs from a generation backend."""

    def generate(self, question: str, retrieval: Retrieval | None, *,
                 max_new_tokens: int | None = None) -> str:
        """The whole answer to ``question`` given the retrieved subgraph."""
        ...

    def stream(self, question: str, retrieval: Retrieval | None, *,
               max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer in pieces; ``"".join(stream(...))`` equals :meth:`generate`'s text."""
        ...


class BaseGenerator:
    """A :class:`Generator` from either method: subclasses override :meth:`stream` (and get
    :meth:`generate` as the joined pieces) or :meth:`generate` (and get a one-piece
    :meth:`stream`)."""

    def generate(self, question: str, retrieval: Retrieval | None, *,
                 max_new_tokens: int | None = None) -> str:
        if type(self).stream is BaseGenerator.stream:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate "
                                      f"nor stream")
        return "".join(self.stream(question, retrieval, max_new_tokens=max_new_tokens))

    def stream(self, question: str, retrieval: Retrieval | None, *,
               max_new_tokens: int | None = None) -> Iterator[str]:
        if type(self).generate is BaseGenerator.generate:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate "
                                      f"nor stream")
        yield self.generate(question, retrieval, max_new_tokens=max_new_tokens)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RetrievalOnlyGenerator(BaseGenerator):
    """No language model: the answer is the retrieved subgraph's description
    (:attr:`Retrieval.description <graphlearn.kg.grag.Retrieval.description>`), streamed a
    line at a time; ``max_new_tokens`` is ignored.
    """

    def stream(self, question: str, retrieval: Retrieval | None, *,
               max_new_tokens: int | None = None) -> Iterator[str]:
        if retrieval is None:
            raise InvalidArgumentError("RetrievalOnlyGenerator answers with the retrieved "
                                       "subgraph; pass a Retrieval, not None")
        if not hasattr(retrieval, "description"):
            raise DTypeError(f"retrieval must be a Retrieval, got {type(retrieval).__name__}")
        text = retrieval.description
        yield from text.splitlines(keepends=True) or [""]
