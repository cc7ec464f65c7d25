r"""Text-graph question answering: PathQuestion, ExplaGraphs, WebQSP and MetaQA.

Each loader returns a :class:`TextGraphQADataset`: a list of :class:`TextGraphQAExample`
(question, answers, topic entities, gold relation path, per-example graph) plus, for
datasets that answer over one knowledge base, that base as a
:class:`~graphlearn.kg.grag.TextGraph` (:attr:`TextGraphQADataset.graph`), and train / val /
test indices (:attr:`TextGraphQADataset.split_index`, :meth:`TextGraphQADataset.split`).

- **PathQuestion** (``pathquestion``, option ``variant``): multi-hop questions over small
  Freebase subsets (Zhou et al., COLING 2018), from the IRN repository. ``PQ-2H``/``PQ-3H``
  are templated 2/3-hop questions over ``2H-kb.txt``/``3H-kb.txt``; ``PQL-2H``/``PQL-3H`` (and
  ``PQL-3H_more``, twice the PQL-3H questions) are the larger-KB versions over
  ``PQL2-KB.txt``/``PQL3-KB.txt``. A line is ``question<TAB>answer(a1/a2/...)<TAB>path``; the
  path ``subject#r1#e1#r2#...#answer`` (PQ paths end with ``#<end>#answer``) becomes the gold
  path as triples, its first entity the topic entity. Leading spaces of PQL questions are
  stripped; entity names may hold brackets (``Hard_Times_(live)``), which the answer field
  is parsed around. There is no official split: papers split 8:1:1 at random, so the split is
  a seeded 80/10/10 permutation (``split_seed``, default 0). Paraphrases of one question
  (same path) land in different splits, as in the papers' random splits.
- **ExplaGraphs** (``expla_graphs``): stance prediction (``support``/``counter``) for a pair
  of arguments with a commonsense explanation graph ``(h; r; t)(h; r; t)...`` per example
  (Saha et al., EMNLP 2021), the train+dev file G-Retriever uses. The question is
  G-Retriever's prompt text; the answer is the label. There is no official test split:
  G-Retriever draws 60/20/20 with scikit-learn's ``train_test_split`` (``random_state=42``,
  then the 40% halved with the same seed); this loader does exactly that, so the default
  ``split_seed=42`` reproduces G-Retriever's indices.
- **WebQSP** (``webqsp``): WebQuestionsSP with a per-question Freebase subgraph, as
  packaged by RoG (``rmanluo/RoG-webqsp`` parquet files on Hugging Face), the data G-Retriever
  and GRAG use; official train / validation / test. Texts are kept as they are (G-Retriever
  lower-cases node texts; do so downstream if wanted). Reading parquet needs ``pyarrow``.
- **MetaQA** (``metaqa``, option ``hops``): the vanilla 1/2/3-hop movie questions over the
  WikiMovies knowledge base ``kb.txt`` (``subject|relation|object``), Zhang et al., AAAI 2018;
  official train / dev / test. Topic entities are the ``[bracketed]`` spans of a question
  (the brackets stay in the question); answers are split on ``|``. The release is a Google
  Drive folder: with ``gdown`` installed the loader fetches only the needed files, otherwise
  the offline error names them and where to put them.

Data files are looked up under ``root`` / ``$GRAPHLEARN_DATA`` in ``textgraph/<dataset>/``
(see :mod:`graphlearn.data.files`); missing files are downloaded from the canonical source
unless ``download=False``.

**STATS** (as loaded from the files):

.. list-table::
    :header-rows: 1

    * - Name
      - #questions
      - hops
      - KB triples
      - KB nodes
      - split
    * - PathQuestion PQ-2H
      - 1,908
      - 2
      - 1,211
      - 1,056
      - 1,526 / 191 / 191
    * - PathQuestion PQ-3H
      - 5,198
      - 3
      - 2,839
      - 1,836
      - 4,158 / 520 / 520
    * - PathQuestion PQL-2H
      - 1,594
      - 2
      - 4,247
      - 5,034
      - 1,276 / 159 / 159
    * - PathQuestion PQL-3H
      - 1,031
      - 3
      - 5,597
      - 6,505
      - 825 / 103 / 103
    * - ExplaGraphs
      - 2,766 (1,534 support, 1,232 counter)
      - -
      - ~4.2 triples, ~5.2 nodes per graph
      -
      - 1,659 / 553 / 554
    * - WebQSP (RoG)
      - 4,700
      - 1-2
      - per-question subgraphs
      -
      - 2,826 / 246 / 1,628
    * - MetaQA 1/2/3-hop
      - 116,045 / 148,724 / 142,744
      - 1 / 2 / 3
      - one KB (``kb.txt``)
      -
      - official train / dev / test

Every PathQuestion answer and every entity on every gold path is a node of its KB, and
every gold-path triple is a KB edge (checked by the tests).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from graphlearn.kg.grag import TextGraph
from torch import Tensor

from graphlearn.data.dataset import DatasetInfo, TaskKind, register_dataset
from graphlearn.data.files import download_url, require_raw_files
from graphlearn.errors import DataFormatError, InvalidArgumentError

__all__ = [
    "TextGraphQAExample",
    "TextGraphQADataset",
    "PATHQUESTION_URL",
    "EXPLA_GRAPHS_URL",
    "WEBQSP_URL",
    "METAQA_URL",
    "load_pathquestion",
    "load_expla_graphs",
    "load_webqsp",
    "load_metaqa",
    "parse_pathquestion_answers",
    "parse_pathquestion_path",
]

PATHQUESTION_URL = ("https://raw.githubusercontent.com/zmtkeke/IRN/"
                    "32f70d311978bfc1b911c60dff3e9d291b9a2447/PathQuestion")
"""The IRN repository's ``PathQuestion/`` folder (pinned commit)."""

