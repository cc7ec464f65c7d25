"""Conversions between :class:`~graphlearn.kg.graph.KnowledgeGraph` and other graph formats.

- **RDF** (rdflib ``Graph``; files in any syntax rdflib parses: Turtle, N-Triples, RDF/XML,
  JSON-LD, N3, N-Quads, TriG, optionally gzipped): :func:`to_rdf`, :func:`from_rdf`.
  A label that is an absolute IRI (``http://example.org/alice``) becomes that IRI; any other
  label is percent-encoded under a base namespace (``"has part"`` ->
  ``<urn:graphlearn:has%20part>``) and decoded back on reading, so every label (spaces,
  newlines, quotes, ``#``, unicode) survives a round trip.
- **networkx** ``MultiDiGraph``: :func:`to_networkx`, :func:`from_networkx`. Nodes are entity
  labels; each edge carries ``relation=<label>`` (also its key) and ``split=<name>``.
- **PyG** ``Data``: :func:`to_pyg`, :func:`from_pyg` (``edge_index``, ``edge_type``,
  ``num_nodes`` and the ``entities``/``relations`` label lists).
- **RDF datasets**: :func:`load_rdf_dataset` parses an RDF file and makes a seeded
  transductive train/valid/test split (what ``graphlearn.datasets.load("graph.ttl")`` calls).

TSV files are read and written by :meth:`KnowledgeGraph.from_tsv` and
:meth:`KnowledgeGraph.to_tsv`. Nothing here unpickles anything.

Example:
    >>> from graphlearn.kg import KnowledgeGraph
    >>> from graphlearn.kg.convert import from_rdf, to_rdf
    >>> kg = KnowledgeGraph.from_triples([("alice", "knows", "bob smith")])
    >>> sorted(str(s) for s in to_rdf(kg).subjects())
    ['urn:graphlearn:alice']
    >>> from_rdf(to_rdf(kg)).labeled_triples("train")
    [('alice', 'knows', 'bob smith')]
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import torch

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    EmptyGraphError,
    InvalidArgumentError,
    ShapeError,
)

if TYPE_CHECKING:  # heavy or optional imports stay inside the functions
    import networkx as nx
    import rdflib
    from graphlearn.kg.dataset import LinkPredictionDataset
    from graphlearn.kg.graph import KnowledgeGraph
    from torch_geometric.data import Data

    from graphlearn.data.dataset import DatasetInfo

__all__ = [
    "DEFAULT_BASE",
    "from_networkx",
    "from_pyg",
    "from_rdf",
    "label_to_term",
    "load_rdf_dataset",
    "term_to_label",
    "to_networkx",
    "to_pyg",
    "to_rdf",
]

#: The namespace labels that are not absolute IRIs are minted under.
DEFAULT_BASE = "urn:graphlearn:"

#: An absolute IRI: a scheme, a colon, and no character that an IRI reference forbids.
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x20\x7f]+\Z")

#: Syntaxes holding quads (named graphs); parsed into a Dataset whose union is read.
_QUAD_FORMATS = ("nquads", "trig", "trix")


# ---------------------------------------------------------------------------- RDF
def label_to_term(label: str, base: str = DEFAULT_BASE) -> rdflib.URIRef:
    """The IRI of ``label``: itself if it is an absolute IRI, else minted under ``base``.

    A label starting with ``base`` is minted too (``base`` + its encoding), so that decoding
    (:func:`term_to_label`) cannot mistake it for a minted one.
    """
    from rdflib import URIRef

    if _ABSOLUTE_IRI.match(label) and not label.startswith(base):
        return URIRef(label)
    return URIRef(base + quote(label, safe=""))


def term_to_label(term: Any, base: str = DEFAULT_BASE) -> str:
    """The label of an rdflib term: the IRI (decoded when minted under ``base``), ``_:id``
    for a blank node, a literal's N3 text."""
    from rdflib import BNode, Literal

    if isinstance(term, BNode):
        return "_:" + str(term)
    if isinstance(term, Literal):
        return term.n3()
    text = str(term)
    if text.startswith(base):
        return unquote(text[len(base):])
    return text


