"""The reranking retriever exposed to an agent as a tool, within a token budget.

`create_retriever_tool` turns the retriever into a tool an LLM can call. The
reranker keeps the tool's text within `max_context_tokens` (counted by the
reranker's own tokenizer): results are taken best first until the budget is
full, and one result alone over it is cut to its best window. The tool's text
is the documents' text, separated by blank lines (which add no tokens for a
word-piece tokenizer); the Documents themselves (both stages' scores, and
`context_tokens` in metadata) travel as the artifact. A scripted fake chat
model plays the agent so this runs offline.

    python examples/agent_tool.py --reranker ./my-ce
"""

from __future__ import annotations

import sys

from docker_corpus import QUERY, example_retriever, run
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, create_retriever_tool

BUDGET = 40
"""Tokens of context the tool may hand the agent per call."""


def budget_tool(retriever: BaseRetriever) -> BaseTool:
    """The retriever as a tool whose text is only the documents' text.

    With `max_context_tokens` on the reranker, that text stays within the
    budget (the separators are whitespace, which the tokenizer does not count).
    """
    return create_retriever_tool(
        retriever,
        name="search_ops_docs",
        description="Search the operations handbook; returns the best passages.",
        document_prompt=PromptTemplate.from_template("{page_content}"),
        document_separator="\n\n",
        response_format="content_and_artifact",
    )


def main() -> None:
    retriever = example_retriever(
        __doc__.splitlines()[0], top_n=3, max_context_tokens=BUDGET
    )
    tool = budget_tool(retriever)
    # The "agent": a chat model that first calls the tool, then answers.
    agent = FakeMessagesListChatModel(
        responses=[
            AIMessage(
                content="",
                tool_calls=[
                    {"name": tool.name, "args": {"query": QUERY}, "id": "call_1"}
                ],
            ),
            AIMessage(content="Tar the volume, copy the archive, extract it there."),
        ]
    )
    messages: list[BaseMessage] = [HumanMessage(QUERY)]
    while True:
        reply = agent.invoke(messages)
        messages.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            break
        for call in reply.tool_calls:
            result = tool.invoke({**call, "type": "tool_call"})
            messages.append(result)

    for message in messages:
        print(f"--- {message.type}")
        if isinstance(message, AIMessage) and message.tool_calls:
            print(
                f"calls {message.tool_calls[0]['name']}({message.tool_calls[0]['args']})"
            )
        else:
            print(message.content)
        if isinstance(message, ToolMessage):
            for doc in message.artifact:
                print(
                    f"  artifact: retrieval #{doc.metadata['retrieval_rank']} "
                    f"cosine={doc.metadata['retrieval_score']:.3f} "
                    f"relevance={doc.metadata['relevance_score']:.3f} "
                    f"tokens={doc.metadata['context_tokens']}"
                    + (" (cut to fit)" if "context_cut" in doc.metadata else "")
                )
            used = retriever.base_compressor.engine.count_tokens(str(message.content))
            print(f"  tool text: {used} tokens of a {BUDGET}-token budget")


if __name__ == "__main__":
    sys.exit(run(main))
