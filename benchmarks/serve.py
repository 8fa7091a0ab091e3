"""`ce-rerank serve` under load: dynamic batching vs one request at a time.

Starts two servers on the stand-in cross-encoder (the same command, one with
`--no-batching`), both with the score cache off so every pair reaches the
model, and drives each with 1, 8 and 32 concurrent clients sending 20-100
candidates a request (passages from `_texts.py`, cut to at most `--words`
words). Levels are run on both servers in turn, the starting one alternating.
Prints pairs/s, p50/p99 latency and the ratios, then the remote client's
overhead over scoring the same pairs in process.

    python serve.py                 # ~4 minutes on 2 busy cores
    python serve.py --levels 1 8 --requests-per-client 2
    python serve.py --levels        # the client's overhead alone
    python serve.py --candidates 1 4 --requests-per-client 8   # small requests
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _texts import QUERY, passages
from _timing import interleaved_median_ms

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving import RemoteCrossEncoder
from langchain_ce_rerank.testing import build_standin_cross_encoder

QUERIES = [
    QUERY,
    "how do I parse a JSON document into Python objects",
    "solve a system of linear equations with a matrix",
    "fit a curve to data points by least squares",
    "read command line arguments and print help",
]


@dataclass
class Server:
    """A `ce-rerank serve` process, read from its stderr: URL and readiness."""

    name: str
    process: subprocess.Popen[str]
    url: str = ""
    loaded: threading.Event = field(default_factory=threading.Event)
    listening: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if found and not self.url:
                self.url = found.group(1)
                self.listening.set()
            if "Model loaded" in line:
                self.loaded.set()
            if " ERROR " in line or " WARNING " in line:
                print(f"[{self.name}] {line}", end="", file=sys.stderr)
        self.listening.set()
        self.loaded.set()


def start(name: str, model: Path, *args: str) -> Server:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "langchain_ce_rerank.cli", "serve",
            "--reranker", str(model), "--model-name", "standin", "--port", "0",
            "--no-cache", "--log-level", "info", *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    server = Server(name, process)
    threading.Thread(target=server.read, daemon=True).start()
    return server


def requests_for(
    pool: list[str],
    clients: int,
    per_client: int,
    seed: int,
    candidates: tuple[int, int] = (20, 100),
) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    return [
        (rng.choice(QUERIES), rng.sample(pool, rng.randint(*candidates)))
        for _ in range(clients * per_client)
    ]


async def drive(
    url: str, clients: int, work: list[tuple[str, list[str]]]
) -> tuple[float, list[float], int]:
    """Send `work` from `clients` concurrent clients; (seconds, latencies, pairs)."""
    queue = list(reversed(work))
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client() -> None:
            while queue:
                query, texts = queue.pop()
                started = time.perf_counter()
                response = await client.post(
                    "/v2/rerank",
                    json={"model": "standin", "query": query, "documents": texts},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, sum(len(texts) for _, texts in work)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def batch_stats(url: str) -> str:
    calls = metric(url, "ce_rerank_batch_requests_count")
    requests = metric(url, "ce_rerank_batch_requests_sum")
    pairs = metric(url, "ce_rerank_batch_pairs_sum")
    if not calls:
        return "no model calls"
    return (
        f"{calls:.0f} model calls, {requests / calls:.2f} requests and "
        f"{pairs / calls:.0f} pairs a call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="cross-encoder folder")
    parser.add_argument(
        "--levels", type=int, nargs="*", default=[1, 8, 32], help="clients"
    )
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--min-requests", type=int, default=4)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument(
        "--candidates",
        type=int,
        nargs=2,
        default=[20, 100],
        metavar=("MIN", "MAX"),
        help="candidates a request, uniform (default: 20 100)",
    )
    parser.add_argument(
        "--waits",
        type=float,
        nargs="+",
        default=[5.0],
        metavar="MS",
        help="--max-batch-wait-ms of the batching server; several start one "
        "batching server each (default: 5)",
    )
    parser.add_argument(
        "--overhead-repeats", type=int, default=5, help="0 skips the client overhead"
    )
    args = parser.parse_args()
    # Stop the servers in `finally` even when this script is terminated.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    model = args.model or build_standin_cross_encoder(
        Path(tempfile.gettempdir()) / "ce-rerank-standin"
    )
    pool = [" ".join(p.split()[: args.words]) for p in passages(400)]
    import torch

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPU cores; stand-in MiniLM-L6 "
        f"cross-encoder; {len(pool)} passages cut to <= {args.words} words "
        f"(mean {statistics.mean(len(p.split()) for p in pool):.0f}); "
        f"{args.candidates[0]}-{args.candidates[1]} candidates a request; "
        "score cache off"
    )
    batching = {
        "batching" if len(args.waits) == 1 else f"batching {wait:g}ms": start(
            "batching", model, "--max-batch-wait-ms", str(wait)
        )
        for wait in args.waits
    }
    servers = {
        **batching,
        "one-at-a-time": start("one-at-a-time", model, "--no-batching"),
    }
    try:
        for server in servers.values():
            assert server.listening.wait(300), f"{server.name} never listened"
            assert server.loaded.wait(600), f"{server.name} never loaded"
            assert server.process.poll() is None, f"{server.name} exited"
        warm = requests_for(pool, 1, 2, seed=99)
        for server in servers.values():
            asyncio.run(drive(server.url, 1, warm))

        header = (
            f"{'clients':>7} {'server':<14} {'pairs/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'requests':>8}"
        )
        if args.levels:
            print(header)
            print("-" * len(header))
        rates: dict[tuple[int, str], float] = {}
        for number, clients in enumerate(args.levels):
            per_client = max(args.requests_per_client, -(-args.min_requests // clients))
            work = requests_for(
                pool, clients, per_client, seed=clients, candidates=args.candidates
            )
            names = list(servers)
            if number % 2:
                names.reverse()
            for name in names:
                elapsed, latencies, pairs = asyncio.run(
                    drive(servers[name].url, clients, work)
                )
                rates[clients, name] = pairs / elapsed
                print(
                    f"{clients:>7} {name:<14} {pairs / elapsed:>8.1f} "
                    f"{1000 * percentile(latencies, 0.5):>8.0f} "
                    f"{1000 * percentile(latencies, 0.99):>8.0f} {len(work):>8}"
                )
            for name in batching:
                ratio = rates[clients, name] / rates[clients, "one-at-a-time"]
                print(f"{'':>7} {name} / one-at-a-time: {ratio:.2f}x pairs/s")
        if args.levels:
            for name, server in batching.items():
                print(f"{name} server: {batch_stats(server.url)}")

        if args.overhead_repeats < 1:
            return
        # The client's overhead: the same pairs through HTTP vs in process,
        # and (robust to a busy machine) the client's wall time minus the
        # server's own model time for the same requests.
        engine = Reranker(model=model, top_n=None, cache_size=0)
        engine.load_model()
        pairs = [(QUERY, t) for t in pool[:40]]
        url = servers["one-at-a-time"].url
        with RemoteCrossEncoder(url, api="cohere", model="standin") as client:
            times = interleaved_median_ms(
                {
                    "in process": lambda: engine.score(QUERY, [t for _, t in pairs]),
                    "RemoteCrossEncoder": lambda: client.score(pairs),
                },
                repeats=args.overhead_repeats,
            )
            model_before = metric(url, "ce_rerank_model_seconds_sum")
            started = time.perf_counter()
            for _ in range(args.overhead_repeats):
                client.score(pairs)
            wall = time.perf_counter() - started
            model_time = metric(url, "ce_rerank_model_seconds_sum") - model_before
        overhead = times["RemoteCrossEncoder"] - times["in process"]
        print(
            f"{len(pairs)} pairs, median of {args.overhead_repeats}: in process "
            f"{times['in process']:.0f} ms, RemoteCrossEncoder through the server "
            f"{times['RemoteCrossEncoder']:.0f} ms ({overhead:+.0f} ms, "
            f"{overhead / times['in process']:+.1%})"
        )
        outside = 1000 * (wall - model_time) / args.overhead_repeats
        print(
            f"client wall time minus the server's model time: {outside:.1f} ms a "
            f"request ({outside / (1000 * wall / args.overhead_repeats):.1%} of it)"
        )
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            server.process.wait(60)


if __name__ == "__main__":
    main()