def to_rdf(kg: KnowledgeGraph, split: str | Sequence[str] | None = None, *,
           base: str = DEFAULT_BASE) -> rdflib.Graph:
    """An rdflib ``Graph`` holding the triples of ``split`` (all splits when ``None``).

    Args:
        kg (KnowledgeGraph): The graph.
        split (str or list of str, optional): Split(s) to export (default: every split;
            RDF has no notion of splits, so they are merged).
        base (str): Namespace for labels that are not absolute IRIs
            (default: ``"urn:graphlearn:"``).

    Returns:
        ``rdflib.Graph`` with one ``(subject, predicate, object)`` per distinct triple.
        Entities that occur in no exported triple are not represented. Turtle,
        N-Triples and JSON-LD hold every label; RDF/XML writes predicates as XML element
        names, so a relation label must end in an XML name (``"has part"`` does, ``"123"``
        and ``"50%"`` do not).
    """
    from rdflib import Graph

    if not isinstance(base, str) or not _ABSOLUTE_IRI.match(base + "x"):
        raise InvalidArgumentError(f"base must be an absolute IRI prefix such as "
                                   f"'urn:graphlearn:' or 'http://example.org/', got {base!r}")
    names = [split] if isinstance(split, str) else (list(split) if split is not None else [])
    triples = kg.triples(*names)
    ents = [label_to_term(e, base) for e in kg.entities]
    rels = [label_to_term(r, base) for r in kg.relations]
    g = Graph()
    _bind_xml_prefixes(g, rels, base)
    for h, r, t in triples.tolist():
        g.add((ents[h], rels[r], ents[t]))
    return g


_NCNAME_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


def _bind_xml_prefixes(graph: rdflib.Graph, predicates: list, base: str) -> None:
    """Bind prefixes so RDF/XML can write minted predicates holding ``%`` escapes.

    RDF/XML writes a predicate as an XML element ``prefix:local``; rdflib would put the
    ``%XX`` escapes into ``local`` (invalid XML), so the namespace is cut just before the
    predicate's trailing XML name instead (``has%20part`` -> namespace ``...has%20``, local
    ``part``). A minted predicate with no such tail (a label ending in a digit after an
    escape, or all digits) cannot be written as RDF/XML; Turtle, N-Triples and JSON-LD hold
    every label.
    """
    from rdflib import Namespace

    done = set()
    for iri in predicates:
        text = str(iri)
        local = text[len(base):]
        if not text.startswith(base) or ("%" not in local and _NCNAME_TAIL.match(local)):
            continue
        m = _NCNAME_TAIL.search(text)
        if m and m.start() > len(base) and text[:m.start()] not in done:
            done.add(text[:m.start()])
            graph.bind(f"gl{len(done) - 1}", Namespace(text[:m.start()]))


def _guess_format(path: Path) -> str:
    from rdflib.util import guess_format

    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    fmt = guess_format(name)
    if fmt is None:
        raise DataFormatError(
            f"cannot tell the RDF syntax of {str(path)!r} from its extension; use .ttl, .nt, "
            f".rdf/.xml/.owl, .jsonld, .n3, .nq or .trig (optionally .gz), or pass format="
            f"'turtle', 'nt', 'xml', 'json-ld', ...")
    return fmt


def _parse_file(path: Path, format: str | None) -> rdflib.Graph:
    from rdflib import Dataset, Graph

    if not path.is_file():
        raise DataNotFoundError(f"RDF file {str(path)!r} does not exist")
    fmt = format or _guess_format(path)
    graph = Dataset(default_union=True) if fmt in _QUAD_FORMATS else Graph()
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            graph.parse(file=f, format=fmt, publicID=path.resolve().as_uri())
    except Exception as exc:  # rdflib raises a different class per syntax and plugin
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise DataFormatError(f"{str(path)!r} is not valid {fmt} RDF: {message[:500]}; fix the "
                              f"file or pass the right format=") from exc
    return graph


def _canonical(triples: list) -> list:
    """The triples with blank nodes renamed by rdflib's canonical labelling (``cb<hash>``),
    which depends only on the graph's content, so labels are stable across parses."""
    from rdflib import Graph
    from rdflib.compare import to_canonical_graph

    g = Graph()
    for t in triples:
        g.add(t)
    return list(to_canonical_graph(g).triples((None, None, None)))


