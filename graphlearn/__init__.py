"""graphlearn: one framework for graph learning and knowledge-graph reasoning.

Heavy submodules load on first use, so ``import graphlearn`` (and ``graphlearn --help``)
stays fast::

    import graphlearn
    result = graphlearn.fit(model="gatv2", dataset="cora", seed=0)
    print(result.metrics["test"])
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "fit": ("graphlearn.train", "fit"),
    "FitResult": ("graphlearn.train", "FitResult"),
    "validate": ("graphlearn.data.validation", "validate"),
    "load_dataset": ("graphlearn.datasets", "load"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'graphlearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
