"""The wheel ships every subpackage.

``pyproject.toml`` lists its packages explicitly (the repository root maps several folders into
``graphlearn``), and an editable install finds a forgotten one anyway, so only a regular
install shows the gap: ``graphlearn.analysis`` was missing from the first GPU machine's install.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (CI runs 3.11)
ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([package, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    assert listed <= found, f"listed but not on disk: {sorted(listed - found)}"
