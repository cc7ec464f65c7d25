"""Training time per epoch of the GNN reasoners (RED-GNN, RUN-GNN, NBFNet) on large KGs.

Each case runs in its own process (so the peak RSS is its own): it loads the dataset, builds
the model with the official hidden size / depth, and times ``--batches`` training steps
(forward on ``batch`` queries, cross-entropy over all entities, backward, Adam step) after
one warm-up step. A step answers ``batch`` queries, half of them head queries; as in the
graphlearn task, each step's query edges are removed from the graph it reasons over. The
epoch time is *extrapolated*: s/step x ceil(2 * |train| / batch) steps (every training
triple asked on both sides, the official codes' epoch). One JSON line per case:

    python benchmarks/kg_reasoners.py                      # all cases, 3 timed steps each
    python benchmarks/kg_reasoners.py --cases red-gnn:fb15k-237 --batches 5
    python benchmarks/kg_reasoners.py --cases run-gnn:fb15k-237:2 --checkpoint   # 2 queries/step

For reference, the RED-GNN authors report about 5 hours per epoch on FB15k-237 with their
code on a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

# model -> dataset -> (official batch in queries, model kwargs, source)
CASES = {
    "red-gnn": {
        "fb15k-237": (5, dict(hidden_dim=48, attn_dim=5, num_layers=4, act="relu"),
                      "RED-GNN Static/transductive/train.py"),
        "wn18rr-redgnn": (100, dict(hidden_dim=48, attn_dim=5, num_layers=5, act="tanh"),
                          "RED-GNN Static/transductive/train.py"),
    },
    "run-gnn": {
        "fb15k-237": (5, dict(hidden_dim=48, attn_dim=5, num_layers=6, num_extra_layers=3,
                              act="relu"), "RUN-GNN transductive/train.py"),
        "wn18rr-redgnn": (50, dict(hidden_dim=64, attn_dim=5, num_layers=8, num_extra_layers=3,
                                   act="idd"), "RUN-GNN transductive/train.py"),
    },
    "nbfnet": {
        # official: 64 queries per step (config/knowledge_graph/*.yaml); see --nbfnet-batch
        "fb15k-237": (64, dict(hidden_dim=32, num_layers=6, aggregate="pna"),
                      "NBFNet config/knowledge_graph/fb15k237.yaml"),
        "wn18rr-redgnn": (64, dict(hidden_dim=32, num_layers=6, aggregate="pna"),
                          "NBFNet config/knowledge_graph/wn18rr.yaml"),
    },
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(model_name: str, dataset: str, batches: int, batch: int | None, seed: int,
             checkpoint: bool = False) -> dict:
    import torch
    import torch.nn.functional as F
    from graphlearn.kg.model import message_graph
    from graphlearn.kg.task import build_kg_model

    from graphlearn import load_dataset

    torch.manual_seed(seed)
    official, kwargs, source = CASES[model_name][dataset]
    kwargs = {**kwargs, "checkpoint": checkpoint} if checkpoint else kwargs
    batch = batch or official
    data = load_dataset(dataset)
    st = data.stage("train")
    graph = message_graph(st.facts, st.num_entities, data.num_relations)
    queries_are_facts = st.facts.shape == st.queries.shape and bool(torch.equal(st.facts,
                                                                                st.queries))
    model = build_kg_model(model_name, st.num_entities, data.num_relations, **kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(st.queries.size(0))
    times = []
    for step in range(batches + 1):
        triples = st.queries[order[step * batch:(step + 1) * batch]]
        g = graph.without(triples) if queries_are_facts else graph
        h, r, t = triples.unbind(1)
        half = (batch + 1) // 2
        start = time.perf_counter()
        opt.zero_grad()
        loss = 0.0
        for side, anchor, true in (("tail", h[:half], t[:half]), ("head", t[half:], h[half:])):
            if anchor.numel():
                scores = model.score_all(anchor, r[:half] if side == "tail" else r[half:], side, g)
                loss = loss + F.cross_entropy(scores, true, reduction="sum")
        (loss / batch).backward()
        opt.step()
        if step:  # step 0 warms up
            times.append(time.perf_counter() - start)
    per_batch = sum(times) / len(times)
    steps = math.ceil(2 * st.queries.size(0) / batch)
    return {"model": model_name, "dataset": dataset, "batch_queries": batch,
            "official_batch_queries": official, "hyperparameters": kwargs, "source": source,
            "num_entities": st.num_entities, "graph_edges": graph.num_edges,
            "train_triples": int(st.queries.size(0)), "batches_timed": len(times),
            "s_per_batch": round(per_batch, 3), "steps_per_epoch": steps,
            "extrapolated_s_per_epoch": round(per_batch * steps, 1),
            "extrapolated_h_per_epoch": round(per_batch * steps / 3600, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "checkpoint": checkpoint,
            "threads": int(__import__("torch").get_num_threads())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", help="model:dataset[:batch] (default: all)")
    parser.add_argument("--batches", type=int, default=3, help="timed steps per case")
    parser.add_argument("--batch", type=int, default=None, help="queries per step (default: "
                        "the official batch)")
    parser.add_argument("--nbfnet-batch", type=int, default=8,
                        help="queries per NBFNet step: its (|E|, B, d) messages make the "
                        "official 64 need tens of GB on FB15k-237 (default: 8)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per case")
    parser.add_argument("--checkpoint", action="store_true",
                        help="activation checkpointing per layer (model.checkpoint=true)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model, dataset = args.cases[0].split(":")[:2]
        print(json.dumps(run_case(model, dataset, args.batches, args.batch, args.seed,
                                  args.checkpoint)))
        return
    cases = args.cases or [f"{m}:{d}" for m in CASES for d in CASES[m]]
    for case in cases:
        model, *rest = case.split(":")
        batch = (int(rest[1]) if len(rest) > 1 else
                 args.batch or (args.nbfnet_batch if model == "nbfnet" else None))
        cmd = [sys.executable, __file__, "--worker", "--cases", case, "--batches",
               str(args.batches), "--seed", str(args.seed)]
        if args.checkpoint:
            cmd.append("--checkpoint")
        if batch:
            cmd += ["--batch", str(batch)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  env=os.environ.copy())
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                print(json.dumps({"case": case, "batch_queries": batch, "returncode": proc.returncode,
                                  "error": proc.stderr.strip()[-500:]}), flush=True)
            else:
                print(lines[-1], flush=True)
        except subprocess.TimeoutExpired:
            print(json.dumps({"case": case, "error": f"timed out after {args.timeout}s"}),
                  flush=True)


if __name__ == "__main__":
    main()
