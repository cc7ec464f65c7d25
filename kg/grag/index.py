r"""``GraphIndex``: text embeddings of a :class:`TextGraph` and a faiss index over its ego-graphs.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_) retrieves
*k-hop ego-graphs*, each represented by one vector pooled from its members' text embeddings,
and ranks them by cosine similarity to the question. :class:`GraphIndex` holds:

- ``node_embeddings`` :math:`\mathbf{x}_u` ``(N, d)``: the encoder's embedding of node ``u``'s
  text.
- edge embeddings :math:`\mathbf{y}_e`: with ``edge_embedding="triple"`` (default) the
  embedding of the triple text ``"head relation tail"``, so an edge knows which entities it
  joins (``"paris capital of france"`` and ``"rome capital of italy"`` differ, which the
  relation text alone cannot tell apart) and :func:`~graphlearn.kg.grag.text_rag` can rank
  facts; with ``"relation"`` the embedding of the relation text alone, as G-Retriever's edge
  attributes. They are stored as a table ``edge_text_embeddings`` ``(T, d)`` and a row per
  edge, ``edge_text_ids`` ``(E,)``: ``"relation"`` encodes and keeps only the :math:`T`
  distinct relation texts (the cheap choice for a huge graph with a slow model: a 20M-edge
  graph needs 237 rows, not 20M), ``"triple"`` keeps one row per edge
  (``edge_text_ids`` is ``None``). :attr:`GraphIndex.edge_embeddings` is the ``(E, d)`` view.
- ``ego_embeddings`` :math:`\mathbf{g}_v` ``(N, d)``: one per node, for the ego-graph
  :math:`G_k(v)` of :math:`k` = ``num_hops``.
- a faiss inner-product index over the ego embeddings (``IndexFlatIP``, exact; or
  ``IndexHNSWFlat``, approximate, for large graphs); row ``v`` is node ``v``'s ego-graph.

Every embedding has unit norm, so inner products are cosine similarities.

**The pooled vector.** :math:`N_k(v)` is the set of nodes within :math:`k` hops of :math:`v`,
ignoring edge direction (:math:`N_0(v) = \{v\}`), and :math:`E_k(v)` is the set of edges with
both endpoints in :math:`N_k(v)` (parallel edges and self-loops included): exactly the nodes
and edges of ``graph.k_hop_subgraph(v, k)`` (PyG's ``k_hop_subgraph`` on both edge
directions). The ego embedding is the mean of its member embeddings, renormalised:

.. math::
    \mathbf{m}_v = \frac{\sum_{u \in N_k(v)} \mathbf{x}_u + \sum_{e \in E_k(v)} \mathbf{y}_e}
                        {|N_k(v)| + |E_k(v)|}, \qquad
    \mathbf{g}_v = \mathbf{m}_v / \lVert \mathbf{m}_v \rVert_2

(GRAG's ``get_triplets``: the mean over node and edge attributes of the ego-graph). Nothing
calls ``k_hop_subgraph`` per node: with :math:`\hat{A}` the binary symmetric adjacency with
self-loops, the rows of :math:`R = [\hat{A}^k > 0]` are the :math:`N_k(v)` (binarised after
each sparse product, so walk counts never weight the mean) and :math:`R X` sums the node
embeddings. For the edges, each edge is *owned* by its endpoint of smaller degree: with
:math:`O` the ``(N, E)`` owner incidence, the nonzeros of :math:`R O` are the pairs
:math:`(v, e)` whose owner lies in :math:`N_k(v)`, and a pair is kept when the other endpoint
is in :math:`N_k(v)` too (a sorted-key lookup in :math:`R`). Every edge of :math:`E_k(v)` is
found exactly once, and the work is :math:`\sum_e \min(\deg a_e, \deg b_e)` for :math:`k = 1`
rather than :math:`\sum_u \deg(u)^2` (listing every member's edges), which matters for
knowledge graphs with hub entities (FB15k-237: 12M candidate pairs instead of 220M). The
kept pairs are counted per (root, edge-table row) and multiplied by the table. Roots are
processed in chunks of rows (``chunk_size``), so memory is bounded by the chunk's
ego-graphs, not by :math:`N^2`.

Example:
    >>> from graphlearn.kg.grag import GraphIndex, HashingEncoder, TextGraph
    >>> g = TextGraph.from_triples([("paris", "capital of", "france"),
    ...                             ("rome", "capital of", "italy")])
    >>> index = GraphIndex.build(g, HashingEncoder(), num_hops=1)
    >>> scores, roots = index.search("what is the capital of france?", k=1)
    >>> g.node_text[int(roots[0])] in ("paris", "france")
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    DTypeError,
    EmptyGraphError,
    InvalidArgumentError,
    ShapeError,
)

from .encoder import CachedTextEncoder, TextEncoder, encoder_from_spec
from .manifest import read_manifest
from .textgraph import TextGraph

__all__ = ["GraphIndex", "IndexUpdate", "ego_graph_embeddings", "triple_texts"]

FORMAT = "graphlearn.grag.GraphIndex"
FORMAT_VERSION = 2
"""Version 2 stores the edge texts as ``relation_text`` + ``relations.npy`` and the edge
table de-duplicated (version 1: a text and an embedding row per edge); both load."""
EDGE_EMBEDDINGS = ("triple", "relation")
INDEX_TYPES = ("flat", "hnsw")
_FILES = ("graph.json", "edges.npy", "relations.npy", "node_embeddings.npy",
          "edge_embeddings.npy", "ego_embeddings.npy", "faiss.index")
_FILES_V1 = ("graph.json", "edges.npy", "node_embeddings.npy", "edge_embeddings.npy",
             "ego_embeddings.npy", "faiss.index")
_FAISS_ADD_CHUNK = 65_536  # vectors per faiss add call (one progress step)


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("GraphIndex needs faiss: `pip install faiss-cpu` (or "
                          "`pip install graphlearn[grag]`)") from exc
    return faiss


def triple_texts(graph: TextGraph, edge_ids: Sequence[int] | Tensor | None = None) -> list[str]:
    """The text ``"head relation tail"`` of each edge (all, or ``edge_ids``)."""
    nodes, rels = graph.node_text, graph.edge_text
    if edge_ids is None:
        ids = range(graph.num_edges)
        ends = graph.edges
    else:
        index = torch.as_tensor(edge_ids, dtype=torch.long).view(-1)
        ids = index.tolist()
        ends = graph.edges.index_select(0, index)
    heads, tails = ends[:, 0].tolist(), ends[:, 1].tolist()
    return [f"{nodes[h]} {rels[e]} {nodes[t]}" for h, e, t in zip(heads, ids, tails, strict=True)]


def _distinct(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in order of first appearance and the ``(n,)`` int64 row of each text."""
    position: dict[str, int] = {}
    ids = np.fromiter((position.setdefault(t, len(position)) for t in texts), np.int64,
                      count=len(texts))
    return list(position), ids


