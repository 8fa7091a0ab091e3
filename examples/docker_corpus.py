"""The seed's Docker corpus and query, and a reranking retriever over them.

The corpus comes from the Sentence Transformers how-to; the retriever is shared
by the chain and agent-tool examples.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from langchain_ce_rerank import (
    ModelNotFoundError,
    RerankingRetriever,
    build_reranking_retriever,
    load_embeddings,
)
from langchain_ce_rerank.cli import ExitStatus
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, DEFAULT_EMBEDDING_MODEL

QUERY = "How do I restore a Docker volume backup on another host?"

DOCUMENTS = [
    "Create a tar archive from a Docker volume, copy it to the new host, and extract "
    "it into a replacement volume.",
    "Use docker compose pull and docker compose up -d to recreate application "
    "containers after an image update.",
    "List Docker images and tags before promoting a release to production.",
    "Upload a finished build directory to Amazon S3 with aws s3 sync for release "
    "backups.",
    "Inspect container logs with docker logs when a service exits during startup.",
]


def example_retriever(
    description: str, top_n: int, **reranker_settings: object
) -> RerankingRetriever:
    """Parse `--reranker` and build the two-stage retriever over DOCUMENTS.

    `reranker_settings` are further `CrossEncoderCompressor` settings, such as
    `max_context_tokens`.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        help="cross-encoder model id or local folder (default: %(default)s)",
    )
    args = parser.parse_args()
    return build_reranking_retriever(
        [Document(page_content=t) for t in DOCUMENTS],
        embedding=load_embeddings(device="cpu"),
        reranker=args.reranker,
        k=4,
        top_n=top_n,
        device="cpu",
        **reranker_settings,
    )


def run(main: Callable[[], None]) -> int:
    """Run an example's `main` and return its exit status, as `ce-rerank` does.

    A model that cannot be found is one line on stderr, `ExitStatus.ERROR` (1);
    argparse exits `ExitStatus.USAGE` (2) by itself for a malformed command line.
    """
    try:
        main()
    except ModelNotFoundError as err:
        # The bi-encoder has no flag here; its message says what to install.
        reworded = (
            err
            if err.model == DEFAULT_EMBEDDING_MODEL
            else err.with_remedy("--reranker PATH")
        )
        print(f"{Path(sys.argv[0]).name}: error: {reworded}", file=sys.stderr)
        return ExitStatus.ERROR
    return ExitStatus.OK
