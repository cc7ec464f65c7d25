"""The trainer API: one typed config, Lightning underneath, a run directory out."""

from graphlearn.train.config import RunConfig, resolve_config
from graphlearn.train.fit import FitResult, fit

__all__ = ["fit", "FitResult", "RunConfig", "resolve_config"]
