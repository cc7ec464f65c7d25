"""Load test of ``graphlearn grag serve``: a bounded burst of concurrent requests from a
second process on loopback.

The server is the real command (``graphlearn grag serve DIR``) in a subprocess; this process
is the client. It fires ``--requests`` requests with at most ``--concurrency`` in flight
(``httpx.AsyncClient``), built from real questions, and reports errors, p50/p95/p99 latency
and throughput per endpoint. The anchor, in this same process, is the library call the
endpoint wraps (``GRAG.retrieve`` on the same folder, one question at a time), so the ratio
is what HTTP, JSON and queueing add. Every request's question is a distinct text, so no
request is served from the encoder's cache (the worst case).

Default graph: PathQuestion's PQL-3H knowledge base (5.6k facts) indexed with the packaged
all-MiniLM-L6-v2, questions from its test split (``GRAPHLEARN_DATA`` must point at the data).

::

    python benchmarks/grag_serve.py --requests 1000 --concurrency 200
    python benchmarks/grag_serve.py --folder my.grag --questions questions.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grag import percentiles  # benchmarks/grag.py: seconds in, p50/p95/p99/mean in ms out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_folder(out: Path, variant: str, encoder: str) -> tuple[Path, list[str]]:
    from graphlearn.kg.grag import GRAG

    from graphlearn import datasets

    data = datasets.load("pathquestion", variant=variant)
    start = time.perf_counter()
    GRAG.build(data.graph, encoder, k=3, progress=False).save(out)
    print(f"indexed {variant}: {data.graph.num_nodes} nodes, {data.graph.num_edges} edges in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return out, [ex.question for ex in data.split("test")]


async def burst(url: str, path: str, bodies: list[dict], concurrency: int,
                stream: bool) -> tuple[list[float], list[str], float]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def one(body: dict) -> None:
            async with gate:
                start = time.perf_counter()
                try:
                    if stream:
                        async with client.stream("POST", path, json=body) as res:
                            text = (await res.aread()).decode()
                        ok = res.status_code == 200 and "event: done" in text
                    else:
                        res = await client.post(path, json=body)
                        ok = res.status_code == 200
                        text = res.text
                    if not ok:
                        errors.append(f"{res.status_code}: {text[:200]}")
                except Exception as exc:  # a transport error is a failed request
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        wall = time.perf_counter() - start
    return latencies, errors, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", help="A GRAG folder (default: index PathQuestion).")
    parser.add_argument("--variant", default="PQL-3H", help="PathQuestion variant to index.")
    parser.add_argument("--encoder", default="default", help="default (MiniLM) or hashing.")
    parser.add_argument("--questions", help="A file of questions, one per line.")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides.")
    parser.add_argument("--out", default="benchmarks/results/grag-serve-cpu.jsonl")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    if args.folder:
        folder, questions = Path(args.folder), []
    else:
        folder, questions = build_folder(Path(tmp.name) / "pq.grag", args.variant, args.encoder)
    if args.questions:
        questions = [q for q in Path(args.questions).read_text().splitlines() if q.strip()]
    if not questions:
        raise SystemExit("no questions: pass --questions FILE with --folder")

    # --- the anchor: the library call itself, in this process, one question at a time
    from graphlearn.kg.grag import GRAG

    grag = GRAG.load(folder)
    for q in questions[:20]:
        grag.retrieve(q)
    direct = []
    for i, q in enumerate(questions[:200]):
        start = time.perf_counter()
        grag.retrieve(f"{q} (anchor {i})")
        direct.append(time.perf_counter() - start)
    direct_stats = percentiles(direct)

    # --- the server: the real command in a second process
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen([sys.executable, "-m", "graphlearn.cli.main", "grag", "serve",
                               str(folder), "--port", str(port), "--log-level", "warning"],
                              env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        import httpx

        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server exited: {server.stderr.read()}")
            try:
                httpx.get(f"{url}/health", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                if time.time() > deadline:
                    raise SystemExit("server did not start in 300 s") from None
                time.sleep(0.5)
        cases = [("/retrieve", False, {"description": True}), ("/answer", False, {}),
                 ("/answer", True, {"stream": True})]
        meta = {"device": "cpu", "threads": args.threads, "python": platform.python_version(),
                "torch": torch.__version__, "machine": platform.machine(),
                "graph_nodes": grag.num_nodes, "graph_edges": grag.num_edges,
                "encoder": grag.index.encoder.name, "k": grag.k,
                "requests": args.requests, "concurrency": args.concurrency}
        print(f"in-process GRAG.retrieve (anchor): p50 {direct_stats['p50_ms']:.1f} ms, "
              f"p95 {direct_stats['p95_ms']:.1f} ms")
        print(f"{'endpoint':<22}{'ok':>6}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}"
              f"{'p99 ms':>10}{'req/s':>9}{'p50/anchor':>12}")
        for path, stream, extra in cases:
            # every request a distinct text (no encoder-cache hits): the worst case
            bodies = [{"question": f"{questions[i % len(questions)]} (request {i}, {path}, "
                                   f"stream={stream})", **extra} for i in range(args.requests)]
            lat, errors, wall = asyncio.run(burst(url, path, bodies, args.concurrency, stream))
            stats = percentiles(lat)
            name = path + (" (stream)" if stream else "")
            print(f"{name:<22}{len(lat) - len(errors):>6}{len(errors):>8}{stats['p50_ms']:>10.1f}"
                  f"{stats['p95_ms']:>10.1f}{stats['p99_ms']:>10.1f}{len(lat) / wall:>9.1f}"
                  f"{stats['p50_ms'] / direct_stats['p50_ms']:>12.1f}")
            for e in errors[:3]:
                print(f"  error: {e}")
            rows.append({**meta, "endpoint": name, "ok": len(lat) - len(errors),
                         "errors": len(errors), "wall_s": wall, "throughput_rps": len(lat) / wall,
                         **stats,
                         "anchor_in_process_p50_ms": direct_stats["p50_ms"],
                         "anchor_in_process_p95_ms": direct_stats["p95_ms"]})
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
