"""Shaping the context through every door: the LangChain compressor and
retriever, parents, the LlamaIndex postprocessor, the explanation, the agent tool.

Scores come from doubles, tokens from a counter double (one token a word).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder, WordOverlapCrossEncoder
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.stores import InMemoryStore

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    RerankedDocuments,
    Reranker,
    SourceFiles,
    build_reranking_retriever,
    load_corpus,
)
from langchain_ce_rerank.display import RerankExplanation, explain

EXAMPLES = Path(__file__).parents[2] / "examples"


def words(text: str) -> int:
    """The counter double: one token per whitespace-separated word."""
    return len(text.split())


SCORES = {
    "apple one": 5.0,
    "apple two": 4.0,
    "pear one": 3.0,
    "apple three": 2.0,
    "plum one": 1.0,
}
SOURCES = {
    "apple one": "apple.md",
    "apple two": "apple.md",
    "pear one": "pear.md",
    "apple three": "apple.md",
    "plum one": "plum.md",
}


def _docs() -> list[Document]:
    return [
        Document(
            page_content=text,
            id=text,
            metadata={"source": SOURCES[text], "retrieval_rank": rank},
        )
        for rank, text in enumerate(SCORES, start=1)
    ]


def _ids(docs: object) -> list[str | None]:
    return [doc.id for doc in docs]  # type: ignore[attr-defined]


# -- the LangChain compressor -------------------------------------------------------


def test_group_by_source_keeps_the_best_chunk_per_file() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), top_n=3, group_by="source"
    )
    docs = _docs()
    assert _ids(compressor.compress_documents(docs, "q")) == [
        "apple one",
        "pear one",
        "plum one",
    ]
    assert docs == _docs()  # the inputs are untouched


def test_group_options_per_call_leave_the_settings_alone() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), top_n=3, group_by="source"
    )
    two = compressor.compress_documents(_docs(), "q", max_per_group=2)
    assert _ids(two) == ["apple one", "apple two", "pear one"]
    ungrouped = compressor.compress_documents(_docs(), "q", group_by=None)
    assert _ids(ungrouped) == ["apple one", "apple two", "pear one"]
    by_letter = compressor.compress_documents(
        _docs(), "q", group_by=lambda doc: doc.page_content[0]
    )
    assert _ids(by_letter) == ["apple one", "pear one"]
    assert compressor.max_per_group is None
    assert compressor.group_by == "source"


def test_a_document_without_the_group_key_is_named() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), group_by="section"
    )
    with pytest.raises(ValueError, match=r"document 0 \(id='apple one'\) has no"):
        compressor.compress_documents(_docs(), "q")


def test_the_budget_cuts_the_list_and_marks_the_counts() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES), top_n=None, token_counter=words
    )
    kept = compressor.compress_documents(_docs(), "q", max_context_tokens=5)
    assert _ids(kept) == ["apple one", "apple two"]
    assert [d.metadata["context_tokens"] for d in kept] == [2, 2]
    assert (
        "context_tokens" not in compressor.compress_documents(_docs(), "q")[0].metadata
    )


def test_an_over_budget_document_comes_back_as_its_best_window() -> None:
    long = "intro words here then the apple answer lives here and then more filler"
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        long_documents="max_passage",
        passage_tokens=8,
        passage_overlap=1,
        max_context_tokens=4,
        token_counter=words,
    )
    doc = Document(page_content=long, id="long", metadata={"source": "x"})
    [kept] = compressor.compress_documents([doc], "apple answer")
    # The best window, "apple answer lives here and then" (6 words), is
    # still over the budget, so it keeps its first 4 words.
    start, end = kept.metadata["relevance_passage"]
    assert long[start:end] == "apple answer lives here and then"
    assert kept.metadata["context_cut"] == [
        start,
        start + len("apple answer lives here"),
    ]
    assert kept.page_content == "apple answer lives here"
    assert kept.metadata["context_tokens"] == 4
    assert doc.page_content == long  # the input keeps its text


def test_with_a_template_the_cut_keeps_the_start_of_the_content() -> None:
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        long_documents="max_passage",
        passage_tokens=8,
        passage_overlap=1,
        content_template="{title} {page_content}",
        max_context_tokens=3,
        token_counter=words,
    )
    doc = Document(page_content="a b c d e f apple", metadata={"title": "T"})
    [kept] = compressor.compress_documents([doc], "apple")
    assert kept.page_content == "a b c"


def test_explained_returns_every_dropped_candidate_with_its_reason() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES),
        top_n=2,
        group_by="source",
        score_threshold=2.5,
    )
    result = compressor.compress_documents_explained(_docs(), "q")
    assert isinstance(result, RerankedDocuments)
    assert _ids(result.documents) == ["apple one", "pear one"]
    assert [(d.id, d.metadata["drop_reason"]) for d in result.dropped] == [
        ("apple two", "group_full"),
        ("apple three", "group_full"),
        ("plum one", "top_n"),
    ]
    assert result.dropped[0].metadata["relevance_score"] == 4.0
    assert result.documents == compressor.compress_documents(_docs(), "q")


async def test_async_and_batch_shape_as_the_sync_call() -> None:
    compressor = CrossEncoderCompressor(
        model=TableCrossEncoder(SCORES),
        top_n=None,
        group_by="source",
        token_counter=words,
    )
    sync = compressor.compress_documents(_docs(), "q", max_context_tokens=4)
    assert _ids(sync) == ["apple one", "pear one"]
    assert (
        await compressor.acompress_documents(_docs(), "q", max_context_tokens=4) == sync
    )
    assert compressor.compress_documents_batch(
        [(_docs(), "q")], max_context_tokens=4
    ) == [sync]


# -- parents ----------------------------------------------------------------------

PARENTS = {
    "apple.md": "apple one. filler words. apple two. more. apple three.",
    "pear.md": "pear one and a long pear text",
    "plum.md": "plum one",
}


def _chunks() -> list[Document]:
    docs = []
    for rank, text in enumerate(SCORES, start=1):
        parent = SOURCES[text]
        docs.append(
            Document(
                page_content=text,
                id=text,
                metadata={
                    "doc_id": parent,
                    "source": parent,
                    "retrieval_rank": rank,
                    "retrieval_score": 1.0 / rank,
                    "start_index": PARENTS[parent].index(text),
                },
            )
        )
    return docs


def _store() -> InMemoryStore:
    store = InMemoryStore()
    store.mset(
        [
            (key, Document(page_content=text, id=key, metadata={"title": key}))
            for key, text in PARENTS.items()
        ]
    )
    return store


class Recording(WordOverlapCrossEncoder):
    """The word-overlap double, remembering every text it scored."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.texts.extend(text for _, text in text_pairs)
        return super().score(text_pairs)


