"""The reranking retriever inside an LCEL chain: retriever | format_docs | prompt | model.

A fake chat model stands in for the LLM so this runs offline; swap in any
LangChain chat model (ChatOpenAI, ChatOllama, ...) and nothing else changes.

    python examples/chain.py --reranker ./my-ce
"""

from __future__ import annotations

import sys

from docker_corpus import QUERY, example_retriever, run
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough


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
    retriever = example_retriever(__doc__.splitlines()[0], top_n=2)
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
    sys.exit(run(main))
