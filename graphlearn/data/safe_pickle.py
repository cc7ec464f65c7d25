"""A restricted unpickler for the pickled raw files some benchmarks ship (Planetoid).

``pickle.load`` runs whatever callable a file names, so a pickle placed in a data root is
code, not data. :func:`safe_load` reads a pickle with an allowlist of ``(module, name)``
globals and refuses every other one with :class:`~graphlearn.errors.UnsafeFileError`
before anything is called.

The default allowlist, :data:`PLANETOID_GLOBALS`, is exactly what the Planetoid
``ind.<name>.*`` files (Python-2 pickles, protocol 2) ask for:

==================================  ========================================================
global                              used by
==================================  ========================================================
``scipy.sparse.csr.csr_matrix``     ``x``, ``tx``, ``allx`` (sparse bag-of-words features)
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``
                                    the arrays inside them, and ``y``, ``ty``, ``ally``
``collections.defaultdict``         ``graph`` (adjacency lists)
``builtins.list``                   ``graph`` (the ``defaultdict(list)`` factory)
==================================  ========================================================

Names are compared after mapping spellings of the *same* object onto one: Python 2's
``__builtin__`` (and the other ``_compat_pickle`` renames), numpy 2's ``numpy._core``
(for ``numpy.core``) and scipy's private ``scipy.sparse._csr`` (for ``scipy.sparse.csr``).
On numpy >= 2, ``numpy.core.*`` is resolved from ``numpy._core.*`` so no deprecation
warning fires.
"""

from __future__ import annotations

import _compat_pickle
import importlib
import os
import pickle
from pathlib import Path
from typing import IO, Any

from graphlearn.errors import DataFormatError, DataNotFoundError, GraphLearnError, UnsafeFileError

__all__ = ["PLANETOID_GLOBALS", "safe_load"]

PLANETOID_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("scipy.sparse.csr", "csr_matrix"),
        ("collections", "defaultdict"),
        ("builtins", "list"),
    }
)
"""The globals the Planetoid ``ind.<name>.*`` pickles need, and nothing else."""

# Private or renamed module spellings -> the canonical spelling used in allowlists.
_MODULE_ALIASES = {
    "numpy._core": "numpy.core",
    "scipy.sparse._csr": "scipy.sparse.csr",
}


def _canonical(module: str, name: str) -> tuple[str, str]:
    """Map a (module, name) pair as written in a pickle onto its allowlist spelling."""
    if (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names (protocol < 3)
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    for alias, canonical in _MODULE_ALIASES.items():
        if module == alias or module.startswith(alias + "."):
            module = canonical + module[len(alias):]
    return module, name


def _resolve(module: str, name: str) -> Any:
    """Import the object behind a canonical (module, name) pair."""
    if module == "scipy.sparse.csr":  # public home of the class; the old module warns
        module = "scipy.sparse"
    elif module == "numpy.core" or module.startswith("numpy.core."):
        import numpy

        if int(numpy.__version__.split(".")[0]) >= 2:
            module = "numpy._core" + module[len("numpy.core"):]
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], *, source: str, allowed: frozenset, encoding: str):
        super().__init__(file, encoding=encoding)
        self._source = source
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        key = _canonical(module, name)
        if key not in self._allowed:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in self._allowed)) or "none"
            raise UnsafeFileError(
                f"{self._source}: refused to load global {module}.{name} from this pickle. "
                f"graphlearn only admits {allowed} here, because a pickle naming other globals "
                f"can run arbitrary code when loaded: a data root is data, not trusted code. "
                f"Replace the file with the original from the dataset's source."
            )
        try:
            return _resolve(*key)
        except (ImportError, AttributeError) as exc:
            raise DataFormatError(
                f"{self._source}: the pickle names {module}.{name}, which cannot be imported "
                f"here ({exc})"
            ) from exc

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFileError(
            f"{self._source}: refused a persistent id ({pid!r}) in this pickle; plain data "
            f"files do not use them, and a data root is data, not trusted code"
        )


def safe_load(
    path_or_file: str | os.PathLike | IO[bytes],
    *,
    allowed: frozenset[tuple[str, str]] | None = None,
    encoding: str = "latin1",
) -> Any:
    """Unpickle a file, admitting only the allowlisted globals.

    Args:
        path_or_file (path or binary file): The pickle to read.
        allowed (frozenset of (str, str), optional): ``(module, name)`` globals the file may
            use, in canonical spelling (``builtins``, ``numpy.core``, ``scipy.sparse.csr``).
            (default: :data:`PLANETOID_GLOBALS`)
        encoding (str, optional): How Python-2 ``str`` objects are decoded; ``"latin1"``
            keeps numpy array buffers intact. (default: :obj:`"latin1"`)

    Returns:
        The unpickled object.

    Raises:
        UnsafeFileError: The pickle names a global outside ``allowed`` (nothing from the
            file has been called), or uses persistent ids.
        DataFormatError: The file is truncated, corrupt or not a pickle.
        DataNotFoundError: ``path_or_file`` is a path that does not exist.
    """
    allowed = PLANETOID_GLOBALS if allowed is None else frozenset(allowed)
    if isinstance(path_or_file, (str, os.PathLike)):
        path = Path(path_or_file)
        try:
            file = path.open("rb")
        except FileNotFoundError as exc:
            raise DataNotFoundError(f"pickle file {path} does not exist") from exc
        except OSError as exc:  # a directory, no permission, ...
            raise DataFormatError(f"{path} could not be opened as a pickle file ({exc})") from exc
        with file:
            return _load(file, str(path), allowed, encoding)
    source = str(getattr(path_or_file, "name", None) or "<pickle stream>")
    return _load(path_or_file, source, allowed, encoding)


def _load(file: IO[bytes], source: str, allowed: frozenset, encoding: str) -> Any:
    try:
        return _RestrictedUnpickler(file, source=source, allowed=allowed, encoding=encoding).load()
    except GraphLearnError:
        raise
    except Exception as exc:  # EOFError, UnpicklingError, ValueError, OSError, RecursionError
        raise DataFormatError(
            f"{source} is not a valid pickle: it is truncated or corrupt "
            f"({type(exc).__name__}: {exc}). Replace it with the original file."
        ) from exc
