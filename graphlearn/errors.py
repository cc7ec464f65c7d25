"""The graphlearn exception hierarchy.

Every error graphlearn raises on bad user input derives from :class:`GraphLearnError`
*and* from the builtin a Python user would expect (``ValueError``, ``TypeError``,
``IndexError``, ``KeyError``, ``FileNotFoundError``), so ``except ValueError`` keeps
working. Messages name the bad value, what was expected and the fix.

The CLI treats every :class:`GraphLearnError` as a *user* error: it prints the one-line
message on stderr and exits with status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import pickle

__all__ = [
    "GraphLearnError",
    "EndpointError",
    "InvalidArgumentError",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "IndexOutOfRangeError",
    "NonFiniteError",
    "EmptyGraphError",
    "ConfigError",
    "UnknownNameError",
    "DataNotFoundError",
    "DataFormatError",
    "UnsafeFileError",
    "KernelNotAvailableError",
]


class GraphLearnError(Exception):
    """Base class of every error graphlearn raises on purpose."""


class InvalidArgumentError(GraphLearnError, ValueError):
    """An argument has a value outside what the callee accepts."""


class ShapeError(GraphLearnError, ValueError):
    """A tensor has the wrong rank or size."""


class DTypeError(GraphLearnError, TypeError):
    """A tensor has the wrong dtype."""


class DeviceError(GraphLearnError, ValueError):
    """Tensors that must share a device do not."""


class IndexOutOfRangeError(GraphLearnError, IndexError):
    """An index (node id, relation id, ...) lies outside its valid range."""


class NonFiniteError(GraphLearnError, ValueError):
    """A tensor that must be finite holds NaN or infinity."""


class EmptyGraphError(GraphLearnError, ValueError):
    """A graph has no nodes (or no edges where edges are required)."""


class ConfigError(GraphLearnError, ValueError):
    """A configuration key or value is invalid."""


class UnknownNameError(GraphLearnError, KeyError):
    """A name looked up in a registry (model, dataset, ...) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes.
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(GraphLearnError, FileNotFoundError):
    """Raw data files are missing and could not be downloaded."""


class DataFormatError(GraphLearnError, ValueError):
    """A data file exists but its content is malformed."""


class UnsafeFileError(GraphLearnError, pickle.UnpicklingError):
    """A file asked to load something graphlearn will not load (e.g. code in a pickle)."""


class KernelNotAvailableError(GraphLearnError, RuntimeError):
    """The requested kernel implementation cannot run here."""


class EndpointError(GraphLearnError, ConnectionError):
    """A remote service (e.g. an OpenAI-compatible LLM server) could not be reached, refused
    the request or answered with something unexpected.

    Attributes:
        url (str): The URL requested.
        status (int, optional): The HTTP status, when the server answered.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