def test_parents_rerank_whole_parents_one_per_group() -> None:
    model = Recording()
    compressor = CrossEncoderCompressor(
        model=model, parents=_store(), top_n=None, passage_tokens=8, passage_overlap=1
    )
    assert compressor.engine.long_documents == "max_passage"
    kept = compressor.compress_documents(_chunks(), "pear text")
    assert [d.id for d in kept] == ["pear.md", "apple.md", "plum.md"]
    pear = kept[0]
    assert pear.page_content == PARENTS["pear.md"]
    assert pear.metadata["title"] == "pear.md"
    assert pear.metadata["parent_chunks"] == ["pear one"]
    assert pear.metadata["best_chunk_span"] == [0, len("pear one")]
    assert (pear.metadata["retrieval_rank"], pear.metadata["retrieval_score"]) == (
        3,
        1 / 3,
    )
    apple = kept[1]
    assert apple.metadata["parent_chunks"] == ["apple one", "apple two", "apple three"]
    assert apple.metadata["retrieval_rank"] == 1
    # The parents' windows, not the chunks, were scored.
    assert "pear one" not in model.texts
    assert "pear one and a long pear" in model.texts


def test_parents_from_a_dict_grouped_per_call() -> None:
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        parents={key: Document(page_content=t) for key, t in PARENTS.items()},
        passage_tokens=8,
        passage_overlap=1,
    )
    kept = compressor.compress_documents(_chunks(), "plum", group_by="source")
    assert kept[0].page_content == "plum one"


def test_a_chunk_without_a_parent_is_an_error_never_the_chunk() -> None:
    store = _store()
    store.mdelete(["pear.md"])
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        parents=store,
        passage_tokens=8,
        passage_overlap=1,
    )
    with pytest.raises(LookupError, match=r"no parent document for 'pear\.md'"):
        compressor.compress_documents(_chunks(), "pear")


