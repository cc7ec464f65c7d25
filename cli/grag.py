"""``graphlearn grag``: index a text graph, ask it questions, serve it over HTTP.

::

    graphlearn grag index facts.tsv --out facts.grag            # TSV, RDF, or a dataset name
    graphlearn grag index pathquestion --option variant=PQ-2H --train-pruner --out pq2h.grag
    graphlearn grag query facts.grag "where does bob live?" -k 3
    graphlearn grag serve facts.grag --port 8000                # POST /retrieve, /answer

Heavy imports happen inside the commands, so ``graphlearn --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

grag_app = typer.Typer(
    help="Graph retrieval-augmented generation: index a text graph, query it, serve it.",
    no_args_is_help=True)

RDF_SUFFIXES = {".ttl", ".nt", ".n3", ".rdf", ".owl", ".xml", ".jsonld", ".trig", ".nq",
                ".trix", ".hext"}


def _read_source(source: str, options: list[str]):
    """A TextGraph and, for a dataset, its QA dataset (for pruner training)."""
    from graphlearn.kg.grag import TextGraph

    from graphlearn.errors import DataNotFoundError, InvalidArgumentError

    path = Path(source)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if path.exists():
        if options:
            raise InvalidArgumentError("--option applies to a dataset name, not to a file")
        if suffixes and suffixes[-1] in RDF_SUFFIXES:
            return TextGraph.from_rdf(path), None
        if path.is_file():  # anything else is read as head<TAB>relation<TAB>tail lines
            return TextGraph.from_tsv(path), None
        raise InvalidArgumentError(f"{source!r} is a folder; pass a triples TSV or an RDF file")
    from graphlearn import datasets
    from graphlearn.train.config import parse_assignment

    if source not in datasets.names():
        raise DataNotFoundError(f"{source!r} is neither a file nor a registered dataset; pass "
                                f"a head<TAB>relation<TAB>tail file, an RDF file, or one of "
                                f"the text-graph datasets (`graphlearn datasets list`)")
    for o in options:
        if "=" not in o:
            raise InvalidArgumentError(f"--option expects key=value (e.g. variant=PQL-2H), "
                                       f"got {o!r}")
    kwargs = dict(parse_assignment(o) for o in options)
    data = datasets.load(source, **kwargs)
    graph = getattr(data, "graph", None)
    if graph is None:
        raise InvalidArgumentError(f"dataset {source!r} has no single shared graph to index "
                                   f"(each example has its own); index one of its graphs from "
                                   f"Python instead")
    return graph, data


def _make_generator(kind: str, *, base_url: str | None, llm_model: str | None,
                    api_key_env: str, hf_model: str | None, soft_prompt: str | None,
                    index_dim: int):
    import os

    from graphlearn.errors import InvalidArgumentError

    if kind == "retrieval":
        from graphlearn.kg.grag import RetrievalOnlyGenerator

        return RetrievalOnlyGenerator()
    if kind == "openai":
        if not base_url or not llm_model:
            raise InvalidArgumentError("--generator openai needs --base-url (e.g. "
                                       "http://localhost:8000/v1) and --llm-model")
        from graphlearn.kg.grag.openai_compat import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator(base_url, llm_model, api_key=os.environ.get(api_key_env))
    if kind == "hf":
        if not hf_model:
            raise InvalidArgumentError("--generator hf needs --hf-model (a local causal-LM "
                                       "folder)")
        from graphlearn.kg.grag.hf import SoftPromptGenerator

        if soft_prompt:
            return SoftPromptGenerator.load(soft_prompt, model=hf_model)
        import warnings

        warnings.warn("--generator hf without --soft-prompt: the graph encoder and projector "
                      "are untrained, so the soft-prompt tokens are random; train them with "
                      "SoftPromptGenerator.fit(...) and .save(dir), then pass --soft-prompt dir",
                      UserWarning, stacklevel=1)
        return SoftPromptGenerator(hf_model, in_channels=index_dim)
    raise InvalidArgumentError(f"--generator must be retrieval, openai or hf, got {kind!r}")


def _generator_options():
    return {
        "generator": typer.Option("retrieval", "--generator", "-g",
                                  help="retrieval (no LLM), openai (an OpenAI-compatible "
                                       "server) or hf (a local Hugging Face causal LM)."),
        "base_url": typer.Option(None, "--base-url",
                                 help="OpenAI-compatible API root, e.g. http://localhost:8000/v1."),
        "llm_model": typer.Option(None, "--llm-model", help="Model name on that server."),
        "api_key_env": typer.Option("OPENAI_API_KEY", "--api-key-env",
                                    help="Environment variable holding the API key."),
        "hf_model": typer.Option(None, "--hf-model", help="Local causal-LM folder (hf)."),
        "soft_prompt": typer.Option(None, "--soft-prompt",
                                    help="Trained soft-prompt weights saved by "
                                         "SoftPromptGenerator.save (hf)."),
    }


_G = _generator_options()


@grag_app.command("index")
def grag_index(
    source: str = typer.Argument(..., help="Triples TSV, RDF file, or a text-graph dataset name."),
    out: str = typer.Option(..., "--out", "-o", help="Folder to write the GRAG index to."),
    option: list[str] | None = typer.Option(None, "--option",
                                            help="Dataset option, e.g. variant=PQL-2H (repeatable)."),
    encoder: str = typer.Option("default", "--encoder",
                                help="default (packaged all-MiniLM-L6-v2), hashing, or a "
                                     "sentence-transformers model folder."),
    hops: int = typer.Option(1, "--hops", help="Ego-graph radius."),
    index_type: str = typer.Option("flat", "--index", help="flat (exact) or hnsw (approximate)."),
    edge_embedding: str = typer.Option("triple", "--edge-embedding",
                                       help="triple (embed 'head relation tail') or relation."),
    k: int = typer.Option(5, "-k", help="Default ego-graphs merged per question."),
    train_pruner: bool = typer.Option(False, "--train-pruner",
                                      help="Train the soft pruner on the dataset's train split."),
    epochs: int = typer.Option(20, "--epochs", help="Pruner training epochs."),
    pruner_steps: int = typer.Option(
        0, "--pruner-steps",
        help="Message-passing rounds before each gate (0: GRAG's per-member gates; the "
             "questions' hop count prunes far more at the same recall)."),
) -> None:
    """Index a text graph: encode its texts, pool its ego-graphs, write a GRAG folder."""
    from graphlearn.kg.grag import GRAG

    from graphlearn.errors import InvalidArgumentError

    start = time.perf_counter()
    graph, data = _read_source(source, option or [])
    typer.echo(f"graph: {graph.num_nodes} nodes, {graph.num_edges} edges", err=True)
    grag = GRAG.build(graph, encoder, num_hops=hops, index_type=index_type,
                      edge_embedding=edge_embedding, k=k)
    if train_pruner:
        if data is None or not hasattr(data, "split"):
            raise InvalidArgumentError("--train-pruner needs a QA dataset with answers (e.g. "
                                       "pathquestion), not a file")
        history = grag.fit_pruner(data.split("train"), epochs=epochs, num_steps=pruner_steps,
                                  product=pruner_steps > 0)
        typer.echo(f"pruner: loss {history[0]:.4f} -> {history[-1]:.4f} over {epochs} epochs",
                   err=True)
    folder = grag.save(out)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    typer.echo(f"wrote {folder} ({size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s")


@grag_app.command("query")
def grag_query(
    folder: str = typer.Argument(..., help="GRAG folder written by `graphlearn grag index`."),
    question: str = typer.Argument(..., help="The question."),
    k: int | None = typer.Option(None, "-k", help="Ego-graphs to merge (default: the folder's)."),
    prune: bool | None = typer.Option(None, "--prune/--no-prune",
                                      help="Soft-prune (default: when the folder has a pruner)."),
    answer: bool = typer.Option(False, "--answer", help="Also generate an answer."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    generator: str = _G["generator"], base_url: str | None = _G["base_url"],
    llm_model: str | None = _G["llm_model"], api_key_env: str = _G["api_key_env"],
    hf_model: str | None = _G["hf_model"], soft_prompt: str | None = _G["soft_prompt"],
) -> None:
    """Retrieve a question's subgraph (and optionally answer it); print its description."""
    from graphlearn.kg.grag import GRAG
    from graphlearn.kg.grag.pipeline import retrieval_to_dict

    grag = GRAG.load(folder)
    if answer:
        grag.generator = _make_generator(generator, base_url=base_url, llm_model=llm_model,
                                         api_key_env=api_key_env, hf_model=hf_model,
                                         soft_prompt=soft_prompt, index_dim=grag.index.dim)
        result = grag.answer(question, k, prune=prune)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            typer.echo(result.retrieval.description)
            typer.echo(f"\nanswer: {result.text}")
        return
    r = grag.retrieve(question, k, prune=prune)
    if as_json:
        typer.echo(json.dumps(retrieval_to_dict(r), indent=2, ensure_ascii=False))
        return
    typer.echo(r.description)


