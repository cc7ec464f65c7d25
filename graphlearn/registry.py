"""Name registries for models, datasets and other pluggable families.

A :class:`Registry` maps names to objects (classes or factories). Lookup ignores case,
``-``, ``_`` and spaces, so ``"GATv2"``, ``"gat-v2"`` and ``"gat_v2"`` all resolve to
``"gatv2"`` (the class-resolver convention PyKEEN uses). A miss raises
:class:`~graphlearn.errors.UnknownNameError` listing the sorted choices and the closest
match.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from graphlearn.errors import InvalidArgumentError, UnknownNameError

T = TypeVar("T")

__all__ = ["Registry", "normalize_name"]


def normalize_name(name: str) -> str:
    """Return the lookup key of ``name``: lower case without ``-``, ``_``, ``.`` or spaces."""
    return "".join(ch for ch in name.lower() if ch not in "-_ .")


class Registry(Generic[T]):
    """A case- and separator-insensitive mapping from names to objects.

    Args:
        kind (str): What the registry holds, used in messages (``"model"``, ``"dataset"``).
        hint (str, optional): How a user lists the choices, appended to a miss
            (e.g. ``"run `graphlearn datasets list`"``).
        providers (tuple[str, ...]): Modules imported on the first lookup, which register
            further entries (task modules' models).
    """

    def __init__(self, kind: str, *, hint: str = "", providers: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, tuple[str, T]] = {}
        self._providers = list(providers)

    def _load_providers(self) -> None:
        """Import the provider modules (which register entries) on first lookup.

        Task modules (``graphlearn.kg``) register their models here without the core
        importing them at import time: the dependency stays one-way, and ``import
        graphlearn.models`` stays light.
        """
        while self._providers:
            importlib.import_module(self._providers.pop(0))

    def register(self, name: str, obj: T | None = None, *, aliases: tuple[str, ...] = ()):
        """Register ``obj`` under ``name`` (and ``aliases``); usable as a decorator."""

        def add(value: T) -> T:
            for key in (name, *aliases):
                norm = normalize_name(key)
                if norm in self._entries and self._entries[norm][1] is not value:
                    raise InvalidArgumentError(
                        f"{self.kind} name {key!r} is already registered to "
                        f"{self._entries[norm][1]!r}; pick another name"
                    )
                self._entries[norm] = (name, value)
            return value

        if obj is not None:
            return add(obj)
        return add

    def get(self, name: str) -> T:
        """Return the object registered under ``name`` or raise ``UnknownNameError``."""
        self._load_providers()
        if not isinstance(name, str):
            raise InvalidArgumentError(f"{self.kind} name must be a string, got {name!r}")
        entry = self._entries.get(normalize_name(name))
        if entry is None:
            choices = self.names()
            close = difflib.get_close_matches(name.lower(), choices, n=1)
            suggestion = f" Did you mean {close[0]!r}?" if close else ""
            hint = f" ({self.hint})" if self.hint else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{suggestion} Choices: {', '.join(choices)}{hint}"
            )
        return entry[1]

    def canonical(self, name: str) -> str:
        """Return the registered spelling of ``name`` (resolving aliases)."""
        self.get(name)
        return self._entries[normalize_name(name)][0]

    def names(self) -> list[str]:
        """Sorted canonical names (aliases excluded)."""
        self._load_providers()
        return sorted({canonical for canonical, _ in self._entries.values()})

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_providers()
        seen: set[str] = set()
        for canonical, value in sorted(self._entries.values(), key=lambda e: e[0]):
            if canonical not in seen:
                seen.add(canonical)
                yield canonical, value

    def __contains__(self, name: object) -> bool:
        self._load_providers()
        return isinstance(name, str) and normalize_name(name) in self._entries

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Look up ``name`` and call it with the given arguments."""
        factory = self.get(name)
        if not callable(factory):
            raise InvalidArgumentError(f"{self.kind} {name!r} is not callable")
        return factory(*args, **kwargs)
