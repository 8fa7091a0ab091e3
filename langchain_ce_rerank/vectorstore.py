"""The old import path of `FaissVectorStore`, kept for existing code (deprecated).

The class lives in `langchain_ce_rerank.store` (module `store/vectorstore.py`);
import it from there or from `langchain_ce_rerank`. Importing this module
warns (`DeprecationWarning`).

Example:
    ```python
    from langchain_ce_rerank.vectorstore import FaissVectorStore  # still works
    from langchain_ce_rerank.store import FaissVectorStore  # its home
    ```
"""

import warnings

from langchain_ce_rerank.store import DistanceStrategy, FaissVectorStore

warnings.warn(
    "langchain_ce_rerank.vectorstore is deprecated; import FaissVectorStore from "
    "langchain_ce_rerank (or langchain_ce_rerank.store)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["DistanceStrategy", "FaissVectorStore"]
