"""The old import path of `FaissVectorStore`, kept for existing code.

The class lives in `langchain_ce_rerank.store` (module `store/vectorstore.py`);
import it from there or from `langchain_ce_rerank`.

Example:
    ```python
    from langchain_ce_rerank.vectorstore import FaissVectorStore  # still works
    from langchain_ce_rerank.store import FaissVectorStore  # its home
    ```
"""

from langchain_ce_rerank.store import DistanceStrategy, FaissVectorStore

__all__ = ["DistanceStrategy", "FaissVectorStore"]