def from_rdf(source: rdflib.Graph | str | os.PathLike, format: str | None = None, *,
             literals: str = "skip", base: str = DEFAULT_BASE,
             name: str | None = None) -> KnowledgeGraph:
    """A :class:`KnowledgeGraph` (one ``train`` split) from an rdflib graph or an RDF file.

    Args:
        source: An rdflib ``Graph`` (or ``Dataset``), or the path of a file in any syntax
            rdflib parses; the syntax is guessed from the extension (``.gz`` is unpacked).
        format (str, optional): rdflib format name (``"turtle"``, ``"nt"``, ``"xml"``,
            ``"json-ld"``, ...) overriding the guess.
        literals (str): ``"skip"`` (default) drops triples whose object is a literal;
            ``"entities"`` keeps them, the literal's N3 text (``'"42"^^<...#integer>'``)
            becoming an entity label.
        base (str): The namespace of minted labels (decoded back to the label).
        name (str, optional): Name of the graph (default: the file name).

    Returns:
        KnowledgeGraph whose ``train`` split holds every triple; ids follow the sorted
        labelled triples, so the same content always gives the same ids. Blank nodes are
        labelled ``_:cb<hash>`` from rdflib's canonical labelling (stable across parses).

    Raises:
        DataNotFoundError: The file does not exist.
        DataFormatError: rdflib cannot parse the file (its message is included).
        EmptyGraphError: No triple is left (literal objects are skipped by default).
    """
    from graphlearn.kg.graph import KnowledgeGraph
    from rdflib import Literal

    if literals not in ("skip", "entities"):
        raise InvalidArgumentError(f"literals must be 'skip' or 'entities', got {literals!r}")
    where = "the rdflib graph"
    if isinstance(source, (str, os.PathLike)):
        where = repr(str(Path(source)))
        name = name or Path(source).name
    raw = rdf_statements(source, format)
    labeled = set()
    skipped = 0
    for s, p, o in raw:
        if isinstance(o, Literal) and literals == "skip":
            skipped += 1
            continue
        labeled.add((term_to_label(s, base), term_to_label(p, base), term_to_label(o, base)))
    if not labeled:
        hint = (f" ({skipped} triples with a literal object were skipped; pass "
                f"literals='entities' to keep them)" if skipped else "")
        raise EmptyGraphError(f"{where} holds no entity-to-entity triple{hint}")
    return KnowledgeGraph.from_triples({"train": sorted(labeled)}, name=name or "rdf")


def rdf_statements(source, format: str | None = None) -> list[tuple]:
    """The (subject, predicate, object) rdflib terms of ``source`` (a Graph or an RDF file).

    Blank nodes are relabelled canonically (``_canonical``), so the same file gives the same
    labels on every parse. Raises :class:`InvalidArgumentError` for any other source, and the
    errors of ``_parse_file`` for a missing or malformed file.
    """
    from rdflib import BNode

    if isinstance(source, (str, os.PathLike)):
        graph = _parse_file(Path(source), format)
    elif hasattr(source, "triples"):
        graph = source
    else:
        raise InvalidArgumentError(f"source must be an rdflib Graph or a file path, got "
                                   f"{type(source).__name__}")
    raw = list(graph.triples((None, None, None)))
    if any(isinstance(x, BNode) for t in raw for x in t):
        raw = _canonical(raw)
    return raw


# ---------------------------------------------------------------------------- networkx
def to_networkx(kg: KnowledgeGraph, split: str | Sequence[str] | None = None) -> nx.MultiDiGraph:
    """A networkx ``MultiDiGraph``: nodes are entity labels, one edge per triple.

    Each edge ``(head, tail, key=relation)`` carries ``relation=<label>`` and
    ``split=<name>``. Every entity is a node (isolated ones included), in id order; the graph
    attribute ``relations`` keeps the relation id order, so :func:`from_networkx` restores
    identical ids. A triple listed twice (or in two splits) is one edge.
    """
    import networkx as nx

    names = [split] if isinstance(split, str) else (list(split) if split is not None else
                                                    list(kg.splits))
    g = nx.MultiDiGraph(name=kg.name, relations=list(kg.relations))
    g.add_nodes_from(kg.entities)
    for s in names:
        for h, r, t in kg.labeled_triples(s):
            g.add_edge(h, t, key=r, relation=r, split=s)
    return g