# ---------------------------------------------------------------------------- pooling
def _adjacency(edges: Tensor, num_nodes: int, loops: np.ndarray | None = None):
    """Binary symmetric adjacency with self-loops (on ``loops``, default every node),
    ``(N, N)`` CSR float32."""
    import scipy.sparse as sp

    e = edges.numpy()
    idx = np.int32 if num_nodes < 2**31 - 1 else np.int64
    loops = np.arange(num_nodes, dtype=idx) if loops is None else loops.astype(idx)
    rows = np.concatenate([e[:, 0].astype(idx), e[:, 1].astype(idx), loops])
    cols = np.concatenate([e[:, 1].astype(idx), e[:, 0].astype(idx), loops])
    adj = sp.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, cols)),
                        shape=(num_nodes, num_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj


def _grow_adjacency(adj, new_edges: Tensor, num_nodes: int):
    """``adj`` resized to ``num_nodes`` (self-loops on the new nodes) with ``new_edges``
    added; equal to :func:`_adjacency` of the grown graph, in one sparse sum."""
    import scipy.sparse as sp

    old = adj.shape[0]
    grown = sp.csr_matrix((adj.data, adj.indices, np.concatenate(
        [adj.indptr, np.full(num_nodes - old, adj.indptr[-1], adj.indptr.dtype)])),
        shape=(num_nodes, num_nodes))
    delta = _adjacency(new_edges, num_nodes, np.arange(old, num_nodes))
    out = (grown + delta).tocsr()
    out.data[:] = 1.0
    return out


def _incidence(ends: np.ndarray, num_nodes: int):
    """``(N, E)`` CSR with a one at (``ends[e]``, ``e``): row ``u`` lists its edges in
    increasing id order (a counting sort)."""
    import scipy.sparse as sp

    num_edges = ends.shape[0]
    return sp.csr_matrix((np.ones(num_edges, np.float32), (ends, np.arange(num_edges))),
                         shape=(num_nodes, num_edges))


def _gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The column indices of CSR ``rows``, concatenated, without a Python loop."""
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return indices[np.arange(int(lengths.sum())) + offsets]


def _bfs(adj, seeds: np.ndarray, num_hops: int) -> np.ndarray:
    """Sorted int64 ids of the nodes within ``num_hops`` (either direction) of ``seeds``,
    in time linear in the neighbourhood (up to a log), not in the graph."""
    visited = np.unique(np.asarray(seeds, np.int64))
    frontier = visited
    for _ in range(num_hops):
        if frontier.size == 0:
            break
        reached = np.unique(_gather_rows(adj.indptr, adj.indices, frontier)).astype(np.int64)
        frontier = np.setdiff1d(reached, visited, assume_unique=True)
        visited = np.union1d(visited, frontier)
    return visited


def _reach(adj, roots: np.ndarray, num_hops: int):
    """Rows of :math:`[\\hat{A}^k > 0]` for ``roots``: ``(len(roots), N)`` binary CSR with
    sorted indices."""
    import scipy.sparse as sp

    n = adj.shape[0]
    if num_hops == 0:
        return sp.csr_matrix((np.ones(len(roots), np.float32), (np.arange(len(roots)), roots)),
                             shape=(len(roots), n))
    reach = adj[roots]
    for _ in range(num_hops - 1):
        reach = reach @ adj
        reach.data[:] = 1.0
    if not reach.has_sorted_indices:
        reach.sort_indices()
    return reach


def _edge_owners(edges: np.ndarray, adj) -> tuple[np.ndarray, np.ndarray]:
    """Each edge's owner (the endpoint of smaller degree in ``adj``, the head on ties) and
    its other endpoint."""
    deg = np.diff(adj.indptr)
    heads, tails = edges[:, 0], edges[:, 1]
    head_owns = deg[heads] <= deg[tails]
    return np.where(head_owns, heads, tails), np.where(head_owns, tails, heads)


def _ego_edges(reach, owned, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(row, edge)`` pairs with both endpoints of the edge among the row's members
    (the nonzeros of ``reach``): candidates from the owner, then the other end looked up."""
    n = reach.shape[1]
    cand = reach @ owned
    rows = np.repeat(np.arange(cand.shape[0], dtype=np.int64), np.diff(cand.indptr))
    eids = cand.indices.astype(np.int64)
    member = (np.repeat(np.arange(reach.shape[0], dtype=np.int64), np.diff(reach.indptr)) * n
              + reach.indices)  # sorted: rows ascending, indices sorted within a row
    keys = rows * n + other[eids]
    pos = np.searchsorted(member, keys)
    pos[pos == member.shape[0]] = 0
    hit = member[pos] == keys
    return rows[hit], eids[hit]


def _sum_rows(rows: np.ndarray, table_rows: np.ndarray, table: np.ndarray,
              num_rows: int) -> np.ndarray:
    """``out[r] = sum of table[table_rows[i]] over i with rows[i] == r``, ``(num_rows, d)``."""
    import scipy.sparse as sp

    t = table.shape[0]
    if num_rows * t <= 1 << 22:  # few distinct rows (relation texts): dense counts, one GEMM
        counts = np.bincount(rows * t + table_rows, minlength=num_rows * t)
        return counts.reshape(num_rows, t).astype(np.float32) @ table
    members = sp.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, table_rows)),
                            shape=(num_rows, t))
    return members @ table


