"""Graph retrieval-augmented generation (GRAG): text graphs and their text descriptions.

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

The text-graph QA datasets (PathQuestion, ExplaGraphs, WebQSP, MetaQA) are in
:mod:`graphlearn.datasets.textgraph`.
"""

from graphlearn.kg.grag.describe import describe, format_text, parse_description
from graphlearn.kg.grag.textgraph import TextGraph, parse_graph_string

__all__ = ["TextGraph", "describe", "format_text", "parse_description", "parse_graph_string"]
