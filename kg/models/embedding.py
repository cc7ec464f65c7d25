r"""Knowledge-graph embedding models: one vector per entity and relation, a scoring function.

Registered for link prediction: ``transe``, ``distmult``, ``complex`` and ``rotate``. Each
model keeps an entity table and a relation table and implements the
:class:`~graphlearn.kg.model.KGModel` protocol. :meth:`score_all` scores a batch of queries
against *every* entity with one matrix product against the entity table:

- bilinear models (DistMult, ComplEx) turn the query into a vector :math:`q` and return
  :math:`q E^\top`;
- distance models (TransE with the L2 norm, RotatE) use
  :math:`\|q - e\|^2 = \|q\|^2 + \|e\|^2 - 2\,q \cdot e` (clamped at 0 before the square
  root), so the cost is one GEMM instead of a ``(B, |E|, d)`` tensor of differences;
- TransE with the L1 norm (and RotatE with ``norm="l1"``) has no such expansion and falls back
  to :func:`torch.cdist` (the per-coordinate moduli for RotatE) over chunks of the batch.

Options shared by every model:

- ``reciprocal``: head queries :math:`(?, r, t)` are answered as tail queries
  :math:`(t, r^{-1}, ?)` of an extra inverse relation :math:`r + R` (Lacroix et al., 2018),
  so the model owns ``2 * num_relations`` relation embeddings. :meth:`score_triples` then
  accepts relation ids in ``[0, 2R)``; id ``r + R`` is the inverse of ``r``.
- ``regularizer``: ``"none"``, ``"l2"`` (squared L2 norm) or ``"n3"`` (weighted nuclear
  3-norm of Lacroix et al., 2018), computed on the embeddings of the batch's heads,
  relations and tails in :meth:`regularization` and scaled by ``regularizer_weight``.

Complex-valued models (ComplEx, RotatE) store ``dim`` complex coordinates per vector as
``2 * dim`` reals, real parts first (``[re | im]``).
"""

from __future__ import annotations

import math

import torch
from graphlearn.kg.model import KGModel, MessageGraph
from torch import Tensor, nn

from graphlearn.data.dataset import TaskKind
from graphlearn.errors import ConfigError
from graphlearn.models.registry import register_model

__all__ = ["ComplEx", "DistMult", "RotatE", "TransE", "REGULARIZERS"]

REGULARIZERS = ("none", "l2", "n3")
_SIDES = ("head", "tail")

#: Queries of a batch scored at once by TransE's L1 fallback (:func:`torch.cdist`).
_CHUNK = 64
#: Elements of the ``(chunk, |E|, d)`` difference tensor of RotatE's L1 fallback.
_L1_ELEMENTS = 1 << 24
#: Negative sampling scores every entity (one GEMM) and gathers the candidates when there are
#: at most this many entities per candidate of a query; below it, gathering ``B * n`` entity
#: rows and scoring them one by one moves more memory than the GEMM costs (measured in
#: ``benchmarks/kg_negative_sampling.py``: break-even near 150 entities per candidate on CPU).
_DENSE_ENTITIES_PER_CANDIDATE = 64


def _distance(q: Tensor, e: Tensor) -> Tensor:
    r"""``(B, E)`` Euclidean distances via :math:`\|q\|^2 + \|e\|^2 - 2 q e^\top` (one GEMM).

    The squared distance is clamped at the smallest normal float before the square root, so
    rounding never yields a negative value and an exact zero distance gets gradient 0.
    """
    d2 = torch.addmm((e * e).sum(-1), q, e.T, alpha=-2.0) + (q * q).sum(-1, keepdim=True)
    return d2.clamp_min(torch.finfo(d2.dtype).tiny).sqrt()


def _sqrt(d2: Tensor) -> Tensor:
    # sqrt with a finite gradient at 0 (an exact zero gets gradient 0, not inf or nan)
    return d2.clamp_min(torch.finfo(d2.dtype).tiny).sqrt()


