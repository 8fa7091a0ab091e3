"""What the doors cost: the engine alone vs the LangChain and LlamaIndex adapters.

One `Reranker` engine (the MiniLM-L6 stand-in, torch, cache off) scores the
same query and candidates through each door in interleaved rounds (see
`_timing.interleaved_median_ms`), and the script prints each door's time as a
ratio to the engine's `rank`. The doors only turn framework objects into texts
and back, so the ratios should sit within the machine's noise (about ±10%).

    python benchmarks/doors.py [--reranker FOLDER] [--sizes 20 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _texts import QUERY, passages
from _timing import interleaved_median_ms
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, Reranker
from langchain_ce_rerank.testing import build_standin_cross_encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", help="cross-encoder folder (default: stand-in)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = args.reranker or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "ce-rerank-standin")
    )
    engine = Reranker(model=folder, device="cpu", cache_size=0, top_n=5)
    engine.load_model()
    compressor = CrossEncoderCompressor(model=engine)
    try:
        from llama_index.core.schema import NodeWithScore, TextNode

        from langchain_ce_rerank.llama_index import CrossEncoderRerank
    except ImportError as err:
        print(f"(LlamaIndex door skipped: {err})")
        postprocessor = None
    else:
        postprocessor = CrossEncoderRerank(model=engine)
    texts = passages(max(args.sizes))
    print(f"{'candidates':>10} {'door':<42} {'ms':>9} {'/ engine':>9}")
    for size in args.sizes:
        chosen = texts[:size]
        docs = [Document(page_content=t) for t in chosen]
        fns = {
            "engine Reranker.rank": lambda c=chosen: engine.rank(QUERY, c),
            "LangChain CrossEncoderCompressor": lambda d=docs: (
                compressor.compress_documents(d, QUERY)
            ),
        }
        if postprocessor is not None:
            nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in chosen]
            fns["LlamaIndex CrossEncoderRerank"] = lambda n=nodes: (
                postprocessor.postprocess_nodes(n, query_str=QUERY)
            )
        rows = interleaved_median_ms(fns, args.repeats)
        base = rows["engine Reranker.rank"]
        for name, ms in rows.items():
            print(f"{size:>10} {name:<42} {ms:>9.1f} {ms / base:>8.3f}x")


if __name__ == "__main__":
    main()
