"""Knowledge-graph embedding models: one vector per entity and relation, a scoring function."""

from __future__ import annotations

from graphlearn.kg.model import KGModel, MessageGraph
from torch import Tensor, nn

from graphlearn.data.dataset import TaskKind
from graphlearn.models.registry import register_model

__all__ = ["DistMult"]


@register_model("distmult", tasks=(TaskKind.LINK_PREDICTION,))
class DistMult(KGModel):
    r"""DistMult (Yang et al., ICLR 2015): :math:`f(h, r, t) = \langle e_h, w_r, e_t \rangle`."""

    def __init__(self, num_entities: int, num_relations: int, *, dim: int = 200) -> None:
        super().__init__()
        self.entity = nn.Embedding(num_entities, dim)
        self.relation = nn.Embedding(num_relations, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.entity.weight)
        nn.init.xavier_uniform_(self.relation.weight)

    def score_all(self, anchors: Tensor, relations: Tensor, side: str,
                  graph: MessageGraph | None = None) -> Tensor:
        q = self.entity(anchors) * self.relation(relations)
        return q @ self.entity.weight.T

    def score_triples(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        return (self.entity(heads) * self.relation(relations) * self.entity(tails)).sum(-1)
