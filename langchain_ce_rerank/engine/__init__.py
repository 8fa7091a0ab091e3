"""The framework-neutral reranking engine: no LangChain, no LlamaIndex.

`Reranker` scores and ranks (query, text) pairs; the LangChain compressor, the
LlamaIndex postprocessor and the HTTP server are thin doors in front of it.

Example:
    ```python
    from langchain_ce_rerank.engine import Reranker

    engine = Reranker(model="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)
    results = engine.rank("Where is Paris?", ["Paris is in France.", "Cats purr."])
    ```
"""

from langchain_ce_rerank.engine.cache import CacheInfo
from langchain_ce_rerank.engine.protocols import CrossEncoderLike, PairScorer
from langchain_ce_rerank.engine.reranker import UNSET, Reranker, Unset, check_text
from langchain_ce_rerank.engine.results import RerankResult, ScoredText
from langchain_ce_rerank.engine.settings import DEFAULT_CROSS_ENCODER, RerankerSettings

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "UNSET",
    "CacheInfo",
    "CrossEncoderLike",
    "PairScorer",
    "RerankResult",
    "Reranker",
    "RerankerSettings",
    "ScoredText",
    "Unset",
    "check_text",
]
