"""The old import path of `FaissRetriever`, kept for existing code.

The first stage lives with its store, in `langchain_ce_rerank.store.retriever`;
import it from `langchain_ce_rerank`. Importing this module warns.

Example:
    ```python
    from langchain_ce_rerank import FaissRetriever  # not .retriever
    ```
"""

import warnings

from langchain_ce_rerank.store.retriever import FaissRetriever

__all__ = ["FaissRetriever"]

warnings.warn(
    "langchain_ce_rerank.retriever is deprecated: import FaissRetriever from "
    "langchain_ce_rerank (its module is langchain_ce_rerank.store.retriever)",
    DeprecationWarning,
    stacklevel=2,
)
