"""The reranking retriever exposed to an agent as a tool.

`create_retriever_tool` turns the retriever into a tool an LLM can call; the
tool's text shows each document with its cross-encoder score, and the
Documents themselves (both stages' scores in metadata) travel as the artifact.
A scripted fake chat model plays the agent so this runs offline.

    python examples/agent_tool.py --reranker ./my-ce
"""

from __future__ import annotations

import sys

from docker_corpus import QUERY, example_retriever, run
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import create_retriever_tool


def main() -> None:
    retriever = example_retriever(__doc__.splitlines()[0], top_n=3)
    tool = create_retriever_tool(
        retriever,
        name="search_ops_docs",
        description="Search the operations handbook; returns the best passages.",
        document_prompt=PromptTemplate.from_template(
            "[score {relevance_score:.2f}] {page_content}"
        ),
        response_format="content_and_artifact",
    )
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
                    f"relevance={doc.metadata['relevance_score']:.3f}"
                )


if __name__ == "__main__":
    sys.exit(run(main))
