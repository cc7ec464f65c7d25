"""``GRAG``: the whole pipeline behind one object, for a QA app.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_) answers in
four steps; :class:`GRAG` holds the state of each and runs them in order:

1. **index** (:class:`~graphlearn.kg.grag.GraphIndex`): text embeddings of the graph's nodes
   and edges and one pooled embedding per k-hop ego-graph, in faiss;
2. **retrieve** (:func:`~graphlearn.kg.grag.retrieve`): the ``k`` ego-graphs most similar to
   the question, merged into one subgraph;
3. **prune** (:class:`~graphlearn.kg.grag.SoftPruner`, optional): learned relevance gates on
   the subgraph's nodes and edges, and the subgraph cut to the relevant part;
4. **generate** (a :class:`~graphlearn.kg.grag.Generator`): the answer from the subgraph
   (its description, and for the Hugging Face backend its soft-prompt tokens).

::

    from graphlearn.kg.grag import GRAG, TextGraph

    g = TextGraph.from_tsv("facts.tsv")
    grag = GRAG.build(g)                      # the packaged all-MiniLM-L6-v2, offline
    grag.save("facts.grag")
    grag = GRAG.load("facts.grag")
    r = grag.retrieve("where does bob live?")
    print(r.description)
    print(grag.answer("where does bob live?").text)

A :class:`GRAG` is safe to share between threads: retrievals run concurrently and
:meth:`GRAG.add` waits for them (and they for it) through a readers-writer lock; generators
serialise their own model calls. The HTTP service (:mod:`graphlearn.kg.grag.service`) and the
``graphlearn grag`` commands are thin layers over this class.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    InvalidArgumentError,
)

from .encoder import HashingEncoder, SentenceTransformerEncoder, TextEncoder
from .generate import Generator, RetrievalOnlyGenerator
from .index import GraphIndex, IndexUpdate, _check_int
from .manifest import read_manifest
from .prune import SoftPruner, make_pruning_examples, train_pruner
from .retrieve import Retrieval, _check_question, retrieve
from .textgraph import TextGraph

__all__ = ["GRAG", "Answer", "retrieval_to_dict", "resolve_encoder"]

FORMAT = "graphlearn.grag.GRAG"
FORMAT_VERSION = 1


def resolve_encoder(encoder: TextEncoder | str | os.PathLike | None) -> TextEncoder:
    """An encoder from a name: ``None`` or ``"default"`` (the packaged all-MiniLM-L6-v2),
    ``"hashing"`` (:class:`~graphlearn.kg.grag.HashingEncoder`), a sentence-transformers
    model folder or hub name; an encoder object is returned as is."""
    if encoder is None or encoder == "default":
        return SentenceTransformerEncoder()
    if isinstance(encoder, (str, os.PathLike)):
        if str(encoder) == "hashing":
            return HashingEncoder()
        return SentenceTransformerEncoder(str(encoder))
    if not hasattr(encoder, "encode") or not hasattr(encoder, "dim"):
        raise DTypeError(f"encoder must be 'default', 'hashing', a model path or an object "
                         f"with .encode(texts) and .dim, got {type(encoder).__name__}")
    return encoder


def retrieval_to_dict(retrieval: Retrieval, *, description: bool = True) -> dict[str, Any]:
    """A JSON-ready view of a :class:`~graphlearn.kg.grag.Retrieval`: node texts, triples,
    their scores and gates (rounded to 6 digits), the retrieved ego-graph roots and, with
    ``description=True``, the hierarchical description."""
    g = retrieval.graph

    def floats(t):
        return None if t is None else [round(float(v), 6) for v in t.tolist()]

    out: dict[str, Any] = {
        "question": retrieval.question,
        "method": retrieval.method,
        "num_nodes": g.num_nodes,
        "num_edges": g.num_edges,
        "nodes": list(g.node_text),
        "triples": [list(t) for t in g.triples()],
        "node_scores": floats(retrieval.node_scores),
        "edge_scores": floats(retrieval.edge_scores),
        "node_gates": floats(retrieval.node_gates),
        "edge_gates": floats(retrieval.edge_gates),
        "roots": [g.node_text[i] for i in retrieval.roots.tolist()[:10]],
        "ego_roots": retrieval.ego_roots.tolist(),
        "ego_scores": floats(retrieval.ego_scores),
    }
    if description:
        out["description"] = retrieval.description
    return out


@dataclass(frozen=True)
class Answer:
    """What :meth:`GRAG.answer` returns: the generated ``text`` and the ``retrieval`` it was
    generated from."""

    question: str
    text: str
    retrieval: Retrieval

    def to_dict(self, *, description: bool = True) -> dict[str, Any]:
        return {"question": self.question, "answer": self.text,
                "retrieval": retrieval_to_dict(self.retrieval, description=description)}


class _ReadWriteLock:
    """Many readers or one writer (writers wait for readers to leave, and vice versa)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def read(self):
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writing or self._readers:
                self._cond.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class GRAG:
    """Index, retrieve, prune and generate over one text graph.

    Args:
        index (GraphIndex): The indexed graph (from :meth:`build`, :meth:`load` or
            :meth:`GraphIndex.build <graphlearn.kg.grag.GraphIndex.build>`).
        pruner (SoftPruner, optional): Soft pruning applied to every retrieval (unless a
            call says ``prune=False``).
        generator (Generator, optional): The answer backend (default:
            :class:`~graphlearn.kg.grag.RetrievalOnlyGenerator`).
        k (int): Ego-graphs merged per question. (default: :obj:`5`)
        threshold (float): Gate above which a pruned member is kept. (default: :obj:`0.5`)
    """

    def __init__(self, index: GraphIndex, *, pruner: SoftPruner | None = None,
                 generator: Generator | None = None, k: int = 5,
                 threshold: float = 0.5) -> None:
        if not isinstance(index, GraphIndex):
            raise DTypeError(f"GRAG needs a GraphIndex, got {type(index).__name__}; use "
                             f"GRAG.build(textgraph) to make one")
        self.index = index
        self.k = _check_int(k, "k", 1)
        self.threshold = _check_threshold(threshold)
        self.pruner = None
        if pruner is not None:
            self.set_pruner(pruner)
        self.generator = generator if generator is not None else RetrievalOnlyGenerator()
        _check_generator(self.generator)
        self._lock = _ReadWriteLock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, graph: TextGraph, encoder: TextEncoder | str | os.PathLike | None = None, *,
              num_hops: int = 1, edge_embedding: str = "triple", index_type: str = "flat",
              k: int = 5, threshold: float = 0.5, pruner: SoftPruner | None = None,
              generator: Generator | None = None, progress: bool | None = None,
              **index_options: Any) -> GRAG:
        """Index ``graph`` (:meth:`GraphIndex.build <graphlearn.kg.grag.GraphIndex.build>`).

        Args:
            graph (TextGraph): The graph.
            encoder: An encoder object, ``"default"``/``None`` (the packaged
                all-MiniLM-L6-v2), ``"hashing"``, or a sentence-transformers model path.
            num_hops, edge_embedding, index_type, progress: As in ``GraphIndex.build``;
                further ``index_options`` are passed on too.
            k, threshold, pruner, generator: As in :class:`GRAG`.
        """
        index = GraphIndex.build(graph, resolve_encoder(encoder), num_hops=num_hops,
                                 edge_embedding=edge_embedding, index_type=index_type,
                                 progress=progress, **index_options)
        return cls(index, pruner=pruner, generator=generator, k=k, threshold=threshold)

    def set_pruner(self, pruner: SoftPruner | None) -> None:
        """Use ``pruner`` from now on (``None``: no pruning)."""
        if pruner is not None:
            if not isinstance(pruner, SoftPruner):
                raise DTypeError(f"pruner must be a SoftPruner, got {type(pruner).__name__}")
            if pruner.in_channels != self.index.dim:
                raise InvalidArgumentError(
                    f"the pruner takes {pruner.in_channels}-dimensional embeddings but the "
                    f"index's encoder gives {self.index.dim}; build it as "
                    f"SoftPruner({self.index.dim})")
            pruner.eval()
        self.pruner = pruner

    def fit_pruner(self, qa_examples: Iterable[Any], *, hidden_channels: int = 128,
                   num_layers: int = 2, distance: str = "abs", num_steps: int = 0,
                   product: bool = False, epochs: int = 20, seed: int = 0,
                   **train_options: Any) -> list[float]:
        """Train a :class:`~graphlearn.kg.grag.SoftPruner` on labelled questions (objects with
        ``question``, ``answers`` and optionally ``path``, e.g. PathQuestion's training split)
        retrieved with this GRAG's ``k``, and use it from now on.

        ``num_steps=0`` gives GRAG's per-member gates; ``num_steps=L, product=True`` (L the
        reasoning depth) lets each gate see the subgraph ``L`` edges around it, which prunes
        far more at the same recall (``docs/results.md``, GRAG retrieval quality). Further
        ``train_options`` go to :func:`~graphlearn.kg.grag.train_pruner`.

        Returns:
            list[float]: the training loss of each epoch.
        """
        import torch

        examples = make_pruning_examples(self.index, qa_examples, k=self.k)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            pruner = SoftPruner(self.index.dim, hidden_channels, num_layers, distance=distance,
                                num_steps=num_steps, product=product)
        history = train_pruner(pruner, examples, epochs=epochs, seed=seed, **train_options)
        self.set_pruner(pruner)
        return history

    # ------------------------------------------------------------------ queries
    @property
    def num_nodes(self) -> int:
        return self.index.num_nodes

    @property
    def num_edges(self) -> int:
        return self.index.num_edges

    def retrieve(self, question: str, k: int | None = None, *,
                 prune: bool | None = None) -> Retrieval:
        """The question's subgraph: the top-``k`` ego-graphs merged, then soft-pruned when a
        pruner is set (``prune=False`` skips it; ``prune=True`` without a pruner is an
        error).

        Returns:
            Retrieval: with :attr:`~graphlearn.kg.grag.Retrieval.description`, the scores and,
            when pruned, the gates.
        """
        question = _check_question(question)
        k = self.k if k is None else _check_int(k, "k", 1)
        if prune and self.pruner is None:
            raise InvalidArgumentError("prune=True but this GRAG has no pruner; train one with "
                                       "GRAG.fit_pruner(...) or pass pruner=")
        with self._lock.read():
            r = retrieve(self.index, question, k)
        if self.pruner is not None and prune is not False:
            import torch

            with torch.no_grad():
                r = self.pruner.prune(r, self.threshold)
        return r

    def answer(self, question: str, k: int | None = None, *, prune: bool | None = None,
               max_new_tokens: int | None = None) -> Answer:
        """Retrieve, then generate with :attr:`generator`."""
        r = self.retrieve(question, k, prune=prune)
        text = self.generator.generate(r.question, r, max_new_tokens=max_new_tokens)
        return Answer(r.question, text, r)

    def stream(self, question: str, k: int | None = None, *, prune: bool | None = None,
               max_new_tokens: int | None = None) -> tuple[Retrieval, Iterator[str]]:
        """Retrieve now and return the retrieval with an iterator over the answer's pieces
        (:meth:`Generator.stream <graphlearn.kg.grag.Generator.stream>`)."""
        r = self.retrieve(question, k, prune=prune)
        return r, iter(self.generator.stream(r.question, r, max_new_tokens=max_new_tokens))

    def add(self, triples: Iterable[Sequence[str]] = (), nodes: Iterable[str] = ()
            ) -> IndexUpdate:
        """Add facts and nodes to the graph and the index
        (:meth:`GraphIndex.add <graphlearn.kg.grag.GraphIndex.add>`); waits for running
        retrievals, and new ones wait for it."""
        with self._lock.write():
            return self.index.add(triples, nodes)

    def __repr__(self) -> str:
        pruned = "" if self.pruner is None else f", pruner={self.pruner!r}"
        return (f"GRAG(nodes={self.num_nodes}, edges={self.num_edges}, "
                f"encoder={self.index.encoder.name!r}, k={self.k}{pruned}, "
                f"generator={type(self.generator).__name__})")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the folder ``path``: ``grag.json`` (settings), ``index/``
        (:meth:`GraphIndex.save <graphlearn.kg.grag.GraphIndex.save>`) and, with a pruner,
        ``pruner.safetensors``. The generator is not saved (pass it to :meth:`load`)."""
        from safetensors.torch import save_file

        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InvalidArgumentError(f"{str(folder)!r} is a file; save a GRAG to a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            self.index.save(folder / "index")
        pruner = None
        if self.pruner is not None:
            pruner = self.pruner.config()
            state = {k: v.detach().cpu().contiguous()
                     for k, v in self.pruner.state_dict().items()}
            save_file(state, str(folder / "pruner.safetensors"))
        elif (folder / "pruner.safetensors").exists():
            (folder / "pruner.safetensors").unlink()
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "k": self.k,
                  "threshold": self.threshold, "pruner": pruner}
        (folder / "grag.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike, *, encoder: TextEncoder | None = None,
             generator: Generator | None = None, verify: bool = True) -> GRAG:
        """Read a folder written by :meth:`save` (nothing is unpickled).

        Args:
            path: The folder.
            encoder (TextEncoder, optional): Needed only when the index was built with an
                encoder that cannot be rebuilt from its name (a function, a model object).
            generator (Generator, optional): The answer backend.
            verify (bool): Check the index files' checksums. (default: :obj:`True`)

        Raises:
            DataNotFoundError: ``path`` is not a GRAG folder.
            DataFormatError: ``grag.json`` or the pruner weights are corrupt.
        """
        folder = Path(path)
        config_path = folder / "grag.json"
        config = read_manifest(config_path, format=FORMAT, versions=(FORMAT_VERSION,),
                               what="GRAG", fix="build one with GRAG.build(...).save(path) or "
                                                "`graphlearn grag index`")
        index = GraphIndex.load(folder / "index", encoder, verify=verify)
        pruner = None
        if config.get("pruner"):
            pruner = _load_pruner(folder / "pruner.safetensors", config["pruner"])
        try:
            return cls(index, pruner=pruner, generator=generator, k=config["k"],
                       threshold=config["threshold"])
        except KeyError as exc:
            raise DataFormatError(f"{config_path} lacks field {exc}; save the GRAG again"
                                  ) from None


# ---------------------------------------------------------------------------- helpers
def _load_pruner(path: Path, options: dict[str, Any]) -> SoftPruner:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataNotFoundError(f"{path} is missing but grag.json names a pruner; save the "
                                f"GRAG again")
    try:
        pruner = SoftPruner(**options)
        state = load_file(str(path))
        pruner.load_state_dict(state)
    except (SafetensorError, RuntimeError, TypeError, OSError) as exc:
        raise DataFormatError(f"cannot read the pruner from {path} ({exc}); save the GRAG "
                              f"again") from None
    return pruner


def _check_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise InvalidArgumentError(f"threshold must be a float in [0, 1), got {value!r}")
    return float(value)


def _check_generator(generator: Any) -> None:
    if not callable(getattr(generator, "generate", None)) or \
            not callable(getattr(generator, "stream", None)):
        raise DTypeError(f"generator must have generate(question, retrieval) and "
                         f"stream(question, retrieval) (a graphlearn.kg.grag.Generator), got "
                         f"{type(generator).__name__}")
