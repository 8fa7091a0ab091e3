"""What one write costs the store's BM25 index: the rebuild on the next search.

bm25s cannot add or delete documents in place, so a write drops the index and
the first keyword search after it rebuilds it from every stored document. This
times that search after one upsert (the store keeps each document's terms, so
only the upserted one is tokenized again) next to a full build from text (the
first search, or the first after `load_local` and a write), its tokenizing
share, and a warm keyword search, and reports the files' size on disk.

Text: the distinct docstring passages of `_texts.wide_passages` (about 26,000
here, 93 words on average), repeated in order to fill larger sizes. Dense
vectors are random (16 dimensions): only the keyword side is measured.

    python benchmarks/bm25_rebuild.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _texts import QUERY, wide_passages
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.store.bm25 import TermCache


def _seconds(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def measure(size: int, pool: list[str]) -> dict[str, float]:
    texts = [pool[i % len(pool)] for i in range(size)]
    rng = np.random.default_rng(0)
    store = FaissVectorStore(DeterministicFakeEmbedding(size=16))
    ids = [str(i) for i in range(size)]
    store.add_embeddings(texts, rng.random((size, 16), dtype=np.float32), ids=ids)
    first = _seconds(lambda: store.bm25_search_with_score(QUERY, k=10))
    warm = min(
        _seconds(lambda: store.bm25_search_with_score(QUERY, k=10)) for _ in range(5)
    )
    store.add_embeddings(
        ["an upserted passage"], rng.random((1, 16), dtype=np.float32), ids=["0"]
    )
    after_upsert = _seconds(lambda: store.bm25_search_with_score(QUERY, k=10))
    settings = store.bm25_settings
    assert settings is not None  # the store keeps a keyword index by default
    tokenize = _seconds(lambda: settings.tokenize(texts))
    full = _seconds(lambda: TermCache(settings).build(ids, lambda i: texts[int(i)]))
    with tempfile.TemporaryDirectory() as folder:
        store.save_local(folder)
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
        files = manifest["files"]
        bm25_bytes = sum(e["bytes"] for r, e in files.items() if r.startswith("bm25"))
        faiss_bytes = files["index"]["bytes"]
        docstore_bytes = files["docstore"]["bytes"]
    return {
        "docs": size,
        "first_search_s": first,
        "warm_search_ms": warm * 1000,
        "search_after_one_upsert_s": after_upsert,
        "full_build_s": full,
        "of_which_tokenize_s": tokenize,
        "bm25_mb": bm25_bytes / 1e6,
        "faiss_mb": faiss_bytes / 1e6,
        "docstore_mb": docstore_bytes / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    pool = wide_passages(max(args.sizes))
    print(f"{len(pool)} distinct passages", flush=True)
    for size in args.sizes:
        row = measure(size, pool)
        print(" ".join(f"{k}={v:.3g}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
