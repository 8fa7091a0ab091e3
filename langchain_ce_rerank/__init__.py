"""Two-stage retrieval for LangChain: FAISS candidates, cross-encoder reranking.

Names are imported on first use, so `import langchain_ce_rerank` stays cheap
and imports no optional framework: `langchain_ce_rerank.engine` needs no
LangChain at all, and the LlamaIndex door lives in
`langchain_ce_rerank.llama_index`, imported only when asked for.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from langchain_ce_rerank.lazy import lazy_exports

if TYPE_CHECKING:
    # For type checkers and IDEs only; `X as X` marks each as re-exported.
    # At run time `__getattr__` imports a name from the table below.
    from langchain_ce_rerank.compressor import (
        CrossEncoderCompressor as CrossEncoderCompressor,
    )
    from langchain_ce_rerank.compressor import (
        RerankedDocuments as RerankedDocuments,
    )
    from langchain_ce_rerank.display import RerankExplanation as RerankExplanation
    from langchain_ce_rerank.display import explain as explain
    from langchain_ce_rerank.engine import Reranker as Reranker
    from langchain_ce_rerank.engine import RerankResult as RerankResult
    from langchain_ce_rerank.engine import ScoreCalibration as ScoreCalibration
    from langchain_ce_rerank.errors import (
        InstructionNotSupportedError as InstructionNotSupportedError,
    )
    from langchain_ce_rerank.errors import ModelNotFoundError as ModelNotFoundError
    from langchain_ce_rerank.errors import (
        NonFiniteScoreError as NonFiniteScoreError,
    )
    from langchain_ce_rerank.errors import StoreLoadError as StoreLoadError
    from langchain_ce_rerank.evaluation import EvaluationReport as EvaluationReport
    from langchain_ce_rerank.evaluation import calibrate as calibrate
    from langchain_ce_rerank.evaluation import evaluate as evaluate
    from langchain_ce_rerank.evaluation import load_beir as load_beir
    from langchain_ce_rerank.ingest import load_corpus as load_corpus
    from langchain_ce_rerank.ingest import sync_store as sync_store
    from langchain_ce_rerank.models import load_embeddings as load_embeddings
    from langchain_ce_rerank.parents import SourceFiles as SourceFiles
    from langchain_ce_rerank.reranking_retriever import (
        RerankingRetriever as RerankingRetriever,
    )
    from langchain_ce_rerank.reranking_retriever import (
        build_reranking_retriever as build_reranking_retriever,
    )
    from langchain_ce_rerank.serving import RemoteCrossEncoder as RemoteCrossEncoder
    from langchain_ce_rerank.serving import RemoteRerankError as RemoteRerankError
    from langchain_ce_rerank.serving import (
        RemoteRerankTimeoutError as RemoteRerankTimeoutError,
    )
    from langchain_ce_rerank.store import FaissVectorStore as FaissVectorStore
    from langchain_ce_rerank.store.retriever import FaissRetriever as FaissRetriever

# Every public name -> the module that defines it; `__all__` is built from it.
_EXPORTS = {
    "BM25Settings": "store.bm25",
    "CrossEncoderCompressor": "compressor",
    "EvaluationReport": "evaluation",
    "FaissRetriever": "store.retriever",
    "FaissVectorStore": "store",
    "InstructionNotSupportedError": "errors",
    "ModelNotFoundError": "errors",
    "NonFiniteScoreError": "errors",
    "RerankExplanation": "display",
    "RemoteCrossEncoder": "serving",
    "RemoteRerankError": "serving",
    "RemoteRerankTimeoutError": "serving",
    "RerankResult": "engine",
    "RerankedDocuments": "compressor",
    "Reranker": "engine",
    "RerankingRetriever": "reranking_retriever",
    "ScoreCalibration": "engine",
    "SourceFiles": "parents",
    "StoreLoadError": "errors",
    "build_reranking_retriever": "reranking_retriever",
    "calibrate": "evaluation",
    "evaluate": "evaluation",
    "explain": "display",
    "load_beir": "evaluation",
    "load_corpus": "ingest",
    "load_embeddings": "models",
    "sync_store": "ingest",
}

try:
    __version__ = metadata.version(__package__ or __name__)
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [*_EXPORTS, "__version__"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