def ego_graph_embeddings(edges: Tensor, num_nodes: int, node_embeddings: Tensor,
                         edge_embeddings: Tensor, num_hops: int, *,
                         roots: Tensor | Sequence[int] | None = None, chunk_size: int = 8192,
                         progress: bool | None = None, adjacency=None,
                         edge_text_ids: Tensor | None = None) -> Tensor:
    r"""Pooled k-hop ego-graph embeddings :math:`\mathbf{g}_v` (module docstring), vectorised.

    Args:
        edges (Tensor): ``(E, 2)`` long ``(head, tail)`` node ids.
        num_nodes (int): :math:`N`.
        node_embeddings (Tensor): ``(N, d)`` float32.
        edge_embeddings (Tensor): ``(E, d)`` float32; or, with ``edge_text_ids``, a
            ``(T, d)`` table whose row ``edge_text_ids[e]`` is edge ``e``'s embedding.
        num_hops (int): :math:`k \ge 0`.
        roots (Tensor or list of int, optional): The nodes whose ego-graphs to embed.
            (default: all)
        chunk_size (int): Roots per sparse product. (default: :obj:`8192`)
        progress (bool, optional): ``tqdm`` bar over chunks; ``None`` shows it for more than
            4 chunks.
        adjacency (optional): A precomputed :func:`_adjacency` to reuse.
        edge_text_ids (Tensor, optional): ``(E,)`` long rows of ``edge_embeddings``.

    Returns:
        Tensor: ``(len(roots), d)`` float32, rows of unit norm (zero where the members'
        mean is zero).
    """
    n = num_nodes
    x = node_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
    table = edge_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
    e = edges.numpy() if edges.numel() else np.zeros((0, 2), np.int64)
    num_edges = e.shape[0]
    if edge_text_ids is None:
        if table.shape[0] != num_edges:
            raise ShapeError(f"edge_embeddings has {table.shape[0]} rows for {num_edges} edges; "
                             f"pass one row per edge, or a table with edge_text_ids")
        text_ids = None
    else:
        text_ids = torch.as_tensor(edge_text_ids, dtype=torch.long).view(-1).numpy()
        if text_ids.shape[0] != num_edges:
            raise ShapeError(f"edge_text_ids has {text_ids.shape[0]} entries for {num_edges} "
                             f"edges")
    roots_np = (np.arange(n) if roots is None
                else torch.as_tensor(roots, dtype=torch.long).view(-1).numpy())
    out = np.empty((roots_np.shape[0], x.shape[1]), np.float32)
    adj = adjacency if adjacency is not None else _adjacency(edges, n)
    if num_edges:
        owner, other = _edge_owners(e, adj)
        owned = _incidence(owner, n)
    starts = range(0, roots_np.shape[0], chunk_size)
    show = progress if progress is not None else len(starts) > 4
    if show:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"pooling {num_hops}-hop ego-graphs", unit="chunk",
                      leave=False)
    for start in starts:
        chunk = roots_np[start:start + chunk_size]
        reach = _reach(adj, chunk, num_hops)
        total = np.asarray(reach @ x, np.float32)
        count = np.diff(reach.indptr).astype(np.float64)
        if num_edges:
            rows, eids = _ego_edges(reach, owned, other)
            total += _sum_rows(rows, eids if text_ids is None else text_ids[eids], table,
                               len(chunk))
            count += np.bincount(rows, minlength=len(chunk))
        total /= count[:, None].astype(np.float32)
        # unit rows, as F.normalize (eps 1e-12), chunk by chunk: no second (N, d) copy
        total /= np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)
        out[start:start + len(chunk)] = total
    return torch.from_numpy(out)


# ---------------------------------------------------------------------------- index
@dataclass(frozen=True)
class IndexUpdate:
    """What :meth:`GraphIndex.add` changed.

    Attributes:
        new_nodes (Tensor): Ids of the added nodes (long).
        new_edges (Tensor): Ids of the added edges (long).
        updated (Tensor): Ids of the nodes whose ego embedding was recomputed (the new nodes
            and every node within ``num_hops`` of an endpoint of a new edge).
    """

    new_nodes: Tensor
    new_edges: Tensor
    updated: Tensor