def test_a_parent_that_no_longer_holds_its_chunk_is_refused() -> None:
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        parents={
            **{k: Document(page_content=t) for k, t in PARENTS.items()},
            "plum.md": Document(page_content="rewritten since"),
        },
        passage_tokens=8,
        passage_overlap=1,
    )
    with pytest.raises(LookupError, match="'plum one' does not hold the chunk's"):
        compressor.compress_documents(_chunks(), "plum")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"long_documents": "truncate"}, "leave long_documents out"),
        ({"group_by": "source", "max_per_group": 2}, "max_per_group does not apply"),
        ({"parents": ["not", "a", "store"]}, "parents must be a parent store"),
    ],
)
def test_parents_refuse_settings_that_cannot_work(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CrossEncoderCompressor(
            model=WordOverlapCrossEncoder(),
            passage_tokens=8,
            passage_overlap=1,
            **{"parents": {}, **settings},  # type: ignore[arg-type]
        )


def test_parents_need_an_engine_that_scores_windows() -> None:
    engine = Reranker(model=WordOverlapCrossEncoder())
    with pytest.raises(ValueError, match="long_documents='max_passage'"):
        CrossEncoderCompressor(model=engine, parents={})
    windows = Reranker(
        model=WordOverlapCrossEncoder(),
        long_documents="max_passage",
        passage_tokens=8,
        passage_overlap=1,
    )
    assert CrossEncoderCompressor(model=windows, parents={}).engine is windows
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(), parents={}, passage_tokens=8, passage_overlap=1
    )
    with pytest.raises(ValueError, match="max_per_group does not apply"):
        compressor.compress_documents(
            _chunks(), "q", group_by="source", max_per_group=2
        )


def test_source_files_give_back_the_files_load_corpus_read(tmp_path: Path) -> None:
    body = "\n\n".join(f"Paragraph {i}: " + "word " * 40 for i in range(12))
    (tmp_path / "guide.md").write_text(body + "\nThe answer: zebra crossing.\n")
    (tmp_path / "other.md").write_text("Unrelated text about zebra stripes.")
    corpus = load_corpus([tmp_path], chunk_size=300, chunk_overlap=0)
    chunks = [d for d in corpus.documents if "zebra" in d.page_content]
    assert len(chunks) == 2
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        parents=SourceFiles(),
        passage_tokens=40,
        passage_overlap=4,
    )
    kept = compressor.compress_documents(chunks, "answer zebra crossing")
    guide = next(d for d in kept if d.metadata["source"].endswith("guide.md"))
    assert guide.page_content == (tmp_path / "guide.md").read_text()
    start, end = guide.metadata["best_chunk_span"]
    [chunk] = [c for c in chunks if c.metadata["source"].endswith("guide.md")]
    assert guide.page_content[start:end] == chunk.page_content
    # A file changed since indexing is refused, not scored.
    (tmp_path / "guide.md").write_text("Rewritten. " + body)
    with pytest.raises(LookupError, match="changed since the chunk was indexed"):
        compressor.compress_documents(chunks, "zebra")
    (tmp_path / "guide.md").unlink()
    with pytest.raises(LookupError, match="no parent document for"):
        compressor.compress_documents(chunks, "zebra")


def test_source_files_read_back_a_jsonl_row_and_crlf_text(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"id": "r1", "text": "first row about zebra", "metadata": {"k": 1}}\n'
        '{"id": "r2", "text": "second row"}\n'
    )
    windows = tmp_path / "windows.txt"
    windows.write_bytes(b"line one\r\nline two about zebra\r\n")
    chunks = load_corpus([tmp_path], chunk_size=1000).documents
    files = SourceFiles()
    keys = [SourceFiles.group_by(chunk) for chunk in chunks]
    assert (str(rows), "r1") in keys
    assert str(windows) in keys
    [row, text, missing, none] = files.mget(
        [(str(rows), "r1"), str(windows), (str(rows), "r9"), "r1"]
    )
    assert row is not None
    assert text is not None
    assert (row.page_content, row.metadata["k"], row.metadata["doc_id"]) == (
        "first row about zebra",
        1,
        "r1",
    )
    assert text.page_content == "line one\r\nline two about zebra\r\n"
    assert (missing, none) == (None, None)
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(),
        parents=files,
        passage_tokens=8,
        passage_overlap=1,
    )
    kept = compressor.compress_documents(chunks, "zebra")
    assert {d.page_content for d in kept} == {
        "first row about zebra",
        "second row",
        "line one\r\nline two about zebra\r\n",
    }


