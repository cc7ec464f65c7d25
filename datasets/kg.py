r"""Knowledge-graph link-prediction benchmarks: transductive, RED-GNN layout and inductive.

- **Transductive** (``fb15k-237``, ``wn18rr``, ``umls``): ``train/valid/test.txt`` triples
  as packaged by Dettmers et al. (ConvE), downloaded as the repository's ``<name>.tar.gz``.
- **RED-GNN layout** (``family``, ``umls-redgnn``, ``wn18rr-redgnn``): ``facts.txt`` is the
  background graph reasoners propagate over, ``train/valid/test.txt`` are the query triples,
  ``entities.txt``/``relations.txt`` fix the id order (Zhang and Yao, WWW 2022, as shipped
  with RUN-GNN).
- **Inductive** (``wn18rr_v1`` .. ``v4``, ``fb237_v1`` .. ``v4``, ``nell_v1`` .. ``v4``):
  GraIL's splits (Teru et al., ICML 2020). Training and validation use ``<name>/``; testing
  answers ``<name>_ind/test.txt`` over the facts ``<name>_ind/train.txt``, whose entities are
  disjoint from training's. Every entity of the test graph is ranked (full filtered ranking,
  as RED-GNN reports), not GraIL's 50 sampled negatives.

Loading a user's own graph: ``graphlearn.datasets.load("path/to/folder")`` reads a folder of
``train/valid/test`` TSV files (:meth:`~graphlearn.kg.KnowledgeGraph.from_tsv`), and a path
to an RDF file is parsed with rdflib (see :func:`load_kg_path`).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from pathlib import Path

from graphlearn.kg.dataset import LinkPredictionDataset
from graphlearn.kg.graph import KnowledgeGraph

from graphlearn.data.dataset import DatasetInfo, TaskKind, register_dataset
from graphlearn.data.files import download_url, require_raw_files
from graphlearn.errors import DataFormatError, DataNotFoundError

__all__ = ["CONVE_URL", "REDGNN_URL", "load_transductive", "load_redgnn", "load_inductive",
           "load_kg_path"]

CONVE_URL = "https://github.com/TimDettmers/ConvE/raw/master"
"""Where ``<name>.tar.gz`` of the transductive benchmarks is downloaded from."""

REDGNN_URL = "https://raw.githubusercontent.com/Ninggirsu/RUN-GNN/main"
"""Where the RED-GNN-layout and GraIL inductive files are downloaded from."""

_SPLITS = ("train.txt", "valid.txt", "test.txt")
_REDGNN_FILES = ("entities.txt", "relations.txt", "facts.txt") + _SPLITS
_LICENSE_CONVE = "MIT (TimDettmers/ConvE repository)"
_CITE_REDGNN = ("Zhang, Y. and Yao, Q. Knowledge Graph Reasoning with Relational Digraph. WWW 2022. "
                "RUN-GNN: Wu et al., arXiv:2310.13411.")
_CITE_GRAIL = ("Teru, K., Denis, E. and Hamilton, W. Inductive Relation Prediction by Subgraph "
               "Reasoning. ICML 2020.")


def _tar_fetcher(name: str) -> Callable[[Path], None]:
    def fetch(folder: Path) -> None:
        archive = download_url(f"{CONVE_URL}/{name}.tar.gz", folder)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                base = os.path.basename(member.name)
                if member.isfile() and base in _SPLITS:  # never extract outside the folder
                    member.name = base
                    tar.extract(member, folder, filter="data")

    return fetch


def _file_fetcher(url: str, files: tuple[str, ...]) -> Callable[[Path], None]:
    def fetch(folder: Path) -> None:
        for f in files:
            download_url(f"{url}/{f}", folder / os.path.dirname(f), os.path.basename(f))

    return fetch


# ---------------------------------------------------------------------------- transductive
_TRANSDUCTIVE = {
    "fb15k-237": ("FB15k-237", "Freebase subset without inverse-relation leakage",
                  "Toutanova, K. and Chen, D. Observed versus latent features for knowledge base and "
                  "text inference. CVSC 2015.", {"entities": 14541, "relations": 237,
                                                 "train": 272115, "valid": 17535, "test": 20466}),
    "wn18rr": ("WN18RR", "WordNet subset without inverse-relation leakage",
               "Dettmers, T., Minervini, P., Stenetorp, P. and Riedel, S. Convolutional 2D Knowledge "
               "Graph Embeddings. AAAI 2018.", {"entities": 40943, "relations": 11, "train": 86835,
                                                "valid": 3034, "test": 3134}),
    "umls": ("umls", "Unified Medical Language System: biomedical concepts and relations",
             "Kok, S. and Domingos, P. Statistical Predicate Invention. ICML 2007.",
             {"entities": 135, "relations": 46, "train": 5216, "valid": 652, "test": 661}),
}


def load_transductive(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                      download: bool = True) -> LinkPredictionDataset:
    """Load a ConvE-packaged transductive benchmark (train/valid/test triples)."""
    folder = require_raw_files(info, root, download=download,
                               fetch=_tar_fetcher(Path(info.raw_dir).name))
    return LinkPredictionDataset(info, KnowledgeGraph.from_tsv(folder, name=info.name))


for _name, (_folder, _desc, _cite, _stats) in _TRANSDUCTIVE.items():
    register_dataset(DatasetInfo(
        name=_name, task=TaskKind.LINK_PREDICTION, description=_desc + " (transductive)",
        metric="mrr", splits="official train/valid/test triples; filtered ranking, both sides",
        url=f"{CONVE_URL}/{_folder}.tar.gz", citation=_cite, license=_LICENSE_CONVE,
        raw_dir=f"kg/transductive/{_folder}", raw_files=_SPLITS, stats=_stats,
    ))(load_transductive)


# ---------------------------------------------------------------------------- RED-GNN layout
_REDGNN = {
    "family": ("family", "family relations (Neural LP's family KG)",
               {"entities": 3007, "relations": 12, "facts": 17615, "train": 5868, "valid": 2038,
                "test": 2835}),
    "umls-redgnn": ("umls", "UMLS in RED-GNN's facts/queries layout",
                    {"entities": 135, "relations": 46, "facts": 4006, "train": 1321, "valid": 569,
                     "test": 633}),
    "wn18rr-redgnn": ("WN18RR", "WN18RR in RED-GNN's facts/queries layout",
                      {"entities": 40943, "relations": 11, "facts": 65130, "train": 21705,
                       "valid": 3034, "test": 3134}),
}


def load_redgnn(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                download: bool = True) -> LinkPredictionDataset:
    """Load a RED-GNN-layout dataset: ``facts`` (background graph) plus query splits."""
    folder = require_raw_files(info, root, download=download, fetch=_file_fetcher(
        f"{REDGNN_URL}/transductive/data/{Path(info.raw_dir).name}", info.raw_files))
    return LinkPredictionDataset(info, KnowledgeGraph.from_tsv(folder, name=info.name))


for _name, (_folder, _desc, _stats) in _REDGNN.items():
    register_dataset(DatasetInfo(
        name=_name, task=TaskKind.LINK_PREDICTION, description=_desc + " (transductive)",
        metric="mrr", splits="facts = background graph; train/valid/test = query triples",
        url=f"{REDGNN_URL}/transductive/data/{_folder}", citation=_CITE_REDGNN,
        license="none stated by the source repository", raw_dir=f"kg/redgnn/{_folder}",
        raw_files=_REDGNN_FILES, stats=_stats,
    ))(load_redgnn)


# ---------------------------------------------------------------------------- inductive
def load_inductive(info: DatasetInfo, root: str | os.PathLike | None = None, *,
                   download: bool = True) -> LinkPredictionDataset:
    """Load a GraIL inductive split: the training graph and its entity-disjoint test graph."""
    folder = require_raw_files(info, root, download=download,
                               fetch=_file_fetcher(f"{REDGNN_URL}/inductive/data", info.raw_files))
    name = info.raw_files[0].split("/")[0]
    train = KnowledgeGraph.from_tsv(folder / name, name=info.name)
    # the _ind folders of v2-v4 have no relations.txt; the relation vocabulary is shared
    test = KnowledgeGraph.from_tsv(folder / f"{name}_ind", name=f"{info.name}_ind",
                                   relations=train.relations)
    if test.relations != train.relations:
        extra = sorted(set(test.relations) - set(train.relations))
        raise DataFormatError(f"inductive test graph {name}_ind uses relations unseen in training: "
                              f"{', '.join(extra[:5])}; an inductive split shares its relations")
    overlap = set(train.entities) & set(test.entities)
    if overlap and len(overlap) == test.num_entities:
        raise DataFormatError(f"{name}_ind shares every entity with {name}; not an inductive split")
    return LinkPredictionDataset(info, train, test_graph=test)


for _family, _label in (("WN18RR", "wn18rr"), ("fb237", "fb237"), ("nell", "nell")):
    for _v in range(1, 5):
        _dir = f"{_family}_v{_v}"
        register_dataset(DatasetInfo(
            name=f"{_label}_v{_v}", task=TaskKind.LINK_PREDICTION,
            description=f"GraIL inductive split {_dir}: test entities unseen in training",
            metric="mrr",
            splits=f"train/valid on {_dir}; test queries {_dir}_ind/test.txt over {_dir}_ind/train.txt",
            url=f"{REDGNN_URL}/inductive/data", citation=_CITE_GRAIL,
            license="none stated by the source repository", raw_dir="kg/inductive",
            raw_files=tuple(f"{d}/{f}" for d in (_dir, f"{_dir}_ind") for f in _SPLITS),
        ))(load_inductive)


# ---------------------------------------------------------------------------- user graphs
def load_kg_path(path: str | os.PathLike, **options) -> LinkPredictionDataset:
    """Load a user's knowledge graph from a folder of TSV splits (or an RDF file).

    A folder holds ``train.txt`` (or ``.tsv``) and usually ``valid``/``test`` files, one
    ``head<TAB>relation<TAB>tail`` per line; ``entities.txt``/``relations.txt`` fix the id
    order when present.
    """
    path = Path(path)
    name = path.name
    info = DatasetInfo(name=name, task=TaskKind.LINK_PREDICTION, description=f"user graph {path}",
                       metric="mrr", splits="the files' own splits", url=str(path), citation="",
                       license="")
    if path.is_dir():
        if options:
            raise DataFormatError(f"a TSV folder takes no options; got {', '.join(options)}")
        return LinkPredictionDataset(info, KnowledgeGraph.from_tsv(path, name=name))
    if path.is_file():
        from graphlearn.kg.convert import load_rdf_dataset

        return load_rdf_dataset(path, info, **options)
    raise DataNotFoundError(f"{str(path)!r} does not exist")