class GraphIndex:
    """Node, edge and ego-graph embeddings of a :class:`TextGraph` with a faiss index.

    Build one with :meth:`build`, query it with :meth:`search` (or
    :func:`graphlearn.kg.grag.retrieve`), grow it with :meth:`add`, and keep it with
    :meth:`save` / :meth:`load`. The pooling is described in the module docstring.

    Args:
        graph, encoder, num_hops, edge_embedding, index_type, hnsw_m, ef_construction,
            ef_search: As in :meth:`build`.
        node_embeddings (Tensor): ``(N, d)``.
        edge_embeddings (Tensor): ``(E, d)``, one row per edge; or, with ``edge_text_ids``,
            a ``(T, d)`` table.
        ego_embeddings (Tensor): ``(N, d)``.
        faiss_index (optional): A faiss index over ``ego_embeddings`` (default: a new one).
        edge_text_ids (Tensor, optional): ``(E,)`` long; edge ``e``'s embedding is row
            ``edge_text_ids[e]`` of ``edge_embeddings``. With ``edge_embedding="relation"``
            the rows must be the distinct relation texts.
        progress (bool, optional): A progress bar while a new HNSW index is filled.

    Attributes:
        graph (TextGraph): The indexed graph.
        encoder (TextEncoder): Embeds texts and questions.
        num_hops (int): :math:`k` of the ego-graphs.
        edge_embedding (str): ``"triple"`` or ``"relation"``.
        index_type (str): ``"flat"`` or ``"hnsw"``.
        node_embeddings, ego_embeddings (Tensor): ``(N, d)`` float32.
        edge_text_embeddings (Tensor): ``(T, d)`` float32, the edge-embedding table (one row
            per edge, or per distinct relation text with ``"relation"``).
        edge_text_ids (Tensor, optional): ``(E,)`` long row of each edge in the table
            (``None``: row ``e`` is edge ``e``).
        edge_embeddings (Tensor): ``(E, d)`` per-edge view of the table (materialised on
            access when ``edge_text_ids`` is set; use :meth:`edge_embeddings_of` for a few
            edges).
        faiss_index: The faiss index over ``ego_embeddings`` (row ``v`` = node ``v``).
        timings (dict[str, float]): Seconds spent per phase by the last :meth:`build` or
            :meth:`add` (``encode_nodes``, ``encode_edges``, ``pool``, ``faiss``, ``total``).
    """

    def __init__(self, graph: TextGraph, encoder: TextEncoder, *, node_embeddings: Tensor,
                 edge_embeddings: Tensor, ego_embeddings: Tensor, num_hops: int,
                 edge_embedding: str = "triple", index_type: str = "flat", hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64, faiss_index: Any = None,
                 edge_text_ids: Tensor | None = None, progress: bool | None = None) -> None:
        self.graph = graph
        self.encoder = encoder
        self.num_hops = num_hops
        self.edge_embedding = edge_embedding
        self.index_type = index_type
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.node_embeddings = node_embeddings
        self.edge_text_embeddings = edge_embeddings
        if edge_text_ids is not None:
            edge_text_ids = torch.as_tensor(edge_text_ids, dtype=torch.long).view(-1)
            if edge_text_ids.numel() != graph.num_edges:
                raise ShapeError(f"edge_text_ids has {edge_text_ids.numel()} entries for "
                                 f"{graph.num_edges} edges; give one table row per edge")
        elif edge_embeddings.size(0) != graph.num_edges:
            raise ShapeError(f"edge_embeddings has {edge_embeddings.size(0)} rows for "
                             f"{graph.num_edges} edges; pass one row per edge, or a table "
                             f"with edge_text_ids")
        self.edge_text_ids = edge_text_ids
        self.ego_embeddings = ego_embeddings
        self.timings: dict[str, float] = {}
        self._relation_text: list[str] | None = None  # table row texts ("relation", ids set)
        self.faiss_index = (faiss_index if faiss_index is not None
                            else self._new_faiss_index(progress))
        self._adj = None  # cached (graph size, scipy CSR adjacency); see _adjacency()
        self._out = None  # cached (graph size, (N, E) CSR of out-edges by head)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, graph: TextGraph, encoder: TextEncoder, num_hops: int = 1, *,
              edge_embedding: str = "triple", index_type: str = "flat", hnsw_m: int = 32,
              ef_construction: int = 80, ef_search: int = 64, batch_size: int | None = None,
              chunk_size: int = 8192, progress: bool | None = None) -> GraphIndex:
        """Encode ``graph``'s texts, pool its ego-graphs and index them.

        Distinct texts are encoded once (each relation text once with ``"relation"``), the
        pooling runs in chunks of ``chunk_size`` roots, and every long phase shows a
        ``tqdm`` bar; :attr:`timings` records the seconds per phase.

        Args:
            graph (TextGraph): The graph (at least one node).
            encoder (TextEncoder): E.g. :class:`~graphlearn.kg.grag.SentenceTransformerEncoder`
                or :class:`~graphlearn.kg.grag.HashingEncoder`.
            num_hops (int): Ego-graph radius :math:`k \\ge 0`. (default: :obj:`1`)
            edge_embedding (str): ``"triple"`` (embed ``"head relation tail"``, one encoder
                call per edge) or ``"relation"`` (embed the distinct relation texts).
                (default: ``"triple"``)
            index_type (str): ``"flat"`` (exact ``IndexFlatIP``) or ``"hnsw"``
                (``IndexHNSWFlat`` with inner product; approximate, sub-linear search for
                millions of nodes). (default: ``"flat"``)
            hnsw_m, ef_construction, ef_search (int): HNSW's graph degree, build-time and
                search-time beam widths.
            batch_size (int, optional): Encoder batch size.
            chunk_size (int): Roots per sparse product while pooling.
            progress (bool, optional): Progress bars (``None``: on for long work).

        Raises:
            EmptyGraphError: ``graph`` has no nodes.
            InvalidArgumentError: An option is out of range.
        """
        if not isinstance(graph, TextGraph):
            raise DTypeError(f"GraphIndex.build takes a TextGraph, got {type(graph).__name__}; "
                             f"build one with TextGraph.from_triples(...)")
        if graph.num_nodes == 0:
            raise EmptyGraphError("cannot index a graph with no nodes; add nodes or triples")
        _check_encoder(encoder)
        num_hops = _check_int(num_hops, "num_hops", 0)
        _check_choice(edge_embedding, "edge_embedding", EDGE_EMBEDDINGS)
        _check_choice(index_type, "index_type", INDEX_TYPES)
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction),
                            ("ef_search", ef_search), ("chunk_size", chunk_size)):
            _check_int(value, name, 1)
        clock = [time.perf_counter()]
        node_emb = _encode(encoder, graph.node_text, batch_size, progress)
        clock.append(time.perf_counter())
        if edge_embedding == "relation":
            vocab, ids = _distinct(graph.edge_text)
            edge_table = _encode(encoder, vocab, batch_size, progress)
            edge_ids: Tensor | None = torch.from_numpy(ids)
        else:
            vocab, edge_ids = None, None
            edge_table = _encode(encoder, triple_texts(graph), batch_size, progress)
        clock.append(time.perf_counter())
        adj = _adjacency(graph.edges, graph.num_nodes)
        ego = ego_graph_embeddings(graph.edges, graph.num_nodes, node_emb, edge_table, num_hops,
                                   chunk_size=chunk_size, progress=progress, adjacency=adj,
                                   edge_text_ids=edge_ids)
        clock.append(time.perf_counter())
        index = cls(graph, encoder, node_embeddings=node_emb, edge_embeddings=edge_table,
                    ego_embeddings=ego, num_hops=num_hops, edge_embedding=edge_embedding,
                    index_type=index_type, hnsw_m=hnsw_m, ef_construction=ef_construction,
                    ef_search=ef_search, edge_text_ids=edge_ids, progress=progress)
        clock.append(time.perf_counter())
        index._relation_text = vocab
        index._adj = ((graph.num_nodes, graph.num_edges), adj)
        index.timings = _phases(clock)
        return index

    def _new_faiss_index(self, progress: bool | None = None):
        faiss = _faiss()
        d = self.dim
        if self.index_type == "flat":
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        n = self.ego_embeddings.size(0)
        starts = range(0, n, _FAISS_ADD_CHUNK)
        show = progress if progress is not None else (self.index_type == "hnsw"
                                                      and len(starts) > 4)
        if show:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"faiss {self.index_type} index", unit="chunk",
                          leave=False)
        vectors = self.ego_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
        for start in starts:
            index.add(vectors[start:start + _FAISS_ADD_CHUNK])
        return index

    def _update_faiss(self, rows: np.ndarray, num_old: int) -> None:
        """Rewrite the vectors of ``rows`` (< ``num_old``) in place and append the rest of
        :attr:`ego_embeddings`; a faiss index of another kind is rebuilt."""
        faiss = _faiss()
        index = self.faiss_index
        if isinstance(index, faiss.IndexFlat):
            flat = index
        elif isinstance(index, faiss.IndexHNSWFlat):
            flat = faiss.downcast_index(index.storage)
        else:
            flat = None
        if flat is None or index.ntotal != num_old or not isinstance(flat, faiss.IndexFlat):
            self.faiss_index = self._new_faiss_index()
            return
        ego = self.ego_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
        old = rows[rows < num_old]
        if old.size:
            stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)
            stored.reshape(flat.ntotal, flat.d)[old] = ego[old]
        if ego.shape[0] > num_old:
            index.add(ego[num_old:])

    # ------------------------------------------------------------------ basics
    @property
    def dim(self) -> int:
        return int(self.node_embeddings.size(1))

    @property
    def num_nodes(self) -> int:
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        return self.graph.num_edges

    @property
    def edge_embeddings(self) -> Tensor:
        """``(E, d)`` float32: edge ``e``'s embedding in row ``e``. A view of the table when
        every edge has its own row; otherwise gathered on each access (:math:`E \\times d`
        floats), so use :meth:`edge_embeddings_of` for a few edges."""
        if self.edge_text_ids is None:
            return self.edge_text_embeddings
        return self.edge_text_embeddings.index_select(0, self.edge_text_ids)

    @edge_embeddings.setter
    def edge_embeddings(self, value: Tensor) -> None:
        self.edge_text_embeddings, self.edge_text_ids = value, None
        self._relation_text = None

    def edge_embeddings_of(self, edge_ids: Tensor | Sequence[int]) -> Tensor:
        """The ``(m, d)`` embeddings of ``edge_ids`` (rows of :attr:`edge_embeddings`)."""
        ids = torch.as_tensor(edge_ids, dtype=torch.long).view(-1)
        if self.edge_text_ids is not None:
            ids = self.edge_text_ids.index_select(0, ids)
        return self.edge_text_embeddings.index_select(0, ids)

    def edge_scores(self, question: str | Tensor) -> Tensor:
        """``(E,)`` cosine similarity of every edge's embedding to ``question`` (one score per
        table row, then gathered)."""
        scores = self.edge_text_embeddings @ self.encode_question(question)
        return scores if self.edge_text_ids is None else scores.index_select(0,
                                                                             self.edge_text_ids)

    def __repr__(self) -> str:
        return (f"GraphIndex(nodes={self.num_nodes}, edges={self.num_edges}, dim={self.dim}, "
                f"num_hops={self.num_hops}, index_type={self.index_type!r}, "
                f"encoder={self.encoder.name!r})")

    def _adjacency(self):
        size = (self.num_nodes, self.num_edges)
        if self._adj is None or self._adj[0] != size:
            self._adj = (size, _adjacency(self.graph.edges, self.num_nodes))
        return self._adj[1]

    def _out_edges(self):
        """``(N, E)`` CSR: row ``u`` lists the ids of the edges with head ``u``."""
        size = (self.num_nodes, self.num_edges)
        if self._out is None or self._out[0] != size:
            self._out = (size, _incidence(self.graph.edges[:, 0].numpy(), self.num_nodes))
        return self._out[1]

    def _relation_rows(self) -> list[str | None]:
        """The text of each table row when rows are relation texts (``None``: unused row)."""
        if self._relation_text is None:
            texts: list[str | None] = [None] * self.edge_text_embeddings.size(0)
            ids = self.edge_text_ids.numpy()
            rows, first = np.unique(ids, return_index=True)
            for row, e in zip(rows.tolist(), first.tolist(), strict=True):
                texts[row] = self.graph.edge_text[e]
            self._relation_text = texts  # type: ignore[assignment]
        return self._relation_text  # type: ignore[return-value]

    def k_hop_nodes(self, roots: Tensor | Sequence[int] | int, num_hops: int | None = None
                    ) -> Tensor:
        """Sorted ids of the nodes within ``num_hops`` (default: the index's) of ``roots``,
        edge direction ignored: the nodes of ``graph.k_hop_subgraph(roots, num_hops)``.

        A breadth-first search over the cached sparse adjacency: the cost grows with the size
        of the neighbourhood, not of the graph (PyG's ``k_hop_subgraph`` scans every edge).
        """
        num_hops = self.num_hops if num_hops is None else _check_int(num_hops, "num_hops", 0)
        ids = torch.as_tensor(roots if not isinstance(roots, int) else [roots],
                              dtype=torch.long).view(-1).numpy()
        return torch.from_numpy(_bfs(self._adjacency(), ids, num_hops))

    def induced_edges(self, node_ids: Tensor) -> Tensor:
        """Sorted ids of the edges with both endpoints in ``node_ids`` (the edges
        ``graph.subgraph(node_ids)`` keeps), in time linear in those nodes' out-degrees
        (up to a log), not in the graph."""
        out = self._out_edges()
        ids = np.unique(torch.as_tensor(node_ids, dtype=torch.long).view(-1).numpy())
        if ids.size == 0:
            return torch.empty(0, dtype=torch.long)
        candidates = _gather_rows(out.indptr, out.indices, ids).astype(np.int64)
        tails = self.graph.edges[:, 1].numpy()[candidates]
        pos = np.searchsorted(ids, tails)
        pos[pos == ids.size] = 0
        return torch.from_numpy(np.sort(candidates[ids[pos] == tails]))

    def subgraph(self, node_ids: Tensor, edge_ids: Tensor | None = None) -> TextGraph:
        """The :class:`TextGraph` of sorted ``node_ids`` and ``edge_ids`` (default: the
        induced edges), node ``i`` being ``node_ids[i]``; equal to ``graph.subgraph(node_ids)``
        for induced edges, built in time linear in the subgraph, not in the graph."""
        node_ids = torch.as_tensor(node_ids, dtype=torch.long).view(-1)
        if edge_ids is None:
            edge_ids = self.induced_edges(node_ids)
        edge_ids = torch.as_tensor(edge_ids, dtype=torch.long).view(-1)
        ends = self.graph.edges.index_select(0, edge_ids)
        local = torch.searchsorted(node_ids, ends.reshape(-1)).view(-1, 2)
        texts, rels = self.graph.node_text, self.graph.edge_text
        return TextGraph([texts[i] for i in node_ids.tolist()], local,
                         [rels[e] for e in edge_ids.tolist()])

    def encode_question(self, question: str | Tensor) -> Tensor:
        """The unit-norm ``(d,)`` embedding of ``question`` (a str, or a vector passed through).

        Raises:
            InvalidArgumentError: ``question`` is empty or blank.
            ShapeError: A vector of the wrong size.
        """
        if isinstance(question, Tensor):
            q = question.detach().to("cpu", torch.float32).reshape(-1)
            if q.numel() != self.dim:
                raise ShapeError(f"a question embedding must have {self.dim} values (the "
                                 f"index's dim), got shape {tuple(question.shape)}")
            return F.normalize(q, dim=0)
        if not isinstance(question, str):
            raise DTypeError(f"question must be a str, got {type(question).__name__}")
        if not question.strip():
            raise InvalidArgumentError(f"question is empty ({question!r}); pass the question "
                                       f"text")
        return self.encoder.encode([question])[0]

    def search(self, question: str | Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
        """The ``k`` ego-graphs most similar to ``question``.

        Args:
            question (str or Tensor): The question, or its ``(d,)`` embedding.
            k (int): How many (capped at the number of nodes).

        Returns:
            ``(scores, roots)``: cosine similarities (descending, float32) and the root node
            ids of the ego-graphs (long), each ``(min(k, N),)``.
        """
        k = _check_int(k, "k", 1)
        q = self.encode_question(question)
        k = min(k, self.num_nodes)
        scores, ids = self.faiss_index.search(q.numpy()[None].astype(np.float32), k)
        keep = ids[0] >= 0
        return (torch.from_numpy(scores[0][keep].copy()),
                torch.from_numpy(ids[0][keep].astype(np.int64)))

    # ------------------------------------------------------------------ incremental
    def add(self, triples: Iterable[Sequence[str]] = (), nodes: Iterable[str] = (), *,
            batch_size: int | None = None, progress: bool | None = None) -> IndexUpdate:
        """Add nodes and triples (texts) and bring every embedding and the faiss index up to
        date.

        Node ids stay as they are; new node texts (in ``nodes``, then in ``triples`` in
        order of first appearance) get the next ids and new edges the next edge ids, so the
        result equals :meth:`build` on ``TextGraph(old node_text + new, old edges + new,
        old edge_text + new)``. Texts already in the graph name existing nodes. Only the new
        texts are encoded (with ``"relation"``, only relation texts not seen before), and
        only the ego-graphs that can change are pooled again: the new nodes and every node
        within ``num_hops`` of an endpoint of a new edge. The faiss index is updated in
        place: the recomputed vectors are overwritten and the new ones appended. A flat
        index then equals a rebuilt one; an HNSW index keeps its links, which were chosen
        for the old vectors, so after large changes its recall can drift below a rebuild's
        (build again to re-link).

        Returns:
            IndexUpdate: the new node and edge ids and the recomputed ego-graphs.
        """
        clock = [time.perf_counter()]
        delta = TextGraph.from_triples(triples, nodes=nodes)  # validates the texts
        graph = self.graph
        n_old, e_old = graph.num_nodes, graph.num_edges
        new_texts = [t for t in delta.node_text if t not in graph]
        fresh = {t: n_old + i for i, t in enumerate(new_texts)}
        remap = torch.tensor([fresh[t] if t in fresh else graph.node_id(t)
                              for t in delta.node_text], dtype=torch.long)
        new_pairs = remap[delta.edges] if delta.num_edges else torch.empty(0, 2, dtype=torch.long)
        merged = TextGraph(graph.node_text + new_texts, torch.cat([graph.edges, new_pairs]),
                           graph.edge_text + delta.edge_text)
        new_nodes = torch.arange(n_old, merged.num_nodes)
        new_edges = torch.arange(e_old, merged.num_edges)
        node_emb = torch.cat([self.node_embeddings,
                              _encode(self.encoder, new_texts, batch_size, progress)])
        clock.append(time.perf_counter())
        relation_text = None
        if self.edge_text_ids is None or self.edge_embedding != "relation":
            rows = self.edge_text_embeddings.size(0)
            edge_table = torch.cat([self.edge_text_embeddings, _encode(
                self.encoder, _edge_texts(merged, self.edge_embedding, new_edges), batch_size,
                progress)])
            edge_ids = (None if self.edge_text_ids is None else torch.cat(
                [self.edge_text_ids, torch.arange(rows, edge_table.size(0))]))
        else:
            relation_text = list(self._relation_rows())
            row = {t: j for j, t in enumerate(relation_text) if t is not None}
            unseen = [t for t in dict.fromkeys(delta.edge_text) if t not in row]
            for t in unseen:
                row[t] = len(relation_text)
                relation_text.append(t)
            edge_table = torch.cat([self.edge_text_embeddings,
                                    _encode(self.encoder, unseen, batch_size, progress)])
            edge_ids = torch.cat([self.edge_text_ids, torch.tensor(
                [row[t] for t in delta.edge_text], dtype=torch.long)])
        clock.append(time.perf_counter())
        adj = _grow_adjacency(self._adjacency(), new_pairs, merged.num_nodes)
        seeds = np.unique(np.concatenate([new_pairs.reshape(-1).numpy(), new_nodes.numpy()]))
        updated = _bfs(adj, seeds, self.num_hops) if seeds.size else np.zeros(0, np.int64)
        ego = torch.cat([self.ego_embeddings, torch.empty(len(new_texts), self.dim)])
        if updated.size:
            ego[torch.from_numpy(updated)] = ego_graph_embeddings(
                merged.edges, merged.num_nodes, node_emb, edge_table, self.num_hops,
                roots=torch.from_numpy(updated), progress=progress, adjacency=adj,
                edge_text_ids=edge_ids)
        clock.append(time.perf_counter())
        self.graph, self.node_embeddings, self.ego_embeddings = merged, node_emb, ego
        self.edge_text_embeddings, self.edge_text_ids = edge_table, edge_ids
        self._relation_text = relation_text
        self._adj = ((merged.num_nodes, merged.num_edges), adj)
        if updated.size:
            self._update_faiss(updated, n_old)
        clock.append(time.perf_counter())
        self.timings = _phases(clock)
        return IndexUpdate(new_nodes, new_edges, torch.from_numpy(updated.astype(np.int64)))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the index to the folder ``path`` (created if needed; files overwritten).

        Files: ``manifest.json`` (format version, library versions, encoder name and spec,
        settings, counts, SHA-256 of every other file), ``graph.json`` (the node texts and
        the distinct relation texts), ``edges.npy`` (``(E, 2)`` int64), ``relations.npy``
        (``(E,)`` int64 row of each edge's text in ``relation_text``),
        ``node_embeddings.npy``, ``edge_embeddings.npy`` (float32; the edge table: one row
        per edge, or per relation text with ``edge_embedding="relation"``),
        ``ego_embeddings.npy`` and ``faiss.index`` (``faiss.write_index``). Nothing is
        pickled: :meth:`load` reads NumPy files with ``allow_pickle=False``.

        Returns:
            Path: the folder.
        """
        faiss = _faiss()
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InvalidArgumentError(f"{str(folder)!r} is a file; save a GraphIndex to a "
                                       f"folder")
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / "manifest.json"
        if manifest_path.exists():
            manifest_path.unlink()  # a crash below leaves no stale manifest behind
        per_relation = self.edge_text_ids is not None and self.edge_embedding == "relation"
        if per_relation:
            relation_text = list(self._relation_rows())
            table = self.edge_text_embeddings
            relations = self.edge_text_ids.numpy()
        else:
            relation_text, relations = _distinct(self.graph.edge_text)
            table = self.edge_embeddings
        with open(folder / "graph.json", "w", encoding="utf-8") as f:
            json.dump({"node_text": self.graph.node_text, "relation_text": relation_text}, f)
        np.save(folder / "edges.npy", self.graph.edges.numpy().astype(np.int64))
        np.save(folder / "relations.npy", relations.astype(np.int64))
        np.save(folder / "node_embeddings.npy", self.node_embeddings.numpy().astype(np.float32))
        np.save(folder / "edge_embeddings.npy", table.numpy().astype(np.float32))
        np.save(folder / "ego_embeddings.npy", self.ego_embeddings.numpy().astype(np.float32))
        faiss.write_index(self.faiss_index, str(folder / "faiss.index"))
        import graphlearn

        spec = self.encoder.spec() if hasattr(self.encoder, "spec") else None
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "versions": {"graphlearn": graphlearn.__version__, "faiss": faiss.__version__,
                         "numpy": np.__version__, "torch": torch.__version__},
            "encoder": {"name": self.encoder.name, "dim": self.dim, "spec": spec},
            "num_hops": self.num_hops, "edge_embedding": self.edge_embedding,
            "edge_table": "relation" if per_relation else "edge",
            "index": {"type": self.index_type, "hnsw_m": self.hnsw_m,
                      "ef_construction": self.ef_construction, "ef_search": self.ef_search},
            "num_nodes": self.num_nodes, "num_edges": self.num_edges,
            "sha256": {name: _sha256(folder / name) for name in _FILES},
        }
        with open(manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike, encoder: TextEncoder | None = None, *,
             verify: bool = True) -> GraphIndex:
        """Read an index written by :meth:`save` (format version 2, or 1 from older
        graphlearn).

        Args:
            path: The folder.
            encoder (TextEncoder, optional): The encoder for questions and :meth:`add`. When
                omitted, a :class:`~graphlearn.kg.grag.HashingEncoder` or a sentence-transformers
                model given by name or folder is rebuilt from the manifest; an index built
                with a function or a model object needs it passed again.
            verify (bool): Check every file's SHA-256 against the manifest. (default:
                :obj:`True`)

        Raises:
            DataNotFoundError: The folder, its manifest or one of its files is missing.
            DataFormatError: A file is corrupt, or does not match the manifest.
            ShapeError: ``encoder.dim`` differs from the index's.
        """
        faiss = _faiss()
        folder = Path(path)
        manifest_path = folder / "manifest.json"
        manifest = read_manifest(manifest_path, format=FORMAT, versions=(1, FORMAT_VERSION),
                                 what="GraphIndex", fix="build one with GraphIndex.build(...) "
                                                        "and write it with .save(path)")
        version = manifest["format_version"]
        try:
            sums = manifest["sha256"]
            settings = (int(manifest["num_nodes"]), int(manifest["num_edges"]),
                        int(manifest["num_hops"]), str(manifest["edge_embedding"]),
                        manifest["index"], manifest["encoder"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{manifest_path} lacks or mangles field {exc}; the index "
                                  f"is corrupt, save it again") from None
        files = _FILES_V1 if version == 1 else _FILES
        for name in files:
            if not (folder / name).is_file():
                raise DataNotFoundError(f"GraphIndex folder {str(folder)!r} lacks {name}; the "
                                        f"index is incomplete, save it again")
        n, e, num_hops, edge_embedding, index_info, enc_info = settings
        if verify:
            for name in files:
                if _sha256(folder / name) != sums.get(name):
                    raise DataFormatError(f"{folder / name} does not match its checksum in "
                                          f"manifest.json: the file is corrupt or was changed; "
                                          f"save the index again (or load with verify=False)")
        d = int(enc_info.get("dim", -1))
        try:
            faiss_index = faiss.read_index(str(folder / "faiss.index"))
        except RuntimeError as exc:
            raise DataFormatError(f"{folder / 'faiss.index'} is not a faiss index "
                                  f"({str(exc).splitlines()[0] if str(exc) else exc})") from None
        if faiss_index.ntotal != n or faiss_index.d != d:
            raise DataFormatError(f"{folder / 'faiss.index'} holds {faiss_index.ntotal} vectors "
                                  f"of dim {faiss_index.d}, expected {n} of dim {d}")
        read = _read_v1 if version == 1 else _read_v2
        graph, arrays, edge_ids = read(folder, n, e, d, edge_embedding,
                                       manifest.get("edge_table"))
        if encoder is None:
            try:
                encoder = encoder_from_spec(enc_info.get("spec"))
            except InvalidArgumentError:
                raise InvalidArgumentError(
                    f"the index in {str(folder)!r} was built with encoder "
                    f"{enc_info.get('name')!r}, which cannot be rebuilt from its name; pass it: "
                    f"GraphIndex.load(path, encoder=...)") from None
        else:
            _check_encoder(encoder)
        if encoder.dim != d:
            raise ShapeError(f"encoder {encoder.name!r} has dim {encoder.dim}, but the index "
                             f"in {str(folder)!r} has dim {d}; pass the encoder it was built "
                             f"with")
        if encoder.name != enc_info.get("name"):
            warnings.warn(f"loading an index built with encoder {enc_info.get('name')!r} "
                          f"with encoder {encoder.name!r}; questions will be compared with "
                          f"embeddings of the other model", UserWarning, stacklevel=2)
        if index_info.get("type") == "hnsw":
            faiss_index.hnsw.efSearch = int(index_info.get("ef_search", 64))
        index = cls(graph, encoder, node_embeddings=torch.from_numpy(arrays["node_embeddings"]),
                    edge_embeddings=torch.from_numpy(arrays["edge_embeddings"]),
                    ego_embeddings=torch.from_numpy(arrays["ego_embeddings"]),
                    num_hops=num_hops, edge_embedding=edge_embedding,
                    index_type=str(index_info.get("type")),
                    hnsw_m=int(index_info.get("hnsw_m", 32)),
                    ef_construction=int(index_info.get("ef_construction", 80)),
                    ef_search=int(index_info.get("ef_search", 64)), faiss_index=faiss_index,
                    edge_text_ids=edge_ids)
        if edge_ids is not None:
            index._relation_text = arrays.get("relation_text")
        return index


# ---------------------------------------------------------------------------- reading
def _npy(folder: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.load(folder / f"{name}.npy", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFormatError(f"{folder / (name + '.npy')} is not a readable NumPy array "
                              f"({exc})") from None
    if array.shape != shape:
        raise DataFormatError(f"{folder / (name + '.npy')} has shape {array.shape}, but the "
                              f"manifest says {shape}")
    return array


def _graph_json(folder: Path, keys: tuple[str, str]) -> tuple[Any, Any]:
    try:
        texts = json.loads((folder / "graph.json").read_text(encoding="utf-8"))
        return texts[keys[0]], texts[keys[1]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataFormatError(f"{folder / 'graph.json'} is not a GraphIndex graph file "
                              f"({exc})") from None


def _read_v2(folder: Path, n: int, e: int, d: int, edge_embedding: str,
             edge_table: str | None) -> tuple[TextGraph, dict[str, Any], Tensor | None]:
    node_text, relation_text = _graph_json(folder, ("node_text", "relation_text"))
    if len(node_text) != n:
        raise DataFormatError(f"{folder / 'graph.json'} has {len(node_text)} node texts, but "
                              f"the manifest says {n}")
    relations = _npy(folder, "relations", (e,))
    if e and (relations.min() < 0 or relations.max() >= len(relation_text)):
        raise DataFormatError(f"{folder / 'relations.npy'} names relation text rows outside "
                              f"[0, {len(relation_text)})")
    per_relation = edge_table == "relation"
    arrays = {"node_embeddings": _npy(folder, "node_embeddings", (n, d)),
              "edge_embeddings": _npy(folder, "edge_embeddings",
                                      (len(relation_text) if per_relation else e, d)),
              "relation_text": list(relation_text)}
    arrays["ego_embeddings"] = _npy(folder, "ego_embeddings", (n, d))
    edge_text = np.array(relation_text, dtype=object)[relations].tolist()
    graph = TextGraph(node_text, torch.from_numpy(_npy(folder, "edges", (e, 2)).astype(np.int64)),
                      edge_text)
    return graph, arrays, torch.from_numpy(relations.astype(np.int64)) if per_relation else None


def _read_v1(folder: Path, n: int, e: int, d: int, edge_embedding: str,
             edge_table: str | None) -> tuple[TextGraph, dict[str, Any], Tensor | None]:
    """Format 1: per-edge texts in graph.json, one edge-embedding row per edge."""
    node_text, edge_text = _graph_json(folder, ("node_text", "edge_text"))
    if len(node_text) != n or len(edge_text) != e:
        raise DataFormatError(f"{folder / 'graph.json'} has {len(node_text)} node and "
                              f"{len(edge_text)} edge texts, but the manifest says {n} and {e}")
    arrays = {name: _npy(folder, name, shape) for name, shape in (
        ("node_embeddings", (n, d)), ("edge_embeddings", (e, d)), ("ego_embeddings", (n, d)))}
    graph = TextGraph(node_text, torch.from_numpy(_npy(folder, "edges", (e, 2)).astype(np.int64)),
                      edge_text)
    if edge_embedding != "relation":
        return graph, arrays, None
    relation_text, ids = _distinct(edge_text)
    _, first = np.unique(ids, return_index=True)
    arrays["edge_embeddings"] = arrays["edge_embeddings"][first]
    arrays["relation_text"] = relation_text
    return graph, arrays, torch.from_numpy(ids)


# ---------------------------------------------------------------------------- helpers
def _edge_texts(graph: TextGraph, mode: str, edge_ids: Tensor | None = None) -> list[str]:
    if mode == "triple":
        return triple_texts(graph, edge_ids)
    if edge_ids is None:
        return list(graph.edge_text)
    return [graph.edge_text[i] for i in edge_ids.tolist()]


def _encode(encoder: TextEncoder, texts: list[str], batch_size: int | None,
            progress: bool | None) -> Tensor:
    if not texts:
        return torch.empty(0, encoder.dim)
    if isinstance(encoder, CachedTextEncoder):  # rows already checked and normalised
        return encoder.encode(texts, batch_size, progress=progress)
    out = encoder.encode(texts, batch_size)  # any TextEncoder: encode(texts, batch_size)
    out = torch.as_tensor(out).detach().to("cpu", torch.float32)
    if out.shape != (len(texts), encoder.dim):
        raise ShapeError(f"encoder {encoder.name!r} returned shape {tuple(out.shape)} for "
                         f"{len(texts)} texts; expected ({len(texts)}, {encoder.dim})")
    return F.normalize(out, dim=1)


def _phases(clock: list[float]) -> dict[str, float]:
    """Seconds per phase from the five time stamps of :meth:`GraphIndex.build` / ``add``."""
    names = ("encode_nodes", "encode_edges", "pool", "faiss")
    out = {name: clock[i + 1] - clock[i] for i, name in enumerate(names)}
    out["total"] = clock[-1] - clock[0]
    return out


def _check_encoder(encoder: Any) -> None:
    if not isinstance(encoder, TextEncoder):
        raise DTypeError(f"encoder must be a TextEncoder (encode(texts, batch_size), dim, name), "
                         f"got {type(encoder).__name__}; wrap a function in CallableEncoder")


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                                   f"got {value!r}")
    return value


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
