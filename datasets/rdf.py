r"""The RDF entity-classification benchmarks AIFB, MUTAG, BGS and AM.

From `"A Collection of Benchmark Datasets for Systematic Evaluations of Machine Learning on
the Semantic Web" <https://doi.org/10.1007/978-3-319-46547-0_20>`_ (Ristoski, de Vries and
Paulheim, ISWC 2016), in the form used by `"Modeling Relational Data with Graph
Convolutional Networks" <https://arxiv.org/abs/1703.06103>`_ (R-GCN; Schlichtkrull et al.,
ESWC 2018) and :class:`torch_geometric.datasets.Entities`: one knowledge graph per dataset,
stored as N-Triples with the target relation stripped, and a few labelled entities to
classify.

- **aifb**: staff, groups and publications of the AIFB institute; label = a person's
  research group (4 classes).
- **mutag-rdf** (alias ``rdf-mutag``; ``mutag`` is the TU graph-classification set): the
  DL-Learner carcinogenesis knowledge base; label = whether a compound is mutagenic.
- **bgs**: British Geological Survey rock units; label = the lithogenesis (2 classes).
- **am**: Amsterdam Museum artefacts; label = the artefact category (11 classes).

**Preprocessing** is that of :class:`~torch_geometric.datasets.Entities`, which follows the
R-GCN authors' loader: the gzipped N-Triples are parsed with rdflib; every distinct subject
or object term (IRI, blank node or literal) is a node; every distinct predicate ``p`` is a
relation ``r`` with edge types ``2r`` (subject -> object) and ``2r + 1`` (the inverse,
object -> subject), so ``num_relations`` is twice the number of predicates and every triple
gives two edges;
relations are numbered by descending number of triples; edges are sorted by
(source, destination, type); labels come from ``trainingSet.tsv`` / ``testSet.tsv`` and
the classes from ``completeDataset.tsv``, numeric labels compared by value (``1.0`` is
``1``, as pandas reads them). Triples whose predicate is a known target predicate
(:data:`LABEL_PREDICATES`, e.g. ``swrc:affiliation`` and its inverse ``swrc:employs`` for
AIFB) are dropped; the published ``*_stripped`` files contain none, so this only guards
against an unstripped dump.

Where PyG's numbering is left to chance, it is fixed here:

- PyG numbers nodes, ties between equally frequent relations and classes in the iteration
  order of Python sets, which changes with the per-process string hash seed. Here nodes are
  numbered in order of first appearance in the file (subject, then object), equally frequent
  relations by IRI, and classes by sorted label (numerically for numeric labels).
- PyG keys its node table by ``str(term)``, so two terms that print alike share one id and
  the other id is left without edges. AIFB has one such pair: the IRI and the
  ``xsd:string`` literal ``http://swrc.ontoware.org/ontology#ResearchTopic``. Here they
  stay two nodes, each with its own edges; node and edge counts are unchanged.

Up to these renumberings the graph, splits and labels equal PyG's tensor for tensor
(``tests/datasets/test_rdf.py`` runs PyG's ``Entities`` on the same files and compares).

The graphs have no node features (``data.x`` is absent, :attr:`~EntityClassificationDataset.
num_features` is 0): models learn one embedding per node, as R-GCN's first layer does with
``x=None``. ``data.y`` holds the class of each labelled entity and :data:`UNLABELLED`
(``-1``) elsewhere. The R-GCN test split is fixed; validation is chosen at load time
(``validation=``): ``"none"`` (default) keeps all training entities for training and sets
``val_mask = train_mask``, as DGL's R-GCN example does without ``--validation`` (the
datasets ship no validation split; the usual protocol fixes the hyperparameters and reads
the test accuracy after the last epoch), so do not early-stop or select checkpoints on it;
``"rgcn"`` holds out the first fifth of ``trainingSet.tsv`` (DGL's ``--validation``);
``"stratified"`` holds out a seeded stratified 20% of it.
:func:`to_hetero` gives a heterogeneous view with node types from ``rdf:type``.

Raw files: ``rdf/<name>/`` under the data root, laid out as in the R-GCN repository
(``<name>_stripped.nt.gz``, ``completeDataset.tsv``, ``trainingSet.tsv``, ``testSet.tsv``;
BGS spells the TSVs ``completeDataset_lith.tsv``, ``trainingSet(lith).tsv`` and
``testSet(lith).tsv``). Missing files come from PyG's source, the DGL archive
``https://data.dgl.ai/dataset/<name>.tgz``. Processed tensors are cached; nothing is ever
unpickled.

**STATS:**

.. list-table::
    :widths: 10 10 10 10 10 10 10 10
    :header-rows: 1

    * - Name
      - #nodes
      - #relations
      - #triples
      - #edges
      - #classes
      - #train
      - #test
    * - AIFB
      - 8,285
      - 90
      - 29,043
      - 58,086
      - 4
      - 140
      - 36
    * - MUTAG
      - 23,644
      - 46
      - 74,227
      - 148,454
      - 2
      - 272
      - 68
    * - BGS
      - 333,845
      - 206
      - 916,199
      - 1,832,398
      - 2
      - 117
      - 29
    * - AM
      - 1,666,764
      - 266
      - 5,988,321
      - 11,976,642
      - 11
      - 802
      - 198

#relations and #edges count inverse relations and edges. AIFB and MUTAG were counted from
the raw files; the BGS and AM graphs are not in the shared data folder, so their graph
numbers are the R-GCN paper's (Table 1) and PyG's, and only their label counts were
checked.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.utils import index_to_mask

from graphlearn.data.dataset import (
    DatasetInfo,
    NodeClassificationDataset,
    TaskKind,
    register_dataset,
)
from graphlearn.data.files import cached_tensors, download_url, require_raw_files
from graphlearn.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

__all__ = [
    "AIFB",
    "MUTAG_RDF",
    "BGS",
    "AM",
    "ENTITIES_URL",
    "LABEL_PREDICATES",
    "RDF_TYPE",
    "UNLABELLED",
    "VALIDATION_SPLITS",
    "EntityClassificationDataset",
    "NTriples",
    "node_name",
    "read_ntriples",
    "read_entities",
    "load_entities",
    "to_hetero",
]

ENTITIES_URL = "https://data.dgl.ai/dataset/{}.tgz"
"""Where the raw files are downloaded from: ``<name>.tgz`` holds the four files of one
dataset (PyG's ``Entities.url``)."""

RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
"""The predicate :func:`to_hetero` reads node types from."""

UNLABELLED = -1
"""``data.y`` of an entity without a label."""

VALIDATION_SPLITS = ("none", "rgcn", "stratified")
"""The values of the ``validation`` load option."""

VALIDATION_FRACTION = 0.2
"""Share of the training entities held out by ``validation="rgcn"`` or ``"stratified"``."""

# Bump when the processing below changes, so stale caches are rebuilt.
_PROCESSING_VERSION = "rdf-1"

_CITATION = (
    "Ristoski, P., de Vries, G. K. D. and Paulheim, H. A Collection of Benchmark Datasets for "
    "Systematic Evaluations of Machine Learning on the Semantic Web. ISWC 2016. "
    "doi:10.1007/978-3-319-46547-0_20. As used by Schlichtkrull, M., Kipf, T. N., Bloem, P., "
    "van den Berg, R., Titov, I. and Welling, M. Modeling Relational Data with Graph "
    "Convolutional Networks. ESWC 2018. arXiv:1703.06103."
)
_LICENSE = (
    "no explicit licence on the data; the R-GCN repository (tkipf/relational-gcn) that "
    "distributes the files is MIT"
)
_SPLITS = (
    "R-GCN split: train = trainingSet{suffix}.tsv ({train} entities), test = testSet{suffix}.tsv "
    "({test} entities); validation by option validation='none' (default: val = train, no "
    "held-out set), 'rgcn' (first 20% of the training rows) or 'stratified' (seeded stratified 20%)"
)


@dataclass(frozen=True)
class _Source:
    """Where one dataset's files are and how its label files are laid out."""

    archive: str
    entity_column: str
    label_column: str
    label_predicates: tuple[str, ...]
    tsv_suffix: str = ""
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def graph_file(self) -> str:
        return f"{self.archive}_stripped.nt.gz"

    @property
    def label_files(self) -> tuple[str, str, str]:
        """(complete, train, test) TSV file names."""
        s = self.tsv_suffix
        complete = f"completeDataset_{s[1:-1]}.tsv" if s else "completeDataset.tsv"
        return complete, f"trainingSet{s}.tsv", f"testSet{s}.tsv"

    @property
    def raw_files(self) -> tuple[str, ...]:
        return (self.graph_file, *self.label_files)

    @property
    def url(self) -> str:
        return ENTITIES_URL.format(self.archive)


_SOURCES: dict[str, _Source] = {
    "aifb": _Source(
        "aifb", "person", "label_affiliation",
        ("http://swrc.ontoware.org/ontology#affiliation",
         "http://swrc.ontoware.org/ontology#employs"),
        stats={"num_nodes": 8285, "num_edges": 58086, "num_features": 0, "num_classes": 4,
               "num_relations": 90, "num_triples": 29043, "num_train": 140, "num_test": 36},
    ),
    "mutag-rdf": _Source(
        "mutag", "bond", "label_mutagenic",
        ("http://dl-learner.org/carcinogenesis#isMutagenic",),
        stats={"num_nodes": 23644, "num_edges": 148454, "num_features": 0, "num_classes": 2,
               "num_relations": 46, "num_triples": 74227, "num_train": 272, "num_test": 68},
    ),
    "bgs": _Source(
        "bgs", "rock", "label_lithogenesis",
        ("http://data.bgs.ac.uk/ref/Lexicon/hasLithogenesis",),
        tsv_suffix="(lith)",
        stats={"num_nodes": 333845, "num_edges": 1832398, "num_features": 0, "num_classes": 2,
               "num_relations": 206, "num_triples": 916199, "num_train": 117, "num_test": 29},
    ),
    "am": _Source(
        "am", "proxy", "label_cateogory",  # sic: the column name in the AM files
        ("http://purl.org/collections/nl/am/objectCategory",
         "http://purl.org/collections/nl/am/material"),
        stats={"num_nodes": 1666764, "num_edges": 11976642, "num_features": 0, "num_classes": 11,
               "num_relations": 266, "num_triples": 5988321, "num_train": 802, "num_test": 198},
    ),
}

LABEL_PREDICATES: dict[str, tuple[str, ...]] = {
    name: source.label_predicates for name, source in _SOURCES.items()
}
"""Per dataset, the predicates that give the label away (the target relation and its
inverse, and AM's ``material``, which the AM authors removed as near-duplicate of the
category); their triples are dropped when present."""

# The DGL archives name the BGS label files like the others; store them under our names.
_ARCHIVE_ALIASES = {
    "bgs": {"completeDataset.tsv": "completeDataset_lith.tsv",
            "trainingSet.tsv": "trainingSet(lith).tsv", "testSet.tsv": "testSet(lith).tsv"},
}


def _info(name: str, description: str) -> DatasetInfo:
    source = _SOURCES[name]
    return DatasetInfo(
        name=name,
        task=TaskKind.NODE_CLASSIFICATION,
        description=description,
        metric="accuracy",
        splits=_SPLITS.format(suffix=source.tsv_suffix, train=source.stats["num_train"],
                              test=source.stats["num_test"]),
        url=source.url,
        citation=_CITATION,
        license=_LICENSE,
        raw_dir=f"rdf/{source.archive}",
        raw_files=source.raw_files,
        stats=dict(source.stats),
    )


AIFB = _info(
    "aifb",
    "AIFB institute knowledge graph (RDF, featureless); classify people by research group",
)
MUTAG_RDF = _info(
    "mutag-rdf",
    "DL-Learner carcinogenesis knowledge graph (RDF, featureless); classify compounds as "
    "mutagenic or not",
)
BGS = _info(
    "bgs",
    "British Geological Survey knowledge graph (RDF, featureless); classify rock units by "
    "lithogenesis",
)
AM = _info(
    "am",
    "Amsterdam Museum knowledge graph (RDF, featureless); classify artefacts by category",
)


# --------------------------------------------------------------------------------------
# N-Triples


def node_name(term, bnode_labels: dict | None = None) -> str:
    """The name of an rdflib term as a node: its N-Triples spelling.

    IRIs read ``<http://...>``, literals ``"text"``, ``"text"@lang`` or
    ``"text"^^<datatype>``, and blank nodes ``_:label`` with the label used in the file
    (``bnode_labels`` maps rdflib's generated blank nodes back to those labels).
    """
    from rdflib.term import BNode, Literal, URIRef

    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, BNode):
        label = bnode_labels.get(term) if bnode_labels else None
        return f"_:{label if label is not None else term}"
    if isinstance(term, Literal):
        return term.n3()
    raise InvalidArgumentError(f"expected an rdflib URIRef, BNode or Literal, got {term!r}")


