"""Where dataset files live: raw-file lookup, download, and the processed cache.

Raw files are looked up, in order, in

1. ``root`` (the ``root=`` argument of :func:`graphlearn.datasets.load`), else
   ``$GRAPHLEARN_DATA``, laid out like the project's shared data folder
   (``<root>/planetoid/cora/raw/ind.cora.x``);
2. the download cache ``$GRAPHLEARN_CACHE/raw`` (default ``~/.cache/graphlearn/raw``), same
   layout.

A data root is never written to. Missing files are downloaded into the cache from the
dataset's canonical source, unless ``download=False`` or ``GRAPHLEARN_OFFLINE=1``; when that
fails, :class:`~graphlearn.errors.DataNotFoundError` lists the exact missing files and the
folder to put them in. Processed tensors are cached under ``$GRAPHLEARN_CACHE/processed``
as ``torch.save`` files of plain tensors, read back with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

from graphlearn.data.dataset import DatasetInfo
from graphlearn.env import env_flag
from graphlearn.errors import DataNotFoundError

__all__ = [
    "data_root",
    "cache_root",
    "offline",
    "require_raw_files",
    "raw_file_status",
    "download_url",
    "cached_tensors",
]

DOWNLOAD_TIMEOUT_S = 30


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The data root: ``root`` if given, else ``$GRAPHLEARN_DATA``, else ``None``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("GRAPHLEARN_DATA")
    return Path(env).expanduser() if env else None


def cache_root() -> Path:
    """``$GRAPHLEARN_CACHE``, else ``~/.cache/graphlearn``."""
    env = os.environ.get("GRAPHLEARN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "graphlearn"


def offline() -> bool:
    """Whether ``GRAPHLEARN_OFFLINE`` forbids downloads."""
    return env_flag("GRAPHLEARN_OFFLINE") is True


def _missing(folder: Path, files: tuple[str, ...]) -> list[str]:
    return [f for f in files if not (folder / f).is_file()]


def require_raw_files(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    fetch: Callable[[Path], None] | None = None,
) -> Path:
    """Return the folder that holds all of ``info.raw_files``, downloading them if needed.

    Args:
        info (DatasetInfo): The dataset; ``raw_dir`` and ``raw_files`` say what to find.
        root (path, optional): Data root; defaults to ``$GRAPHLEARN_DATA``.
        download (bool): Try the canonical source when files are missing.
        fetch (callable, optional): ``fetch(folder)`` downloads the raw files into
            ``folder``; required for downloading.

    Raises:
        DataNotFoundError: Files are missing and could not be downloaded. The message lists
            them and the folder to place them in.
    """
    base = data_root(root)
    candidates = ([base / info.raw_dir] if base is not None else []) + [
        cache_root() / "raw" / info.raw_dir
    ]
    for folder in candidates:
        if not _missing(folder, info.raw_files):
            return folder

    primary = candidates[0]
    missing = _missing(primary, info.raw_files)
    reason = ""
    if download and fetch is not None and not offline():
        target = cache_root() / "raw" / info.raw_dir
        try:
            fetch(target)
        except (OSError, urllib.error.URLError) as exc:  # offline, HTTP 404, disk full, ...
            reason = f" Download from {info.url} failed ({exc})."
        else:
            still = _missing(target, info.raw_files)
            if not still:
                return target
            reason = f" Download from {info.url} did not provide {', '.join(still)}."
    elif not download or offline():
        reason = " Downloads are disabled (download=False or GRAPHLEARN_OFFLINE=1)."

    where = (
        f"{primary} (the data root from {'root=' if root is not None else 'GRAPHLEARN_DATA'})"
        if base is not None
        else f"{primary} (or set GRAPHLEARN_DATA to a data root with {info.raw_dir}/ in it)"
    )
    raise DataNotFoundError(
        f"dataset {info.name!r} is missing {len(missing)} raw file(s): {', '.join(missing)}."
        f"{reason} Get them from {info.url} and place them in {where}."
    )


def raw_file_status(info: DatasetInfo, root: str | os.PathLike | None = None) -> dict:
    """Where ``info``'s raw files are, without downloading: ``{"folder", "missing", "message"}``."""
    if not info.raw_files:
        return {"folder": None, "missing": [], "message": "embedded (nothing to download)"}
    base = data_root(root)
    candidates = ([base / info.raw_dir] if base is not None else []) + [
        cache_root() / "raw" / info.raw_dir
    ]
    for folder in candidates:
        if not _missing(folder, info.raw_files):
            return {"folder": str(folder), "missing": [], "message": f"all present in {folder}"}
    missing = _missing(candidates[0], info.raw_files)
    return {"folder": str(candidates[0]), "missing": missing,
            "message": f"missing in {candidates[0]}: {', '.join(missing)} "
                       f"(downloaded from {info.url} on first load)"}


def download_url(url: str, folder: Path, filename: str | None = None) -> Path:
    """Download ``url`` into ``folder`` atomically (temporary file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = filename or url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    path = folder / name
    if path.is_file():
        return path
    from tqdm.auto import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as tmp, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"Downloading {name}", leave=False
        ) as bar:
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
                bar.update(len(chunk))
    shutil.move(tmp.name, path)
    return path


def _fingerprint(files: list[Path], version: str) -> str:
    h = hashlib.sha256(version.encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached_tensors(
    name: str,
    raw_files: list[Path],
    build: Callable[[], dict[str, torch.Tensor]],
    *,
    version: str = "1",
) -> dict[str, torch.Tensor]:
    """Return ``build()``, cached on disk keyed by the raw files' identity and ``version``.

    The cache holds only tensors and is read with ``torch.load(weights_only=True)``, so a
    tampered cache file cannot run code. Bump ``version`` when processing changes.
    """
    key = _fingerprint(raw_files, version)
    path = cache_root() / "processed" / f"{name}-{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a truncated or foreign cache file: rebuild it
            path.unlink(missing_ok=True)
    out = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as tmp:
            torch.save(out, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass  # a read-only cache only costs speed
    return out
