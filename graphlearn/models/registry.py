"""The model registry: names the trainer and CLI resolve to model classes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError
from graphlearn.registry import Registry

__all__ = ["MODELS", "ModelSpec", "call_model", "register_model"]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: the model class, the task kinds it serves and a one-line summary."""

    cls: Callable
    tasks: frozenset[TaskKind]
    description: str


MODELS: Registry[ModelSpec] = Registry("model", hint="run `graphlearn models list` to see them all",
                                       providers=("graphlearn.kg.models",))


def register_model(name: str, *, tasks: tuple[TaskKind, ...], aliases: tuple[str, ...] = ()):
    """Class decorator registering a model for the given task kinds.

    A registered model's constructor takes ``in_channels`` and ``out_channels`` (filled in
    by the task from the dataset) and keyword hyperparameters, which are the keys a config's
    ``model:`` section may set. Node-level models accept ``num_layers``; models that serve
    graph classification accept ``readout`` (``None`` for node tasks) and ``forward(x,
    edge_index, edge_attr=None, batch=None)``.
    """

    def wrap(cls):
        doc = (cls.__doc__ or "").strip().splitlines()
        MODELS.register(name, ModelSpec(cls, frozenset(tasks), doc[0] if doc else ""),
                        aliases=aliases)
        return cls

    return wrap


def call_model(model, data):
    """Run a registered model on a graph (``Data`` or ``Batch``) by the registry's convention.

    Every model is called as ``model(x, edge_index, edge_attr, batch)``; a model that needs
    more of the graph (relational models need ``edge_type``) names those attributes in a
    ``graph_inputs`` class attribute and receives them as keyword arguments.
    """
    extra = {}
    for key in getattr(model, "graph_inputs", ()):
        value = getattr(data, key, None)
        if value is None:
            raise ConfigError(
                f"model {type(model).__name__} needs the graph attribute {key!r}, which this "
                f"dataset does not provide; use a dataset with typed edges (e.g. aifb) or "
                f"another model"
            )
        extra[key] = value
    return model(data.x, data.edge_index, getattr(data, "edge_attr", None),
                 getattr(data, "batch", None), **extra)
