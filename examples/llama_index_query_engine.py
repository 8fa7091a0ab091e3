"""A LlamaIndex query engine with the cross-encoder as its node postprocessor.

The seed's Docker corpus goes into a `VectorStoreIndex` embedded with the
bundled all-MiniLM-L6-v2; the query engine retrieves 4 nodes and
`CrossEncoderRerank` reorders them. The script prints each node's first-stage
rank and cosine next to its cross-encoder score. `MockLLM` stands in for
the LLM that would answer from these nodes; pass yours as `llm=...`.

    pip install -e ".[llama-index]"   # in the clone; README, Install
    python examples/llama_index_query_engine.py                     # ms-marco-MiniLM-L6-v2
    python examples/llama_index_query_engine.py --reranker ./my-ce  # a local folder
"""

from __future__ import annotations

import argparse
import logging
import sys

from docker_corpus import DOCUMENTS, QUERY, run
from langchain_core.embeddings import Embeddings
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode
from pydantic import ConfigDict

from langchain_ce_rerank import load_embeddings
from langchain_ce_rerank.llama_index import CrossEncoderRerank
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex's embedding interface over this package's bundled MiniLM."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    embeddings: Embeddings

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embeddings.embed_query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embeddings.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embeddings.embed_documents(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        help="cross-encoder model id or local folder (default: %(default)s)",
    )
    parser.add_argument("--query", default=QUERY, help="the question to ask")
    parser.add_argument("-k", type=int, default=4, help="first-stage candidates")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rerank = CrossEncoderRerank(model=args.reranker, device="cpu", top_n=None)
    rerank.load_model()  # a missing reranker fails here, before any embedding

    nodes = [TextNode(text=text, id_=f"doc-{i}") for i, text in enumerate(DOCUMENTS)]
    embed_model = MiniLMEmbedding(embeddings=load_embeddings(device="cpu"))
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    engine = index.as_query_engine(
        similarity_top_k=args.k,
        node_postprocessors=[rerank],
        llm=MockLLM(),
    )
    response = engine.query(args.query)

    print(f"Query: {args.query}")
    print("Reranked nodes:")
    for position, item in enumerate(response.source_nodes, start=1):
        meta = item.node.metadata
        print(
            f"{position}. score={item.score:.2f} (was {meta['retrieval_rank']}, "
            f"cosine={meta['retrieval_score']:.3f}) | {item.node.get_content()}"
        )


if __name__ == "__main__":
    sys.exit(run(main))