@dataclass
class NTriples:
    """A parsed N-Triples file: node names, relation IRIs and (s, r, o) id triples."""

    nodes: list[str]
    relations: list[str]
    triples: Tensor  # (T, 3) long: subject, relation, object
    iri_ids: dict[str, int]  # plain IRI -> node id, for the label files
    dropped: int  # triples removed because their predicate is a label predicate


class _TripleSink:
    """Collects rdflib's triples as integer ids, numbering terms on first appearance."""

    __slots__ = ("nodes", "relations", "s", "p", "o", "exclude", "dropped")

    def __init__(self, exclude: frozenset) -> None:
        self.nodes: dict = {}
        self.relations: dict = {}
        self.s, self.p, self.o = array("q"), array("q"), array("q")
        self.exclude = exclude
        self.dropped = 0

    def triple(self, s, p, o) -> None:
        if p in self.exclude:
            self.dropped += 1
            return
        nodes = self.nodes
        si = nodes.get(s)
        if si is None:
            si = nodes[s] = len(nodes)
        oi = nodes.get(o)
        if oi is None:
            oi = nodes[o] = len(nodes)
        pi = self.relations.get(p)
        if pi is None:
            pi = self.relations[p] = len(self.relations)
        self.s.append(si)
        self.p.append(pi)
        self.o.append(oi)


