"""Assembled models, registered by name for the trainer and the CLI."""

from graphlearn.models.gatv2 import GATv2  # noqa: E402  (registers "gatv2")
from graphlearn.models.registry import MODELS, ModelSpec, register_model

__all__ = ["MODELS", "ModelSpec", "register_model", "GATv2"]
