"""Knowledge-graph embeddings: PyKEEN vs graphlearn, training time, evaluation time, memory, MRR.

The same model (RotatE by default; ``--models distmult complex`` too) with the same
hyperparameters on FB15k-237, both implementations in one run of this script:

(a) **training**: ``--epochs`` epochs of sLCWA negative sampling from the *same initial
    weights* (PyKEEN's initialisation, copied into graphlearn's layout): batch size
    ``--batch-size``, ``--num-negatives`` uniformly corrupted heads or tails per triple,
    self-adversarial negative sampling loss (NSSA, temperature 1, margin ``--gamma`` for
    RotatE, 0 otherwise), Adam with ``--lr``. PyKEEN: ``SLCWATrainingLoop`` with
    ``BasicNegativeSampler`` and ``NSSALoss``; graphlearn: ``LinkPredictionTask`` with
    ``task.objective=negative-sampling`` under a Lightning ``Trainer``, as ``graphlearn fit``
    runs it. Time per epoch.
(b) **evaluation**: full filtered ranking of the 20,466 test triples, both sides, filtered by
    train + valid + test, realistic ties. graphlearn ranks all of them; PyKEEN's
    ``RankBasedEvaluator`` ranks the first ``--pykeen-eval-triples`` of a fixed random
    permutation of the test set (``batch_size=--pykeen-eval-batch``) and its time is
    extrapolated linearly to the whole set, labelled ``"extrapolated": true`` (PyKEEN's full
    RotatE evaluation did not finish in 18 minutes on this machine). ``0`` ranks them all.
(c) **memory**: every (implementation, phase) runs in its own subprocess; peak memory is the
    high-water RSS (``VmHWM``, reset through ``/proc/self/clear_refs``) above the RSS after
    loading the data and building the model, with the helpers of ``benchmarks/rgnn.py``.
(d) **MRR**: each implementation's trained model, ranked by graphlearn's ``evaluate`` on the
    full test set; and on PyKEEN's subset, PyKEEN's own metrics next to graphlearn's
    ``evaluate`` of the *PyKEEN model's* score function (the same weights, so the two
    evaluators must agree up to float rounding), plus the PyKEEN weights converted into
    graphlearn's model (``max_abs_diff`` of the scores checks the conversion).

Needs PyKEEN, which graphlearn does not depend on: ``bash benchmarks/kg_env.sh`` builds a
separate environment and runs this script there. One JSON line per model, with
``train_speedup`` and ``eval_speedup`` (PyKEEN time / graphlearn time) and ``memory_ratio``
(graphlearn peak / PyKEEN peak)::

    python benchmarks/kg.py --models rotate --dim 200 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from rgnn import peak_rss_mb, reset_peak_rss, rss_mb
from rgnn import run_worker as run_subprocess

MODELS = ("rotate", "distmult", "complex")


def default_data_root() -> str | None:
    if os.environ.get("GRAPHLEARN_DATA"):
        return os.environ["GRAPHLEARN_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def load_triples(data_root: str | None) -> dict:
    from graphlearn import datasets

    ds = datasets.load("fb15k-237", root=data_root)
    train, val, test = (ds.stage(s).queries for s in ("train", "val", "test"))
    return {"train": train, "valid": val, "test": test, "num_entities": ds.num_entities,
            "num_relations": ds.num_relations}


# ----------------------------------------------------------------------------- models


def build_pykeen(args, data: dict):
    from pykeen.losses import NSSALoss
    from pykeen.models import ComplEx, DistMult, RotatE
    from pykeen.triples import CoreTriplesFactory

    tf = CoreTriplesFactory.create(data["train"], data["num_entities"], data["num_relations"])
    cls = {"rotate": RotatE, "distmult": DistMult, "complex": ComplEx}[args.model]
    margin = args.gamma if args.model == "rotate" else 0.0
    kwargs = {}
    if args.model == "distmult":  # PyKEEN's DistMult normalises entities by default; graphlearn's doesn't
        kwargs["entity_constrainer"] = None
    model = cls(triples_factory=tf, embedding_dim=args.dim, random_seed=args.seed,
                loss=NSSALoss(margin=margin, adversarial_temperature=1.0), **kwargs)
    return model, tf


def _pykeen_tables(model) -> tuple[torch.Tensor, torch.Tensor]:
    ent = model.entity_representations[0](indices=None).detach()
    rel = model.relation_representations[0](indices=None).detach()
    return ent, rel


def build_graphlearn(args, data: dict):
    from graphlearn.kg.task import LinkPredictionTask

    kwargs = {"dim": args.dim}
    param_groups = None
    if args.model == "rotate":
        kwargs.update(gamma=args.gamma, norm="l2")
        # The same Adam step in phase: PyKEEN stores each rotation as a unit complex number,
        # so a step of lr on its (re, im) turns it by about lr radians; graphlearn stores the
        # phase as theta * rho / pi (the authors' layout), so its relation lr is lr * rho / pi.
        from graphlearn.kg.models.embedding import RotatE

        rho = RotatE(1, 1, dim=args.dim, gamma=args.gamma).embedding_range
        param_groups = {"relation.weight": {"lr": args.lr * rho / math.pi}}
    task = LinkPredictionTask(
        args.model, kwargs, num_entities=data["num_entities"],
        num_relations=data["num_relations"],
        task_options={"objective": "negative-sampling", "loss": "nssa",
                      "num_negatives": args.num_negatives, "adversarial_temperature": 1.0},
        optimizer="adam", lr=args.lr, param_groups=param_groups, eval_batch_size=args.eval_batch)
    return task


def pykeen_to_graphlearn(pk_model, gl_model, model: str) -> None:
    """Copy PyKEEN's weights into graphlearn's layout (complex: ``[re | im]``; RotatE: phases)."""
    ent, rel = _pykeen_tables(pk_model)
    with torch.no_grad():
        if model == "distmult":
            gl_model.entity.weight.copy_(ent)
            gl_model.relation.weight.copy_(rel)
            return
        gl_model.entity.weight.copy_(torch.cat([ent.real, ent.imag], dim=-1))
        if model == "complex":
            gl_model.relation.weight.copy_(torch.cat([rel.real, rel.imag], dim=-1))
        else:  # unit complex numbers -> stored phases (theta * rho / pi)
            gl_model.relation.weight.copy_(torch.angle(rel) * gl_model.embedding_range / math.pi)


# ----------------------------------------------------------------------------- worker


def worker(args) -> dict:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_triples(args.data_root)
    workdir = Path(args.workdir)
    out: dict = {}
    pk_model, tf = build_pykeen(args, data)
    task = build_graphlearn(args, data)
    pykeen_to_graphlearn(pk_model, task.model, args.model)  # same initial weights
    if args.phase == "train":
        base = rss_mb()
        reset_peak_rss()
        if args.impl == "pykeen":
            from pykeen.training import SLCWATrainingLoop

            optimizer = torch.optim.Adam(pk_model.parameters(), lr=args.lr)
            loop = SLCWATrainingLoop(model=pk_model, triples_factory=tf, optimizer=optimizer,
                                     negative_sampler="basic",
                                     negative_sampler_kwargs={"num_negs_per_pos": args.num_negatives})
            start = time.perf_counter()
            losses = loop.train(triples_factory=tf, num_epochs=args.epochs,
                                batch_size=args.batch_size, use_tqdm=False, use_tqdm_batch=False)
            seconds = time.perf_counter() - start
            pykeen_to_graphlearn(pk_model, task.model, args.model)
            out["loss"] = round(float(losses[-1]), 5)
        else:
            import lightning as L
            from torch.utils.data import DataLoader

            gen = torch.Generator().manual_seed(args.seed)
            loader = DataLoader(data["train"], batch_size=args.batch_size, shuffle=True,
                                generator=gen)
            trainer = L.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False,
                                limit_val_batches=0, num_sanity_val_steps=0,
                                accelerator="cpu", devices=1)
            start = time.perf_counter()
            trainer.fit(task, train_dataloaders=loader)
            seconds = time.perf_counter() - start
            out["loss"] = round(float(trainer.callback_metrics.get("train/loss", float("nan"))), 5)
        out.update(epoch_s=round(seconds / args.epochs, 2),
                   peak_mb=round(peak_rss_mb() - base, 1))
        torch.save(task.model.state_dict(), workdir / f"{args.impl}-{args.model}.pt")
        if args.impl == "pykeen":
            torch.save(pk_model.state_dict(), workdir / f"pykeen-native-{args.model}.pt")
        return out

    # ---- evaluation
    from graphlearn.kg.evaluation import FilterIndex, evaluate

    test = data["test"]
    every = torch.cat([data["train"], data["valid"], test])
    E = data["num_entities"]
    perm = torch.randperm(test.size(0), generator=torch.Generator().manual_seed(0))
    n_sub = args.pykeen_eval_triples or test.size(0)
    subset = test[perm[:n_sub]]
    if args.impl == "graphlearn":
        # graphlearn: its own trained model, full test set, timed; then the PyKEEN-trained one
        model = task.model.eval()
        model.load_state_dict(torch.load(workdir / f"graphlearn-{args.model}.pt"))
        base = rss_mb()
        reset_peak_rss()
        start = time.perf_counter()
        index = FilterIndex(every, E)
        metrics = evaluate(lambda a, r, s: model.score_all(a, r, s), test, index, E,
                           batch_size=args.eval_batch)
        out.update(eval_s=round(time.perf_counter() - start, 2),
                   peak_mb=round(peak_rss_mb() - base, 1),
                   mrr=round(metrics["mrr"], 4), hits10=round(metrics["hits@10"], 4))
        pk_file = workdir / f"pykeen-{args.model}.pt"
        if pk_file.exists():
            model.load_state_dict(torch.load(pk_file))
            full = evaluate(lambda a, r, s: model.score_all(a, r, s), test, index, E,
                            batch_size=args.eval_batch)
            sub = evaluate(lambda a, r, s: model.score_all(a, r, s), subset, index, E,
                           batch_size=args.eval_batch)
            out.update(pykeen_weights_mrr=round(full["mrr"], 4),
                       pykeen_weights_hits10=round(full["hits@10"], 4),
                       pykeen_weights_subset_mrr=round(sub["mrr"], 5))
        return out

    # PyKEEN: its own evaluator on the subset, timed; graphlearn's evaluate on the same scores
    from pykeen.evaluation import RankBasedEvaluator

    pk_model.load_state_dict(torch.load(workdir / f"pykeen-native-{args.model}.pt"))
    pk_model.eval()
    evaluator = RankBasedEvaluator(filtered=True)
    base = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    result = evaluator.evaluate(pk_model, subset, batch_size=args.pykeen_eval_batch,
                                additional_filter_triples=[data["train"], data["valid"], test],
                                use_tqdm=False)
    seconds = time.perf_counter() - start
    out.update(eval_s_subset=round(seconds, 2), eval_triples=int(n_sub),
               eval_s=round(seconds * test.size(0) / n_sub, 1),
               extrapolated=n_sub < test.size(0), peak_mb=round(peak_rss_mb() - base, 1),
               subset_mrr=round(result.get_metric("both.realistic.inverse_harmonic_mean_rank"), 5),
               subset_hits10=round(result.get_metric("both.realistic.hits_at_10"), 5))

    def pk_scores(anchors, relations, side):
        hr = torch.stack([anchors, relations], 1)
        if side == "tail":
            return pk_model.score_t(hr)
        return pk_model.score_h(torch.stack([relations, anchors], 1))

    with torch.no_grad():
        gl = evaluate(pk_scores, subset, FilterIndex(every, E), E, batch_size=args.eval_batch)
        task.model.load_state_dict(torch.load(workdir / f"pykeen-{args.model}.pt"))
        h, r, _ = subset[:64].unbind(1)
        shift = args.gamma if args.model == "rotate" else 0.0  # graphlearn's RotatE: gamma - d
        diff = max(float((task.model.score_all(h, r, s) - shift - pk_scores(h, r, s)).abs().max())
                   for s in ("head", "tail"))
    out.update(graphlearn_evaluate_on_pykeen_scores_mrr=round(gl["mrr"], 5),
               graphlearn_evaluate_on_pykeen_scores_hits10=round(gl["hits@10"], 5),
               conversion_max_abs_diff=diff)
    return out


def run_worker(args, impl: str, phase: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--phase", phase,
           "--model", args.model, "--workdir", args.workdir]
    for key in ("dim", "epochs", "batch_size", "num_negatives", "lr", "gamma", "seed",
                "eval_batch", "pykeen_eval_batch", "pykeen_eval_triples", "threads",
                "data_root"):
        value = getattr(args, key)
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    return run_subprocess(cmd, args.timeout)


def _ratio(a: dict, b: dict, key: str) -> float | None:
    if a.get("status") == "ok" and b.get("status") == "ok" and b.get(key):
        return round(a[key] / b[key], 2)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["rotate"], choices=MODELS)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--num-negatives", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--gamma", type=float, default=9.0, help="RotatE margin (NSSA margin)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-batch", type=int, default=256, help="graphlearn queries at once")
    parser.add_argument("--pykeen-eval-batch", type=int, default=64)
    parser.add_argument("--pykeen-eval-triples", type=int, default=500,
                        help="test triples PyKEEN ranks (0: all); its time is extrapolated")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per subprocess")
    parser.add_argument("--data-root", default=default_data_root())
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    import pykeen.version

    args.workdir = args.workdir or tempfile.mkdtemp(prefix="graphlearn-kg-bench-")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    for model in args.models:
        args.model = model
        runs = {}
        for phase in ("train", "eval"):
            for impl in ("pykeen", "graphlearn"):
                runs[(impl, phase)] = run_worker(args, impl, phase)
        pk_t, gl_t = runs[("pykeen", "train")], runs[("graphlearn", "train")]
        pk_e, gl_e = runs[("pykeen", "eval")], runs[("graphlearn", "eval")]
        line = {
            "case": "fb15k-237", "model": model, "device": "cpu", "dim": args.dim,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "num_negatives": args.num_negatives, "lr": args.lr,
            **({"gamma": args.gamma} if model == "rotate" else {}),
            "pykeen": {"train": pk_t, "eval": pk_e},
            "graphlearn": {"train": gl_t, "eval": gl_e},
            "train_speedup": _ratio(pk_t, gl_t, "epoch_s"),
            "eval_speedup": _ratio(pk_e, gl_e, "eval_s"),
            "eval_extrapolated": pk_e.get("extrapolated"),
            "train_memory_ratio": _ratio(gl_t, pk_t, "peak_mb"),
            "eval_memory_ratio": _ratio(gl_e, pk_e, "peak_mb"),
            "torch": torch.__version__, "pykeen_version": pykeen.version.VERSION,
            "threads": args.threads or torch.get_num_threads(),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
