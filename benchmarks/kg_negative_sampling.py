"""Negative-sampling training step: per-candidate scoring vs one GEMM over every entity.

A negative-sampling step scores each query's positive and ``k`` corruptions. PyKEEN's sLCWA
loop (and graphlearn's default, :meth:`graphlearn.kg.model.KGModel._score_candidates`) gathers
the ``B * (1 + k)`` entity rows and scores them one by one; an embedding model whose
``score_all`` is one GEMM can instead score every entity and gather the candidates' columns,
which graphlearn does when there are at most ``_DENSE_ENTITIES_PER_CANDIDATE`` entities per
candidate. This script times forward + backward of one side's scores (sum as the loss) for
each path on random queries over ``E`` entities, ``k`` negatives per query, batch ``B``:

- ``auto_ms``: ``model.score_candidates`` (the dispatch ``graphlearn fit`` uses);
- ``per_candidate_ms``: ``KGModel._score_candidates``, graphlearn's per-candidate path;
- ``pykeen_ms``: PyKEEN's ``model.score_hrt`` on the same ``B * (1 + k)`` triples (the anchor;
  when PyKEEN is importable: run it through ``bash benchmarks/kg_env.sh`` or with ``KG_ENV``'s
  Python), and ``pykeen_ratio`` = ``pykeen_ms / auto_ms``.

Median of ``--repeats`` after two warm-up steps; one JSON line per case::

    python benchmarks/kg_negative_sampling.py --threads 1
    /tmp/graphlearn-kg-env/bin/python benchmarks/kg_negative_sampling.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

#: (model, entities, negatives per query): UMLS has 135 entities, FB15k-237 14,541.
CASES = [(m, e, k) for m in ("rotate",) for e in (135, 1000, 3000, 14541) for k in (16, 64, 128)]
CASES += [("complex", 135, 64), ("complex", 14541, 64), ("distmult", 135, 64)]


def median_ms(step, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``step()`` in ms over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _pykeen_step(name: str, num_entities: int, num_relations: int, dim: int, hrt: torch.Tensor):
    try:
        from pykeen.models import ComplEx, DistMult, RotatE
        from pykeen.triples import CoreTriplesFactory
    except ImportError:
        return None
    tf = CoreTriplesFactory.create(hrt[:10], num_entities, num_relations)
    cls = {"rotate": RotatE, "complex": ComplEx, "distmult": DistMult}[name]
    model = cls(triples_factory=tf, embedding_dim=dim, random_seed=0)

    def step():
        model.zero_grad(set_to_none=True)
        model.score_hrt(hrt).sum().backward()
    return step


def run_case(name: str, num_entities: int, k: int, args) -> dict:
    from graphlearn.kg.model import KGModel
    from graphlearn.kg.models import embedding
    from graphlearn.kg.task import build_kg_model

    torch.manual_seed(0)
    B, R = args.batch_size, args.num_relations
    model = build_kg_model(name, num_entities, R, dim=args.dim)
    anchors, rels = torch.randint(0, num_entities, (B,)), torch.randint(0, R, (B,))
    candidates = torch.randint(0, num_entities, (B, 1 + k))

    def step(method):
        def run():
            model.zero_grad(set_to_none=True)
            method(model, anchors, rels, candidates, "tail").sum().backward()
        return run

    row = {"model": name, "entities": num_entities, "negatives": k, "batch_size": B,
           "dim": args.dim,
           "dense": num_entities <= embedding._DENSE_ENTITIES_PER_CANDIDATE * (1 + k),
           "auto_ms": median_ms(step(type(model).score_candidates), args.repeats),
           "per_candidate_ms": median_ms(step(KGModel._score_candidates), args.repeats)}
    row["per_candidate_ratio"] = row["per_candidate_ms"] / row["auto_ms"]
    hrt = torch.stack([anchors.repeat_interleave(1 + k), rels.repeat_interleave(1 + k),
                       candidates.reshape(-1)], 1)
    pk = _pykeen_step(name, num_entities, R, args.dim, hrt)
    if pk is not None:
        row["pykeen_ms"] = median_ms(pk, args.repeats)
        row["pykeen_ratio"] = row["pykeen_ms"] / row["auto_ms"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--dim", type=int, default=256, help="complex coordinates (RotatE, ComplEx)")
    p.add_argument("--num-relations", type=int, default=46)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="append JSON lines here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'model':9} {'E':>6} {'k':>4} {'path':9} {'auto ms':>8} {'per-cand ms':>11} "
          f"{'ratio':>6} {'pykeen ms':>9} {'ratio':>6}")
    for name, e, k in CASES:
        row = run_case(name, e, k, args)
        row["torch"] = torch.__version__
        row["threads"] = torch.get_num_threads()
        pk = (f"{row['pykeen_ms']:9.1f} {row['pykeen_ratio']:6.2f}" if "pykeen_ms" in row
              else f"{'-':>9} {'-':>6}")
        print(f"{name:9} {e:6d} {k:4d} {'gemm' if row['dense'] else 'gather':9} "
              f"{row['auto_ms']:8.1f} {row['per_candidate_ms']:11.1f} "
              f"{row['per_candidate_ratio']:6.2f} {pk}", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