def from_networkx(graph: nx.Graph, *, relation: str = "relation", split: str = "split",
                  default_split: str = "train", default_relation: str | None = None,
                  name: str | None = None) -> KnowledgeGraph:
    """A :class:`KnowledgeGraph` from a networkx graph whose edges name their relation.

    Args:
        graph: Any networkx graph; a ``MultiDiGraph`` as :func:`to_networkx` writes it
            round-trips exactly.
        relation (str): Edge attribute holding the relation label (a multigraph's string
            edge key is used when the attribute is absent).
        split (str): Edge attribute holding the split name.
        default_split (str): Split of edges without that attribute.
        default_relation (str, optional): Relation of edges naming none; ``None`` raises.
        name (str, optional): Graph name (default: ``graph.name`` or ``"networkx"``).

    Node labels are ``str(node)``; every node becomes an entity, in node order.
    """
    from graphlearn.kg.graph import KnowledgeGraph

    entities = [str(n) for n in graph.nodes]
    if len(set(entities)) != len(entities):
        raise DataFormatError("two networkx nodes have the same str() label; relabel them "
                              "(networkx.relabel_nodes) so labels are unique")
    if graph.is_multigraph():
        edges = graph.edges(keys=True, data=True)
    else:
        edges = ((u, v, None, d) for u, v, d in graph.edges(data=True))
    triples: dict[str, list[tuple[str, str, str]]] = {}
    for u, v, key, data in edges:
        rel = data.get(relation)
        if rel is None:
            rel = key if isinstance(key, str) else default_relation
        if rel is None:
            raise DataFormatError(
                f"networkx edge ({u!r}, {v!r}) has no {relation!r} attribute; set it on every "
                f"edge or pass default_relation=")
        triples.setdefault(str(data.get(split, default_split)), []).append((str(u), str(rel), str(v)))
    relations = [str(r) for r in graph.graph.get("relations", [])]
    return KnowledgeGraph.from_triples(triples or {default_split: []}, entities=entities,
                                       relations=relations,
                                       name=name or graph.graph.get("name") or "networkx")


# ---------------------------------------------------------------------------- PyG
def to_pyg(kg: KnowledgeGraph, split: str | Sequence[str] | None = "train") -> Data:
    """A PyG ``Data`` of the triples of ``split`` (``None``: every split).

    Returns:
        ``Data(edge_index=(2, m), edge_type=(m,), num_nodes=num_entities)`` plus the label
        lists ``entities`` and ``relations`` as attributes.
    """
    from torch_geometric.data import Data

    names = [split] if isinstance(split, str) else (list(split) if split is not None else [])
    t = kg.triples(*names)
    return Data(edge_index=t[:, [0, 2]].t().contiguous(), edge_type=t[:, 1].contiguous(),
                num_nodes=kg.num_entities, entities=list(kg.entities),
                relations=list(kg.relations))


def from_pyg(data: Data, entities: Sequence[str] | None = None,
             relations: Sequence[str] | None = None, *, split: str = "train",
             name: str = "pyg") -> KnowledgeGraph:
    """A :class:`KnowledgeGraph` from a PyG ``Data`` with ``edge_index`` and ``edge_type``.

    Args:
        data: The graph; ``data.entities``/``data.relations`` (as :func:`to_pyg` writes)
            are used when the arguments are not given.
        entities, relations: Labels by id (default: ``"0"``, ``"1"``, ...; ``num_nodes``
            entities and ``max(edge_type) + 1`` relations).
        split (str): The split the edges go to.
    """
    from graphlearn.kg.graph import KnowledgeGraph

    edge_index = getattr(data, "edge_index", None)
    edge_type = getattr(data, "edge_type", None)
    if edge_index is None or edge_type is None:
        raise InvalidArgumentError("data needs edge_index (2, m) and edge_type (m,) to become a "
                                   "knowledge graph; set data.edge_type (zeros for one relation)")
    edge_index, edge_type = torch.as_tensor(edge_index), torch.as_tensor(edge_type)
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ShapeError(f"edge_index must have shape (2, m), got {tuple(edge_index.shape)}")
    if edge_type.dim() != 1 or edge_type.numel() != edge_index.size(1):
        raise ShapeError(f"edge_type must have shape ({edge_index.size(1)},) to match edge_index, "
                         f"got {tuple(edge_type.shape)}")
    if entities is None:
        entities = getattr(data, "entities", None)
    if entities is None:
        num_nodes = data.num_nodes if data.num_nodes is not None else 0
        entities = [str(i) for i in range(num_nodes)]
    if relations is None:
        relations = getattr(data, "relations", None)
    if relations is None:
        num = int(edge_type.max()) + 1 if edge_type.numel() else 0
        relations = [str(i) for i in range(num)]
    triples = torch.stack([edge_index[0], edge_type, edge_index[1]], 1).long()
    return KnowledgeGraph(list(map(str, entities)), list(map(str, relations)), {split: triples},
                          name=name)


