"""Does reranking help on my data? Retrieval metrics and latency per stage.

`evaluate` measures each first stage (the store's dense, BM25 and hybrid
search, or any retriever) alone and reranked, on the same queries.

Also where a reranker's scores are calibrated into probabilities of
relevance on labelled queries (`calibrate`, `CalibrationReport`).

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
from langchain_ce_rerank.evaluation.probability_fit import (
    calibrate,
    calibrate_scores,
    fit_mapping,
)
from langchain_ce_rerank.evaluation.probability_report import CalibrationReport
from langchain_ce_rerank.evaluation.report import ConfigurationResult, EvaluationReport
from langchain_ce_rerank.evaluation.runner import DocumentScorer, evaluate

__all__ = [
    "FIRST_STAGES",
    "BeirDataset",
    "CalibrationReport",
    "ConfigurationResult",
    "DocumentScorer",
    "EvaluationReport",
    "FirstStageName",
    "calibrate",
    "calibrate_scores",
    "default_first_stages",
    "evaluate",
    "fit_mapping",
    "load_beir",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "write_trec_run",
]
