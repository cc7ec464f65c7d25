"""``TextGraph``: a directed multigraph whose nodes and edges carry text.

This is the graph of graph retrieval-augmented generation (G-Retriever, He et al., NeurIPS
2024, `arXiv:2402.07630 <https://arxiv.org/abs/2402.07630>`_; GRAG, Hu et al., 2024,
`arXiv:2405.16506 <https://arxiv.org/abs/2405.16506>`_): a knowledge base or a per-question
subgraph whose nodes are entity names or phrases and whose edges are relation phrases.

Storage:

- ``node_text`` (list of str): the text of node ``i``. Texts are unique: a text names one
  node, so triples written as text (``("alice", "knows", "bob")``) identify their nodes.
- ``edges`` (Tensor, ``(E, 2)``, long): ``(head, tail)`` node ids, one row per edge, in
  edge-id order. Parallel edges and self-loops are allowed.
- ``edge_text`` (list of str): the relation text of edge ``e``; not unique.

Any str is a valid text, the empty string and text with newlines or surrounding spaces
included (constructors that read text formats, TSV and graph strings, strip fields, because
those formats cannot tell padding from separators). :func:`graphlearn.kg.grag.describe`
prints every text losslessly.

Message passing happens on PyG objects: :attr:`TextGraph.edge_index` is the ``(2, E)`` view,
:meth:`TextGraph.to_pyg` builds a ``Data``, and :meth:`TextGraph.subgraph` /
:meth:`TextGraph.k_hop_subgraph` are thin wrappers over ``torch_geometric.utils``.

Example:
    >>> from graphlearn.kg.grag import TextGraph
    >>> g = TextGraph.from_triples([("alice", "knows", "bob"), ("bob", "lives in", "paris")],
    ...                            nodes=["carol"])
    >>> g.node_text, g.edges.tolist(), g.edge_text
    (['carol', 'alice', 'bob', 'paris'], [[1, 2], [2, 3]], ['knows', 'lives in'])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from graphlearn.errors import (
    DataFormatError,
    DTypeError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

if TYPE_CHECKING:  # heavy or optional imports stay inside the functions
    import networkx as nx
    import rdflib
    from graphlearn.kg.graph import KnowledgeGraph
    from torch_geometric.data import Data

__all__ = ["TextGraph", "parse_graph_string"]

Triple = tuple[str, str, str]


class TextGraph:
    """A directed multigraph with a text on every node and every edge.

    Args:
        node_text (list[str]): ``node_text[i]`` is the text of node ``i``; unique.
        edges (Tensor or sequence of pairs, optional): ``(E, 2)`` ``(head, tail)`` node ids.
            (default: no edges)
        edge_text (list[str], optional): ``edge_text[e]`` is the relation text of edge ``e``;
            one per edge. (default: no edges)

    Shapes:
        - **edges:** :math:`(|\\mathcal{E}|, 2)`, long
        - **edge_index:** :math:`(2, |\\mathcal{E}|)`, long (PyG layout)

    Raises:
        DTypeError: A text is not a str, or ``edges`` is not integral.
        ShapeError: ``edges`` is not ``(E, 2)`` or ``edge_text`` has not ``E`` entries.
        IndexOutOfRangeError: An edge names a node id outside ``[0, num_nodes)``.
        InvalidArgumentError: Two nodes have the same text.
    """

    def __init__(self, node_text: Sequence[str],
                 edges: Tensor | Sequence[Sequence[int]] | None = None,
                 edge_text: Sequence[str] | None = None) -> None:
        self.node_text = _check_texts(node_text, "node_text")
        index: dict[str, int] = {}
        for i, text in enumerate(self.node_text):
            j = index.setdefault(text, i)
            if j != i:
                raise InvalidArgumentError(
                    f"node_text[{j}] and node_text[{i}] are both {text!r}; node texts must be "
                    f"unique (a text names one node), so merge the nodes or make the texts differ")
        self._node_index = index
        self.edge_text = _check_texts(edge_text if edge_text is not None else [], "edge_text")
        self.edges = self._check_edges(edges)

    def _check_edges(self, edges) -> Tensor:
        if edges is None:
            edges = torch.empty(0, 2, dtype=torch.long)
        t = torch.as_tensor(edges)
        if t.numel() == 0:
            t = t.reshape(0, 2)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise DTypeError(f"edges must hold integer node ids, got dtype {t.dtype}")
        t = t.long().cpu()
        if t.dim() != 2 or t.size(1) != 2:
            raise ShapeError(f"edges must have shape (E, 2) (head, tail), got {tuple(t.shape)}; "
                             f"transpose a PyG edge_index with .t()")
        if t.size(0) != len(self.edge_text):
            raise ShapeError(f"edges has {t.size(0)} rows but edge_text has {len(self.edge_text)} "
                             f"entries; give one relation text per edge")
        if t.numel():
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= self.num_nodes:
                bad = hi if hi >= self.num_nodes else lo
                raise IndexOutOfRangeError(f"edges name node id {bad} outside "
                                           f"[0, {self.num_nodes}); add the node's text to "
                                           f"node_text")
        return t.contiguous()

    # ------------------------------------------------------------------ basics
    @property
    def num_nodes(self) -> int:
        return len(self.node_text)

    @property
    def num_edges(self) -> int:
        return len(self.edge_text)

    @property
    def edge_index(self) -> Tensor:
        """The ``(2, E)`` long ``edge_index`` of PyG."""
        return self.edges.t().contiguous()

    @property
    def node_index(self) -> dict[str, int]:
        """Node text to node id."""
        return dict(self._node_index)

    def node_id(self, text: str) -> int:
        """The id of the node with text ``text``; a clear error (with the closest texts) if none."""
        i = self._node_index.get(text)
        if i is None:
            import difflib

            close = difflib.get_close_matches(str(text), list(self._node_index), n=3)
            hint = f"; closest: {', '.join(map(repr, close))}" if close else ""
            raise IndexOutOfRangeError(f"no node has text {text!r}{hint}")
        return i

    def __contains__(self, text: object) -> bool:
        return text in self._node_index

    def triples(self) -> list[Triple]:
        """The edges as ``(head text, relation text, tail text)``, in edge-id order."""
        nodes = self.node_text
        pairs = zip(self.edges.tolist(), self.edge_text, strict=True)
        return [(nodes[h], r, nodes[t]) for (h, t), r in pairs]

    def degree(self) -> Tensor:
        """Total degree (in + out; a self-loop counts twice) per node, ``(N,)`` long."""
        deg = torch.zeros(self.num_nodes, dtype=torch.long)
        if self.num_edges:
            ends = self.edges.reshape(-1)
            deg.index_add_(0, ends, torch.ones_like(ends))
        return deg

    def __repr__(self) -> str:
        return f"TextGraph(nodes={self.num_nodes}, edges={self.num_edges})"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_triples(cls, triples: Iterable[Sequence[str]],
                     nodes: Iterable[str] | None = None) -> TextGraph:
        """Build from ``(head, relation, tail)`` texts.

        Args:
            triples: The edges, in order; a repeated triple is a parallel edge.
            nodes (iterable of str, optional): Texts that come first in node-id order (a text
                listed twice is one node); nodes in no triple stay isolated. Other nodes follow
                in order of first appearance in ``triples``.
        """
        node_text: list[str] = []
        index: dict[str, int] = {}

        def nid(text: str) -> int:
            i = index.get(text)
            if i is None:
                i = index[text] = len(node_text)
                node_text.append(text)
            return i

        for k, text in enumerate(nodes if nodes is not None else ()):
            if not isinstance(text, str):
                raise DTypeError(f"nodes[{k}] is {type(text).__name__} {text!r}, not a str")
            nid(text)
        edges: list[tuple[int, int]] = []
        rels: list[str] = []
        for k, triple in enumerate(triples):
            if isinstance(triple, str) or len(triple) != 3:
                raise DataFormatError(f"triples[{k}] is {triple!r}, not a (head, relation, tail) "
                                      f"triple of str")
            h, r, t = triple
            for what, x in (("head", h), ("relation", r), ("tail", t)):
                if not isinstance(x, str):
                    raise DTypeError(f"triples[{k}] has {what} {x!r} of type {type(x).__name__}; "
                                     f"texts must be str (convert with str() first)")
            edges.append((nid(h), nid(t)))
            rels.append(r)
        return cls(node_text, torch.tensor(edges, dtype=torch.long).reshape(-1, 2), rels)

    @classmethod
    def from_knowledge_graph(cls, kg: KnowledgeGraph,
                             split: str | Sequence[str] | None = None) -> TextGraph:
        """The triples of a :class:`~graphlearn.kg.KnowledgeGraph` with labels as texts.

        Args:
            kg (KnowledgeGraph): The graph; node ``i`` is entity ``i`` (every entity, isolated
                ones included).
            split (str or list of str, optional): The split(s) whose triples become edges
                (default: every split).
        """
        names = [split] if isinstance(split, str) else (list(split) if split is not None else [])
        t = kg.triples(*names)
        rels = kg.relations
        return cls(list(kg.entities), t[:, [0, 2]], [rels[r] for r in t[:, 1].tolist()])

    @classmethod
    def from_tsv(cls, path: str | os.PathLike) -> TextGraph:
        """Read ``head<TAB>relation<TAB>tail`` lines (blank lines skipped, fields stripped).

        Raises:
            DataNotFoundError: The file does not exist.
            DataFormatError: A line has not three non-empty fields; the message names
                ``file:line``.
        """
        from graphlearn.kg.graph import read_triples_tsv

        return cls.from_triples(read_triples_tsv(path))

    @classmethod
    def from_graph_string(cls, text: str) -> TextGraph:
        """Parse an ExplaGraphs-style string ``(h; r; t)(h; r; t)...``.

        See :func:`parse_graph_string` for the format and its errors.
        """
        return cls.from_triples(parse_graph_string(text))

    @classmethod
    def from_rdf(cls, source: rdflib.Graph | str | os.PathLike,
                 format: str | None = None) -> TextGraph:
        """From an rdflib graph or an RDF file, with human-readable texts.

        - A node's text is its ``rdfs:label`` where it has one (an English or untagged label is
          preferred, then the smallest), else the IRI, the literal's lexical form, or
          ``_:id`` for a blank node (canonically relabelled, so stable across parses).
        - A relation's text is the predicate's ``rdfs:label``, else its local name (the part
          after the last ``#``, ``/`` or ``:``).
        - ``rdfs:label`` triples become texts, not edges; a labelled resource in no other
          triple is an isolated node.
        - Two resources with the same text (a label shared by two IRIs, a literal equal to a
          label) would be one node; each of them gets its N3 form appended instead
          (``"Paris <http://ex.org/paris_tx>"``), so distinct resources stay distinct.

        Args:
            source: An rdflib ``Graph``/``Dataset`` or the path of an RDF file (syntax guessed
                from the extension, see :func:`graphlearn.kg.convert.from_rdf`).
            format (str, optional): rdflib format overriding the guess.
        """
        from graphlearn.kg.convert import rdf_statements
        from rdflib import BNode, Literal
        from rdflib.namespace import RDFS

        raw = rdf_statements(source, format)
        labels: dict[Any, list] = {}
        facts = []
        for s, p, o in raw:
            if p == RDFS.label and isinstance(o, Literal):
                labels.setdefault(s, []).append(o)
            else:
                facts.append((s, p, o))

        def label(term) -> str | None:
            found = labels.get(term)
            if not found:
                return None
            return min(found, key=lambda lit: (lit.language not in (None, "en"), str(lit)))

        def plain(term) -> str:
            if isinstance(term, BNode):
                return "_:" + str(term)
            return str(term)

        predicates = {p for _, p, _ in facts}
        terms = sorted({x for s, _, o in facts for x in (s, o)} | (set(labels) - predicates),
                       key=lambda x: x.n3())
        text = {t: (str(label(t)) if label(t) is not None else plain(t)) for t in terms}
        claimed: dict[str, int] = {}
        for t in terms:
            claimed[text[t]] = claimed.get(text[t], 0) + 1
        for t in terms:
            if claimed[text[t]] > 1:
                text[t] = f"{text[t]} {t.n3()}"

        def relation(p) -> str:
            lab = label(p)
            if lab is not None:
                return str(lab)
            iri = str(p)
            cut = max(iri.rfind("#"), iri.rfind("/"), iri.rfind(":"))
            return iri[cut + 1:] if 0 <= cut < len(iri) - 1 else iri

        triples = sorted((text[s], relation(p), text[o]) for s, p, o in facts)
        return cls.from_triples(triples, nodes=[text[t] for t in terms])

    @classmethod
    def from_networkx(cls, graph: nx.Graph, text: str = "text",
                      relation: str = "relation") -> TextGraph:
        """From a networkx graph.

        Args:
            graph: Any networkx graph. Node ``n``'s text is its attribute ``text``, else
                ``str(n)``. An undirected edge becomes one edge, in the ``(u, v)`` order
                networkx yields it; edges follow networkx's adjacency order.
            text (str): Node attribute holding the node text.
            relation (str): Edge attribute holding the relation text (a multigraph's str edge
                key is used when the attribute is absent).

        Raises:
            DataFormatError: An edge has no relation text, or two nodes have the same text.
        """
        nodes = list(graph.nodes)
        texts = [str(graph.nodes[n].get(text, n)) for n in nodes]
        position = {n: i for i, n in enumerate(nodes)}
        if len(set(texts)) != len(texts):
            seen: dict[str, Any] = {}
            for n, t in zip(nodes, texts, strict=True):
                if t in seen:
                    raise DataFormatError(f"networkx nodes {seen[t]!r} and {n!r} both have text "
                                          f"{t!r}; node texts must be unique")
                seen[t] = n
        if graph.is_multigraph():
            edge_iter = graph.edges(keys=True, data=True)
        else:
            edge_iter = ((u, v, None, d) for u, v, d in graph.edges(data=True))
        edges, rels = [], []
        for u, v, key, data in edge_iter:
            rel = data.get(relation, key if isinstance(key, str) else None)
            if rel is None:
                raise DataFormatError(f"networkx edge ({u!r}, {v!r}) has no {relation!r} "
                                      f"attribute; set the relation text on every edge")
            edges.append((position[u], position[v]))
            rels.append(str(rel))
        return cls(texts, torch.tensor(edges, dtype=torch.long).reshape(-1, 2), rels)

    def to_networkx(self, text: str = "text", relation: str = "relation") -> nx.MultiDiGraph:
        """A networkx ``MultiDiGraph``: node ``i`` (an int) carries ``text``; edge ``e`` has
        key ``e`` and carries ``relation``. :meth:`from_networkx` reads it back."""
        import networkx as nx

        g = nx.MultiDiGraph()
        g.add_nodes_from((i, {text: t}) for i, t in enumerate(self.node_text))
        for e, ((h, t), r) in enumerate(zip(self.edges.tolist(), self.edge_text, strict=True)):
            g.add_edge(h, t, key=e, **{relation: r})
        return g

    def to_pyg(self) -> Data:
        """A PyG ``Data`` with ``edge_index`` (2, E), ``num_nodes`` and the text lists
        ``node_text``/``edge_text`` as attributes (embed them to get ``x``/``edge_attr``)."""
        from torch_geometric.data import Data

        return Data(edge_index=self.edge_index, num_nodes=self.num_nodes,
                    node_text=list(self.node_text), edge_text=list(self.edge_text))

    # ------------------------------------------------------------------ subgraphs
    def _node_subset(self, node_ids, what: str) -> Tensor:
        ids = torch.as_tensor(node_ids if not isinstance(node_ids, int) else [node_ids])
        if ids.numel() == 0 and ids.dtype != torch.bool:  # [] is a float tensor
            return torch.empty(0, dtype=torch.long)
        if ids.dtype == torch.bool:
            if ids.shape != (self.num_nodes,):
                raise ShapeError(f"a boolean {what} mask must have shape ({self.num_nodes},), got "
                                 f"{tuple(ids.shape)}")
            return ids.nonzero().view(-1)
        if ids.is_floating_point():
            raise DTypeError(f"{what} must be integer node ids or a boolean mask, got {ids.dtype}")
        ids = ids.long().view(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_nodes):
            bad = [i for i in ids.tolist() if not 0 <= i < self.num_nodes][0]
            raise IndexOutOfRangeError(f"{what} holds node id {bad} outside [0, {self.num_nodes})")
        return torch.unique(ids)

    def subgraph(self, node_ids: Tensor | Sequence[int]) -> tuple[TextGraph, Tensor]:
        """The subgraph induced by ``node_ids`` (ids or a boolean mask), via PyG's ``subgraph``.

        Returns:
            ``(graph, kept)``: node ``i`` of ``graph`` is node ``kept[i]`` here (``kept`` is
            sorted, duplicates dropped); edges keep their order.
        """
        from torch_geometric.utils import subgraph

        kept = self._node_subset(node_ids, "node_ids")
        edge_index, _, mask = subgraph(kept, self.edge_index, relabel_nodes=True,
                                       num_nodes=self.num_nodes, return_edge_mask=True)
        rels = [r for r, m in zip(self.edge_text, mask.tolist(), strict=True) if m]
        return TextGraph([self.node_text[i] for i in kept.tolist()], edge_index.t(), rels), kept

    def k_hop_subgraph(self, roots: Tensor | Sequence[int] | int, num_hops: int, *,
                       direction: str = "both") -> tuple[TextGraph, Tensor]:
        """The subgraph induced by the nodes within ``num_hops`` of ``roots`` (PyG's
        ``k_hop_subgraph``).

        Args:
            roots: Node id(s) to start from.
            num_hops (int): Hops to expand.
            direction (str): ``"both"`` ignores edge direction (the usual retrieval
                neighbourhood), ``"out"`` follows edges head to tail, ``"in"`` tail to head.

        Returns:
            ``(graph, kept)`` as :meth:`subgraph`.
        """
        from torch_geometric.utils import k_hop_subgraph

        if direction not in ("both", "out", "in"):
            raise InvalidArgumentError(f"direction must be 'both', 'out' or 'in', "
                                       f"got {direction!r}")
        if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 0:
            raise InvalidArgumentError(f"num_hops must be an int >= 0, got {num_hops!r}")
        roots_t = self._node_subset(roots, "roots")
        ei = self.edge_index
        if direction == "both":
            ei = torch.cat([ei, ei.flip(0)], 1)
        # PyG's default flow (source_to_target) collects the nodes that reach the roots
        flow = "target_to_source" if direction == "out" else "source_to_target"
        if roots_t.numel() == 0:
            return self.subgraph(roots_t)
        subset, *_ = k_hop_subgraph(roots_t, num_hops, ei, num_nodes=self.num_nodes, flow=flow)
        return self.subgraph(subset)


# ---------------------------------------------------------------------------- helpers
def _check_texts(texts: Iterable[str], what: str) -> list[str]:
    if isinstance(texts, str):
        raise DTypeError(f"{what} must be a list of str, got one str {texts[:50]!r}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DTypeError(f"{what}[{i}] is {type(t).__name__} {t!r}, not a str")
    return out


def parse_graph_string(text: str) -> list[Triple]:
    """Parse an ExplaGraphs-style graph string ``(h; r; t)(h; r; t)...`` into triples.

    Whitespace between and around triples is skipped and each field is stripped. A field
    cannot hold ``;``, ``(`` or ``)`` (the format has no escaping), and fields may not be
    empty.

    Raises:
        DataFormatError: The string is malformed; the message names the offending fragment
            and its character position.
    """
    if not isinstance(text, str):
        raise DTypeError(f"a graph string must be a str, got {type(text).__name__}")
    out: list[Triple] = []
    i, n = 0, len(text)

    def fail(pos: int, why: str) -> DataFormatError:
        start = max(0, pos - 20)
        return DataFormatError(f"malformed graph string at position {pos}: {why}; near "
                               f"{text[start:pos + 40]!r}; expected '(head; relation; tail)' "
                               f"groups such as '(dog; capable of; bark)(bark; causes; noise)'")

    while True:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            break
        if text[i] != "(":
            raise fail(i, f"expected '(' but found {text[i]!r}")
        close = text.find(")", i + 1)
        if close < 0:
            raise fail(i, "this '(' is never closed")
        inner = text[i + 1:close]
        if "(" in inner:
            raise fail(i + 1 + inner.index("("),
                       "'(' inside a triple (fields cannot hold brackets)")
        parts = inner.split(";")
        if len(parts) != 3:
            raise fail(i, f"the triple {text[i:close + 1]!r} has {len(parts)} ';'-separated "
                          f"field(s), not 3")
        fields = tuple(p.strip() for p in parts)
        if not all(fields):
            raise fail(i, f"the triple {text[i:close + 1]!r} has an empty field")
        out.append(fields)  # type: ignore[arg-type]
        i = close + 1
    return out
