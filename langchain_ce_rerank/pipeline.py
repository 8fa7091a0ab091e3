"""The old import path of `RerankingRetriever`, kept for existing code.

Both names live in `langchain_ce_rerank.reranking_retriever`; import them from
there or from `langchain_ce_rerank`. Importing this module warns.

Example:
    ```python
    from langchain_ce_rerank import build_reranking_retriever  # not .pipeline
    ```
"""

import warnings

from langchain_ce_rerank.reranking_retriever import (
    RerankingRetriever,
    build_reranking_retriever,
)

__all__ = ["RerankingRetriever", "build_reranking_retriever"]

warnings.warn(
    "langchain_ce_rerank.pipeline is deprecated: import RerankingRetriever and "
    "build_reranking_retriever from langchain_ce_rerank (their module is "
    "langchain_ce_rerank.reranking_retriever)",
    DeprecationWarning,
    stacklevel=2,
)
