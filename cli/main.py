"""The ``graphlearn`` command.

Heavy modules (torch, Lightning, PyG) are imported inside the commands, so
``graphlearn --help`` answers quickly. A :class:`~graphlearn.errors.GraphLearnError` (a user
error: unknown name, bad config key, missing file) prints one line on stderr and exits with
status 2; ``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import json
import sys

import typer

app = typer.Typer(
    name="graphlearn",
    help="Graph learning and knowledge-graph reasoning: train, evaluate, inspect datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
datasets_app = typer.Typer(help="List and describe the registered datasets.", no_args_is_help=True)
models_app = typer.Typer(help="List the registered models.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
kg_app = typer.Typer(help="Knowledge graphs: ask a trained link-prediction run.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(kg_app, name="kg")
from graphlearn.cli.grag import grag_app  # noqa: E402  (typer only; heavy imports are lazy)

app.add_typer(grag_app, name="grag")

EXIT_USER_ERROR = 2


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """Graph learning and knowledge-graph reasoning."""
    if version:
        from graphlearn import __version__

        typer.echo(f"graphlearn {__version__}")
        raise typer.Exit()


@app.command()
def fit(
    config: str | None = typer.Option(None, "--config", "-c", help="YAML config file."),
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Registered dataset name."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum number of epochs."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (drawn and recorded if absent)."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a config key: --set optim.lr=0.01 (repeatable)."
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="Run directory (default runs/<model>-<dataset>-<time>)."),
    resume: str | None = typer.Option(None, "--resume", help="Continue the run in this directory."),
) -> None:
    """Train a model; print the test metric and the run directory.

    With no arguments: GATv2 on Zachary's karate club (embedded, no download).
    """
    from graphlearn.train.allocator import keep_freed_memory_from_env
    from graphlearn.train.config import parse_assignment
    from graphlearn.train.fit import fit as run_fit

    keep_freed_memory_from_env()  # large CPU tensors reused across steps (see its docstring)
    overrides: dict = {}
    for text in set_ or []:
        key, value = parse_assignment(text)
        overrides[key] = value
    for key, value in (("model", model), ("dataset", dataset), ("epochs", epochs), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    result = run_fit(config, out=out, resume=resume, **overrides)
    val = result.metrics["val"].get(result.metric, float("nan"))
    test = result.metrics["test"].get(result.metric, float("nan"))
    if result.folds is not None:
        sd = result.metrics_std or {}
        typer.echo(
            f"{result.model} on {result.dataset}, {len(result.folds)} folds: test {result.metric} "
            f"{test:.4f} +- {sd['test'][result.metric]:.4f} (val {val:.4f} +- "
            f"{sd['val'][result.metric]:.4f}, {result.wall_s:.1f} s)")
    else:
        best = f"best epoch {result.best_epoch}, " if result.best_epoch is not None else ""
        typer.echo(f"{result.model} on {result.dataset}: test {result.metric} {test:.4f} "
                   f"(val {val:.4f}, {best}{result.epochs} epochs, {result.wall_s:.1f} s)")
    typer.echo(f"run directory: {result.run_dir}")


@app.command()
def summarize(
    run_dirs: list[str] = typer.Argument(..., help="Run directories (each with summary.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Mean and standard deviation of val/test metrics over runs, per model and dataset."""
    from graphlearn.train.summary import summarize_runs

    rows = summarize_runs(run_dirs)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['model']} on {r['dataset']} ({r['runs']} runs, seeds {r['seeds']}): "
                   f"test {r['metric']} {100 * r['test_mean']:.2f} +- {100 * r['test_std']:.2f}, "
                   f"val {100 * r['val_mean']:.2f} +- {100 * r['val_std']:.2f}, "
                   f"{r['wall_s_mean']:.1f} s per run")


@datasets_app.command("list")
def datasets_list(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List every registered dataset with its task and default metric."""
    from graphlearn.datasets import DATASETS

    infos = [spec.info for _, spec in DATASETS.items()]
    if as_json:
        typer.echo(json.dumps([i.to_dict() for i in infos], indent=2))
        return
    width = max(len(i.name) for i in infos)
    for i in infos:
        typer.echo(f"{i.name:<{width}}  {i.task.value:<22} {i.metric:<9} {i.description}")


@datasets_app.command("info")
def datasets_info(
    name: str = typer.Argument(..., help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Describe one dataset: task, splits, metric, source, citation, licence and files."""
    from graphlearn.datasets import info as dataset_info

    from graphlearn.data.files import raw_file_status

    i = dataset_info(name)
    status = raw_file_status(i)
    if as_json:
        typer.echo(json.dumps({**i.to_dict(), "files": status}, indent=2))
        return
    typer.echo(f"{i.name}: {i.description}")
    for label, value in (("task", i.task.value), ("metric", i.metric), ("splits", i.splits),
                         ("source", i.url), ("citation", i.citation), ("license", i.license)):
        typer.echo(f"  {label:<9} {value}")
    if i.stats:
        typer.echo("  stats     " + ", ".join(f"{k}={v}" for k, v in i.stats.items()))
    typer.echo(f"  files     {status['message']}")


@models_app.command("list")
def models_list(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List every registered model and the tasks it serves."""
    from graphlearn.models import MODELS

    rows = [{"name": name, "tasks": sorted(t.value for t in spec.tasks),
             "description": spec.description} for name, spec in MODELS.items()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        typer.echo(f"{r['name']:<12} {', '.join(r['tasks']):<45} {r['description']}")


@kg_app.command("predict")
def kg_predict(
    run: str = typer.Option(..., "--run", "-r", help="Run directory written by `graphlearn fit`."),
    relation: str = typer.Option(..., "--relation", help="Relation label."),
    head: str | None = typer.Option(None, "--head", help="Head label: rank tails of (head, relation, ?)."),
    tail: str | None = typer.Option(None, "--tail", help="Tail label: rank heads of (?, relation, tail)."),
    k: int = typer.Option(10, "-k", "--top", help="How many answers."),
    filter_known: bool = typer.Option(
        True, "--filter/--no-filter",
        help="Leave out answers that are known facts of the graph (--no-filter ranks and marks them)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Print the top-k answers of a link-prediction query as `rank  label  score`."""
    from graphlearn.kg.predict import format_predictions, predict

    rows = predict(run, head=head, relation=relation, tail=tail, k=k, filter=filter_known)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    typer.echo(format_predictions(rows))


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"graphlearn: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``graphlearn`` console script."""
    import warnings

    warnings.formatwarning = _format_warning
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args = [a for a in args if a != "--debug"]
    try:
        # standalone mode: typer reports its own usage errors (exit 2) and handles Ctrl-C
        app(args=args, prog_name="graphlearn", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        from graphlearn.errors import GraphLearnError

        if isinstance(exc, GraphLearnError) and not debug:
            print(f"graphlearn: error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