def _line_counting_parser(sink: _TripleSink, bnode_context: dict):
    """rdflib's N-Triples parser, counting lines so errors can name one."""
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    class _Parser(W3CNTriplesParser):
        __slots__ = ("lineno", "current")

        def readline(self):
            line = super().readline()
            if line is not None:
                self.lineno += 1
                self.current = line
            return line

    parser = _Parser(sink, bnode_context=bnode_context)
    parser.lineno = 0
    parser.current = ""
    return parser


def _first_bad_utf8_line(path: Path) -> int | None:
    with gzip.open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _tensor(values: array) -> Tensor:
    return torch.frombuffer(values, dtype=torch.int64).clone() if len(values) else \
        torch.empty(0, dtype=torch.long)


def read_ntriples(
    path: str | os.PathLike,
    *,
    exclude_predicates: Iterable[str] = (),
    source_url: str | None = None,
) -> NTriples:
    """Parse a gzipped N-Triples file with rdflib into integer triples.

    Nodes are the distinct subject and object terms, numbered in order of first appearance
    (subject before object); relations are the distinct predicates, numbered by descending
    number of triples, ties by IRI. Duplicate triples count once (an RDF graph is a set).

    Args:
        path (path): The ``.nt.gz`` file.
        exclude_predicates (iterable of str, optional): Predicate IRIs whose triples are
            dropped before anything is numbered.
        source_url (str, optional): Where the file comes from, named in error messages.

    Returns:
        An object with ``nodes`` (node names, see :func:`node_name`), ``relations``
        (predicate IRIs), ``triples`` ((T, 3) long: subject, relation, object, in file
        order), ``iri_ids`` (IRI -> node id) and ``dropped`` (excluded triples).

    Raises:
        DataFormatError: The file is not gzip, not UTF-8, not N-Triples or holds no
            triples; the message names the file and, where one is to blame, the line.
    """
    from rdflib.exceptions import ParserError
    from rdflib.term import URIRef

    path = Path(path)
    refetch = f"; re-download it from {source_url}" if source_url else ""
    sink = _TripleSink(frozenset(URIRef(p) for p in exclude_predicates))
    bnode_context: dict = {}
    parser = _line_counting_parser(sink, bnode_context)
    try:
        with gzip.open(path, "rb") as raw:
            parser.parse(raw)
    except ParserError as exc:
        # rdflib re-raises "Invalid line: ..." from inside its handler; the cause is the
        # error it was handling ("Subject must be uriref or nodeID", "Trailing garbage").
        cause = exc.__context__ if isinstance(exc.__context__, ParserError) else exc
        reason = str(cause)[:100]
        raise DataFormatError(
            f"{path}, line {parser.lineno}: not an N-Triples statement ({reason}): "
            f"{parser.current[:120]!r}; each line must read `<subject> <predicate> <object> .`"
            f"{refetch}"
        ) from exc
    except UnicodeDecodeError as exc:
        line = _first_bad_utf8_line(path) or parser.lineno + 1
        raise DataFormatError(
            f"{path}, line {line}: not valid UTF-8 ({exc.reason}); N-Triples files are "
            f"UTF-8{refetch}"
        ) from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(
            f"{path} cannot be read as gzip-compressed N-Triples after line {parser.lineno} "
            f"({type(exc).__name__}: {exc}){refetch}"
        ) from exc
    if not len(sink.s):
        raise DataFormatError(f"{path} holds no triples{refetch}")

    subjects, predicates, objects = _tensor(sink.s), _tensor(sink.p), _tensor(sink.o)
    num_nodes, num_predicates = len(sink.nodes), len(sink.relations)
    # Keep the first occurrence of each distinct triple, in file order.
    key = (subjects * num_predicates + predicates) * num_nodes + objects
    _, inverse = torch.unique(key, return_inverse=True)
    position = torch.arange(key.numel())
    first = torch.full((int(inverse.max()) + 1,), key.numel(), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, position, reduce="amin").sort().values
    subjects, predicates, objects = subjects[first], predicates[first], objects[first]

    iris = [str(p) for p in sink.relations]
    counts = torch.bincount(predicates, minlength=num_predicates).tolist()
    order = sorted(range(num_predicates), key=lambda i: (-counts[i], iris[i]))
    rank = torch.empty(num_predicates, dtype=torch.long)
    rank[torch.tensor(order)] = torch.arange(num_predicates)

    labels = {bnode: label for label, bnode in bnode_context.items()}
    return NTriples(
        nodes=[node_name(term, labels) for term in sink.nodes],
        relations=[iris[i] for i in order],
        triples=torch.stack([subjects, rank[predicates], objects], dim=1),
        iri_ids={str(t): i for t, i in sink.nodes.items() if isinstance(t, URIRef)},
        dropped=sink.dropped,
    )


