r"""``GraphIndex``: text embeddings of a :class:`TextGraph` and a faiss index over its ego-graphs.

GRAG (Hu et al., 2024, `arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_) retrieves
*k-hop ego-graphs*, each represented by one vector pooled from its members' text embeddings,
and ranks them by cosine similarity to the question. :class:`GraphIndex` holds:

- ``node_embeddings`` :math:`\mathbf{x}_u` ``(N, d)``: the encoder's embedding of node ``u``'s
  text.
- ``edge_embeddings`` :math:`\mathbf{y}_e` ``(E, d)``: with ``edge_embedding="triple"``
  (default) the embedding of the triple text ``"head relation tail"``, so an edge knows which
  entities it joins (``"paris capital of france"`` and ``"rome capital of italy"`` differ,
  which the relation text alone cannot tell apart) and :func:`~graphlearn.kg.grag.text_rag`
  can rank facts; with ``"relation"`` the embedding of the relation text alone, as
  G-Retriever's edge attributes (only the distinct relation texts are encoded: the cheap
  choice for a huge graph with a slow model).
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
each sparse product, so walk counts never weight the mean), :math:`R X` sums the node
embeddings, and :math:`Q = (R H) \odot (R T)`, with :math:`H, T` the ``(N, E)`` head and tail
incidence matrices, marks :math:`E_k(v)`, so :math:`Q Y` sums the edge embeddings. Roots are
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
from .textgraph import TextGraph

__all__ = ["GraphIndex", "IndexUpdate", "ego_graph_embeddings", "triple_texts"]

FORMAT = "graphlearn.grag.GraphIndex"
FORMAT_VERSION = 1
EDGE_EMBEDDINGS = ("triple", "relation")
INDEX_TYPES = ("flat", "hnsw")
_FILES = ("graph.json", "edges.npy", "node_embeddings.npy", "edge_embeddings.npy",
          "ego_embeddings.npy", "faiss.index")


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
    ids = range(graph.num_edges) if edge_ids is None else torch.as_tensor(edge_ids).tolist()
    pairs = graph.edges.tolist()
    return [f"{nodes[pairs[e][0]]} {rels[e]} {nodes[pairs[e][1]]}" for e in ids]


# ---------------------------------------------------------------------------- pooling
def _adjacency(edges: Tensor, num_nodes: int):
    """Binary symmetric adjacency with self-loops, ``(N, N)`` CSR float32."""
    import scipy.sparse as sp

    e = edges.numpy()
    loops = np.arange(num_nodes)
    rows = np.concatenate([e[:, 0], e[:, 1], loops])
    cols = np.concatenate([e[:, 1], e[:, 0], loops])
    adj = sp.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, cols)),
                        shape=(num_nodes, num_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    return adj


def _incidence(ends: np.ndarray, num_nodes: int):
    import scipy.sparse as sp

    num_edges = ends.shape[0]
    return sp.csr_matrix((np.ones(num_edges, np.float32), (ends, np.arange(num_edges))),
                         shape=(num_nodes, num_edges))


def _reach(adj, roots: np.ndarray, num_hops: int):
    """Rows of :math:`[\\hat{A}^k > 0]` for ``roots``: ``(len(roots), N)`` binary CSR."""
    import scipy.sparse as sp

    n = adj.shape[0]
    if num_hops == 0:
        return sp.csr_matrix((np.ones(len(roots), np.float32), (np.arange(len(roots)), roots)),
                             shape=(len(roots), n))
    reach = adj[roots]
    for _ in range(num_hops - 1):
        reach = reach @ adj
        reach.data[:] = 1.0
    return reach


def _within_hops(adj, seeds: np.ndarray, num_hops: int) -> np.ndarray:
    """Node ids within ``num_hops`` (either direction) of any seed, sorted."""
    mask = np.zeros(adj.shape[0], np.float32)
    mask[seeds] = 1.0
    for _ in range(num_hops):
        mask = (adj @ mask > 0).astype(np.float32)
    return np.flatnonzero(mask)


def ego_graph_embeddings(edges: Tensor, num_nodes: int, node_embeddings: Tensor,
                         edge_embeddings: Tensor, num_hops: int, *,
                         roots: Tensor | Sequence[int] | None = None, chunk_size: int = 8192,
                         progress: bool | None = None, adjacency=None) -> Tensor:
    r"""Pooled k-hop ego-graph embeddings :math:`\mathbf{g}_v` (module docstring), vectorised.

    Args:
        edges (Tensor): ``(E, 2)`` long ``(head, tail)`` node ids.
        num_nodes (int): :math:`N`.
        node_embeddings (Tensor): ``(N, d)`` float32.
        edge_embeddings (Tensor): ``(E, d)`` float32.
        num_hops (int): :math:`k \ge 0`.
        roots (Tensor or list of int, optional): The nodes whose ego-graphs to embed.
            (default: all)
        chunk_size (int): Roots per sparse product. (default: :obj:`8192`)
        progress (bool, optional): ``tqdm`` bar over chunks; ``None`` shows it for more than
            4 chunks.
        adjacency (optional): A precomputed :func:`_adjacency` to reuse.

    Returns:
        Tensor: ``(len(roots), d)`` float32, rows of unit norm (zero where the members'
        mean is zero).
    """
    n = num_nodes
    x = node_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
    y = edge_embeddings.detach().to("cpu", torch.float32).contiguous().numpy()
    e = edges.numpy() if edges.numel() else np.zeros((0, 2), np.int64)
    roots_np = (np.arange(n) if roots is None
                else torch.as_tensor(roots, dtype=torch.long).view(-1).numpy())
    out = np.empty((roots_np.shape[0], x.shape[1]), np.float32)
    adj = adjacency if adjacency is not None else _adjacency(edges, n)
    heads, tails = _incidence(e[:, 0], n), _incidence(e[:, 1], n)
    starts = range(0, roots_np.shape[0], chunk_size)
    show = progress if progress is not None else len(starts) > 4
    if show:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"pooling {num_hops}-hop ego-graphs", unit="chunk",
                      leave=False)
    for start in starts:
        chunk = roots_np[start:start + chunk_size]
        reach = _reach(adj, chunk, num_hops)
        total = reach @ x
        count = np.asarray(reach.sum(axis=1), np.float64).ravel()
        if y.shape[0]:
            members = (reach @ heads).multiply(reach @ tails).tocsr()
            members.eliminate_zeros()
            total += members @ y
            count += np.asarray(members.sum(axis=1), np.float64).ravel()
        out[start:start + len(chunk)] = total / count[:, None].astype(np.float32)
    return F.normalize(torch.from_numpy(out), dim=1)


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

    Attributes:
        graph (TextGraph): The indexed graph.
        encoder (TextEncoder): Embeds texts and questions.
        num_hops (int): :math:`k` of the ego-graphs.
        edge_embedding (str): ``"triple"`` or ``"relation"``.
        index_type (str): ``"flat"`` or ``"hnsw"``.
        node_embeddings, edge_embeddings, ego_embeddings (Tensor): ``(N, d)``, ``(E, d)``,
            ``(N, d)`` float32.
        faiss_index: The faiss index over ``ego_embeddings`` (row ``v`` = node ``v``).
    """

    def __init__(self, graph: TextGraph, encoder: TextEncoder, *, node_embeddings: Tensor,
                 edge_embeddings: Tensor, ego_embeddings: Tensor, num_hops: int,
                 edge_embedding: str = "triple", index_type: str = "flat", hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64, faiss_index: Any = None) -> None:
        self.graph = graph
        self.encoder = encoder
        self.num_hops = num_hops
        self.edge_embedding = edge_embedding
        self.index_type = index_type
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.node_embeddings = node_embeddings
        self.edge_embeddings = edge_embeddings
        self.ego_embeddings = ego_embeddings
        self.faiss_index = faiss_index if faiss_index is not None else self._new_faiss_index()
        self._adj = None  # cached (graph size, scipy CSR adjacency); see _adjacency()
        self._by_head = None  # cached (graph size, edge ids sorted by head, CSR row pointer)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, graph: TextGraph, encoder: TextEncoder, num_hops: int = 1, *,
              edge_embedding: str = "triple", index_type: str = "flat", hnsw_m: int = 32,
              ef_construction: int = 80, ef_search: int = 64, batch_size: int | None = None,
              chunk_size: int = 8192, progress: bool | None = None) -> GraphIndex:
        """Encode ``graph``'s texts, pool its ego-graphs and index them.

        Args:
            graph (TextGraph): The graph (at least one node).
            encoder (TextEncoder): E.g. :class:`~graphlearn.kg.grag.SentenceTransformerEncoder`
                or :class:`~graphlearn.kg.grag.HashingEncoder`.
            num_hops (int): Ego-graph radius :math:`k \\ge 0`. (default: :obj:`1`)
            edge_embedding (str): ``"triple"`` (embed ``"head relation tail"``) or
                ``"relation"`` (embed the relation text). (default: ``"triple"``)
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
        node_emb = _encode(encoder, graph.node_text, batch_size, progress)
        edge_emb = _encode(encoder, _edge_texts(graph, edge_embedding), batch_size, progress)
        adj = _adjacency(graph.edges, graph.num_nodes)
        ego = ego_graph_embeddings(graph.edges, graph.num_nodes, node_emb, edge_emb, num_hops,
                                   chunk_size=chunk_size, progress=progress, adjacency=adj)
        index = cls(graph, encoder, node_embeddings=node_emb, edge_embeddings=edge_emb,
                    ego_embeddings=ego, num_hops=num_hops, edge_embedding=edge_embedding,
                    index_type=index_type, hnsw_m=hnsw_m, ef_construction=ef_construction,
                    ef_search=ef_search)
        index._adj = ((graph.num_nodes, graph.num_edges), adj)
        return index

    def _new_faiss_index(self):
        faiss = _faiss()
        d = self.dim
        if self.index_type == "flat":
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
            index.hnsw.efSearch = self.ef_search
        if self.ego_embeddings.size(0):
            index.add(np.ascontiguousarray(self.ego_embeddings.numpy(), dtype=np.float32))
        return index

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

    def __repr__(self) -> str:
        return (f"GraphIndex(nodes={self.num_nodes}, edges={self.num_edges}, dim={self.dim}, "
                f"num_hops={self.num_hops}, index_type={self.index_type!r}, "
                f"encoder={self.encoder.name!r})")

    def _adjacency(self):
        size = (self.num_nodes, self.num_edges)
        if self._adj is None or self._adj[0] != size:
            self._adj = (size, _adjacency(self.graph.edges, self.num_nodes))
        return self._adj[1]

    def _edges_by_head(self) -> tuple[np.ndarray, np.ndarray]:
        size = (self.num_nodes, self.num_edges)
        if self._by_head is None or self._by_head[0] != size:
            heads = self.graph.edges[:, 0].numpy()
            order = np.argsort(heads, kind="stable")
            ptr = np.zeros(self.num_nodes + 1, np.int64)
            np.cumsum(np.bincount(heads, minlength=self.num_nodes), out=ptr[1:])
            self._by_head = (size, order, ptr)
        return self._by_head[1], self._by_head[2]

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
        adj = self._adjacency()
        seen = np.zeros(self.num_nodes, bool)
        seen[ids] = True
        frontier = np.unique(ids)
        for _ in range(num_hops):
            if frontier.size == 0:
                break
            reached = adj[frontier].indices
            frontier = np.unique(reached[~seen[reached]])
            seen[frontier] = True
        return torch.from_numpy(np.flatnonzero(seen))

    def induced_edges(self, node_ids: Tensor) -> Tensor:
        """Sorted ids of the edges with both endpoints in ``node_ids`` (the edges
        ``graph.subgraph(node_ids)`` keeps), in time linear in those nodes' out-degrees."""
        order, ptr = self._edges_by_head()
        ids = torch.as_tensor(node_ids, dtype=torch.long).view(-1).numpy()
        if ids.size == 0:
            return torch.empty(0, dtype=torch.long)
        inside = np.zeros(self.num_nodes, bool)
        inside[ids] = True
        starts, ends = ptr[ids], ptr[ids + 1]
        lengths = ends - starts
        # all out-edge positions of the nodes, without a Python loop
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = np.arange(int(lengths.sum())) + offsets
        candidates = order[positions]
        tails = self.graph.edges[:, 1].numpy()[candidates]
        return torch.from_numpy(np.sort(candidates[inside[tails]]))

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
        texts are encoded, and only the ego-graphs that can change are pooled again: the
        new nodes and every node within ``num_hops`` of an endpoint of a new edge. A flat
        faiss index is refilled (a copy, no training); an HNSW index cannot update vectors
        in place, so it is rebuilt: batch additions on HNSW.

        Returns:
            IndexUpdate: the new node and edge ids and the recomputed ego-graphs.
        """
        delta = TextGraph.from_triples(triples, nodes=nodes)  # validates the texts
        graph = self.graph
        index = graph.node_index
        new_texts = [t for t in delta.node_text if t not in index]
        node_text = graph.node_text + new_texts
        for t in new_texts:
            index[t] = len(index)
        remap = torch.tensor([index[t] for t in delta.node_text], dtype=torch.long)
        new_pairs = remap[delta.edges] if delta.num_edges else torch.empty(0, 2, dtype=torch.long)
        merged = TextGraph(node_text, torch.cat([graph.edges, new_pairs]),
                           graph.edge_text + delta.edge_text)
        n_old, e_old = graph.num_nodes, graph.num_edges
        new_nodes = torch.arange(n_old, merged.num_nodes)
        new_edges = torch.arange(e_old, merged.num_edges)
        node_emb = torch.cat([self.node_embeddings,
                              _encode(self.encoder, new_texts, batch_size, progress)])
        edge_emb = torch.cat([self.edge_embeddings,
                              _encode(self.encoder, _edge_texts(merged, self.edge_embedding,
                                                                new_edges), batch_size, progress)])
        adj = _adjacency(merged.edges, merged.num_nodes)
        seeds = np.unique(np.concatenate([new_pairs.reshape(-1).numpy(), new_nodes.numpy()]))
        updated = (_within_hops(adj, seeds, self.num_hops) if seeds.size
                   else np.zeros(0, np.int64))
        ego = torch.cat([self.ego_embeddings, torch.empty(len(new_texts), self.dim)])
        if updated.size:
            ego[torch.from_numpy(updated)] = ego_graph_embeddings(
                merged.edges, merged.num_nodes, node_emb, edge_emb, self.num_hops,
                roots=torch.from_numpy(updated), progress=progress, adjacency=adj)
        self.graph, self.node_embeddings, self.edge_embeddings = merged, node_emb, edge_emb
        self.ego_embeddings = ego
        self._adj = ((merged.num_nodes, merged.num_edges), adj)
        if updated.size:
            self.faiss_index = self._new_faiss_index()
        return IndexUpdate(new_nodes, new_edges, torch.from_numpy(updated.astype(np.int64)))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the index to the folder ``path`` (created if needed; files overwritten).

        Files: ``manifest.json`` (format version, library versions, encoder name and spec,
        settings, counts, SHA-256 of every other file), ``graph.json`` (node and edge texts),
        ``edges.npy`` (``(E, 2)`` int64), ``node_embeddings.npy``, ``edge_embeddings.npy``,
        ``ego_embeddings.npy`` (float32) and ``faiss.index`` (``faiss.write_index``). Nothing
        is pickled: :meth:`load` reads NumPy files with ``allow_pickle=False``.

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
        with open(folder / "graph.json", "w", encoding="utf-8") as f:
            json.dump({"node_text": self.graph.node_text, "edge_text": self.graph.edge_text}, f)
        np.save(folder / "edges.npy", self.graph.edges.numpy().astype(np.int64))
        for name in ("node_embeddings", "edge_embeddings", "ego_embeddings"):
            np.save(folder / f"{name}.npy", getattr(self, name).numpy().astype(np.float32))
        faiss.write_index(self.faiss_index, str(folder / "faiss.index"))
        import graphlearn

        spec = self.encoder.spec() if hasattr(self.encoder, "spec") else None
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "versions": {"graphlearn": graphlearn.__version__, "faiss": faiss.__version__,
                         "numpy": np.__version__, "torch": torch.__version__},
            "encoder": {"name": self.encoder.name, "dim": self.dim, "spec": spec},
            "num_hops": self.num_hops, "edge_embedding": self.edge_embedding,
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
        """Read an index written by :meth:`save`.

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
        if not folder.is_dir():
            raise DataNotFoundError(f"no GraphIndex folder at {str(folder)!r}; build one with "
                                    f"GraphIndex.build(...) and write it with .save(path)")
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise DataNotFoundError(f"{str(folder)!r} has no manifest.json, so it is not a "
                                    f"(complete) GraphIndex folder; write one with "
                                    f"GraphIndex.save(path)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{manifest_path} is not valid JSON ({exc}); the index is "
                                  f"corrupt, save it again") from None
        found = manifest.get("format") if isinstance(manifest, dict) else None
        if found != FORMAT:
            raise DataFormatError(f"{manifest_path} is not a GraphIndex manifest (format "
                                  f"{found!r}, expected {FORMAT!r})")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataFormatError(f"{manifest_path} has format_version "
                                  f"{manifest.get('format_version')!r}; this graphlearn reads "
                                  f"version {FORMAT_VERSION}: rebuild the index")
        for name in _FILES:
            if not (folder / name).is_file():
                raise DataNotFoundError(f"GraphIndex folder {str(folder)!r} lacks {name}; the "
                                        f"index is incomplete, save it again")
        try:
            sums = manifest["sha256"]
            settings = (int(manifest["num_nodes"]), int(manifest["num_edges"]),
                        int(manifest["num_hops"]), str(manifest["edge_embedding"]),
                        manifest["index"], manifest["encoder"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{manifest_path} lacks or mangles field {exc}; the index "
                                  f"is corrupt, save it again") from None
        n, e, num_hops, edge_embedding, index_info, enc_info = settings
        if verify:
            for name in _FILES:
                if _sha256(folder / name) != sums.get(name):
                    raise DataFormatError(f"{folder / name} does not match its checksum in "
                                          f"manifest.json: the file is corrupt or was changed; "
                                          f"save the index again (or load with verify=False)")
        try:
            texts = json.loads((folder / "graph.json").read_text(encoding="utf-8"))
            node_text, edge_text = texts["node_text"], texts["edge_text"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{folder / 'graph.json'} is not a GraphIndex graph file "
                                  f"({exc})") from None
        arrays = {}
        for name in ("edges", "node_embeddings", "edge_embeddings", "ego_embeddings"):
            try:
                arrays[name] = np.load(folder / f"{name}.npy", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise DataFormatError(f"{folder / (name + '.npy')} is not a readable NumPy "
                                      f"array ({exc})") from None
        d = int(enc_info.get("dim", -1))
        expected = {"edges": (e, 2), "node_embeddings": (n, d), "edge_embeddings": (e, d),
                    "ego_embeddings": (n, d)}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise DataFormatError(f"{folder / (name + '.npy')} has shape "
                                      f"{arrays[name].shape}, but the manifest says {shape}")
        if len(node_text) != n or len(edge_text) != e:
            raise DataFormatError(f"{folder / 'graph.json'} has {len(node_text)} node and "
                                  f"{len(edge_text)} edge texts, but the manifest says {n} "
                                  f"and {e}")
        try:
            faiss_index = faiss.read_index(str(folder / "faiss.index"))
        except RuntimeError as exc:
            raise DataFormatError(f"{folder / 'faiss.index'} is not a faiss index "
                                  f"({str(exc).splitlines()[0] if str(exc) else exc})") from None
        if faiss_index.ntotal != n or faiss_index.d != d:
            raise DataFormatError(f"{folder / 'faiss.index'} holds {faiss_index.ntotal} vectors "
                                  f"of dim {faiss_index.d}, expected {n} of dim {d}")
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
        graph = TextGraph(node_text, torch.from_numpy(arrays["edges"].astype(np.int64)),
                          edge_text)
        if index_info.get("type") == "hnsw":
            faiss_index.hnsw.efSearch = int(index_info.get("ef_search", 64))
        return cls(graph, encoder, node_embeddings=torch.from_numpy(arrays["node_embeddings"]),
                   edge_embeddings=torch.from_numpy(arrays["edge_embeddings"]),
                   ego_embeddings=torch.from_numpy(arrays["ego_embeddings"]), num_hops=num_hops,
                   edge_embedding=edge_embedding, index_type=str(index_info.get("type")),
                   hnsw_m=int(index_info.get("hnsw_m", 32)),
                   ef_construction=int(index_info.get("ef_construction", 80)),
                   ef_search=int(index_info.get("ef_search", 64)), faiss_index=faiss_index)


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
    if isinstance(encoder, CachedTextEncoder):
        out = encoder.encode(texts, batch_size, progress=progress)
    else:  # any TextEncoder: encode(texts, batch_size)
        out = encoder.encode(texts, batch_size)
    out = torch.as_tensor(out).detach().to("cpu", torch.float32)
    if out.shape != (len(texts), encoder.dim):
        raise ShapeError(f"encoder {encoder.name!r} returned shape {tuple(out.shape)} for "
                         f"{len(texts)} texts; expected ({len(texts)}, {encoder.dim})")
    return F.normalize(out, dim=1)


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
