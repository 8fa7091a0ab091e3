"""The framework-neutral reranking engine: no LangChain, no LlamaIndex.

`Reranker` scores and ranks (query, text) pairs; the LangChain compressor, the
LlamaIndex postprocessor and the HTTP server are thin doors in front of it. A
door holds an engine and its `RankingSettings`, resolves each call's options
with `RankingSettings.for_call`, and writes `result_metadata(result)` on the
copies it returns. `Reranker.select` also says why each candidate it did not
return was dropped (`DroppedCandidate`, `DROP_REASONS`).

Example:
    ```python
    from langchain_ce_rerank.engine import Reranker

    engine = Reranker(model="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3)
    results = engine.rank("Where is Paris?", ["Paris is in France.", "Cats purr."])
    ```
"""

from langchain_ce_rerank.engine.cache import CacheInfo
from langchain_ce_rerank.engine.checks import check_query, check_text
from langchain_ce_rerank.engine.identity import ScoringIdentity
from langchain_ce_rerank.engine.probability import (
    CalibrationMismatchError,
    ScoreCalibration,
)
from langchain_ce_rerank.engine.protocols import (
    AsyncDeadlineScorer,
    CrossEncoderLike,
    DeadlineScorer,
    PairScorer,
    TokenizedScorer,
)
from langchain_ce_rerank.engine.ranking import first_stage_ranks
from langchain_ce_rerank.engine.reranker import Reranker
from langchain_ce_rerank.engine.results import (
    DROP_REASONS,
    DroppedCandidate,
    RerankResult,
    ScoredText,
    Selection,
    UnscoredText,
    result_metadata,
)
from langchain_ce_rerank.engine.settings import (
    DEFAULT_CROSS_ENCODER,
    PER_CALL_OPTIONS,
    UNSET,
    RankingSettings,
    RerankerSettings,
    ScoringSettings,
    Unset,
)
from langchain_ce_rerank.engine.shaping import GroupBy, TokenCounter, group_keys

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "DROP_REASONS",
    "PER_CALL_OPTIONS",
    "UNSET",
    "AsyncDeadlineScorer",
    "CacheInfo",
    "CalibrationMismatchError",
    "CrossEncoderLike",
    "DeadlineScorer",
    "DroppedCandidate",
    "GroupBy",
    "PairScorer",
    "RankingSettings",
    "RerankResult",
    "Reranker",
    "RerankerSettings",
    "ScoreCalibration",
    "ScoredText",
    "ScoringIdentity",
    "ScoringSettings",
    "Selection",
    "TokenCounter",
    "TokenizedScorer",
    "UnscoredText",
    "Unset",
    "check_query",
    "check_text",
    "first_stage_ranks",
    "group_keys",
    "result_metadata",
]
