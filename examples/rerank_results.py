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

from docker_corpus import DOCUMENTS, QUERY
from langchain_core.documents import Document

from langchain_ce_rerank import (
    FaissVectorStore,
    ModelNotFoundError,
    build_reranking_retriever,
    load_embeddings,
)
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        help="cross-encoder model id or local folder (default: %(default)s)",
    )
    parser.add_argument("--query", default=QUERY, help="the question to ask")
    parser.add_argument("-k", type=int, default=4, help="first-stage candidates")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    store = FaissVectorStore(load_embeddings(device="cpu"))
    store.add_documents(
        [Document(page_content=text, id=f"doc-{i}") for i, text in enumerate(DOCUMENTS)]
    )
    retriever = build_reranking_retriever(
        vectorstore=store, reranker=args.reranker, k=args.k, top_n=None, device="cpu"
    )
    try:
        reranked = retriever.invoke(args.query)
    except ModelNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        print(
            "hint: without Hub access, build the untrained stand-in with "
            "examples/build_standin_reranker.py and pass --reranker FOLDER "
            "(its scores are meaningless)",
            file=sys.stderr,
        )
        return 2

    print("Initial embedding search:")
    for doc in sorted(reranked, key=lambda d: d.metadata["retrieval_rank"]):
        rank, cosine = doc.metadata["retrieval_rank"], doc.metadata["retrieval_score"]
        print(f"{rank}. cosine={cosine:.3f} | {doc.page_content}")
    print()
    print("Final reranked order:")
    for position, doc in enumerate(reranked, start=1):
        score, was = doc.metadata["relevance_score"], doc.metadata["retrieval_rank"]
        print(f"{position}. score={score:.2f} (was {was}) | {doc.page_content}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
