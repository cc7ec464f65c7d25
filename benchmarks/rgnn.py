"""Relational GNN layers: graphlearn vs PyG, forward+backward time and peak memory.

Models and the implementations compared (the PyG layers are the anchors; graphlearn's layer
is built with ``from_pyg`` from the same PyG module, so both compute the same function):

* ``rgcn``: PyG ``RGCNConv`` (loops over relations), PyG ``FastRGCNConv`` (one weight
  matrix per edge), graphlearn ``RGCNConv`` (``strategy="auto"``);
* ``rgat``: PyG ``RGATConv``, graphlearn ``RGATConv``;
* ``hgt``: PyG ``HGTConv``, graphlearn ``HGTConv``.

Cases: the real AIFB and MUTAG entity graphs (featureless, as R-GCN runs them: a one-hot
first layer for ``rgcn``, a learned 16-dim node embedding as input for ``rgat``/``hgt``;
``-x16``: the same graphs with 16 random input features, how DGL's peer runs them),
FB15k-237's training triples with inverse relations as a multi-relational graph, and
synthetic graphs with the node / edge / relation counts of BGS, AM and ogbn-mag (16 random
input features, uniform random edges and relations; ogbn-mag with its 4 node types).
Every case runs a two-layer model (input -> 16 -> 16, ReLU between) with ``heads=1``.

Each (case, implementation) runs in its own subprocess, so its peak memory is its own: on
CPU the high-water RSS above the RSS after building the graph and the model
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``), on CUDA ``torch.cuda.max_memory_allocated`` above the allocation
after building them. A run that exceeds ``--timeout`` or dies (out of memory) is reported
as such. Time: median of ``--repeats`` runs of zero-grad + forward + backward after
``--warmup`` runs. Before timing, the graphlearn worker checks that its output matches the
PyG layer's on the small cases.

Prints one JSON line per (case, model) with each implementation's time and memory, and
``speedup``: the time of the fastest PyG implementation that ran over graphlearn's::

    python benchmarks/rgnn.py --device cpu --cases aifb mutag --models rgcn
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HIDDEN = 16
SMALL = ("aifb", "mutag", "aifb-x16", "mutag-x16")
CASES = {
    # name: (num_nodes, num_edges incl. inverse, num_relations incl. inverse, node types)
    "aifb": None,
    "mutag": None,
    "aifb-x16": None,
    "mutag-x16": None,
    "fb15k-237": None,
    "bgs": (333_845, 1_832_398, 206, 1),
    "am": (1_666_764, 11_976_642, 266, 1),
    "ogbn-mag": (1_939_743, 42_182_144, 8, 4),
}
IMPLS = {
    "rgcn": ("pyg-rgcn", "pyg-fast-rgcn", "graphlearn"),
    "rgat": ("pyg-rgat", "graphlearn"),
    "hgt": ("pyg-hgt", "graphlearn"),
}


def default_data_root() -> str | None:
    if os.environ.get("GRAPHLEARN_DATA"):
        return os.environ["GRAPHLEARN_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


# ----------------------------------------------------------------------------- graphs


def load_case(case: str, data_root: str | None) -> dict:
    """``{x, edge_index, edge_type, num_nodes, num_relations, node_type, source}``."""
    if case in SMALL:
        from graphlearn import datasets

        ds = datasets.load("aifb" if case.startswith("aifb") else "mutag-rdf", root=data_root,
                           download=False)
        from graphlearn.datasets.rdf import to_hetero

        hetero = to_hetero(ds)
        node_type = torch.empty(ds.data.num_nodes, dtype=torch.long)
        for t, name in enumerate(hetero.node_types):
            node_type[hetero[name].node_id] = t
        x = None
        if case.endswith("-x16"):  # the real graph with random 16-dim features
            x = torch.randn(ds.data.num_nodes, HIDDEN, generator=torch.Generator().manual_seed(0))
        return dict(x=x, edge_index=ds.data.edge_index, edge_type=ds.data.edge_type,
                    num_nodes=ds.data.num_nodes, num_relations=ds.num_relations,
                    node_type=node_type, source=f"graphlearn.datasets.load({ds.info.name!r})")
    if case == "fb15k-237":
        path = Path(data_root or ".") / "kg" / "transductive" / "FB15k-237" / "train.txt"
        rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines() if line]
        ent = {e: i for i, e in enumerate(sorted({r[0] for r in rows} | {r[2] for r in rows}))}
        rel = {r: i for i, r in enumerate(sorted({r[1] for r in rows}))}
        h = torch.tensor([ent[r[0]] for r in rows])
        t = torch.tensor([ent[r[2]] for r in rows])
        r = torch.tensor([rel[r[1]] for r in rows])
        edge_index = torch.cat([torch.stack([h, t]), torch.stack([t, h])], dim=1)
        edge_type = torch.cat([2 * r, 2 * r + 1])
        num_nodes = len(ent)
        gen = torch.Generator().manual_seed(0)
        return dict(x=torch.randn(num_nodes, HIDDEN, generator=gen), edge_index=edge_index,
                    edge_type=edge_type, num_nodes=num_nodes, num_relations=2 * len(rel),
                    node_type=torch.zeros(num_nodes, dtype=torch.long), source=str(path))
    num_nodes, num_edges, num_relations, num_types = CASES[case]
    gen = torch.Generator().manual_seed(0)
    node_type = torch.randint(0, num_types, (num_nodes,), generator=gen)
    return dict(x=torch.randn(num_nodes, HIDDEN, generator=gen),
                edge_index=torch.randint(0, num_nodes, (2, num_edges), generator=gen),
                edge_type=torch.randint(0, num_relations, (num_edges,), generator=gen),
                num_nodes=num_nodes, num_relations=num_relations, node_type=node_type,
                source=f"synthetic ({case}-sized, uniform random)")


# ----------------------------------------------------------------------------- models


class TwoLayer(torch.nn.Module):
    """input -> 16 -> 16 with ReLU between; a learned embedding when featureless."""

    def __init__(self, first, second, embedding: torch.nn.Embedding | None = None):
        super().__init__()
        self.first, self.second, self.embedding = first, second, embedding

    def forward(self, x, *graph):
        if self.embedding is not None:
            x = self.embedding.weight
        return self.second(torch.relu(self.first(x, *graph)), *graph)


class HeteroTwoLayer(torch.nn.Module):
    def __init__(self, first, second, embeddings: torch.nn.ParameterDict | None = None):
        super().__init__()
        self.first, self.second, self.embeddings = first, second, embeddings

    def forward(self, x_dict, edge_index_dict):
        if self.embeddings is not None:
            x_dict = dict(self.embeddings)
        h = {k: torch.relu(v) for k, v in self.first(x_dict, edge_index_dict).items()
             if v is not None}
        return self.second(h, edge_index_dict)


def to_hetero_dicts(g: dict):
    """Per-type features and per-(src type, relation, dst type) edges of a typed graph."""
    node_type, edge_index, edge_type = g["node_type"], g["edge_index"], g["edge_type"]
    num_types = int(node_type.max()) + 1
    local = torch.empty_like(node_type)
    counts = torch.bincount(node_type, minlength=num_types)
    for t in range(num_types):
        ids = (node_type == t).nonzero().view(-1)
        local[ids] = torch.arange(ids.numel())
    names = [f"t{t}" for t in range(num_types)]
    src_t, dst_t = node_type[edge_index[0]], node_type[edge_index[1]]
    key = (src_t * g["num_relations"] + edge_type) * num_types + dst_t
    combos, inverse = torch.unique(key, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    sizes = torch.bincount(inverse, minlength=combos.numel()).tolist()
    edge_index_dict = {}
    for combo, ids in zip(combos.tolist(), order.split(sizes), strict=True):
        s, rest = divmod(combo, g["num_relations"] * num_types)
        r, d = divmod(rest, num_types)
        edge_index_dict[(names[s], f"r{r}", names[d])] = local[edge_index[:, ids]]
    x_dict = None
    if g["x"] is not None:
        x_dict = {names[t]: g["x"][node_type == t] for t in range(num_types)}
    metadata = (names, list(edge_index_dict))
    return x_dict, edge_index_dict, metadata, {names[t]: int(counts[t]) for t in range(num_types)}


def build(model: str, impl: str, g: dict, device: torch.device):
    """(module, inputs) of one implementation; graphlearn's copies PyG's parameters."""
    torch.manual_seed(0)
    featureless = g["x"] is None
    num_nodes, num_relations = g["num_nodes"], g["num_relations"]
    if model == "hgt":
        from torch_geometric.nn import HGTConv as PygHGT

        x_dict, edge_index_dict, metadata, sizes = to_hetero_dicts(g)
        emb = None  # drawn first, so every implementation gets the same inputs
        if featureless:
            emb = torch.nn.ParameterDict(
                {k: torch.nn.Parameter(torch.randn(n, HIDDEN)) for k, n in sizes.items()})
        pyg = [PygHGT(HIDDEN, HIDDEN, metadata, heads=1) for _ in range(2)]
        if impl == "graphlearn":
            from graphlearn.nn import HGTConv

            layers = [HGTConv.from_pyg(m) for m in pyg]
        else:
            layers = pyg
        module = HeteroTwoLayer(*layers, embeddings=emb).to(device)
        x_dict = None if featureless else {k: v.to(device) for k, v in x_dict.items()}
        return module, (x_dict, {k: v.to(device) for k, v in edge_index_dict.items()})

    edge_index, edge_type = g["edge_index"].to(device), g["edge_type"].to(device)
    x = None if g["x"] is None else g["x"].to(device)
    if model == "rgcn":
        from torch_geometric.nn import FastRGCNConv, RGCNConv

        cls = FastRGCNConv if impl == "pyg-fast-rgcn" else RGCNConv
        first = cls(num_nodes if featureless else HIDDEN, HIDDEN, num_relations)
        second = cls(HIDDEN, HIDDEN, num_relations)
        if impl == "graphlearn":
            from graphlearn.nn import RGCNConv as Ours

            first, second = Ours.from_pyg(first), Ours.from_pyg(second)
        return TwoLayer(first, second).to(device), (x, edge_index, edge_type)
    if model == "rgat":
        from torch_geometric.nn import RGATConv

        emb = torch.nn.Embedding(num_nodes, HIDDEN) if featureless else None  # drawn first
        first = RGATConv(HIDDEN, HIDDEN, num_relations)
        second = RGATConv(HIDDEN, HIDDEN, num_relations)
        if impl == "graphlearn":
            from graphlearn.nn import RGATConv as Ours

            first, second = Ours.from_pyg(first), Ours.from_pyg(second)
        return TwoLayer(first, second, emb).to(device), (x, edge_index, edge_type)
    raise SystemExit(f"unknown model {model!r}")


def output_tensor(out):
    if isinstance(out, dict):
        return torch.cat([v for _, v in sorted(out.items()) if v is not None])
    return out


# ----------------------------------------------------------------------------- worker


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water RSS mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_against_pyg(args, g, module, inputs, device) -> float | None:
    """Max abs difference of graphlearn's output from PyG's (small cases, after timing, so
    the PyG run's memory does not hide graphlearn's peak)."""
    max_diff = None
    if args.impl == "graphlearn" and args.case in SMALL:
        reference, _ = build(args.model, IMPLS[args.model][0], g, device)
        ours = output_tensor(module(*inputs))
        theirs = output_tensor(reference(*inputs))
        max_diff = (ours - theirs).abs().max().item()
        if max_diff > 1e-3 * max(1.0, theirs.abs().max().item()):
            raise SystemExit(f"graphlearn and PyG disagree on {args.case}: {max_diff:.3g}")

    return max_diff


def worker(args) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = load_case(args.case, args.data_root)
    module, inputs = build(args.model, args.impl, g, device)
    def step():
        module.zero_grad(set_to_none=True)
        out = output_tensor(module(*inputs))
        out.square().mean().backward()

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = rss_mb()
        reset_peak_rss()  # so the peak below is this run's, not the data loading's
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = peak_rss_mb() - base
    return {"ms": round(statistics.median(times), 2), "peak_mb": round(peak, 1),
            "max_abs_diff": check_against_pyg(args, g, module, inputs, device),
            "num_nodes": g["num_nodes"],
            "num_edges": int(g["edge_index"].size(1)), "num_relations": g["num_relations"],
            "source": g["source"]}


def run_worker(cmd: list[str], timeout: float) -> dict:
    """Run a worker subprocess; its last stdout line is a JSON dict of measurements.

    Returns ``{"status": "ok", **measurements}``, or ``{"status": "timeout ..."}`` /
    ``{"status": "failed: <last error line>"}`` (exit -9/137 is reported as out of memory).
    """
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout (> {timeout} s)"}
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = "killed (out of memory?)" if proc.returncode in (-9, 137) else (
            lines[-1] if lines else f"exit {proc.returncode}")
        return {"status": f"failed: {why}"}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


def run_one(args, case: str, model: str, impl: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--case", case, "--model", model, "--impl",
           impl, "--device", args.device, "--repeats", str(args.repeats), "--warmup",
           str(args.warmup)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    return run_worker(cmd, args.timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--models", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-root", default=default_data_root())
    parser.add_argument("--export", metavar="DIR",
                        help="only save each case's graph to DIR/<case>.pt (for rgnn_dgl.py)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    if args.export:
        Path(args.export).mkdir(parents=True, exist_ok=True)
        for case in args.cases:
            target = Path(args.export) / f"{case}.pt"
            if not target.exists():  # plain tensors and ints: loadable with weights_only
                torch.save(load_case(case, args.data_root), target)
        return

    import torch_geometric

    for case in args.cases:
        for model in args.models:
            runs = {impl: run_one(args, case, model, impl) for impl in IMPLS[model]}
            ours = runs["graphlearn"]
            pyg_ok = {k: v for k, v in runs.items() if k != "graphlearn" and v["status"] == "ok"}
            fastest = min(pyg_ok, key=lambda k: pyg_ok[k]["ms"]) if pyg_ok else None
            line = {"case": case, "model": model, "device": args.device, **{
                impl: {k: v for k, v in r.items() if k in ("status", "ms", "peak_mb")}
                for impl, r in runs.items()}}
            if ours["status"] == "ok" and fastest:
                line["fastest_pyg"] = fastest
                line["speedup"] = round(pyg_ok[fastest]["ms"] / ours["ms"], 2)
                if pyg_ok[fastest]["peak_mb"] > 0:
                    line["memory_ratio"] = round(ours["peak_mb"] / pyg_ok[fastest]["peak_mb"], 3)
            meta = next((r for r in runs.values() if r["status"] == "ok"), {})
            line.update({k: meta.get(k) for k in ("num_nodes", "num_edges", "num_relations",
                                                   "source")})
            line["max_abs_diff"] = ours.get("max_abs_diff")
            line.update(torch=torch.__version__, torch_geometric=torch_geometric.__version__,
                        threads=args.threads or torch.get_num_threads())
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