# --------------------------------------------------------------------------------------
# Label files

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _read_label_file(path: Path, entity_column: str, label_column: str) -> list[tuple[int, str, str]]:
    """``(line, entity IRI, label)`` for each row of an R-GCN label TSV."""
    layout = (f"the R-GCN label files are tab-separated with a header naming the columns "
              f"{entity_column!r} and {label_column!r}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header is None:
                raise DataFormatError(f"{path} is empty; {layout}")
            missing = [c for c in (entity_column, label_column) if c not in header]
            if missing:
                raise DataFormatError(
                    f"{path}, line 1: the header has no column {missing[0]!r} (it has "
                    f"{', '.join(map(repr, header))}); {layout}"
                )
            ei, li = header.index(entity_column), header.index(label_column)
            rows = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                line = reader.line_num
                if len(row) <= max(ei, li):
                    raise DataFormatError(
                        f"{path}, line {line}: {len(row)} tab-separated field(s) but the "
                        f"header has {len(header)}; {layout}"
                    )
                entity, label = row[ei].strip(), row[li].strip()
                if not entity or not label:
                    empty = entity_column if not entity else label_column
                    raise DataFormatError(f"{path}, line {line}: column {empty!r} is empty")
                rows.append((line, entity, label))
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise DataFormatError(f"{path} is not a readable TSV file ({exc})") from exc
    return rows


def _label_keys(rows: list[tuple[int, str, str]]) -> list[str | float]:
    """Comparable labels: numbers by value when every label of the file is a number."""
    labels = [label for _, _, label in rows]
    if labels and all(_NUMBER.fullmatch(label) for label in labels):
        return [float(label) for label in labels]
    return labels


def _class_name(key: str | float) -> str:
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() else repr(key)
    return key


# --------------------------------------------------------------------------------------
# Tensors and caching


def _pack(strings: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Strings as a flat uint8 tensor of UTF-8 bytes and (len + 1,) long offsets."""
    encoded = [s.encode("utf-8") for s in strings]
    offsets = torch.zeros(len(encoded) + 1, dtype=torch.long)
    if encoded:
        offsets[1:] = torch.tensor([len(b) for b in encoded]).cumsum(0)
    payload = b"".join(encoded)
    data = torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else \
        torch.empty(0, dtype=torch.uint8)
    return data, offsets


def _unpack(data: Tensor, offsets: Tensor) -> list[str]:
    payload = data.numpy().tobytes()
    bounds = offsets.tolist()
    return [payload[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def read_entities(folder: str | os.PathLike, name: str) -> dict[str, Tensor]:
    """Parse the raw files of entity dataset ``name`` in ``folder`` into tensors.

    Args:
        folder (path): Folder holding the graph and the three label files.
        name (str): ``"aifb"``, ``"mutag-rdf"``, ``"bgs"`` or ``"am"``.

    Returns:
        dict: ``edge_index`` (2, 2T) long, ``edge_type`` (2T,) long (``2r`` forward,
        ``2r + 1`` inverse), ``y`` (|V|,) long with :data:`UNLABELLED` for unlabelled
        nodes, ``train_idx``/``test_idx`` long in the order of the label files,
        ``num_nodes``/``num_relations``/``num_triples``/``num_dropped`` (0-d long) and the
        node names, relation IRIs and class names packed as UTF-8 bytes
        (``<what>_bytes`` uint8 and ``<what>_offsets`` long; see
        :class:`EntityClassificationDataset`).

    Raises:
        DataFormatError: A file is malformed, or a label file names an entity that is not
            in the graph, a label that is not in ``completeDataset``, or an entity twice;
            the message names the file and the line.
    """
    if name not in _SOURCES:
        raise InvalidArgumentError(
            f"unknown entity dataset {name!r}; choose one of {', '.join(sorted(_SOURCES))}"
        )
    source = _SOURCES[name]
    folder = Path(folder)
    graph_path = folder / source.graph_file
    graph = read_ntriples(graph_path, exclude_predicates=source.label_predicates,
                          source_url=source.url)
    num_nodes, num_predicates = len(graph.nodes), len(graph.relations)

    s, r, o = graph.triples.unbind(1)
    num_relations = 2 * num_predicates
    src, dst = torch.cat([s, o]), torch.cat([o, s])
    edge_type = torch.cat([2 * r, 2 * r + 1])
    perm = ((src * num_nodes + dst) * num_relations + edge_type).argsort()
    edge_index = torch.stack([src[perm], dst[perm]])
    edge_type = edge_type[perm]

    complete_path, train_path, test_path = (folder / f for f in source.label_files)
    complete = _read_label_file(complete_path, source.entity_column, source.label_column)
    keys = sorted(set(_label_keys(complete)), key=lambda k: (isinstance(k, str), k))
    class_ids = {key: i for i, key in enumerate(keys)}

    y = torch.full((num_nodes,), UNLABELLED, dtype=torch.long)
    split_idx = {}
    seen: dict[int, str] = {}
    for split, path in (("train", train_path), ("test", test_path)):
        rows = _read_label_file(path, source.entity_column, source.label_column)
        index = []
        for (line, entity, label), key in zip(rows, _label_keys(rows), strict=True):
            node = graph.iri_ids.get(entity)
            if node is None:
                raise DataFormatError(
                    f"{path}, line {line}: entity {entity!r} does not occur in {graph_path}; "
                    f"the label files do not belong with this graph"
                )
            if key not in class_ids:
                raise DataFormatError(
                    f"{path}, line {line}: label {label!r} is not among the "
                    f"{len(keys)} classes of {complete_path.name} "
                    f"({', '.join(_class_name(k) for k in keys)})"
                )
            if node in seen:
                raise DataFormatError(
                    f"{path}, line {line}: entity {entity!r} is labelled twice (also in "
                    f"{seen[node]}); each entity belongs to one split"
                )
            seen[node] = f"{path.name}, line {line}"
            y[node] = class_ids[key]
            index.append(node)
        if not index:
            raise DataFormatError(f"{path} lists no labelled entities")
        split_idx[split] = torch.tensor(index, dtype=torch.long)

    node_bytes, node_offsets = _pack(graph.nodes)
    relation_bytes, relation_offsets = _pack(graph.relations)
    class_bytes, class_offsets = _pack([_class_name(k) for k in keys])
    return {
        "edge_index": edge_index,
        "edge_type": edge_type,
        "y": y,
        "train_idx": split_idx["train"],
        "test_idx": split_idx["test"],
        "num_nodes": torch.tensor(num_nodes),
        "num_relations": torch.tensor(num_relations),
        "num_triples": torch.tensor(graph.triples.size(0)),
        "num_dropped": torch.tensor(graph.dropped),
        "node_bytes": node_bytes,
        "node_offsets": node_offsets,
        "relation_bytes": relation_bytes,
        "relation_offsets": relation_offsets,
        "class_bytes": class_bytes,
        "class_offsets": class_offsets,
    }


# --------------------------------------------------------------------------------------
# Dataset


class EntityClassificationDataset(NodeClassificationDataset):
    """A featureless knowledge graph whose entities carry class labels (R-GCN benchmarks).

    A :class:`~graphlearn.data.dataset.NodeClassificationDataset` without node features:
    ``data.x`` is absent and :attr:`num_features` is 0, so models take one learned
    embedding per node (input size ``data.num_nodes``), as R-GCN does with ``x=None``.

    Attributes:
        info (DatasetInfo): Metadata.
        data (torch_geometric.data.Data): ``edge_index`` (2, |E|) long, ``edge_type``
            (|E|,) long in ``[0, num_relations)``, ``num_nodes``, ``num_relations``,
            ``y`` (|V|,) long (:data:`UNLABELLED` for unlabelled nodes), long
            ``train_idx``/``val_idx``/``test_idx`` and the matching boolean
            ``train_mask``/``val_mask``/``test_mask`` of shape (|V|,).
        validation (str): How ``val_mask`` was chosen (one of :data:`VALIDATION_SPLITS`).
    """

    def __init__(self, info: DatasetInfo, data: Data, *, names: dict[str, Tensor],
                 validation: str = "none") -> None:
        super().__init__(info, data)
        self.validation = validation
        self._names = names

    @property
    def num_features(self) -> int:
        return 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_relations(self) -> int:
        """Edge types, inverse relations included (twice the number of predicates)."""
        return int(self.data.num_relations)

    @cached_property
    def node_names(self) -> list[str]:
        """Node ``i``'s term in N-Triples spelling (see :func:`node_name`)."""
        return _unpack(self._names["node_bytes"], self._names["node_offsets"])

    @cached_property
    def relations(self) -> list[str]:
        """Predicate IRIs: edge type ``2r`` is ``relations[r]``, ``2r + 1`` its inverse."""
        return _unpack(self._names["relation_bytes"], self._names["relation_offsets"])

    @cached_property
    def classes(self) -> list[str]:
        """Class names (labels of ``completeDataset``): class ``c`` is ``classes[c]``."""
        return _unpack(self._names["class_bytes"], self._names["class_offsets"])

    def node_index(self, iri: str) -> int:
        """The node id of entity ``iri`` (a plain IRI, as in the label files)."""
        index = self._iri_index.get(iri)
        if index is None:
            raise InvalidArgumentError(f"{iri!r} is not an entity of {self.info.name!r}")
        return index

    @cached_property
    def _iri_index(self) -> dict[str, int]:
        return {n[1:-1]: i for i, n in enumerate(self.node_names) if n.startswith("<")}

    def __repr__(self) -> str:
        d = self.data
        return (f"{type(self).__name__}({self.info.name!r}, nodes={d.num_nodes}, "
                f"edges={d.num_edges}, relations={self.num_relations}, "
                f"classes={self.num_classes}, validation={self.validation!r})")


def _validation_split(train_idx: Tensor, y: Tensor, validation: str, seed: int
                      ) -> tuple[Tensor, Tensor]:
    """(train, val) indices; both keep the order of the training file."""
    if validation == "none":
        return train_idx, train_idx.clone()
    if validation == "rgcn":
        cut = train_idx.numel() // 5  # DGL's R-GCN example: the first fifth validates
        return train_idx[cut:], train_idx[:cut]
    from sklearn.model_selection import train_test_split

    positions = list(range(train_idx.numel()))
    try:
        keep, held = train_test_split(positions, test_size=VALIDATION_FRACTION,
                                      stratify=y[train_idx].numpy(), random_state=seed)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"validation='stratified' cannot split the {len(positions)} training entities "
            f"({exc}); use validation='rgcn'"
        ) from exc
    return train_idx[sorted(keep)], train_idx[sorted(held)]


def _fetcher(name: str) -> Callable[[Path], None]:
    """``fetch(folder)``: download ``<archive>.tgz`` and extract the raw files into ``folder``."""
    source = _SOURCES[name]
    wanted = {f: f for f in source.raw_files} | _ARCHIVE_ALIASES.get(source.archive, {})

    def fetch(folder: Path) -> None:
        archive = download_url(source.url, folder)
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    target = wanted.get(PurePosixPath(member.name).name)
                    if not member.isfile() or target is None or (folder / target).is_file():
                        continue
                    # Copy the member's bytes under a fixed name: no path from the archive
                    # is ever used, so it cannot write outside ``folder``.
                    with tar.extractfile(member) as src, tempfile.NamedTemporaryFile(
                            dir=folder, delete=False) as tmp:
                        shutil.copyfileobj(src, tmp)
                    os.replace(tmp.name, folder / target)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise OSError(f"{archive.name} is not a readable .tgz archive ({exc})") from exc
        finally:
            archive.unlink(missing_ok=True)

    return fetch


def load_entities(
    info: DatasetInfo,
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    validation: str = "none",
    validation_seed: int = 0,
) -> EntityClassificationDataset:
    """Load AIFB, MUTAG, BGS or AM with the R-GCN train/test split.

    Args:
        info (DatasetInfo): :data:`AIFB`, :data:`MUTAG_RDF`, :data:`BGS` or :data:`AM`.
        root (path, optional): Data root holding ``rdf/<name>/``; defaults to
            ``$GRAPHLEARN_DATA``, then the download cache.
        download (bool, optional): Download a missing file's archive from
            :data:`ENTITIES_URL` into the cache. (default: :obj:`True`)
        validation (str, optional): ``"none"``: no held-out validation, ``val_mask`` equals
            ``train_mask`` (DGL's R-GCN example without ``--validation``; do not early-stop
            on it); ``"rgcn"``: the first ``len // 5`` rows of ``trainingSet.tsv`` validate,
            the rest train (DGL's ``--validation``); ``"stratified"``: a stratified 20%
            (``sklearn.model_selection.train_test_split``) of the training entities
            drawn with ``validation_seed`` validates. (default: :obj:`"none"`)
        validation_seed (int, optional): Seed of ``validation="stratified"``.
            (default: :obj:`0`)

    Returns:
        EntityClassificationDataset: One featureless graph with 1-D boolean masks.
    """
    if validation not in VALIDATION_SPLITS:
        raise InvalidArgumentError(
            f"option validation of dataset {info.name!r} must be one of "
            f"{', '.join(map(repr, VALIDATION_SPLITS))}, got {validation!r}"
        )
    if isinstance(validation_seed, bool) or not isinstance(validation_seed, int):
        raise InvalidArgumentError(
            f"option validation_seed of dataset {info.name!r} must be an integer, "
            f"got {validation_seed!r}"
        )
    try:
        folder = require_raw_files(info, root, download=download, fetch=_fetcher(info.name))
    except DataNotFoundError as exc:
        raise DataNotFoundError(
            f"{exc} ({info.url} is a gzipped tar archive: extract the files named above from it.)"
        ) from None
    raw_paths = [folder / f for f in info.raw_files]
    tensors = cached_tensors(f"rdf-{info.name}", raw_paths,
                             lambda: read_entities(folder, info.name),
                             version=_PROCESSING_VERSION)

    num_nodes = int(tensors["num_nodes"])
    y = tensors["y"]
    train_idx, val_idx = _validation_split(tensors["train_idx"], y, validation, validation_seed)
    test_idx = tensors["test_idx"]
    data = Data(
        edge_index=tensors["edge_index"],
        edge_type=tensors["edge_type"],
        num_nodes=num_nodes,
        num_relations=int(tensors["num_relations"]),
        y=y,
        train_idx=train_idx,
        val_idx=val_idx,
        test_idx=test_idx,
        train_mask=index_to_mask(train_idx, size=num_nodes),
        val_mask=index_to_mask(val_idx, size=num_nodes),
        test_mask=index_to_mask(test_idx, size=num_nodes),
    )
    names = {k: v for k, v in tensors.items() if k.endswith(("_bytes", "_offsets"))}
    dataset = EntityClassificationDataset(info, data, names=names, validation=validation)
    # node types from rdf:type, for models of typed graphs (HGT); see entity_node_types
    data.node_type, type_names, _ = entity_node_types(dataset)
    data.num_node_types = len(type_names)
    return dataset


register_dataset(AIFB)(load_entities)
register_dataset(MUTAG_RDF, aliases=("rdf-mutag",))(load_entities)
register_dataset(BGS)(load_entities)
register_dataset(AM)(load_entities)


# --------------------------------------------------------------------------------------
# Heterogeneous view

_PREFIXES = {
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://www.w3.org/2002/07/owl#": "owl",
    "http://www.w3.org/2001/XMLSchema#": "xsd",
}
UNTYPED = "untyped"
LITERAL = "literal"


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text, flags=re.ASCII).strip("_") or "x"