class _EmbeddingModel(KGModel):
    """Entity and relation tables, the reciprocal option and the regularisers."""

    #: Reals per entity / relation coordinate (2 for complex models).
    _width = 1

    def __init__(self, num_entities: int, num_relations: int, dim: int, reciprocal: bool,
                 regularizer: str, regularizer_weight: float, relation_dim: int | None = None
                 ) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"model.dim must be >= 1, got {dim}")
        if regularizer not in REGULARIZERS:
            raise ConfigError(f"model.regularizer must be one of {', '.join(REGULARIZERS)}, got "
                              f"{regularizer!r}")
        if regularizer_weight < 0:
            raise ConfigError(f"model.regularizer_weight must be >= 0, got {regularizer_weight}")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.dim = int(dim)
        self.reciprocal = bool(reciprocal)
        self.regularizer = regularizer
        self.regularizer_weight = float(regularizer_weight)
        rel_dim = self._width * dim if relation_dim is None else relation_dim
        self.entity = nn.Embedding(num_entities, self._width * dim)
        self.relation = nn.Embedding(num_relations * (2 if reciprocal else 1), rel_dim)

    def extra_repr(self) -> str:
        return (f"{self.num_entities}, {self.num_relations}, dim={self.dim}"
                + (", reciprocal=True" if self.reciprocal else ""))

    # ------------------------------------------------------------------ protocol
    def _query(self, relations: Tensor, side: str) -> tuple[Tensor, str]:
        """Check ``side``; a reciprocal model answers a head query as its inverse tail query."""
        if side not in _SIDES:
            raise ConfigError(f"side must be 'head' or 'tail', got {side!r}")
        if self.reciprocal and side == "head":
            return relations + self.num_relations, "tail"
        return relations, side

    def score_all(self, anchors: Tensor, relations: Tensor, side: str,
                  graph: MessageGraph | None = None) -> Tensor:
        relations, side = self._query(relations, side)
        return self._score_all(self.entity(anchors), self.relation(relations), side)

    def _entity_rows(self, *indices: Tensor) -> tuple[Tensor, ...]:
        """Rows of the entity table for each index tensor, gathered in one lookup.

        The backward of an embedding lookup fills a dense gradient the size of the whole
        table; one lookup per training step instead of one per index tensor keeps that to a
        single fill (on FB15k-237 with dim 200 the fills were over half of a step).
        """
        rows = self.entity(torch.cat(indices))
        return rows.split([i.numel() for i in indices])

    def score_triples(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        h, t = self._entity_rows(heads, tails)
        return self._score(h, self.relation(relations), t)

    def score_answers(self, anchors: Tensor, relations: Tensor, answers: Tensor,
                      side: str) -> Tensor:
        relations, side = self._query(relations, side)
        return super().score_answers(anchors, relations, answers, side)

    def _score_candidates(self, anchors: Tensor, relations: Tensor, candidates: Tensor,
                          side: str) -> Tensor:
        """Scores ``(B, n)`` of ``candidates``; when :meth:`score_all` is one GEMM and the
        entity set is small against ``n`` (see ``_DENSE_ENTITIES_PER_CANDIDATE``), scores every
        entity and gathers the candidates, otherwise scores the candidates one by one. Both
        compute the same scores (up to float rounding) and gradients."""
        if self._gemm_scores and (self.num_entities
                                  <= _DENSE_ENTITIES_PER_CANDIDATE * candidates.size(1)):
            return self.score_all(anchors, relations, side).gather(1, candidates)
        return super()._score_candidates(anchors, relations, candidates, side)

    @property
    def _gemm_scores(self) -> bool:
        """Whether :meth:`score_all` is one GEMM against the entity table."""
        return True

    def regularization(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        r"""``regularizer_weight`` times the batch mean of the penalty of :math:`(h, r, t)`.

        ``l2``: :math:`\|e_h\|^2 + \|w_r\|^2 + \|e_t\|^2`. ``n3`` (Lacroix et al., 2018):
        :math:`\sum_i |e_{h,i}|^3 + |w_{r,i}|^3 + |e_{t,i}|^3`, with :math:`|\cdot|` the
        modulus of each complex coordinate for complex models. With ``reciprocal``, the
        relation term is the mean over :math:`r` and its inverse :math:`r + R` (each triple is
        trained as a tail query of :math:`r` and a head query answered through :math:`r + R`).
        """
        if self.regularizer == "none" or self.regularizer_weight == 0.0:
            return torch.zeros((), device=heads.device)
        power = 2 if self.regularizer == "l2" else 3
        h, t = self._entity_rows(heads, tails)
        ent = self._penalty(h, power) + self._penalty(t, power)
        rel = self._penalty(self._relation_vector(relations), power)
        if self.reciprocal:
            inverse = self._relation_vector(relations + self.num_relations)
            rel = (rel + self._penalty(inverse, power)) / 2
        return self.regularizer_weight * (ent + rel).mean()

    # ------------------------------------------------------------------ per model
    def _score_all(self, anchor: Tensor, rel: Tensor, side: str) -> Tensor:
        raise NotImplementedError

    def _score(self, h: Tensor, rel: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _relation_vector(self, relations: Tensor) -> Tensor:
        """The relation's vector as the regulariser sees it (complex models: ``[re | im]``)."""
        return self.relation(relations)

    def _penalty(self, x: Tensor, power: int) -> Tensor:
        """``(B,)`` :math:`\\sum_i |x_i|^p` (complex modulus per coordinate if ``_width == 2``)."""
        if self._width == 2:
            re, im = x.chunk(2, dim=-1)
            mod2 = re * re + im * im
            return mod2.sum(-1) if power == 2 else mod2.pow(1.5).sum(-1)
        return x.abs().pow(power).sum(-1)


@register_model("transe", tasks=(TaskKind.LINK_PREDICTION,))
class TransE(_EmbeddingModel):
    r"""TransE (Bordes et al., NeurIPS 2013): a relation translates the head onto the tail.

    .. math::
        f(h, r, t) = \gamma - \| e_h + w_r - e_t \|_p

    With ``gamma=0`` and ``p=1`` or ``2`` this is PyKEEN's ``TransEInteraction``
    (``power_norm=False``). Tail queries compare :math:`q = e_h + w_r` with every entity,
    head queries :math:`q = e_t - w_r`; for ``p=2`` the distance is one GEMM (see the module
    docstring), for ``p=1`` a chunked :func:`torch.cdist`.

    Args:
        num_entities (int): Number of entities.
        num_relations (int): Number of base relations.
        dim (int): Embedding size (default: :obj:`200`).
        p (int): The norm, ``1`` or ``2`` (default: :obj:`1`).
        gamma (float): The margin :math:`\gamma` added to the negative distance (default:
            :obj:`0.0`).
        reciprocal (bool): Score head queries through inverse relations (default: :obj:`False`).
        regularizer (str): ``"none"``, ``"l2"`` or ``"n3"`` (default: :obj:`"none"`).
        regularizer_weight (float): Its weight (default: :obj:`0.0`).
    """

    def __init__(self, num_entities: int, num_relations: int, *, dim: int = 200, p: int = 1,
                 gamma: float = 0.0, reciprocal: bool = False, regularizer: str = "none",
                 regularizer_weight: float = 0.0) -> None:
        super().__init__(num_entities, num_relations, dim, reciprocal, regularizer,
                         regularizer_weight)
        if p not in (1, 2):
            raise ConfigError(f"model.p (the TransE norm) must be 1 or 2, got {p}")
        self.p = int(p)
        self.gamma = float(gamma)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 6.0 / math.sqrt(self.dim)  # Bordes et al.: U(-6/sqrt(d), 6/sqrt(d))
        nn.init.uniform_(self.entity.weight, -bound, bound)
        nn.init.uniform_(self.relation.weight, -bound, bound)
        with torch.no_grad():
            self.relation.weight.div_(self.relation.weight.norm(dim=-1, keepdim=True))

    @property
    def _gemm_scores(self) -> bool:
        return self.p == 2

    def _score_all(self, anchor: Tensor, rel: Tensor, side: str) -> Tensor:
        q = anchor + rel if side == "tail" else anchor - rel
        table = self.entity.weight
        if self.p == 2:
            dist = _distance(q, table)
        else:
            dist = torch.cat([torch.cdist(c, table, p=1.0) for c in q.split(_CHUNK)])
        return self.gamma - dist

    def _score(self, h: Tensor, rel: Tensor, t: Tensor) -> Tensor:
        return self.gamma - torch.linalg.vector_norm(h + rel - t, ord=self.p, dim=-1)


class _BilinearModel(_EmbeddingModel):
    """Shared constructor and initialisation of the bilinear models (DistMult, ComplEx)."""

    def __init__(self, num_entities: int, num_relations: int, *, dim: int = 200,
                 init_scale: float | None = None, reciprocal: bool = False,
                 regularizer: str = "none", regularizer_weight: float = 0.0) -> None:
        super().__init__(num_entities, num_relations, dim, reciprocal, regularizer,
                         regularizer_weight)
        self.init_scale = init_scale
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for table in (self.entity, self.relation):
            if self.init_scale is None:
                nn.init.xavier_uniform_(table.weight)
            else:
                nn.init.normal_(table.weight, std=self.init_scale)


@register_model("distmult", tasks=(TaskKind.LINK_PREDICTION,))
class DistMult(_BilinearModel):
    r"""DistMult (Yang et al., ICLR 2015): a diagonal bilinear form.

    .. math::
        f(h, r, t) = \langle e_h, w_r, e_t \rangle = \sum_i e_{h,i}\, w_{r,i}\, e_{t,i}

    :meth:`score_all` is one GEMM: :math:`(e_h \odot w_r) E^\top`.

    Args:
        num_entities (int): Number of entities.
        num_relations (int): Number of base relations.
        dim (int): Embedding size (default: :obj:`200`).
        init_scale (float, optional): Initialise from :math:`\mathcal{N}(0, \text{init\_scale}^2)`
            (Lacroix et al. use :obj:`1e-3`); ``None``: Xavier uniform (default: :obj:`None`).
        reciprocal (bool): Score head queries through inverse relations (default: :obj:`False`).
        regularizer (str): ``"none"``, ``"l2"`` or ``"n3"`` (default: :obj:`"none"`).
        regularizer_weight (float): Its weight (default: :obj:`0.0`).
    """

    def _score_all(self, anchor: Tensor, rel: Tensor, side: str) -> Tensor:
        return (anchor * rel) @ self.entity.weight.T  # symmetric: same form on both sides

    def _score(self, h: Tensor, rel: Tensor, t: Tensor) -> Tensor:
        return (h * rel * t).sum(-1)


@register_model("complex", tasks=(TaskKind.LINK_PREDICTION,))
class ComplEx(_BilinearModel):
    r"""ComplEx (Trouillon et al., ICML 2016): a bilinear form over complex embeddings.

    .. math::
        f(h, r, t) = \operatorname{Re}\Big(\sum_i e_{h,i}\, w_{r,i}\, \overline{e_{t,i}}\Big)

    with :math:`e, w \in \mathbb{C}^d`. Tail queries are :math:`q = e_h \odot w_r` and head
    queries :math:`q = \overline{w_r} \odot e_t`, so that :math:`f = \operatorname{Re}\langle q,
    \overline{e} \rangle = q^{re} \cdot e^{re} + q^{im} \cdot e^{im}`: one GEMM against the
    ``[re | im]`` entity table. ComplEx-N3 (Lacroix et al., ICML 2018) is this model with
    ``reciprocal=True``, ``regularizer="n3"`` and the 1-N cross-entropy objective.

    Args:
        num_entities (int): Number of entities.
        num_relations (int): Number of base relations.
        dim (int): Complex coordinates per embedding (``2 * dim`` reals; default: :obj:`200`).
        init_scale (float, optional): Initialise from :math:`\mathcal{N}(0, \text{init\_scale}^2)`
            (Lacroix et al. use :obj:`1e-3`); ``None``: Xavier uniform (default: :obj:`None`).
        reciprocal (bool): Score head queries through inverse relations (default: :obj:`False`).
        regularizer (str): ``"none"``, ``"l2"`` or ``"n3"`` (default: :obj:`"none"`).
        regularizer_weight (float): Its weight (default: :obj:`0.0`).
    """

    _width = 2

    def _score_all(self, anchor: Tensor, rel: Tensor, side: str) -> Tensor:
        a_re, a_im = anchor.chunk(2, dim=-1)
        r_re, r_im = rel.chunk(2, dim=-1)
        if side == "tail":  # q = h * r
            q = torch.cat([a_re * r_re - a_im * r_im, a_re * r_im + a_im * r_re], dim=-1)
        else:  # q = conj(r) * t
            q = torch.cat([r_re * a_re + r_im * a_im, r_re * a_im - r_im * a_re], dim=-1)
        return q @ self.entity.weight.T

    def _score(self, h: Tensor, rel: Tensor, t: Tensor) -> Tensor:
        h_re, h_im = h.chunk(2, dim=-1)
        r_re, r_im = rel.chunk(2, dim=-1)
        t_re, t_im = t.chunk(2, dim=-1)
        return ((h_re * r_re - h_im * r_im) * t_re + (h_re * r_im + h_im * r_re) * t_im).sum(-1)


@register_model("rotate", tasks=(TaskKind.LINK_PREDICTION,))
class RotatE(_EmbeddingModel):
    r"""RotatE (Sun et al., ICLR 2019): a relation rotates the head onto the tail in
    :math:`\mathbb{C}^d`.

    .. math::
        f(h, r, t) = \gamma - \| e_h \circ w_r - e_t \|, \qquad w_{r,i} = e^{i\theta_{r,i}}

    The relation is stored as its phases :math:`\theta_r`, which keeps :math:`|w_{r,i}| = 1`.
    As in the authors' code, entities start from :math:`U(-\rho, \rho)` and the stored
    relation parameters too, with the *embedding range* :math:`\rho = (\gamma_0 + 2) / d`
    (:math:`\gamma_0` = ``init_gamma``), and the phase is the stored value times
    :math:`\pi / \rho` (so phases start uniform on :math:`(-\pi, \pi)`).

    ``norm`` picks the distance:

    - ``"l2"`` (default): :math:`\sqrt{\sum_i |x_i|^2}`, the L2 norm over all ``2d`` real
      coordinates. This is PyKEEN's ``RotatEInteraction`` (``p=2, power_norm=False``; with
      ``gamma=0`` the scores are identical). :meth:`score_all` is one GEMM: since
      :math:`|w_{r,i}| = 1`, head queries are :math:`\|e - e_t \circ \overline{w_r}\|`.
    - ``"l1"``: :math:`\sum_i |x_i|`, the sum of the complex moduli, as the authors' code
      computes it. No GEMM form; :meth:`score_all` builds the differences chunk by chunk.

    Args:
        num_entities (int): Number of entities.
        num_relations (int): Number of base relations.
        dim (int): Complex coordinates per embedding (``2 * dim`` reals; default: :obj:`200`).
        gamma (float): The margin :math:`\gamma` (default: :obj:`0.0`; the paper trains with the
            margin inside the loss, e.g. PyKEEN's ``NSSALoss(margin=...)``, or here as
            ``gamma``).
        init_gamma (float, optional): :math:`\gamma_0` of the embedding range (default:
            ``gamma`` if it is positive, else :obj:`12.0`).
        norm (str): ``"l2"`` or ``"l1"`` (default: :obj:`"l2"`).
        reciprocal (bool): Score head queries through inverse relations (default: :obj:`False`).
        regularizer (str): ``"none"``, ``"l2"`` or ``"n3"`` (default: :obj:`"none"`).
        regularizer_weight (float): Its weight (default: :obj:`0.0`).
    """

    _width = 2

    def __init__(self, num_entities: int, num_relations: int, *, dim: int = 200,
                 gamma: float = 0.0, init_gamma: float | None = None, norm: str = "l2",
                 reciprocal: bool = False, regularizer: str = "none",
                 regularizer_weight: float = 0.0) -> None:
        super().__init__(num_entities, num_relations, dim, reciprocal, regularizer,
                         regularizer_weight, relation_dim=dim)
        if norm not in ("l1", "l2"):
            raise ConfigError(f"model.norm (the RotatE distance) must be 'l1' or 'l2', got {norm!r}")
        self.gamma = float(gamma)
        self.norm = norm
        g0 = init_gamma if init_gamma is not None else (gamma if gamma > 0 else 12.0)
        self.embedding_range = (float(g0) + 2.0) / dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.entity.weight, -self.embedding_range, self.embedding_range)
        nn.init.uniform_(self.relation.weight, -self.embedding_range, self.embedding_range)

    @property
    def _gemm_scores(self) -> bool:
        return self.norm == "l2"

    def phases(self, relations: Tensor) -> Tensor:
        """``(B, dim)`` rotation angles of ``relations``."""
        return self.relation(relations) * (math.pi / self.embedding_range)

    def _relation_vector(self, relations: Tensor) -> Tensor:
        theta = self.phases(relations)
        return torch.cat([torch.cos(theta), torch.sin(theta)], dim=-1)

    def score_all(self, anchors: Tensor, relations: Tensor, side: str,
                  graph: MessageGraph | None = None) -> Tensor:
        relations, side = self._query(relations, side)
        a_re, a_im = self.entity(anchors).chunk(2, dim=-1)
        theta = self.phases(relations)
        c, s = torch.cos(theta), torch.sin(theta)
        if side == "head":  # ||e o w - t|| = ||e - t o conj(w)||
            s = -s
        q = torch.cat([a_re * c - a_im * s, a_re * s + a_im * c], dim=-1)
        table = self.entity.weight
        if self.norm == "l2":
            return self.gamma - _distance(q, table)
        q_re, q_im = q.chunk(2, dim=-1)
        e_re, e_im = table.chunk(2, dim=-1)
        rows = max(1, _L1_ELEMENTS // (e_re.numel() or 1))
        out = []
        for qr, qi in zip(q_re.split(rows), q_im.split(rows), strict=True):
            d_re = qr.unsqueeze(1) - e_re.unsqueeze(0)
            d_im = qi.unsqueeze(1) - e_im.unsqueeze(0)
            out.append(_sqrt(d_re * d_re + d_im * d_im).sum(-1))
        return self.gamma - torch.cat(out)

    def score_triples(self, heads: Tensor, relations: Tensor, tails: Tensor) -> Tensor:
        h, t = self._entity_rows(heads, tails)
        h_re, h_im = h.chunk(2, dim=-1)
        t_re, t_im = t.chunk(2, dim=-1)
        if relations.numel() > self.relation.num_embeddings:
            # a training batch repeats each relation many times: rotate the table once
            # (cos/sin of num_relations rows) and gather, rather than per triple
            theta = self.relation.weight * (math.pi / self.embedding_range)
            c, s = torch.cos(theta)[relations], torch.sin(theta)[relations]
        else:
            theta = self.phases(relations)
            c, s = torch.cos(theta), torch.sin(theta)
        d_re = h_re * c - h_im * s - t_re
        d_im = h_re * s + h_im * c - t_im
        mod2 = d_re * d_re + d_im * d_im
        if self.norm == "l2":
            return self.gamma - _sqrt(mod2.sum(-1))
        return self.gamma - _sqrt(mod2).sum(-1)