def test_source_files_need_a_source() -> None:
    with pytest.raises(ValueError, match="has no metadata\\['source'\\]"):
        SourceFiles.group_by(Document(page_content="x", id="c1"))


# -- the reranking retriever ---------------------------------------------------------


def _retriever(top_n: int | None = None, **settings: object):
    return build_reranking_retriever(
        _docs(),
        embedding=AxisEmbeddings(["apple", "pear", "plum", "one", "two", "three"]),
        reranker=TableCrossEncoder(SCORES),
        k=5,
        top_n=top_n,
        **settings,
    )


def test_the_retriever_takes_the_shaping_options_per_call_and_configurable() -> None:
    retriever = _retriever(token_counter=words)
    assert len(retriever.invoke("apple")) == 5
    grouped = retriever.invoke("apple", group_by="source")
    assert _ids(grouped) == ["apple one", "pear one", "plum one"]
    two = retriever.invoke("apple", group_by="source", max_per_group=2)
    assert _ids(two) == ["apple one", "apple two", "pear one", "plum one"]
    budget = retriever.with_config(configurable={"max_context_tokens": 4})
    assert _ids(budget.invoke("apple")) == ["apple one", "apple two"]
    assert _ids(budget.invoke("apple", max_context_tokens=2)) == ["apple one"]


def test_batch_shapes_each_query_as_invoke_does() -> None:
    retriever = _retriever(group_by="source", token_counter=words)
    queries = ["apple", "pear"]
    configs = [{"configurable": {"max_context_tokens": 4}}, {}]
    batched = retriever.batch(queries, configs)  # type: ignore[arg-type]
    assert batched == [
        retriever.invoke("apple", max_context_tokens=4),
        retriever.invoke("pear"),
    ]


def test_batch_with_parents_reranks_the_parents() -> None:
    retriever = build_reranking_retriever(
        _chunks(),
        embedding=DeterministicFakeEmbedding(size=8),
        reranker=WordOverlapCrossEncoder(),
        k=5,
        top_n=2,
        parents=_store(),
        passage_tokens=8,
        passage_overlap=1,
    )
    batched = retriever.batch(["pear text", "plum"])
    invoked = [retriever.invoke("pear text"), retriever.invoke("plum")]

    def shown(docs: list[Document]) -> list[tuple[object, ...]]:
        # FAISS's batched search may differ from a single one in the last
        # bits of retrieval_score; everything the reranker decides is equal.
        return [
            (
                d.id,
                d.page_content,
                d.metadata["relevance_score"],
                d.metadata["parent_chunks"],
            )
            for d in docs
        ]

    assert [shown(d) for d in batched] == [shown(d) for d in invoked]
    assert batched[0][0].id == "pear.md"
    assert all("parent_chunks" in doc.metadata for docs in batched for doc in docs)


def test_invoke_explained_returns_the_drops() -> None:
    retriever = _retriever(top_n=2, group_by="source")
    kept, dropped = retriever.invoke_explained("apple")
    assert kept == retriever.invoke("apple")
    assert {d.metadata["drop_reason"] for d in dropped} == {"group_full", "top_n"}
    assert len(kept) + len(dropped) == 5


# -- the explanation ----------------------------------------------------------------


def test_explain_shows_why_each_candidate_was_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    retriever = _retriever(top_n=2, group_by="source")
    shown = explain(retriever, "apple")
    assert shown.documents == retriever.invoke("apple")
    assert [(d.document.id, d.reason) for d in shown.dropped] == [
        ("apple two", "group_full"),
        ("apple three", "group_full"),
        ("plum one", "top_n"),
    ]
    text = str(shown)
    assert "Not returned (3)" in text
    assert "its group already had max_per_group results" in text
    assert "ranked past top_n" in text
    html = shown._repr_html_()
    assert "Not returned (3)" in html
    assert "its group already had max_per_group results" in html


