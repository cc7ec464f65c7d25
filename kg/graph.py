"""``KnowledgeGraph``: entity and relation vocabularies plus id triples per split.

A knowledge graph here is what link prediction needs and nothing more: the labels of
entities and relations (``entities[i]`` is the label of entity id ``i``) and, per split
(``"train"``, ``"valid"``, ``"test"``, and ``"facts"`` for datasets that keep a background
graph apart from their training queries, as RED-GNN's do), a ``LongTensor`` of shape
``(n, 3)`` holding ``(head, relation, tail)`` ids. Message passing happens on PyG objects
(:meth:`KnowledgeGraph.to_pyg`); this class only owns ids, labels and file formats.

Conversions (see :mod:`graphlearn.kg.convert`): TSV files (:meth:`from_tsv`,
:meth:`to_tsv`), rdflib graphs, networkx ``MultiDiGraph`` and PyG ``Data`` with
``edge_type``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from graphlearn.errors import (
    DataFormatError,
    DataNotFoundError,
    IndexOutOfRangeError,
    InvalidArgumentError,
    ShapeError,
)

__all__ = ["KnowledgeGraph", "INVERSE_SUFFIX", "read_triples_tsv"]

#: Label suffix of the inverse of a relation (``"born_in" -> "born_in^-1"``).
INVERSE_SUFFIX = "^-1"

#: The order splits are read in (and vocabularies grown in) when a folder holds them.
SPLIT_ORDER = ("facts", "train", "valid", "test")


def read_triples_tsv(path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Read ``head<TAB>relation<TAB>tail`` lines; blank lines are skipped.

    Raises:
        DataNotFoundError: The file does not exist.
        DataFormatError: A line does not have exactly three tab-separated fields; the
            message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"triples file {str(path)!r} does not exist")
    out = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise DataFormatError(
                    f"{path}:{lineno}: expected 3 tab-separated fields (head, relation, tail), "
                    f"got {len(parts)}: {line[:120]!r}; fix the line or remove it"
                )
            out.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    return out


def _read_vocab(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    labels = []
    # split on "\n" only, as read_triples_tsv does: str.splitlines() would also split at
    # \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029, which labels may hold
    with path.open(encoding="utf-8") as f:
        lines = f.read().split("\n")
    for line in lines:
        # RED-GNN/GraIL vocabularies are one label per line, optionally "label<TAB>id"
        label = line.split("\t")[0].strip()
        if label:
            labels.append(label)
    return labels


@dataclass
class KnowledgeGraph:
    """Entity and relation vocabularies plus id triples per split.

    Args:
        entities (list[str]): ``entities[i]`` is the label of entity id ``i``; unique.
        relations (list[str]): ``relations[j]`` is the label of relation id ``j``; unique.
        splits (dict[str, Tensor]): Split name to a ``(n, 3)`` long tensor of
            ``(head, relation, tail)`` ids.
        name (str): A name for messages and ``repr``.
        num_base_relations (int, optional): Set by :meth:`with_inverse`: relation ids
            ``>= num_base_relations`` are inverses (``r + num_base_relations`` inverts ``r``).

    Example:
        >>> from graphlearn.kg import KnowledgeGraph
        >>> kg = KnowledgeGraph.from_triples(
        ...     {"train": [("alice", "knows", "bob"), ("bob", "knows", "carol")]})
        >>> kg.num_entities, kg.num_relations, kg.splits["train"].tolist()
        (3, 1, [[0, 0, 1], [1, 0, 2]])
    """

    entities: list[str]
    relations: list[str]
    splits: dict[str, Tensor] = field(default_factory=dict)
    name: str = "kg"
    num_base_relations: int | None = None

    def __post_init__(self) -> None:
        self.entities = list(self.entities)
        self.relations = list(self.relations)
        for kind, labels in (("entity", self.entities), ("relation", self.relations)):
            if len(set(labels)) != len(labels):
                seen, dup = set(), None
                for label in labels:
                    if label in seen:
                        dup = label
                        break
                    seen.add(label)
                raise InvalidArgumentError(f"{kind} label {dup!r} occurs twice in the vocabulary; "
                                           f"labels must be unique")
        self.splits = {k: self._check_split(k, v) for k, v in self.splits.items()}
        self._entity_index: dict[str, int] | None = None
        self._relation_index: dict[str, int] | None = None

    def _check_split(self, split: str, triples) -> Tensor:
        t = torch.as_tensor(triples, dtype=torch.long)
        if t.numel() == 0:
            return t.reshape(0, 3)
        if t.dim() != 2 or t.size(1) != 3:
            raise ShapeError(f"split {split!r} must have shape (n, 3) (head, relation, tail), "
                             f"got {tuple(t.shape)}")
        for col, (what, size) in enumerate((("head", self.num_entities),
                                            ("relation", self.num_relations),
                                            ("tail", self.num_entities))):
            lo, hi = int(t[:, col].min()), int(t[:, col].max())
            if lo < 0 or hi >= size:
                raise IndexOutOfRangeError(
                    f"split {split!r} has {what} id {hi if hi >= size else lo} outside "
                    f"[0, {size}); add the label to the vocabulary or drop the triple")
        return t

    # ------------------------------------------------------------------ vocabulary
    @property
    def num_entities(self) -> int:
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        return len(self.relations)

    @property
    def entity_index(self) -> dict[str, int]:
        """Label to entity id."""
        if self._entity_index is None:
            self._entity_index = {label: i for i, label in enumerate(self.entities)}
        return self._entity_index

    @property
    def relation_index(self) -> dict[str, int]:
        """Label to relation id."""
        if self._relation_index is None:
            self._relation_index = {label: i for i, label in enumerate(self.relations)}
        return self._relation_index

    def entity_id(self, label: str) -> int:
        """The id of entity ``label``; a clear error (with the closest labels) if unknown."""
        return _lookup(self.entity_index, label, "entity", self.name)

    def relation_id(self, label: str) -> int:
        """The id of relation ``label``; a clear error (with the closest labels) if unknown."""
        return _lookup(self.relation_index, label, "relation", self.name)

    # ------------------------------------------------------------------ triples
    def triples(self, *splits: str) -> Tensor:
        """The ``(n, 3)`` triples of the named splits concatenated (all splits if none named)."""
        names = splits or tuple(self.splits)
        for s in names:
            if s not in self.splits:
                raise InvalidArgumentError(f"knowledge graph {self.name!r} has no split {s!r}; "
                                           f"it has {', '.join(self.splits) or 'none'}")
        if not names:
            return torch.empty(0, 3, dtype=torch.long)
        return torch.cat([self.splits[s] for s in names])

    def labeled_triples(self, split: str) -> list[tuple[str, str, str]]:
        """The triples of ``split`` as ``(head, relation, tail)`` labels."""
        return [(self.entities[h], self.relations[r], self.entities[t])
                for h, r, t in self.triples(split).tolist()]

    def with_inverse(self) -> KnowledgeGraph:
        """A copy with inverse relations: relation ``r + R`` is the inverse of ``r``.

        Every split gets the inverse of each of its triples appended (``(t, r + R, h)``);
        inverse labels are the base label plus :data:`INVERSE_SUFFIX`.
        """
        if self.num_base_relations is not None:
            return self
        R = self.num_relations
        splits = {}
        for name, t in self.splits.items():
            inv = torch.stack([t[:, 2], t[:, 1] + R, t[:, 0]], 1)
            splits[name] = torch.cat([t, inv])
        return KnowledgeGraph(self.entities, self.relations + [r + INVERSE_SUFFIX for r in self.relations],
                              splits, name=self.name, num_base_relations=R)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_triples(cls, splits: Mapping[str, Iterable[Sequence[str]]] | Iterable[Sequence[str]], *,
                     entities: Sequence[str] | None = None, relations: Sequence[str] | None = None,
                     name: str = "kg", extend_vocab: bool = True) -> KnowledgeGraph:
        """Build from labelled triples: ``{"train": [(h, r, t), ...], ...}`` or one list (``train``).

        Args:
            entities, relations: Fixed vocabularies (id order). Labels met in the triples but
                missing from a given vocabulary are appended when ``extend_vocab`` is true,
                else raise.
            extend_vocab (bool): See above.
        """
        if not isinstance(splits, Mapping):
            splits = {"train": splits}
        ent = list(entities) if entities is not None else []
        rel = list(relations) if relations is not None else []
        ent_index = {e: i for i, e in enumerate(ent)}
        rel_index = {r: i for i, r in enumerate(rel)}

        def ids(index: dict[str, int], labels: list[str], label: str, what: str, split: str) -> int:
            i = index.get(label)
            if i is None:
                if not extend_vocab:
                    raise IndexOutOfRangeError(
                        f"{what} {label!r} in split {split!r} of {name!r} is not in the given "
                        f"{what} vocabulary; add it there or pass extend_vocab=True")
                i = index[label] = len(labels)
                labels.append(label)
            return i

        out = {}
        ordered = sorted(splits, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
        for split in ordered:
            rows = []
            for triple in splits[split]:
                if len(triple) != 3:
                    raise DataFormatError(f"split {split!r} of {name!r} holds {triple!r}, not a "
                                          f"(head, relation, tail) triple")
                h, r, t = (str(x) for x in triple)
                rows.append((ids(ent_index, ent, h, "entity", split),
                             ids(rel_index, rel, r, "relation", split),
                             ids(ent_index, ent, t, "entity", split)))
            out[split] = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
        return cls(ent, rel, {s: out[s] for s in splits}, name=name)

    @classmethod
    def from_tsv(cls, path: str | os.PathLike | Mapping[str, str | os.PathLike], *,
                 name: str | None = None, entities: Sequence[str] | None = None,
                 relations: Sequence[str] | None = None) -> KnowledgeGraph:
        """Read a folder of ``{facts,train,valid,test}.txt`` (or ``.tsv``) files, or a mapping of files.

        A folder's ``entities.txt`` / ``relations.txt`` (one label per line, the layout of
        RED-GNN and GraIL data) fix the id order when present; otherwise ids follow the order
        of first appearance over facts, train, valid, test.

        Raises:
            DataNotFoundError: The folder has no ``train`` file.
            DataFormatError: A line is malformed (file and line named).
        """
        if isinstance(path, Mapping):
            files = {k: Path(v) for k, v in path.items()}
            folder = None
        else:
            folder = Path(path)
            if not folder.is_dir():
                raise DataNotFoundError(f"{str(folder)!r} is not a folder of train/valid/test "
                                        f"triple files")
            files = {}
            for split in SPLIT_ORDER:
                for ext in (".txt", ".tsv"):
                    if (folder / f"{split}{ext}").is_file():
                        files[split] = folder / f"{split}{ext}"
                        break
            if "train" not in files:
                raise DataNotFoundError(
                    f"{str(folder)!r} has no train.txt or train.tsv; a knowledge-graph folder holds "
                    f"train/valid/test files with one head<TAB>relation<TAB>tail triple per line")
        if folder is not None:
            entities = entities if entities is not None else _read_vocab(folder / "entities.txt")
            relations = relations if relations is not None else _read_vocab(folder / "relations.txt")
        raw = {split: read_triples_tsv(f) for split, f in files.items()}
        return cls.from_triples(raw, entities=entities, relations=relations,
                                name=name or (folder.name if folder is not None else "kg"))

    def to_tsv(self, folder: str | os.PathLike, *, vocab: bool = True) -> Path:
        """Write each split as ``<split>.txt`` (labels, tab-separated) into ``folder``.

        With ``vocab``, ``entities.txt`` and ``relations.txt`` record the id order, so
        :meth:`from_tsv` restores identical ids. Labels holding tabs or newlines cannot be
        written as TSV and raise.
        """
        folder = Path(folder)
        for kind, labels in (("entity", self.entities), ("relation", self.relations)):
            for label in labels:
                if "\t" in label or "\n" in label or "\r" in label or label != label.strip() or not label:
                    raise InvalidArgumentError(
                        f"{kind} label {label!r} cannot be stored in TSV (tab, newline, surrounding "
                        f"space or empty); save the graph as RDF (to_rdf) instead")
        folder.mkdir(parents=True, exist_ok=True)
        if vocab:
            (folder / "entities.txt").write_text("".join(e + "\n" for e in self.entities), encoding="utf-8")
            (folder / "relations.txt").write_text("".join(r + "\n" for r in self.relations),
                                                  encoding="utf-8")
        for split in self.splits:
            lines = ("\t".join(t) + "\n" for t in self.labeled_triples(split))
            (folder / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
        return folder

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_rdf(cls, source, format: str | None = None, **kwargs) -> KnowledgeGraph:
        """From an rdflib ``Graph`` or RDF file (see :func:`graphlearn.kg.convert.from_rdf`)."""
        from graphlearn.kg.convert import from_rdf

        return from_rdf(source, format, **kwargs)

    def to_rdf(self, split: str | Sequence[str] | None = None, **kwargs):
        """An rdflib ``Graph`` of the triples (see :func:`graphlearn.kg.convert.to_rdf`)."""
        from graphlearn.kg.convert import to_rdf

        return to_rdf(self, split, **kwargs)

    @classmethod
    def from_networkx(cls, graph, **kwargs) -> KnowledgeGraph:
        """From a networkx graph (see :func:`graphlearn.kg.convert.from_networkx`)."""
        from graphlearn.kg.convert import from_networkx

        return from_networkx(graph, **kwargs)

    def to_networkx(self, split: str | Sequence[str] | None = None):
        """A networkx ``MultiDiGraph`` (see :func:`graphlearn.kg.convert.to_networkx`)."""
        from graphlearn.kg.convert import to_networkx

        return to_networkx(self, split)

    @classmethod
    def from_pyg(cls, data, entities: Sequence[str] | None = None,
                 relations: Sequence[str] | None = None, **kwargs) -> KnowledgeGraph:
        """From a PyG ``Data`` with ``edge_type`` (see :func:`graphlearn.kg.convert.from_pyg`)."""
        from graphlearn.kg.convert import from_pyg

        return from_pyg(data, entities, relations, **kwargs)

    def to_pyg(self, split: str | Sequence[str] | None = "train"):
        """A PyG ``Data`` with ``edge_type`` (see :func:`graphlearn.kg.convert.to_pyg`)."""
        from graphlearn.kg.convert import to_pyg

        return to_pyg(self, split)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v.size(0)}" for k, v in self.splits.items())
        return (f"KnowledgeGraph({self.name!r}, entities={self.num_entities}, "
                f"relations={self.num_relations}, {sizes})")


def _lookup(index: dict[str, int], label: str, what: str, name: str) -> int:
    i = index.get(label)
    if i is None:
        import difflib

        close = difflib.get_close_matches(label, list(index), n=3)
        hint = f"; closest: {', '.join(map(repr, close))}" if close else ""
        raise IndexOutOfRangeError(f"{what} {label!r} is not in knowledge graph {name!r}{hint}")
    return i
