"""On a CUDA GPU: float32/bfloat16/float16, and the server's dynamic batching.

Two measurements, a few minutes in all on one GPU:

1. `dtype.py`'s: the cross-encoder (the MiniLM-L6 stand-in, or `--model`)
   loaded once per dtype, `predict` timed at 100 and 1,000 candidates
   (interleaved rounds), each dtype's scores compared with float32's
   (largest difference, Spearman, top-5 overlap); non-finite scores are
   flagged (float16 overflow, sentence-transformers#3233).
2. `serve.py`'s: `ce-rerank serve` processes on 127.0.0.1 on the GPU, one
   batching server per dtype (`--dtype`) and one float32 server with
   `--no-batching`, driven by 1, 8 and 32 concurrent clients; pairs/s and
   each batching server's ratio to one-at-a-time.

On a machine without CUDA it says so and exits 0. `--device cpu --quick`
runs every part on tiny sizes on CPU, so the script is known to work before
a GPU is lent (its numbers then mean nothing).

    python benchmarks/gpu.py                      # on a CUDA machine
    python benchmarks/gpu.py --model /models/bge-reranker-v2-m3
    python benchmarks/gpu.py --device cpu --quick # a dry run anywhere
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

NO_CUDA = "no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing to measure; run it where one is, or try --device cpu --quick"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="cross-encoder folder or id (default: stand-in)"
    )
    parser.add_argument("--device", default="cuda", help="default: %(default)s")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one round: checks that the script runs, measures nothing",
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="default: 100 1000")
    parser.add_argument("--levels", type=int, nargs="+", help="default: 1 8 32")
    parser.add_argument("--repeats", type=int, help="timed rounds (default: 3)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([4] if args.quick else [100, 1000])
    args.levels = args.levels or ([1, 2] if args.quick else [1, 8, 32])
    args.repeats = args.repeats or (1 if args.quick else 3)
    return args


def _dtypes(args: argparse.Namespace) -> tuple[str, ...]:
    """The dtypes measured; on CPU only float32.

    Half precision on CPU is the slow path the library refuses
    (benchmarks/README.md), and would only add minutes.
    """
    if args.device == "cpu":
        return ("float32",)
    return ("float32", "bfloat16", "float16")


def dtypes_part(folder: str, args: argparse.Namespace) -> None:
    from _texts import QUERY, passages
    from dtype import load_models, measure, print_header, print_rows

    names = _dtypes(args)
    models = load_models(folder, device=args.device, dtypes=names)
    texts = passages(max(args.sizes))
    batch = 4 if args.device == "cpu" else 32
    print(f"\n1. predict per dtype on {args.device}, batch {batch}")
    print_header()
    for size in args.sizes:
        pairs = [(QUERY, t) for t in texts[:size]]
        print_rows(measure(models, pairs, repeats=args.repeats, batch_size=batch))
    del models
    if args.device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def serving_part(folder: str, args: argparse.Namespace) -> None:
    from _texts import passages
    from serve import batch_stats, drive, requests_for, start

    extra = ("--device", args.device)
    # A batching server per dtype (`ce-rerank serve --dtype`), and float32 one
    # request at a time as the baseline; all started at once, so they load
    # side by side.
    servers = {
        f"batching {dtype}": start(
            f"batching {dtype}", Path(folder), "--max-batch-wait-ms", "5",
            "--dtype", dtype, *extra,
        )
        for dtype in _dtypes(args)
    }  # fmt: skip
    servers["one-at-a-time"] = start(
        "one-at-a-time", Path(folder), "--no-batching", *extra
    )
    words = 20 if args.quick else 60
    candidates = (2, 4) if args.quick else (20, 100)
    pool = [" ".join(p.split()[:words]) for p in passages(50 if args.quick else 400)]
    try:
        for server in servers.values():
            assert server.listening.wait(300), f"{server.name} never listened"
            assert server.loaded.wait(600), f"{server.name} never loaded"
            assert server.process.poll() is None, f"{server.name} exited"
        warm = requests_for(pool, 1, 2, seed=99, candidates=candidates)
        for server in servers.values():
            asyncio.run(drive(server.url, 1, warm))
        print(
            f"\n2. ce-rerank serve on {args.device}: {candidates[0]}-{candidates[1]} "
            f"candidates of <= {words} words a request, cache off; each --dtype "
            "batching against float32 one request at a time"
        )
        print(f"{'clients':>7} {'server':<17} {'pairs/s':>9} {'seconds':>8} {'x':>6}")
        for clients in args.levels:
            per_client = 1 if args.quick else max(2, -(-16 // clients))
            work = requests_for(
                pool, clients, per_client, seed=clients, candidates=candidates
            )
            rates = {}
            for name, server in reversed(servers.items()):  # baseline first
                elapsed, _, pairs = asyncio.run(drive(server.url, clients, work))
                rates[name] = pairs / elapsed
                ratio = rates[name] / rates["one-at-a-time"]
                print(
                    f"{clients:>7} {name:<17} {rates[name]:>9.1f} {elapsed:>8.2f} "
                    f"{ratio:>5.2f}x"
                )
        for name, server in servers.items():
            if name != "one-at-a-time":
                print(f"{name} server: {batch_stats(server.url)}")
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            try:
                server.process.wait(30)
            except Exception:
                server.process.kill()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Stop the servers in `finally` even when this script is terminated.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from langchain_ce_rerank.testing import build_standin_cross_encoder

    folder = args.model or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "ce-rerank-standin")
    )
    where = (
        torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"torch {torch.__version__} on {where}; model {folder}"
        + ("; --quick: sizes too small to mean anything" if args.quick else "")
    )
    started = time.perf_counter()
    dtypes_part(folder, args)
    serving_part(folder, args)
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