def test_explain_without_drops_shows_no_second_table() -> None:
    retriever = _retriever()
    assert "Not returned" not in str(explain(retriever, "apple"))


def test_a_dropped_document_must_say_why() -> None:
    with pytest.raises(ValueError, match="has no metadata\\['drop_reason'\\]"):
        RerankExplanation.from_documents("q", [], dropped=[Document(page_content="x")])


# -- the LlamaIndex door --------------------------------------------------------------


def test_llama_index_takes_the_shaping_options_per_call() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    nodes = [
        NodeWithScore(
            node=TextNode(text=text, id_=text, metadata={"source": SOURCES[text]}),
            score=0.5,
        )
        for text in SCORES
    ]
    rerank = CrossEncoderRerank(
        model=TableCrossEncoder(SCORES), top_n=None, token_counter=words
    )
    grouped = rerank.postprocess_nodes(nodes, query_str="q", group_by="source")
    assert [n.node.node_id for n in grouped] == ["apple one", "pear one", "plum one"]
    by_node = rerank.postprocess_nodes(
        nodes, query_str="q", group_by=lambda node: node.text[0], top_n=1
    )
    assert [n.node.node_id for n in by_node] == ["apple one"]
    budget = rerank.postprocess_nodes(nodes, query_str="q", max_context_tokens=4)
    assert [n.node.node_id for n in budget] == ["apple one", "apple two"]
    assert budget[0].node.metadata["context_tokens"] == 2
    assert "context_tokens" in budget[0].node.excluded_llm_metadata_keys
    assert rerank.group_by is None


def test_llama_index_cuts_a_node_over_the_budget_on_a_copy() -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from langchain_ce_rerank.llama_index import CrossEncoderRerank

    node = TextNode(text="one two three four five", metadata={"k": "v"})
    rerank = CrossEncoderRerank(
        model=TableCrossEncoder(), max_context_tokens=2, token_counter=words
    )
    [kept] = rerank.postprocess_nodes([NodeWithScore(node=node)], query_str="q")
    assert kept.node.get_content(metadata_mode=MetadataMode.NONE) == "one two"
    assert kept.node.metadata["context_cut"] == [0, 7]
    assert node.text == "one two three four five"


# -- the agent tool example -----------------------------------------------------------


@pytest.fixture
def agent_tool() -> object:
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("agent_tool")
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.mark.parametrize("budget", [1, 3, 7, 12, 40, 200])
def test_the_agent_tool_output_never_exceeds_the_budget(
    agent_tool: object, budget: int
) -> None:
    texts = [
        "restore a docker volume from a tar archive on the new host " * 3,
        "docker volume backup with tar",
        "copy the archive to the host and extract it into a volume",
        "docker logs shows why a container exits",
    ]
    retriever = build_reranking_retriever(
        [Document(page_content=t) for t in texts],
        embedding=DeterministicFakeEmbedding(size=8),
        reranker=WordOverlapCrossEncoder(),
        k=4,
        top_n=3,
        long_documents="max_passage",
        passage_tokens=12,
        passage_overlap=2,
        max_context_tokens=budget,
        token_counter=words,
    )
    tool = agent_tool.budget_tool(retriever)  # type: ignore[attr-defined]
    for query in ["restore docker volume", "docker logs", "tar archive host"]:
        message = tool.invoke(
            {
                "name": tool.name,
                "args": {"query": query},
                "id": "call",
                "type": "tool_call",
            }
        )
        assert 0 < words(str(message.content)) <= budget
        assert sum(d.metadata["context_tokens"] for d in message.artifact) == words(
            str(message.content)
        )


# -- Ray Data -----------------------------------------------------------------------


def test_ray_data_ranks_every_candidate_whatever_the_shaping_settings() -> None:
    from langchain_ce_rerank.ray_data import RerankBatch

    batch = RerankBatch(
        {
            "model": TableCrossEncoder({"a1": 3.0, "a2": 2.0, "b1": 1.0}),
            "group_by": lambda text: text[0],
            "max_per_group": 1,
            "max_context_tokens": 1,
            "top_n": 1,
        }
    )
    out = batch({"query": ["q"], "candidates": [["b1", "a2", "a1"]]})
    assert out["order"] == [[2, 1, 0]]
    assert out["ranks"] == [[3, 2, 1]]
