"""Read the versioned JSON file that describes a saved GRAG artefact (an index's
``manifest.json``, a pipeline's ``grag.json``, a generator's ``generator.json``)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from graphlearn.errors import DataFormatError, DataNotFoundError

__all__ = ["read_manifest"]


def read_manifest(path: Path, *, format: str, versions: Collection[int], what: str,
                  fix: str) -> dict[str, Any]:
    """The JSON object at ``path``, checked to be a ``format`` file of one of ``versions``.

    Args:
        path (Path): The file inside the artefact's folder.
        format (str): The expected ``"format"`` field.
        versions (collection of int): The ``"format_version"`` values this code reads.
        what (str): The artefact's name in messages (``"GraphIndex"``).
        fix (str): What the user should do, appended to every message.

    Raises:
        DataNotFoundError: The folder or the file is missing.
        DataFormatError: The file is not JSON, not a ``format`` file, or of another version.
    """
    folder = path.parent
    if not folder.is_dir():
        raise DataNotFoundError(f"no {what} folder at {str(folder)!r}; {fix}")
    if not path.is_file():
        raise DataNotFoundError(f"{str(folder)!r} has no {path.name}, so it is not a "
                                f"(complete) {what} folder; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path} is not valid JSON ({exc}); it is corrupt: {fix}") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != format:
        raise DataFormatError(f"{path} is not a {what} config (format {found!r}, expected "
                              f"{format!r})")
    if data.get("format_version") not in versions:
        readable = " and ".join(str(v) for v in sorted(versions))
        raise DataFormatError(f"{path} has format_version {data.get('format_version')!r}; "
                              f"this graphlearn reads version {readable}: {fix}")
    return data