def _split_iri(iri: str) -> tuple[str, str]:
    """(namespace, local name): split after the last ``#``, ``/`` or ``:``."""
    stripped = iri.rstrip("#/")
    cut = max(stripped.rfind(c) for c in "#/:") + 1
    return stripped[:cut], stripped[cut:]


def _short_names(iris: Sequence[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Readable, distinct identifiers (``[A-Za-z0-9_]``) for IRIs.

    The local name (``Person`` for ``http://swrc.ontoware.org/ontology#Person``) when it
    is unique; otherwise qualified by the namespace (``rdf_type``, ``ontology_type``), and
    numbered if that still collides. PyG's ``to_hetero`` and ``ModuleDict`` keys need no
    dots, which IRIs are full of.
    """
    taken = set(reserved)
    locals_ = {iri: _identifier(_split_iri(iri)[1]) for iri in iris}
    counts: dict[str, int] = {}
    for name in locals_.values():
        counts[name] = counts.get(name, 0) + 1
    out: dict[str, str] = {}
    for iri in sorted(iris):
        name = locals_[iri]
        if counts[name] > 1 or name in taken:
            namespace = _split_iri(iri)[0]
            prefix = _PREFIXES.get(namespace) or _identifier(
                _split_iri(namespace.rstrip("#/:"))[1] or namespace)
            name = f"{prefix}_{name}"
        base, k = name, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        out[iri] = name
    return out


def entity_node_types(dataset: EntityClassificationDataset) -> tuple[Tensor, list[str], dict]:
    """Each node's type from ``rdf:type`` (the rule :func:`to_hetero` documents).

    Returns:
        ``(node_type, type_names, iri_of_type)``: ``node_type`` ``(num_nodes,)`` long with
        ``type_names[node_type[i]]`` the type of node ``i``, and each type name's class IRI
        (:obj:`None` for ``"untyped"`` and ``"literal"``).
    """
    data, names = dataset.data, dataset.node_names
    num_nodes = int(data.num_nodes)
    edge_index, edge_type = data.edge_index, data.edge_type

    # One class node per typed entity: the most populous class, ties by IRI.
    chosen = torch.full((num_nodes,), -1, dtype=torch.long)
    if RDF_TYPE in dataset.relations:
        typed = edge_type == 2 * dataset.relations.index(RDF_TYPE)
        entity, cls = edge_index[0, typed], edge_index[1, typed]
        instances = torch.bincount(cls, minlength=num_nodes)
        classes = sorted(set(cls.tolist()), key=lambda c: (-int(instances[c]), names[c]))
        rank = torch.full((num_nodes,), len(classes), dtype=torch.long)
        rank[torch.tensor(classes, dtype=torch.long)] = torch.arange(len(classes))
        best = torch.full((num_nodes,), len(classes), dtype=torch.long)
        best = best.scatter_reduce(0, entity, rank[cls], reduce="amin")
        has_type = best < len(classes)
        class_of_rank = torch.tensor(classes, dtype=torch.long)
        chosen[has_type] = class_of_rank[best[has_type]]

    def iri_of(node: int) -> str:
        name = names[node]
        return name[1:-1] if name.startswith("<") else name

    class_nodes = sorted(set(chosen[chosen >= 0].tolist()))
    class_names = _short_names([iri_of(c) for c in class_nodes], reserved=(UNTYPED, LITERAL))
    type_names = sorted({*class_names.values(), UNTYPED, LITERAL})
    type_id = {t: i for i, t in enumerate(type_names)}
    class_type = torch.full((num_nodes,), type_id[UNTYPED], dtype=torch.long)
    for c in class_nodes:
        class_type[c] = type_id[class_names[iri_of(c)]]
    node_type = torch.full((num_nodes,), type_id[UNTYPED], dtype=torch.long)
    node_type[chosen >= 0] = class_type[chosen[chosen >= 0]]
    is_literal = torch.tensor([n.startswith('"') for n in names], dtype=torch.bool)
    node_type[is_literal] = type_id[LITERAL]

    iri_of_type = {name: iri for iri, name in class_names.items()}
    return node_type, type_names, {name: iri_of_type.get(name) for name in type_names}


def to_hetero(dataset: EntityClassificationDataset) -> HeteroData:
    """A heterogeneous view of an entity graph, with node types from ``rdf:type``.

    Each node gets one type: the class it is an ``rdf:type`` of, or, for an entity with
    several classes, the class with the most instances in the graph (ties: the smaller
    IRI); literals get the type ``"literal"``, other nodes without ``rdf:type`` the type
    ``"untyped"``. Type and relation names are short identifiers derived from the IRIs
    (local names, qualified by the namespace where two collide); edge types are
    ``(source type, relation, destination type)`` with ``"rev_<relation>"`` for the
    inverse edges. Every node and edge of ``dataset.data`` appears exactly once.

    Args:
        dataset (EntityClassificationDataset): A loaded entity dataset
            (``graphlearn.datasets.load("aifb")``); it holds the node and relation names a
            plain ``Data`` does not.

    Returns:
        HeteroData: Per node type ``node_id`` (global node ids, ascending), ``num_nodes``,
        ``y`` and the three masks; per edge type ``edge_index`` (local ids) and ``edge_id``
        (positions in ``dataset.data.edge_index``); ``node_type_iri`` (type name -> class
        IRI, :obj:`None` for ``"untyped"``/``"literal"``) and ``relation_iri`` (relation
        name -> predicate IRI).
    """
    if not isinstance(dataset, EntityClassificationDataset):
        raise InvalidArgumentError(
            f"to_hetero needs an EntityClassificationDataset (graphlearn.datasets.load('aifb')), "
            f"which holds the node and relation names; got {type(dataset).__name__}"
        )
    data = dataset.data
    num_nodes = int(data.num_nodes)
    edge_index, edge_type = data.edge_index, data.edge_type
    node_type, type_names, iri_of_type = entity_node_types(dataset)

    # Nodes: global ids per type, and each node's position within its type.
    hetero = HeteroData()
    local = torch.empty(num_nodes, dtype=torch.long)
    for t, name in enumerate(type_names):
        ids = (node_type == t).nonzero().view(-1)
        if ids.numel() == 0:
            continue
        local[ids] = torch.arange(ids.numel())
        store = hetero[name]
        store.node_id = ids
        store.num_nodes = ids.numel()
        for key in ("y", "train_mask", "val_mask", "test_mask"):
            store[key] = data[key][ids]
    hetero.node_type_iri = {name: iri_of_type.get(name) for name in hetero.node_types}

    # Edges, grouped by (source type, relation, destination type).
    relation_names = _short_names(dataset.relations)
    forward = [relation_names[iri] for iri in dataset.relations]
    taken = set(forward)
    inverse = []
    for name in forward:
        rev, k = f"rev_{name}", 2
        while rev in taken:
            rev, k = f"rev_{name}_{k}", k + 1
        taken.add(rev)
        inverse.append(rev)
    hetero.relation_iri = {**dict(zip(forward, dataset.relations, strict=True)),
                           **dict(zip(inverse, dataset.relations, strict=True))}

    src_t, dst_t = node_type[edge_index[0]], node_type[edge_index[1]]
    num_types, num_relations = len(type_names), dataset.num_relations
    key = (src_t * num_relations + edge_type) * num_types + dst_t
    combos, group = torch.unique(key, return_inverse=True)
    order = torch.argsort(group, stable=True)
    sizes = torch.bincount(group, minlength=combos.numel()).tolist()
    for combo, edge_ids in zip(combos.tolist(), order.split(sizes), strict=True):
        s, rest = divmod(combo, num_relations * num_types)
        rel, d = divmod(rest, num_types)
        name = forward[rel // 2] if rel % 2 == 0 else inverse[rel // 2]
        store = hetero[type_names[s], name, type_names[d]]
        store.edge_index = local[edge_index[:, edge_ids]]
        store.edge_id = edge_ids
    return hetero
