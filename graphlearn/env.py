"""Reading ``GRAPHLEARN_*`` on/off switches from the environment, one way everywhere."""

from __future__ import annotations

import os

__all__ = ["env_flag"]

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})


def env_flag(name: str) -> bool | None:
    """``True`` / ``False`` when the variable ``name`` says on (``1``, ``true``, ``yes``,
    ``on``) or off (``0``, ``false``, ``no``, ``off``), any case and surrounding space;
    ``None`` when it is unset, empty or anything else (the caller's default applies)."""
    value = os.environ.get(name, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    return None
