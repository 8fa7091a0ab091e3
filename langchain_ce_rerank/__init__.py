"""Two-stage retrieval for LangChain: FAISS candidates, cross-encoder reranking."""

from importlib import metadata

from langchain_ce_rerank.compressor import CrossEncoderCompressor
from langchain_ce_rerank.errors import ModelNotFoundError, StoreLoadError
from langchain_ce_rerank.evaluation import EvaluationReport, evaluate, load_beir
from langchain_ce_rerank.ingest import load_corpus, sync_store
from langchain_ce_rerank.models import load_embeddings
from langchain_ce_rerank.pipeline import RerankingRetriever, build_reranking_retriever
from langchain_ce_rerank.retriever import FaissRetriever
from langchain_ce_rerank.vectorstore import FaissVectorStore

try:
    __version__ = metadata.version(__package__ or __name__)
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "CrossEncoderCompressor",
    "EvaluationReport",
    "FaissRetriever",
    "FaissVectorStore",
    "ModelNotFoundError",
    "RerankingRetriever",
    "StoreLoadError",
    "__version__",
    "build_reranking_retriever",
    "evaluate",
    "load_beir",
    "load_corpus",
    "load_embeddings",
    "sync_store",
]
