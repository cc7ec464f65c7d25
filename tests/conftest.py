"""Test configuration shared by the whole suite.

``TRITON_INTERPRET=1`` must be set before any kernel module imports triton, so it is set
here, at import time of the root conftest, before test modules are collected.
"""

import os
import tempfile

os.environ.setdefault("TRITON_INTERPRET", "1")
# Keep processed caches out of the user's home during tests.
os.environ.setdefault("GRAPHLEARN_CACHE", tempfile.mkdtemp(prefix="graphlearn-test-cache-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _data_root() -> Path | None:
    env = os.environ.get("GRAPHLEARN_DATA")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


def require_data(*relative: str) -> Path:
    """Return the data root holding ``relative`` paths; skip (or fail in CI) if absent.

    With ``GRAPHLEARN_REQUIRE_DATA=1`` (set by ``.ci/run``) a missing dataset fails the test
    instead of skipping it, so CI never counts an unrun data test as a pass.
    """
    root = _data_root()
    missing = [r for r in relative if root is None or not (root / r).exists()]
    if missing:
        msg = f"dataset files not found: {missing} under {root} (set GRAPHLEARN_DATA)"
        if os.environ.get("GRAPHLEARN_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture
def data_root():
    """The real data root (``$GRAPHLEARN_DATA`` or ../shared/data)."""

    def get(*relative: str) -> Path:
        return require_data(*relative)

    return get
