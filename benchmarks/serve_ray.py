"""Ray Serve with 1 and 2 replicas vs the plain server and the in-process engine.

The in-process engine scores the requests one after another
(`Reranker.score_batch`, score cache off), as one process would. The plain
`ce-rerank serve` (dynamic batching, `--no-cache`) and Ray Serve
(`serving/ray_serve/`, score cache off) get the same requests from
`--clients` concurrent HTTP clients; Ray Serve first with 1 scoring replica,
then with 2 (each replica reserves 1 CPU, so Ray gives it one torch thread).
Prints pairs/s, median request latency and the ratios to in-process and to
the plain server. Each server and the in-process engine load the stand-in
cross-encoder (or `--reranker`).

    python serve_ray.py                     # ~2 minutes on 2 busy cores
    python serve_ray.py --requests 16 --clients 4
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import ray
from _texts import QUERY, passages
from ray import serve

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving.ray_serve import RayServeArgs, build_app
from langchain_ce_rerank.testing import build_standin_cross_encoder

QUERIES = [
    QUERY,
    "how do I parse a JSON document into Python objects",
    "solve a system of linear equations with a matrix",
    "read command line arguments and print help",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _requests(count: int, docs: int, words: int) -> list[tuple[str, list[str]]]:
    pool = [" ".join(p.split()[:words]) for p in passages(docs * 4)]
    return [
        (f"{QUERIES[i % len(QUERIES)]} ({i})", pool[(i * docs) % len(pool) :][:docs])
        for i in range(count)
    ]


def _in_process(
    engine: Reranker, requests: list[tuple[str, list[str]]]
) -> dict[str, float]:
    engine.score_batch([requests[0]], use_cache=False)  # warm-up
    latencies = []
    start = time.perf_counter()
    for request in requests:
        began = time.perf_counter()
        engine.score_batch([request], use_cache=False)
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    pairs = sum(len(texts) for _, texts in requests)
    return {"pairs_s": pairs / elapsed, "p50_ms": 1000 * statistics.median(latencies)}


def _on_serve(
    url: str, requests: list[tuple[str, list[str]]], clients: int
) -> dict[str, float]:
    with httpx.Client(timeout=300) as client:

        def send(request: tuple[str, list[str]]) -> float:
            began = time.perf_counter()
            reply = client.post(
                f"{url}/v2/rerank", json={"query": request[0], "documents": request[1]}
            )
            reply.raise_for_status()
            return time.perf_counter() - began

        send(requests[0])  # warm-up
        with ThreadPoolExecutor(max_workers=clients) as pool:
            start = time.perf_counter()
            latencies = list(pool.map(send, requests))
            elapsed = time.perf_counter() - start
    pairs = sum(len(texts) for _, texts in requests)
    return {"pairs_s": pairs / elapsed, "p50_ms": 1000 * statistics.median(latencies)}


def _plain_server(
    model: str, requests: list[tuple[str, list[str]]], clients: int
) -> dict[str, float]:
    """`ce-rerank serve` in a process of its own, on the same requests."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "langchain_ce_rerank.cli",
            "serve",
            "--reranker",
            model,
            "--port",
            str(port),
            "--no-cache",
            "--log-level",
            "error",
        ],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("ce-rerank serve did not become ready")
            time.sleep(0.2)
        return _on_serve(url, requests, clients)
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", help="model folder (default: the stand-in)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--docs", type=int, default=30, help="candidates a request")
    parser.add_argument("--words", type=int, default=120, help="words a candidate")
    parser.add_argument("--clients", type=int, default=8)
    options = parser.parse_args()
    model = options.reranker or str(
        build_standin_cross_encoder(tempfile.mkdtemp(prefix="standin-"))
    )
    requests = _requests(options.requests, options.docs, options.words)
    results = {"in-process": _in_process(Reranker(model=model), requests)}
    results["ce-rerank serve"] = _plain_server(model, requests, options.clients)

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        for replicas in (1, 2):
            args = RayServeArgs(
                model=model, num_replicas=replicas, use_cache=False, num_cpus=1
            )
            serve.run(build_app(args), name="bench", route_prefix="/")
            name = f"Ray Serve, {replicas} replica{'s' * (replicas > 1)}"
            results[name] = _on_serve(
                f"http://127.0.0.1:{port}", requests, options.clients
            )
            serve.delete("bench")
    finally:
        serve.shutdown()
        ray.shutdown()

    pairs = sum(len(texts) for _, texts in requests)
    print(
        f"{len(requests)} requests x {options.docs} candidates ({pairs} pairs, "
        f"<= {options.words} words each), {options.clients} clients, "
        f"{os.cpu_count()} CPUs"
    )
    base = results["in-process"]["pairs_s"]
    plain = results["ce-rerank serve"]["pairs_s"]
    print(
        f"{'configuration':<24} {'pairs/s':>8} {'p50 ms':>8} {'vs in-process':>14}"
        f" {'vs ce-rerank serve':>19}"
    )
    for name, row in results.items():
        print(
            f"{name:<24} {row['pairs_s']:>8.1f} {row['p50_ms']:>8.0f} "
            f"{row['pairs_s'] / base:>13.2f}x {row['pairs_s'] / plain:>18.2f}x"
        )


if __name__ == "__main__":
    main()
