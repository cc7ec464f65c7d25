"""Concrete datasets: one entry point, :func:`load`, and a registry of what it can load.

::

    from graphlearn import datasets

    datasets.names()                    # ['citeseer', 'cora', 'enzymes', 'karate', ...]
    datasets.info("cora").citation      # source, licence, splits, stats, raw files
    cora = datasets.load("cora", root="/data", normalize_features=True)
    mutag = datasets.load("mutag", download=False)

Raw files are looked up under ``root`` (else ``$GRAPHLEARN_DATA``), then in the download
cache; missing files are downloaded from the canonical source unless ``download=False``
(see :mod:`graphlearn.data.files`). A data root is never written to. Every loaded graph is
checked with :func:`graphlearn.data.validation.validate`.

==================  ====================  ========================================
name                task                  module
==================  ====================  ========================================
``karate``          node classification   :mod:`graphlearn.datasets.karate`
``long-range-path`` node classification   :mod:`graphlearn.datasets.long_range` (synthetic)
``cora``            node classification   :mod:`graphlearn.datasets.planetoid`
``citeseer``        node classification   :mod:`graphlearn.datasets.planetoid`
``pubmed``          node classification   :mod:`graphlearn.datasets.planetoid`
``mutag``           graph classification  :mod:`graphlearn.datasets.tu`
``proteins``        graph classification  :mod:`graphlearn.datasets.tu`
``enzymes``         graph classification  :mod:`graphlearn.datasets.tu`
``roman-empire``    node classification   :mod:`graphlearn.datasets.heterophilous`
``amazon-ratings``  node classification   :mod:`graphlearn.datasets.heterophilous`
``minesweeper``     node classification   :mod:`graphlearn.datasets.heterophilous`
``tolokers``        node classification   :mod:`graphlearn.datasets.heterophilous`
``questions``       node classification   :mod:`graphlearn.datasets.heterophilous`
``aifb``            node classification   :mod:`graphlearn.datasets.rdf`
``mutag-rdf``       node classification   :mod:`graphlearn.datasets.rdf`
``bgs``             node classification   :mod:`graphlearn.datasets.rdf`
``am``              node classification   :mod:`graphlearn.datasets.rdf`
``fb15k-237``,      link prediction       :mod:`graphlearn.datasets.kg`
``wn18rr``, ``umls``
``family``,         link prediction       :mod:`graphlearn.datasets.kg` (RED-GNN layout)
``umls-redgnn``,
``wn18rr-redgnn``
``fb237_v1`` ..,    link prediction       :mod:`graphlearn.datasets.kg` (inductive)
``wn18rr_v1`` ..,
``nell_v1`` ..
==================  ====================  ========================================

A path instead of a name loads a user's knowledge graph: a folder of ``train/valid/test``
TSV triples, or an RDF file (:func:`graphlearn.datasets.kg.load_kg_path`).

The RDF entity graphs (``aifb``, ``mutag-rdf`` alias ``rdf-mutag``, ``bgs``, ``am``) are
featureless and typed by relation (``data.edge_type``); see :mod:`graphlearn.datasets.rdf`
and its :func:`~graphlearn.datasets.rdf.to_hetero`.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from graphlearn.data.dataset import (
    DATASETS,
    DatasetInfo,
    GraphClassificationDataset,
    NodeClassificationDataset,
)
from graphlearn.data.validation import validate
from graphlearn.errors import InvalidArgumentError

from . import heterophilous, karate, kg, long_range, planetoid, rdf, textgraph, tu  # noqa: F401  (importing registers them)

__all__ = ["DATASETS", "load", "info", "names", "is_path"]


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def info(name: str) -> DatasetInfo:
    """Everything known about dataset ``name`` before loading it.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the choices.
    """
    return DATASETS.get(name).info


def _options_of(loader) -> list[str]:
    params = list(inspect.signature(loader).parameters.values())[2:]  # after (info, root)
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def load(name: str, root: str | os.PathLike | None = None, **options: Any):
    """Load dataset ``name``, checking every graph it holds.

    Args:
        name (str): Registered name; case, ``-`` and ``_`` are ignored (see :func:`names`).
        root (path, optional): Data root laid out like ``$GRAPHLEARN_DATA``
            (``<root>/planetoid/cora/raw/...``). (default: ``$GRAPHLEARN_DATA``)
        **options: Keyword-only dataset options. All take ``download`` (bool, fetch
            missing raw files into the cache; default :obj:`True`); Planetoid datasets take
            ``normalize_features`` (bool), TU datasets take ``use_node_attr`` (bool), RDF
            entity datasets take ``validation`` (``"none"``, ``"rgcn"`` or
            ``"stratified"``) and ``validation_seed`` (int).

    Returns:
        A :class:`~graphlearn.data.dataset.NodeClassificationDataset` (for RDF entity
        graphs its subclass :class:`~graphlearn.datasets.rdf.EntityClassificationDataset`) or
        :class:`~graphlearn.data.dataset.GraphClassificationDataset`.

    Raises:
        UnknownNameError: ``name`` is not registered.
        InvalidArgumentError: An option is not one the dataset takes.
        DataNotFoundError: Raw files are missing and could not be downloaded; the message
            lists them and the folder to place them in.
        DataFormatError, UnsafeFileError: A raw file is malformed or asks to run code.
    """
    if is_path(name):
        return kg.load_kg_path(name, **options)
    spec = DATASETS.get(name)
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"root must be a path (str or os.PathLike) or None, got {type(root).__name__}"
        )
    accepted = _options_of(spec.loader)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidArgumentError(
            f"dataset {spec.info.name!r} does not take option(s) {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted) or 'none'}"
        )
    for key in ("download", "normalize_features", "use_node_attr"):
        if key in options and not isinstance(options[key], bool):
            raise InvalidArgumentError(
                f"option {key} of dataset {spec.info.name!r} must be True or False, "
                f"got {options[key]!r}"
            )
    dataset = spec.loader(spec.info, root, **options)
    _validate_dataset(dataset)
    return dataset


def is_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` names a file or folder (a user's graph) rather than a registered dataset."""
    name = os.fspath(name)
    return (os.sep in name or name.startswith(".")) and os.path.exists(name)


def _validate_dataset(dataset) -> None:
    caller = f"graphlearn.datasets.load({dataset.info.name!r})"
    if isinstance(dataset, NodeClassificationDataset):
        validate(dataset.data, caller=caller)
    elif isinstance(dataset, GraphClassificationDataset):
        for index in range(len(dataset.graphs)):
            validate(dataset.graphs[index], caller=f"{caller}, graph {index}")
