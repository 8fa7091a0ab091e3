"""The reranking retriever inside an LCEL chain: retriever | format_docs | prompt | model.

A fake chat model stands in for the LLM so this runs offline; swap in any
LangChain chat model (ChatOpenAI, ChatOllama, ...) and nothing else changes.

    python examples/chain.py --reranker ./my-ce
"""

from __future__ import annotations

import argparse

from docker_corpus import DOCUMENTS, QUERY
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from langchain_ce_rerank import build_reranking_retriever, load_embeddings
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER


def format_docs(docs: list[Document]) -> str:
    return "\n".join(
        f"[{d.metadata['relevance_score']:.2f} | first stage #{d.metadata['retrieval_rank']}]"
        f" {d.page_content}"
        for d in docs
    )


def show_prompt(prompt: PromptValue) -> PromptValue:
    print("Prompt sent to the model:\n" + prompt.to_string() + "\n")
    return prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", default=DEFAULT_CROSS_ENCODER)
    args = parser.parse_args()

    retriever = build_reranking_retriever(
        [Document(page_content=t) for t in DOCUMENTS],
        embedding=load_embeddings(device="cpu"),
        reranker=args.reranker,
        k=4,
        top_n=2,
        device="cpu",
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Answer using only this context:\n{context}"),
            ("human", "{question}"),
        ]
    )
    model = FakeListChatModel(
        responses=["Archive the volume with tar, copy it over, and extract it."]
    )
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(show_prompt)
        | model
        | StrOutputParser()
    )
    print("Answer:", chain.invoke(QUERY))


if __name__ == "__main__":
    main()
