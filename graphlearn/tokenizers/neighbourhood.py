r"""Neighbourhood tokens: turn each node's surroundings into a sequence a sequence model reads.

Two tokenizers, the two ends of Graph Mamba's design space (Behrouz and Hashemi, "Graph Mamba:
Towards Learning on Graphs with State Space Models", KDD 2024):

* :class:`RandomWalkTokenizer` (:math:`m \ge 1`): for every node :math:`v`, hop length
  :math:`\hat m \in \{1..m\}` and repetition :math:`r \in \{1..s\}`, the token
  :math:`T_{\hat m}^r(v)` is the subgraph traced by :math:`M` random walks of length
  :math:`\hat m` from :math:`v` (their nodes and the edges they walked). The walks of one
  repetition are shared across hop lengths: the token of length :math:`\hat m` is the
  prefix of the walks of length :math:`m`, so the tokens of one repetition are nested, as
  the paper's neighbourhoods are. Ordered from the largest neighbourhood down to the node
  itself, a node's sequence is :math:`[T_m^1, .., T_m^s, T_{m-1}^1, .., T_1^s, T_0]` with
  :math:`T_0 = \{v\}`: length :math:`sm + 1`, the node's own token last.
* :class:`NodeTokenizer` (:math:`m = 0`): the nodes themselves are the tokens, one sequence
  per graph, in an explicit order: by degree (ascending, so the best-connected nodes come
  last and see the most context, as in Wang et al.'s Graph-Mamba) or by degree with random
  tie-breaking noise (``"degree-noise"``; Wang et al. average several such orderings at
  test time).

Both are vectorised over all nodes (the walks are drawn with one gather per step from a CSR
index), take an explicit ``torch.Generator`` and return plain index tensors, so any model can
encode the tokens its own way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphlearn.data.validation import check_positive_int
from graphlearn.errors import InvalidArgumentError

__all__ = ["NeighbourhoodTokens", "NodeOrder", "NodeTokenizer", "RandomWalkTokenizer",
           "random_walks"]


def random_walks(edge_index: Tensor, num_nodes: int, start: Tensor, length: int,
                 generator: torch.Generator | None = None, *,
                 non_backtracking: bool = False) -> Tensor:
    """Uniform random walks of ``length`` steps along ``edge_index`` (``src -> dst``).

    Returns a ``(len(start), length + 1)`` long tensor whose column 0 is ``start``. A walk
    at a node without out-edges stays there (a self-loop step), so every walk has the same
    length. With ``non_backtracking``, a step never returns to the node it came from unless
    that is the only neighbour (a dead end), so walks reach further: on a path, a
    non-backtracking walk of ``m`` steps from an end covers exactly ``m`` hops.
    """
    src, dst = edge_index
    order = torch.argsort(src, stable=True)
    col = dst[order]
    deg = torch.bincount(src, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=src.device)
    torch.cumsum(deg, 0, out=rowptr[1:])
    last = max(col.numel() - 1, 0)
    walks = start.new_empty((start.numel(), length + 1))
    walks[:, 0] = cur = start
    prev = torch.full_like(start, -1)
    for step in range(1, length + 1):
        d = deg[cur]
        rand = torch.rand(cur.numel(), generator=generator, device=cur.device)
        if non_backtracking:
            # draw among the d - 1 neighbours other than `prev`: an index in [0, d - 1) that
            # lands on `prev` is moved to the last slot (uniform over the others)
            choices = torch.where((d > 1) & (prev >= 0), d - 1, d)
            pick = (rand * choices).long().clamp_max((choices - 1).clamp_min(0))
            hit = col[(rowptr[cur] + pick).clamp_max(last)] == prev
            pick = torch.where(hit & (choices < d), d - 1, pick)
        else:
            pick = (rand * d).long().clamp_max((d - 1).clamp_min(0))
        nxt = torch.where(d > 0, col[(rowptr[cur] + pick).clamp_max(last)], cur)
        prev, cur = cur, nxt
        walks[:, step] = cur
    return walks


@dataclass
class NeighbourhoodTokens:
    """Every node's token sequence, as flat index tensors.

    Token ``v * seq_len + j`` is position ``j`` of node ``v``'s sequence.

    Attributes:
        num_nodes (int): Nodes of the graph.
        seq_len (int): Tokens per node.
        member_token (Tensor): ``(K,)`` token id of each (token, node) membership.
        member_node (Tensor): ``(K,)`` node id of each membership (unique within a token).
        member_edge_index (Tensor): ``(2, E_t)`` walked edges as pairs of membership ids.
        hops (Tensor): ``(seq_len,)`` hop length :math:`\\hat m` of each position.
    """

    num_nodes: int
    seq_len: int
    member_token: Tensor
    member_node: Tensor
    member_edge_index: Tensor
    hops: Tensor

    @property
    def num_tokens(self) -> int:
        return self.num_nodes * self.seq_len

    def token_sizes(self) -> Tensor:
        """Nodes per token, ``(num_nodes, seq_len)``."""
        return torch.bincount(self.member_token, minlength=self.num_tokens).view(
            self.num_nodes, self.seq_len)


class RandomWalkTokenizer:
    """Random-walk subgraph tokens of hop lengths ``max_hops..0`` (see the module docstring).

    Args:
        max_hops (int): Longest walk :math:`m` (>= 1).
        num_walks (int): Walks :math:`M` per token. (default: :obj:`4`)
        repeats (int): Repetitions :math:`s` of each hop length. (default: :obj:`1`)
        non_backtracking (bool): Draw non-backtracking walks (see :func:`random_walks`).
            (default: :obj:`False`)
    """

    def __init__(self, max_hops: int, num_walks: int = 4, repeats: int = 1,
                 non_backtracking: bool = False) -> None:
        self.non_backtracking = bool(non_backtracking)
        self.max_hops = check_positive_int(max_hops, "max_hops", caller="RandomWalkTokenizer")
        self.num_walks = check_positive_int(num_walks, "num_walks", caller="RandomWalkTokenizer")
        self.repeats = check_positive_int(repeats, "repeats", caller="RandomWalkTokenizer")

    @property
    def seq_len(self) -> int:
        return self.repeats * self.max_hops + 1

    def hops(self) -> list[int]:
        """Hop length of each position: ``m`` (s times), ..., ``1`` (s times), ``0``."""
        return [h for h in range(self.max_hops, 0, -1) for _ in range(self.repeats)] + [0]

    def __call__(self, edge_index: Tensor, num_nodes: int,
                 generator: torch.Generator | None = None) -> NeighbourhoodTokens:
        m, M, s = self.max_hops, self.num_walks, self.repeats
        device = edge_index.device
        nodes = torch.arange(num_nodes, device=device)
        start = nodes.repeat_interleave(s * M)
        walks = random_walks(edge_index, num_nodes, start, m, generator,
                             non_backtracking=self.non_backtracking).view(num_nodes, s, M, m + 1)
        L = self.seq_len
        tok_nodes, tok_ids, edge_a, edge_b, edge_tok = [], [], [], [], []
        for pos, hop in enumerate(self.hops()):
            token = nodes * L + pos
            if hop == 0:
                tok_nodes.append(nodes.view(-1, 1))
                tok_ids.append(token.view(-1, 1))
                continue
            r = pos % s  # repetitions of one hop are adjacent
            w = walks[:, r, :, : hop + 1]  # (n, M, hop+1)
            tok_nodes.append(w.reshape(num_nodes, -1))
            tok_ids.append(token.view(-1, 1).expand(-1, M * (hop + 1)))
            edge_a.append(w[..., :-1].reshape(-1))
            edge_b.append(w[..., 1:].reshape(-1))
            edge_tok.append(token.view(-1, 1).expand(-1, M * hop).reshape(-1))
        all_nodes = torch.cat([t.reshape(-1) for t in tok_nodes])
        all_tok = torch.cat([t.reshape(-1) for t in tok_ids])
        # one membership per (token, node): unique over a combined key
        key = all_tok * num_nodes + all_nodes
        uniq, _ = torch.unique(key, return_inverse=True)
        member_token, member_node = uniq // num_nodes, uniq % num_nodes
        if edge_a:
            ea, eb, et = torch.cat(edge_a), torch.cat(edge_b), torch.cat(edge_tok)
            keep = ea != eb  # stay-put steps of walks stuck at sinks
            ea, eb, et = ea[keep], eb[keep], et[keep]
            ia = torch.searchsorted(uniq, et * num_nodes + ea)
            ib = torch.searchsorted(uniq, et * num_nodes + eb)
            member_edges = torch.stack([ia, ib])
        else:
            member_edges = torch.empty((2, 0), dtype=torch.long, device=device)
        return NeighbourhoodTokens(num_nodes, L, member_token, member_node, member_edges,
                                   torch.tensor(self.hops(), device=device))

    def __repr__(self) -> str:
        return (f"RandomWalkTokenizer(max_hops={self.max_hops}, num_walks={self.num_walks}, "
                f"repeats={self.repeats}, non_backtracking={self.non_backtracking})")


@dataclass
class NodeOrder:
    """Nodes of each graph laid out as one packed sequence.

    Attributes:
        perm (Tensor): ``(N,)`` node id at each sequence position (graphs contiguous).
        ptr (Tensor): ``(num_graphs + 1,)`` sequence offsets.
    """

    perm: Tensor
    ptr: Tensor


class NodeTokenizer:
    """Nodes as tokens, one sequence per graph, ordered by ``"degree"`` or ``"degree-noise"``.

    With ``"degree-noise"``, ties (and near-ties) are broken at random: the sort key is
    ``degree + U(0, 1)``, Wang et al.'s permutation augmentation.
    """

    ORDERS = ("degree", "degree-noise")

    def __init__(self, order: str = "degree") -> None:
        if order not in self.ORDERS:
            raise InvalidArgumentError(
                f"node order {order!r} is not supported; use one of {', '.join(self.ORDERS)}")
        self.order = order

    def __call__(self, edge_index: Tensor, num_nodes: int, batch: Tensor | None = None,
                 generator: torch.Generator | None = None) -> NodeOrder:
        device = edge_index.device
        deg = torch.bincount(edge_index[1], minlength=num_nodes).double()
        if self.order == "degree-noise":
            deg = deg + torch.rand(num_nodes, generator=generator, device=device,
                                   dtype=torch.float64)
        if batch is None:
            batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        # sort by (graph, key): graphs stay contiguous and in order
        key_order = torch.argsort(deg, stable=True)
        perm = key_order[torch.argsort(batch[key_order], stable=True)]
        counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if num_nodes else 0)
        ptr = torch.zeros(counts.numel() + 1, dtype=torch.long, device=device)
        torch.cumsum(counts, 0, out=ptr[1:])
        return NodeOrder(perm, ptr)

    def __repr__(self) -> str:
        return f"NodeTokenizer(order={self.order!r})"
