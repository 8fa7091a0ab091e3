"""Does reranking help on my data? Retrieval metrics and latency per stage.

`evaluate` measures each first stage (the store's dense, BM25 and hybrid
search, or any retriever) alone and reranked, on the same queries.

Metrics come from `ir-measures` (TREC's own `trec_eval` code, through
pytrec_eval); datasets use the BEIR layout retrieval people already have, and
runs can be written as TREC run files for other tools.
"""

from langchain_ce_rerank.evaluation.datasets import (
    BeirDataset,
    load_beir,
    read_corpus,
    read_qrels,
    read_queries,
    write_trec_run,
)
from langchain_ce_rerank.evaluation.first_stages import (
    FIRST_STAGES,
    FirstStageName,
    default_first_stages,
)
from langchain_ce_rerank.evaluation.report import ConfigurationResult, EvaluationReport
from langchain_ce_rerank.evaluation.runner import DocumentScorer, evaluate

__all__ = [
    "FIRST_STAGES",
    "BeirDataset",
    "ConfigurationResult",
    "DocumentScorer",
    "EvaluationReport",
    "FirstStageName",
    "default_first_stages",
    "evaluate",
    "load_beir",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "write_trec_run",
]