@grag_app.command("serve")
def grag_serve(
    folder: str = typer.Argument(..., help="GRAG folder written by `graphlearn grag index`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_question_chars: int = typer.Option(2000, "--max-question-chars",
                                           help="Longest question accepted (413 above)."),
    max_k: int = typer.Option(50, "--max-k", help="Largest k a request may ask for."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    workers: int | None = typer.Option(None, "--workers",
                                       help="Retrievals computed at once (default: CPUs)."),
    generator: str = _G["generator"], base_url: str | None = _G["base_url"],
    llm_model: str | None = _G["llm_model"], api_key_env: str = _G["api_key_env"],
    hf_model: str | None = _G["hf_model"], soft_prompt: str | None = _G["soft_prompt"],
) -> None:
    """Serve a GRAG folder over HTTP: GET /health, POST /retrieve, POST /answer."""
    from graphlearn.kg.grag import GRAG
    from graphlearn.kg.grag.service import serve

    grag = GRAG.load(folder)
    grag.generator = _make_generator(generator, base_url=base_url, llm_model=llm_model,
                                     api_key_env=api_key_env, hf_model=hf_model,
                                     soft_prompt=soft_prompt, index_dim=grag.index.dim)
    # warm the encoder so the first request does not pay for loading it
    grag.retrieve("warm-up question")
    typer.echo(f"serving {grag!r} on http://{host}:{port}", err=True)
    serve(grag, host, port, log_level=log_level, max_question_chars=max_question_chars,
          max_k=max_k, max_workers=workers)
