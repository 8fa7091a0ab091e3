"""The seed's rerank_results.py, rebuilt on langchain-ce-rerank.

A FAISS first stage (all-MiniLM-L6-v2) keeps 4 candidates; a cross-encoder
reorders them. One `invoke` returns both stages' scores in metadata, so the
script prints the initial embedding order and the final reranked order.

    python examples/rerank_results.py                      # ms-marco-MiniLM-L6-v2
    python examples/rerank_results.py --reranker ./my-ce   # a local folder
"""

from __future__ import annotations

import argparse
import logging
import sys

from docker_corpus import DOCUMENTS, QUERY, run
from langchain_core.documents import Document

from langchain_ce_rerank import build_reranking_retriever, load_embeddings
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        help="cross-encoder model id or local folder (default: %(default)s)",
    )
    parser.add_argument("--query", default=QUERY, help="the question to ask")
    parser.add_argument("-k", type=int, default=4, help="first-stage candidates")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    # The reranker is found before the documents are embedded, so a missing
    # one fails at once, in one line (see `run`).
    retriever = build_reranking_retriever(
        [
            Document(page_content=text, id=f"doc-{i}")
            for i, text in enumerate(DOCUMENTS)
        ],
        embedding=load_embeddings(device="cpu"),
        reranker=args.reranker,
        k=args.k,
        top_n=None,
        device="cpu",
    )
    reranked = retriever.invoke(args.query)

    print("Initial embedding search:")
    for doc in sorted(reranked, key=lambda d: d.metadata["retrieval_rank"]):
        rank, cosine = doc.metadata["retrieval_rank"], doc.metadata["retrieval_score"]
        print(f"{rank}. cosine={cosine:.3f} | {doc.page_content}")
    print()
    print("Final reranked order:")
    for position, doc in enumerate(reranked, start=1):
        score, was = doc.metadata["relevance_score"], doc.metadata["retrieval_rank"]
        print(f"{position}. score={score:.2f} (was {was}) | {doc.page_content}")


if __name__ == "__main__":
    sys.exit(run(main))
