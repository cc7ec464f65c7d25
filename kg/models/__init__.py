"""Link-prediction models, registered for ``graphlearn fit`` (see :mod:`graphlearn.kg.model`).

- Embedding models (:mod:`graphlearn.kg.models.embedding`): ``transe``, ``distmult``,
  ``complex``, ``rotate``.
"""

from graphlearn.kg.models.embedding import DistMult

__all__ = ["DistMult"]