EXPLA_GRAPHS_URL = ("https://raw.githubusercontent.com/XiaoxinHe/G-Retriever/"
                    "315b0ff8a206536067602fb97e77c10f4d646d5d/dataset/expla_graphs")
"""G-Retriever's ``dataset/expla_graphs/`` folder (pinned commit) holding ``train_dev.tsv``."""

WEBQSP_URL = "https://huggingface.co/datasets/rmanluo/RoG-webqsp/resolve/main/data"
"""The parquet shards of ``rmanluo/RoG-webqsp`` on Hugging Face."""

METAQA_URL = ("https://drive.google.com/drive/folders/0B-36Uca2AvwhTWVFSUZqRXVtbUE"
              "?resourcekey=0-kdv6ho5KcpEXdI2aUdLn_g")
"""The official MetaQA Google Drive folder (linked from github.com/yuyuz/MetaQA)."""

SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------------------- containers
@dataclass(frozen=True, eq=False)
class TextGraphQAExample:
    """One question of a text-graph QA dataset.

    Attributes:
        id (str): Identifier (``"PQ-2H:17"`` = line 17 of ``PQ-2H.txt``; WebQSP's own id).
        question (str): The question text.
        answers (tuple[str, ...]): Gold answers (entity texts; ExplaGraphs: the label).
        topic_entities (tuple[str, ...]): The entities the question is about.
        path (tuple[tuple[str, str, str], ...]): Gold reasoning path as ``(head, relation,
            tail)`` triples (PathQuestion; empty where the data has none).
        graph (TextGraph, optional): The example's own graph (ExplaGraphs, WebQSP); ``None``
            where all examples share :attr:`TextGraphQADataset.graph`.
        fields (Mapping[str, Any]): Further raw fields (ExplaGraphs ``arg1``/``arg2``,
            WebQSP ``a_entity``).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    topic_entities: tuple[str, ...] = ()
    path: tuple[tuple[str, str, str], ...] = ()
    graph: TextGraph | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def relation_path(self) -> tuple[str, ...]:
        """The relations along :attr:`path`."""
        return tuple(r for _, r, _ in self.path)


class TextGraphQADataset:
    """Questions answered over text graphs, with a train / val / test split.

    Attributes:
        info (DatasetInfo): Metadata (task kind ``text_graph_qa``, source, citation).
        examples (list[TextGraphQAExample]): Every example, in file order.
        graph (TextGraph, optional): The knowledge base all questions share (PathQuestion,
            MetaQA); ``None`` when each example carries its own :attr:`~TextGraphQAExample.graph`.
        split_index (dict[str, Tensor]): ``train``/``val``/``test`` example indices (long).
    """

    task = TaskKind.TEXT_GRAPH_QA

    def __init__(self, info: DatasetInfo, examples: list[TextGraphQAExample],
                 split_index: dict[str, Tensor], graph: TextGraph | None = None) -> None:
        self.info = info
        self.examples = list(examples)
        self.graph = graph
        self.split_index = {k: torch.as_tensor(v, dtype=torch.long) for k, v in split_index.items()}

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> TextGraphQAExample:
        return self.examples[index]

    def __iter__(self) -> Iterator[TextGraphQAExample]:
        return iter(self.examples)

    def split(self, name: str) -> list[TextGraphQAExample]:
        """The examples of split ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if name not in self.split_index:
            raise InvalidArgumentError(f"{self.info.name} has splits "
                                       f"{', '.join(map(repr, self.split_index))}, not {name!r}")
        return [self.examples[i] for i in self.split_index[name].tolist()]

    def split_sizes(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in self.split_index.items()}

    def graph_of(self, index: int) -> TextGraph:
        """The graph example ``index`` is answered over: its own, else the shared one."""
        g = self.examples[index].graph
        return g if g is not None else self.graph

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.split_sizes().items())
        kb = f", graph={self.graph!r}" if self.graph is not None else ""
        return f"{type(self).__name__}({self.info.name!r}, examples={len(self)}, {sizes}{kb})"


