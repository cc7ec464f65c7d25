"""Link-prediction models, registered for ``graphlearn fit`` (see :mod:`graphlearn.kg.model`).

- Embedding models (:mod:`graphlearn.kg.models.embedding`): ``transe``, ``distmult``,
  ``complex``, ``rotate``.
- GNN reasoners: ``nbfnet`` (:mod:`graphlearn.kg.models.nbfnet`), ``red-gnn`` and
  ``run-gnn`` (:mod:`graphlearn.kg.models.redgnn`).
"""

from graphlearn.kg.models import embedding, nbfnet, redgnn  # noqa: F401  (importing registers them)
from graphlearn.kg.models.embedding import ComplEx, DistMult, RotatE, TransE

__all__ = ["ComplEx", "DistMult", "RotatE", "TransE"]