# ---------------------------------------------------------------------------- datasets
def split_triples(triples: torch.Tensor, *, seed: int = 0, valid_fraction: float = 0.1,
                  test_fraction: float = 0.1) -> dict[str, torch.Tensor]:
    """A seeded transductive split of ``(n, 3)`` triples into train/valid/test.

    Triples are shuffled with ``seed``; the first ``round(n * test_fraction)`` go to test,
    the next ``round(n * valid_fraction)`` to valid. A held-out triple whose head, relation
    or tail occurs in no training triple moves back to train, so every valid/test entity
    and relation is known in training (the split can come out smaller than asked).
    """
    for what, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 <= float(value) < 1:
            raise InvalidArgumentError(f"{what} must be in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1:
        raise InvalidArgumentError(f"valid_fraction + test_fraction must be < 1, got "
                                   f"{valid_fraction} + {test_fraction}")
    n = triples.size(0)
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=gen)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    held = {"test": perm[:n_test].tolist(), "valid": perm[n_test:n_test + n_valid].tolist()}
    train = perm[n_test + n_valid:].tolist()
    rows = triples.tolist()
    ents = {e for i in train for e in (rows[i][0], rows[i][2])}
    rels = {rows[i][1] for i in train}
    out: dict[str, list[int]] = {"valid": [], "test": []}
    for split in ("test", "valid"):
        for i in held[split]:
            h, r, t = rows[i]
            if h in ents and t in ents and r in rels:
                out[split].append(i)
            else:  # back to train: its entities and relation become known
                train.append(i)
                ents.update((h, t))
                rels.add(r)
    return {"train": triples[sorted(train)], "valid": triples[sorted(out["valid"])],
            "test": triples[sorted(out["test"])]}


def load_rdf_dataset(path: str | os.PathLike, info: DatasetInfo, *, split_seed: int = 0,
                     valid_fraction: float = 0.1, test_fraction: float = 0.1,
                     literals: str = "skip", format: str | None = None,
                     **unknown: Any) -> LinkPredictionDataset:
    """Parse an RDF file into a :class:`~graphlearn.kg.dataset.LinkPredictionDataset`.

    The triples are split with :func:`split_triples` (seeded, transductive: every valid and
    test entity and relation also occurs in train).

    Args:
        path: The RDF file (any syntax :func:`from_rdf` reads).
        info (DatasetInfo): Metadata of the dataset.
        split_seed (int): Seed of the split.
        valid_fraction, test_fraction (float): Shares of the triples held out.
        literals (str): See :func:`from_rdf`.
        format (str, optional): rdflib syntax name overriding the extension's guess.
    """
    from graphlearn.kg.dataset import LinkPredictionDataset
    from graphlearn.kg.graph import KnowledgeGraph

    if unknown:
        raise InvalidArgumentError(
            f"an RDF file takes the options split_seed, valid_fraction, test_fraction, literals "
            f"and format, not {', '.join(map(repr, sorted(unknown)))}")
    kg = from_rdf(path, format, literals=literals, name=info.name)
    splits = split_triples(kg.splits["train"], seed=split_seed, valid_fraction=valid_fraction,
                           test_fraction=test_fraction)
    return LinkPredictionDataset(info, KnowledgeGraph(kg.entities, kg.relations, splits,
                                                      name=kg.name))
