"""Graph retrieval-augmented generation (GRAG): text graphs, their descriptions, retrieval.

::

    from graphlearn.kg.grag import TextGraph, describe, parse_description

    g = TextGraph.from_triples([("alice", "knows", "bob"), ("bob", "lives in", "paris")])
    text = describe(g, roots=[g.node_id("bob")])    # GRAG's hierarchical description
    assert sorted(parse_description(text).triples()) == sorted(g.triples())

- :class:`TextGraph` (:mod:`graphlearn.kg.grag.textgraph`): a directed multigraph with text on
  nodes and edges; built from triples, a :class:`~graphlearn.kg.KnowledgeGraph`, TSV,
  ExplaGraphs graph strings, RDF and networkx; induced and k-hop subgraphs through PyG.
- :func:`describe` / :func:`parse_description` (:mod:`graphlearn.kg.grag.describe`): the
  breadth-first-forest description an LLM reads, and its lossless inverse.
- Encoders (:mod:`graphlearn.kg.grag.encoder`): :class:`SentenceTransformerEncoder`
  (all-MiniLM-L6-v2 offline by default), :class:`CallableEncoder`, :class:`HashingEncoder`
  (lexical, model-free).
- :class:`GraphIndex` (:mod:`graphlearn.kg.grag.index`): node, edge and pooled k-hop
  ego-graph embeddings with a faiss index; save/load, incremental ``add``.
- :func:`retrieve` (GRAG), :func:`text_rag` and :func:`khop_baseline`
  (:mod:`graphlearn.kg.grag.retrieve`), each giving a :class:`Retrieval`.
- Retrieval metrics (:mod:`graphlearn.kg.grag.metrics`): answer recall and coverage, gold-path
  recall and full-path recall of a retrieved subgraph.
- :class:`GRAG` (:mod:`graphlearn.kg.grag.pipeline`): index, retrieve, prune and generate
  behind one object (``build``, ``save``/``load``, ``retrieve``, ``answer``, ``stream``,
  ``add``); :mod:`graphlearn.kg.grag.service` serves it over HTTP.
- Generators (:mod:`graphlearn.kg.grag.generate`): the :class:`Generator` protocol,
  :class:`RetrievalOnlyGenerator`, :class:`SoftPromptGenerator` (:mod:`~graphlearn.kg.grag.hf`:
  a local Hugging Face causal LM with a GNN soft prompt, frozen or LoRA) and
  :class:`OpenAICompatibleGenerator` (:mod:`~graphlearn.kg.grag.openai_compat`).
- :class:`SoftPruner` and :func:`train_pruner` (:mod:`graphlearn.kg.grag.prune`): GRAG's
  learned relevance gates on the retrieved nodes and edges.

::

    from graphlearn.kg.grag import GraphIndex, SentenceTransformerEncoder, retrieve

    index = GraphIndex.build(g, SentenceTransformerEncoder(), num_hops=1)
    r = retrieve(index, "where does bob live?", k=3)
    print(r.description)

The text-graph QA datasets (PathQuestion, ExplaGraphs, WebQSP, MetaQA) are in
:mod:`graphlearn.datasets.textgraph`.
"""

from graphlearn.kg.grag.describe import describe, format_text, parse_description
from graphlearn.kg.grag.encoder import (
    CachedTextEncoder,
    CallableEncoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    encoder_from_spec,
)
from graphlearn.kg.grag.generate import (
    DEFAULT_TEMPLATE,
    BaseGenerator,
    Generator,
    RetrievalOnlyGenerator,
    build_prompt,
)
from graphlearn.kg.grag.hf import GraphPromptEncoder, SoftPromptGenerator
from graphlearn.kg.grag.index import GraphIndex, IndexUpdate, ego_graph_embeddings, triple_texts
from graphlearn.kg.grag.metrics import (
    answer_coverage,
    answer_recall,
    full_path_recall,
    mean_retrieval_quality,
    path_recall,
    retrieval_quality,
)
from graphlearn.kg.grag.openai_compat import OpenAICompatibleGenerator
from graphlearn.kg.grag.pipeline import GRAG, Answer, retrieval_to_dict
from graphlearn.kg.grag.prune import (
    PruningExample,
    SoftPruner,
    make_pruning_examples,
    pruning_labels,
    pruning_loss,
    train_pruner,
)
from graphlearn.kg.grag.retrieve import Retrieval, khop_baseline, retrieve, text_rag
from graphlearn.kg.grag.textgraph import TextGraph, parse_graph_string

__all__ = [
    "TextGraph", "describe", "format_text", "parse_description", "parse_graph_string",
    "TextEncoder", "CachedTextEncoder", "SentenceTransformerEncoder", "CallableEncoder",
    "HashingEncoder", "encoder_from_spec",
    "GraphIndex", "IndexUpdate", "ego_graph_embeddings", "triple_texts",
    "Retrieval", "retrieve", "text_rag", "khop_baseline",
    "SoftPruner", "PruningExample", "pruning_labels", "make_pruning_examples", "pruning_loss",
    "train_pruner",
    "GRAG", "Answer", "retrieval_to_dict",
    "answer_recall", "answer_coverage", "path_recall", "full_path_recall", "retrieval_quality",
    "mean_retrieval_quality",
    "Generator", "BaseGenerator", "RetrievalOnlyGenerator", "build_prompt", "DEFAULT_TEMPLATE",
    "SoftPromptGenerator", "GraphPromptEncoder", "OpenAICompatibleGenerator",
]