# ---------------------------------------------------------------------------- helpers
def _check_seed(seed: Any, name: str = "split_seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgumentError(f"{name} must be an int, got {seed!r}")
    return seed


def _random_split(n: int, seed: int, valid_fraction: float = 0.1,
                  test_fraction: float = 0.1) -> dict[str, Tensor]:
    """A seeded permutation cut into train / val / test (each sorted)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(n * valid_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    parts = (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])
    return {k: p.sort().values for k, p in zip(SPLITS, parts, strict=True)}


def _file_fetcher(url: str, files: tuple[str, ...]) -> Callable[[Path], None]:
    def fetch(folder: Path) -> None:
        for f in files:
            download_url(f"{url}/{f}", folder / os.path.dirname(f), os.path.basename(f))

    return fetch


def _read_lines(path: Path) -> list[str]:
    # split on "\n" only: str.splitlines() would also split at \x0b, \x85, \u2028, ...
    with path.open(encoding="utf-8", newline="") as f:
        return [line[:-1] if line.endswith("\r") else line for line in f.read().split("\n")]


def _read_kb(path: Path, separator: str) -> TextGraph:
    """A KB file of ``subject<SEP>relation<SEP>object`` lines as a TextGraph (file:line errors)."""
    triples = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split(separator)
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise DataFormatError(f"{path}:{lineno}: expected subject{separator!r}relation"
                                  f"{separator!r}object with 3 non-empty fields, got "
                                  f"{len(parts)}: {line[:120]!r}")
        triples.append(tuple(p.strip() for p in parts))
    return TextGraph.from_triples(triples)


def _with_variant(info: DatasetInfo, suffix: str, files: tuple[str, ...],
                  stats: dict[str, int]) -> DatasetInfo:
    return dataclasses.replace(info, description=f"{info.description} ({suffix})",
                               raw_files=files, stats=stats)


def _normalize(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")


# ---------------------------------------------------------------------------- PathQuestion
#: variant -> (QA file, KB file, hops, questions, KB triples)
PATHQUESTION_VARIANTS = {
    "PQ-2H": ("PQ-2H.txt", "2H-kb.txt", 2, 1908, 1211),
    "PQ-3H": ("PQ-3H.txt", "3H-kb.txt", 3, 5198, 2839),
    "PQL-2H": ("PQL-2H.txt", "PQL2-KB.txt", 2, 1594, 4247),
    "PQL-3H": ("PQL-3H.txt", "PQL3-KB.txt", 3, 1031, 5597),
    "PQL-3H_more": ("PQL-3H_more.txt", "PQL3-KB.txt", 3, 2062, 5597),
}
_PQ_FILES = tuple(dict.fromkeys(f for qa, kb, *_ in PATHQUESTION_VARIANTS.values()
                                for f in (qa, kb)))


def parse_pathquestion_answers(text: str) -> tuple[str, ...]:
    """Parse PathQuestion's answer field ``main(a1/a2/.../)`` into ``(a1, a2, ...)``.

    Entity names may hold brackets (``Hard_Times_(live)(Hard_Times_(live)/Hard_Times/)``), so
    the field is cut at the ``(`` whose prefix (the main answer) is one of the answers.

    Raises:
        DataFormatError: No such cut exists.
    """
    if text.endswith(")"):
        for i, ch in enumerate(text):
            if ch == "(":
                main, inner = text[:i], text[i + 1:-1]
                answers = tuple(a for a in inner.split("/") if a)
                if main in answers:
                    return answers
    raise DataFormatError(f"answer field {text[:120]!r} is not 'answer(answer1/answer2/.../)' "
                          f"with the answer among the listed ones")


def parse_pathquestion_path(text: str) -> tuple[tuple[str, str, str], ...]:
    """Parse a PathQuestion path ``e0#r1#e1#...#rk#ek`` (PQ: ``...#ek#<end>#ek``) into triples.

    Raises:
        DataFormatError: The path has an even number of ``#`` fields, an empty field, or an
            ``<end>`` marker not followed by exactly the last entity.
    """
    parts = text.split("#")
    if "<end>" in parts:
        k = parts.index("<end>")
        if k < 1 or parts[k + 1:] != [parts[k - 1]]:
            raise DataFormatError(f"path {text[:160]!r} must end with '#<end>#' and its last "
                                  f"entity again")
        parts = parts[:k]
    if len(parts) < 3 or len(parts) % 2 == 0 or not all(parts):
        raise DataFormatError(f"path {text[:160]!r} is not 'entity#relation#entity[#relation#"
                              f"entity...]' with non-empty fields")
    return tuple((parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts) - 2, 2))


def _read_pathquestion(path: Path, variant: str) -> list[TextGraphQAExample]:
    examples = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataFormatError(f"{path}:{lineno}: expected question<TAB>answers<TAB>path, got "
                                  f"{len(parts)} tab-separated field(s): {line[:120]!r}")
        question, answer_field, path_field = parts
        try:
            answers = parse_pathquestion_answers(answer_field.strip())
            gold = parse_pathquestion_path(path_field.strip())
        except DataFormatError as exc:
            raise DataFormatError(f"{path}:{lineno}: {exc}") from None
        examples.append(TextGraphQAExample(
            id=f"{variant}:{lineno}", question=question.strip(), answers=answers,
            topic_entities=(gold[0][0],), path=gold))
    return examples


def load_pathquestion(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                      variant: str = "PQ-2H", split_seed: int = 0,
                      download: bool = True) -> TextGraphQADataset:
    """Load a PathQuestion variant: its questions and its KB as a :class:`TextGraph`.

    Args:
        variant (str): ``"PQ-2H"``, ``"PQ-3H"``, ``"PQL-2H"``, ``"PQL-3H"`` or
            ``"PQL-3H_more"`` (case, ``-`` and ``_`` ignored). (default: ``"PQ-2H"``)
        split_seed (int): Seed of the 80/10/10 split. (default: :obj:`0`)
        download (bool): Fetch missing files from the IRN repository.
    """
    choices = {_normalize(v): v for v in PATHQUESTION_VARIANTS}
    canonical = choices.get(_normalize(variant)) if isinstance(variant, str) else None
    if canonical is None:
        raise InvalidArgumentError(f"PathQuestion variant must be one of "
                                   f"{', '.join(PATHQUESTION_VARIANTS)}, got {variant!r}")
    seed = _check_seed(split_seed)
    qa, kb, hops, n_questions, n_triples = PATHQUESTION_VARIANTS[canonical]
    vinfo = _with_variant(info, canonical, (qa, kb), {"questions": n_questions, "hops": hops,
                                                      "kb_triples": n_triples})
    folder = require_raw_files(vinfo, root, download=download,
                               fetch=_file_fetcher(PATHQUESTION_URL, (qa, kb)))
    examples = _read_pathquestion(folder / qa, canonical)
    graph = _read_kb(folder / kb, "\t")
    return TextGraphQADataset(vinfo, examples, _random_split(len(examples), seed), graph)


register_dataset(DatasetInfo(
    name="pathquestion", task=TaskKind.TEXT_GRAPH_QA,
    description="PathQuestion: 2/3-hop questions over Freebase subsets with gold relation paths",
    metric="hits@1",
    splits="no official split; seeded random 80/10/10 (split_seed, default 0)",
    url=PATHQUESTION_URL,
    citation="Zhou, M., Huang, M. and Zhu, X. An Interpretable Reasoning Network for "
             "Multi-Relation Question Answering. COLING 2018.",
    license="none stated by the source repository (zmtkeke/IRN); KB facts from Freebase (CC BY)",
    raw_dir="textgraph/pathquestion", raw_files=_PQ_FILES,
    stats={f"{v} questions": spec[3] for v, spec in PATHQUESTION_VARIANTS.items()},
))(load_pathquestion)


# ---------------------------------------------------------------------------- ExplaGraphs
#: G-Retriever's instruction appended to each ExplaGraphs argument pair.
EXPLA_GRAPHS_PROMPT = ("Question: Do argument 1 and argument 2 support or counter each other? "
                       "Answer in one word in the form of 'support' or 'counter'.\n\nAnswer:")
_EXPLA_HEADER = ["arg1", "arg2", "label", "graph"]


def _gretriever_split(n: int, seed: int) -> dict[str, Tensor]:
    """G-Retriever's 60/20/20 split: ``train_test_split(test_size=0.4)``, then halve the rest."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    train, rest = train_test_split(np.arange(n), test_size=0.4, random_state=seed)
    val, test = train_test_split(rest, test_size=0.5, random_state=seed)
    return {k: torch.as_tensor(np.sort(v), dtype=torch.long)
            for k, v in zip(SPLITS, (train, val, test), strict=True)}


def _read_expla_graphs(path: Path) -> list[TextGraphQAExample]:
    examples = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")  # arguments holding '"' are CSV-quoted
        header = next(reader, None)
        if header != _EXPLA_HEADER:
            raise DataFormatError(f"{path}:1: expected the header {'<TAB>'.join(_EXPLA_HEADER)}, "
                                  f"got {header!r}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row:
                continue
            if len(row) != 4:
                raise DataFormatError(f"{where}: expected 4 tab-separated fields (arg1, arg2, "
                                      f"label, graph), got {len(row)}")
            arg1, arg2, label, graph = row
            if label not in ("support", "counter"):
                raise DataFormatError(f"{where}: label must be 'support' or 'counter', "
                                      f"got {label!r}")
            try:
                g = TextGraph.from_graph_string(graph)
            except DataFormatError as exc:
                raise DataFormatError(f"{where}: {exc}") from None
            examples.append(TextGraphQAExample(
                id=str(len(examples)), question=f"Argument 1: {arg1}\nArgument 2: {arg2}\n"
                f"{EXPLA_GRAPHS_PROMPT}", answers=(label,), graph=g,
                fields={"arg1": arg1, "arg2": arg2}))
    return examples


def load_expla_graphs(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                      split_seed: int = 42, download: bool = True) -> TextGraphQADataset:
    """Load ExplaGraphs (train+dev) with one explanation graph per example.

    Args:
        split_seed (int): ``random_state`` of G-Retriever's 60/20/20 split; the default 42
            gives G-Retriever's indices.
        download (bool): Fetch a missing ``train_dev.tsv`` from the G-Retriever repository.
    """
    seed = _check_seed(split_seed)
    folder = require_raw_files(info, root, download=download,
                               fetch=_file_fetcher(EXPLA_GRAPHS_URL, info.raw_files))
    examples = _read_expla_graphs(folder / "train_dev.tsv")
    return TextGraphQADataset(info, examples, _gretriever_split(len(examples), seed))


register_dataset(DatasetInfo(
    name="expla_graphs", task=TaskKind.TEXT_GRAPH_QA,
    description="ExplaGraphs: do two arguments support or counter each other, with an "
                "explanation graph per pair",
    metric="accuracy",
    splits="no official test split; G-Retriever's seeded 60/20/20 (sklearn train_test_split, "
           "random_state=42)",
    url=f"{EXPLA_GRAPHS_URL}/train_dev.tsv",
    citation="Saha, S., Yadav, P., Bauer, L. and Bansal, M. ExplaGraphs: An Explanation Graph "
             "Generation Task for Structured Commonsense Reasoning. EMNLP 2021. Packaged by "
             "He, X. et al. G-Retriever: Retrieval-Augmented Generation for Textual Graph "
             "Understanding and Question Answering. NeurIPS 2024.",
    license="MIT (XiaoxinHe/G-Retriever repository, which redistributes the file)",
    raw_dir="textgraph/expla_graphs", raw_files=("train_dev.tsv",),
    stats={"examples": 2766, "support": 1534, "counter": 1232, "train": 1659, "val": 553,
           "test": 554},
))(load_expla_graphs)


# ---------------------------------------------------------------------------- WebQSP
_WEBQSP_SHARDS = {
    "train": ("train-00000-of-00002-d810a36ed97bc2cc.parquet",
              "train-00001-of-00002-e53244e71082a392.parquet"),
    "val": ("validation-00000-of-00001-6ee6adc5b154643a.parquet",),
    "test": ("test-00000-of-00002-9ee8d68f7d951e1f.parquet",
             "test-00001-of-00002-773a7b8213e159f5.parquet"),
}


def _read_parquet_rows(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ImportError(f"reading {path.name} needs pyarrow; install it with "
                          f"`pip install pyarrow`") from exc
    return pq.read_table(path).to_pylist()


def _webqsp_example(row: Mapping[str, Any], where: str) -> TextGraphQAExample:
    try:
        triples = [tuple(t) for t in row["graph"]]
        graph = TextGraph.from_triples(triples)
        return TextGraphQAExample(
            id=str(row["id"]), question=str(row["question"]), answers=tuple(row["answer"]),
            topic_entities=tuple(row["q_entity"]), graph=graph,
            fields={"a_entity": tuple(row.get("a_entity") or ())})
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{where}: not a RoG-webqsp row (id, question, answer, q_entity, "
                              f"a_entity, graph): {exc}") from None


def load_webqsp(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                download: bool = True) -> TextGraphQADataset:
    """Load RoG's WebQSP: questions with a Freebase subgraph each, official splits.

    Args:
        download (bool): Fetch missing parquet shards from Hugging Face.
    """
    folder = require_raw_files(info, root, download=download,
                               fetch=_file_fetcher(WEBQSP_URL, info.raw_files))
    examples: list[TextGraphQAExample] = []
    split_index: dict[str, list[int]] = {}
    for split, shards in _WEBQSP_SHARDS.items():
        start = len(examples)
        for shard in shards:
            for k, row in enumerate(_read_parquet_rows(folder / shard)):
                examples.append(_webqsp_example(row, f"{folder / shard}, row {k}"))
        split_index[split] = list(range(start, len(examples)))
    return TextGraphQADataset(info, examples, {k: torch.tensor(v, dtype=torch.long)
                                               for k, v in split_index.items()})


register_dataset(DatasetInfo(
    name="webqsp", task=TaskKind.TEXT_GRAPH_QA,
    description="WebQuestionsSP with a retrieved Freebase subgraph per question (RoG packaging)",
    metric="hits@1", splits="official train / validation / test",
    url="https://huggingface.co/datasets/rmanluo/RoG-webqsp",
    citation="Yih, W., Richardson, M., Meek, C., Chang, M.-W. and Suh, J. The Value of Semantic "
             "Parse Labeling for Knowledge Base Question Answering. ACL 2016. Subgraphs: Luo, L., "
             "Li, Y.-F., Haffari, G. and Pan, S. Reasoning on Graphs: Faithful and Interpretable "
             "Large Language Model Reasoning. ICLR 2024.",
    license="not stated on the rmanluo/RoG-webqsp card; WebQSP is a Microsoft Research release",
    raw_dir="textgraph/webqsp", raw_files=tuple(f for s in _WEBQSP_SHARDS.values() for f in s),
    stats={"train": 2826, "val": 246, "test": 1628},
))(load_webqsp)


# ---------------------------------------------------------------------------- MetaQA
#: hops -> (train, dev, test) question counts of the MetaQA README
METAQA_SIZES = {1: (96106, 9992, 9947), 2: (118980, 14872, 14872), 3: (114196, 14274, 14274)}
_METAQA_SPLIT_FILES = {"train": "qa_train.txt", "val": "qa_dev.txt", "test": "qa_test.txt"}
_METAQA_FILES = ("kb.txt",) + tuple(f"{h}-hop/vanilla/{f}" for h in METAQA_SIZES
                                    for f in _METAQA_SPLIT_FILES.values())
_BRACKETED = re.compile(r"\[([^\[\]]+)\]")


def _metaqa_fetcher(files: tuple[str, ...]) -> Callable[[Path], None]:
    """Download ``files`` (paths inside the MetaQA folder) from the Google Drive folder.

    Google Drive folders need ``gdown`` (not a graphlearn dependency): it lists the folder,
    and only the requested files are downloaded (the folder also holds gigabytes of audio).
    """

    def fetch(folder: Path) -> None:
        try:
            import gdown
        except ImportError as exc:
            raise OSError("MetaQA is shared as a Google Drive folder, which needs gdown "
                          "(pip install gdown) to download") from exc
        try:
            listing = gdown.download_folder(url=METAQA_URL, skip_download=True, quiet=True,
                                            output=str(folder))
            by_path = {str(item.path).replace(os.sep, "/"): item for item in listing or ()}
            for rel in files:
                item = next((v for k, v in by_path.items() if k == rel or k.endswith("/" + rel)),
                            None)
                if item is None:
                    raise OSError(f"{rel} is not in the Google Drive folder listing")
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                gdown.download(id=item.id, output=str(folder / rel), quiet=False)
        except OSError:
            raise
        except Exception as exc:  # gdown raises its own classes (FileURLRetrievalError, ...)
            raise OSError(f"gdown failed: {exc}") from exc

    return fetch


def _read_metaqa_questions(path: Path, split: str, hops: int) -> list[TextGraphQAExample]:
    examples = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise DataFormatError(f"{path}:{lineno}: expected question<TAB>answer1|answer2|..., "
                                  f"got {len(parts)} tab-separated field(s): {line[:120]!r}")
        question = parts[0].strip()
        topics = tuple(_BRACKETED.findall(question))
        if not topics:
            raise DataFormatError(f"{path}:{lineno}: the question marks no [topic entity]: "
                                  f"{question[:120]!r}")
        examples.append(TextGraphQAExample(
            id=f"{hops}-hop/{split}:{lineno}", question=question,
            answers=tuple(a.strip() for a in parts[1].split("|") if a.strip()),
            topic_entities=topics))
    return examples


def load_metaqa(info: DatasetInfo, root: str | os.PathLike | None = None, *, hops: int = 1,
                download: bool = True) -> TextGraphQADataset:
    """Load vanilla MetaQA ``hops``-hop questions and the movie KB as a :class:`TextGraph`.

    Args:
        hops (int): 1, 2 or 3. (default: :obj:`1`)
        download (bool): Fetch missing files from the MetaQA Google Drive folder (needs gdown).
    """
    if isinstance(hops, bool) or hops not in METAQA_SIZES:
        raise InvalidArgumentError(f"MetaQA hops must be 1, 2 or 3, got {hops!r}")
    files = ("kb.txt",) + tuple(f"{hops}-hop/vanilla/{f}" for f in _METAQA_SPLIT_FILES.values())
    sizes = METAQA_SIZES[hops]
    vinfo = _with_variant(info, f"{hops}-hop", files, dict(zip(SPLITS, sizes, strict=True)))
    folder = require_raw_files(vinfo, root, download=download, fetch=_metaqa_fetcher(files))
    examples: list[TextGraphQAExample] = []
    split_index = {}
    for split, name in _METAQA_SPLIT_FILES.items():
        start = len(examples)
        examples.extend(_read_metaqa_questions(folder / f"{hops}-hop/vanilla/{name}", split, hops))
        split_index[split] = torch.arange(start, len(examples))
    return TextGraphQADataset(vinfo, examples, split_index, _read_kb(folder / "kb.txt", "|"))


register_dataset(DatasetInfo(
    name="metaqa", task=TaskKind.TEXT_GRAPH_QA,
    description="MetaQA (vanilla): 1/2/3-hop movie questions over the WikiMovies knowledge base",
    metric="hits@1", splits="official train / dev / test",
    url=METAQA_URL,
    citation="Zhang, Y., Dai, H., Kozareva, Z., Smola, A. J. and Song, L. Variational Reasoning "
             "for Question Answering with Knowledge Graph. AAAI 2018.",
    license="Creative Commons Public License (per the MetaQA README; a copy ships with the data)",
    raw_dir="textgraph/metaqa", raw_files=_METAQA_FILES,
    stats={f"{h}-hop {s}": n for h, ns in METAQA_SIZES.items()
           for s, n in zip(SPLITS, ns, strict=True)},
))(load_metaqa)
