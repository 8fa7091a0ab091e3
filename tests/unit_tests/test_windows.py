"""Windows and truncation cut the document only, for every model family.

Each test runs once per family stand-in in `FAMILIES`: the model is loaded
through the engine's own loader from a local folder (the Hub path), and only
its `predict` is replaced by a double that records what it receives and
scores 1.0 for a text holding the needle. Its tokenizer, `max_seq_length`
and `preprocess` (how sentence-transformers builds a pair: separators,
prompts, chat templates) are the real model's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.scoring import default_loader
from langchain_ce_rerank.engine.windows import passage_windows
from langchain_ce_rerank.serving.jobs import ScoreJob, score_jobs
from langchain_ce_rerank.testing import (
    build_causal_lm_standin,
    build_modernbert_standin,
    build_standin_cross_encoder,
    build_xlm_roberta_standin,
)

NEEDLE = "the needle sentence is here."
FILLER = "".join(
    f"lorem ipsum {i} dolor sit amet, consectetur --adipiscing=elit. "
    for i in range(40)
)
LONG = FILLER + NEEDLE + " trailing words" * 10
QUERY = "where is the needle sentence"
PROMPT = "Judge whether the document answers the query: "
DOCUMENT_TOKENS = 64
"""Tokens a pair leaves the document: each family's pair size is what its
template spends on an empty (query, document) pair plus this (a causal-LM
reranker's system turn alone is longer than a BERT's whole pair)."""
OVERLAP = 16
INSTRUCTION = (
    "Given a question about where a sentence sits in a long manual page, "
    "retrieve the passages that quote that exact sentence word for word"
)
"""Longer than the causal-LM template's default instruction, so a window
sized without it counted would overflow the pair."""
MIXED = "the needle sentence is here: naïve café, 東京 and 🙂; --flag=value " * 3
"""Accents, CJK, an emoji and punctuation runs: tokens that share characters."""
INSTRUCTED = {"causal-lm"}
"""The families whose stand-in reads an instruction (the others refuse one)."""
"""Tokens neighbouring windows share: at least the needle's tokens in every
family's tokenizer, so some window always holds the needle whole."""

# One entry per model family: (name, builder writing its stand-in to a
# folder). A family's stand-in joins every test here by one line.
FAMILIES: list[tuple[str, Callable[[Path], Path]]] = [
    ("bert", build_standin_cross_encoder),
    ("xlm-roberta", build_xlm_roberta_standin),
    ("modernbert", build_modernbert_standin),
    ("causal-lm", build_causal_lm_standin),
]


@pytest.fixture(scope="module", params=FAMILIES, ids=[name for name, _ in FAMILIES])
def family(request: pytest.FixtureRequest) -> tuple[str, Callable[[Path], Path]]:
    entry: tuple[str, Callable[[Path], Path]] = request.param
    return entry


@pytest.fixture(scope="module")
def family_path(
    family: tuple[str, Callable[[Path], Path]], tmp_path_factory: Any
) -> Path:
    name, build = family
    return build(tmp_path_factory.mktemp(f"standin-{name}"))


@pytest.fixture(scope="module")
def pair_tokens(family_path: Path) -> int:
    """The family's pair size: its fixed tokens plus `DOCUMENT_TOKENS`."""
    model = default_loader(family_path, device="cpu")
    needle = model.tokenizer(NEEDLE, add_special_tokens=False)["input_ids"]
    assert len(needle) <= OVERLAP  # the premise of the needle tests
    return len(_ids(model, "", "")) + DOCUMENT_TOKENS


class ReadingSpy:
    """The real cross-encoder's pair format; scores 1.0 for a text with NEEDLE."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.max_seq_length = model.max_seq_length
        self.prompts = model.prompts  # its saved prompts, as the model has them
        self.received: list[tuple[str, str]] = []
        self.instructions: list[str | None] = []
        """The `prompt` (instruction) each received pair was scored under."""

    def __getitem__(self, index: int) -> Any:
        # Its modules, where the engine reads whether a chat template has a
        # place for an instruction.
        return self.model[index]

    def preprocess(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.preprocess(*args, **kwargs)

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        self.received.extend(inputs)
        self.instructions.extend([kwargs.get("prompt")] * len(inputs))
        return np.array([float(NEEDLE in text) for _, text in inputs])


def _engine(
    path: Path, pair_tokens: int, **settings: Any
) -> tuple[Reranker, list[ReadingSpy]]:
    spies: list[ReadingSpy] = []

    def loader(model: Any, **kwargs: Any) -> ReadingSpy:
        spies.append(ReadingSpy(default_loader(model, **kwargs)))
        return spies[-1]

    engine = Reranker(
        model=path,
        loader=loader,
        device="cpu",
        max_length=pair_tokens,
        top_n=None,
        **settings,
    )
    return engine, spies


def _ids(
    model: Any,
    query: str,
    text: str,
    prompt: str | None = None,
    *,
    truncate: bool = False,
) -> list[int]:
    """What the model would read for the pair: untruncated, or as `predict`
    builds it (truncated to the model's `max_seq_length`)."""
    kwargs: dict[str, Any] = {}
    if not truncate:
        kwargs["processing_kwargs"] = {"text": {"truncation": False}}
    if prompt is not None:
        kwargs["prompt"] = prompt
    ids: list[int] = model.preprocess([(query, text)], **kwargs)["input_ids"][
        0
    ].tolist()
    return ids


def assert_only_the_document_was_cut(
    model: Any, query: str, text: str, prompt: str | None = None
) -> None:
    """The pair fits the model, and everything but the document is intact."""
    full = _ids(model, query, text, prompt)
    assert len(full) <= model.max_seq_length
    # The model's own truncation has nothing to cut: it reads the whole pair.
    assert _ids(model, query, text, prompt, truncate=True) == full
    empty = _ids(model, query, "", prompt)
    prefix = 0
    while prefix < len(empty) and full[prefix] == empty[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < len(empty) - prefix
        and full[len(full) - 1 - suffix] == empty[len(empty) - 1 - suffix]
    ):
        suffix += 1
    # The query, special tokens and template tokens all stand where a pair
    # with an empty document has them: before and after the document. Only
    # whitespace before the document may be missing: a byte-level BPE merges
    # a template's "<Document>: " space into the document's first word.
    merged = empty[prefix : len(empty) - suffix]
    assert len(merged) <= 1
    assert not model.tokenizer.decode(merged).strip()


def test_the_window_holding_the_only_relevant_sentence_is_scored(
    family_path: Path, pair_tokens: int
) -> None:
    engine, spies = _engine(
        family_path, pair_tokens, long_documents="max_passage", passage_overlap=OVERLAP
    )
    results = engine.rank(QUERY, ["a short unrelated text", LONG])
    assert results[0].index == 1
    assert results[0].score == 1.0
    start, end = results[0].passage or (0, 0)
    assert NEEDLE in LONG[start:end]
    spy = spies[0]
    windows = [text for _, text in spy.received if text != "a short unrelated text"]
    assert len(windows) > 3
    assert NEEDLE not in windows[0]  # the needle is past the first window
    for query, window in spy.received:
        assert query == QUERY
        assert_only_the_document_was_cut(spy.model, query, window)


def test_windows_leave_room_for_the_prompt(family_path: Path, pair_tokens: int) -> None:
    model = default_loader(family_path, device="cpu", max_length=pair_tokens)
    spans = passage_windows(
        model, QUERY, LONG, passage_tokens=None, passage_overlap=OVERLAP, prompt=PROMPT
    )
    assert len(spans) > 3
    for a, b in spans:
        assert_only_the_document_was_cut(model, QUERY, LONG[a:b], PROMPT)
    # Without the prompt the windows are sized by the plain pair's cost: larger
    # where the prompt adds tokens (prepended to the query), smaller where it
    # replaces a longer default (a causal-LM template's own instruction).
    plain = passage_windows(
        model, QUERY, LONG, passage_tokens=None, passage_overlap=OVERLAP
    )
    for a, b in plain:
        assert_only_the_document_was_cut(model, QUERY, LONG[a:b])
    cost = len(_ids(model, QUERY, "", PROMPT)) - len(_ids(model, QUERY, ""))
    assert cost != 0
    assert (len(plain) < len(spans)) == (cost > 0)
    assert len(plain) != len(spans)


def test_truncate_cuts_the_document_not_the_query(
    family_path: Path, pair_tokens: int
) -> None:
    query = " ".join(["which", "option", "sets", "the", "needle", "sentence"] * 4)
    engine, spies = _engine(family_path, pair_tokens)
    engine.score(query, [LONG])
    spy = spies[0]
    [(received_query, text)] = spy.received
    assert received_query == query
    assert LONG.startswith(text)
    assert len(text) < len(LONG)
    assert_only_the_document_was_cut(spy.model, query, text)
    # The document got every token the pair had left.
    assert len(_ids(spy.model, query, text)) >= pair_tokens - 1


def test_a_query_filling_the_model(
    family_path: Path, pair_tokens: int, caplog: pytest.LogCaptureFixture
) -> None:
    # truncate: the model truncates such a pair itself, as before, with a warning.
    engine, spies = _engine(family_path, pair_tokens)
    query = "needle " * pair_tokens
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank.engine.windows"):
        engine.score(query, [LONG])
    assert spies[0].received == [(query, LONG)]
    [warning] = [r for r in caplog.records if r.name.endswith("engine.windows")]
    assert "shorten the query" in warning.getMessage()
    # max_passage: no window fits, an error.
    engine, _ = _engine(family_path, pair_tokens, long_documents="max_passage")
    with pytest.raises(ValueError, match="shorten the query"):
        engine.score("needle " * (pair_tokens - 10), [LONG])


def test_a_content_template_is_whole_in_every_window(
    family_path: Path, pair_tokens: int
) -> None:
    from langchain_core.documents import Document

    from langchain_ce_rerank import CrossEncoderCompressor

    template = "Title: {title}\n{page_content}\n(source: {source})"
    engine, spies = _engine(
        family_path,
        pair_tokens,
        long_documents="max_passage",
        passage_overlap=OVERLAP,
        content_template=template,
    )
    docs = [
        Document(page_content="short", metadata={"title": "A", "source": "a"}),
        Document(page_content=LONG, metadata={"title": "Needles", "source": "n.1"}),
    ]
    out = CrossEncoderCompressor(model=engine, top_n=None).compress_documents(
        docs, QUERY
    )
    assert out[0].metadata["title"] == "Needles"
    assert out[0].metadata["relevance_score"] == 1.0
    rendered = template.format(page_content=LONG, title="Needles", source="n.1")
    start, end = out[0].metadata["relevance_passage"]
    assert NEEDLE in rendered[start:end]
    spy = spies[0]
    long_windows = [t for _, t in spy.received if t.startswith("Title: Needles\n")]
    assert len(long_windows) > 3
    for query, text in spy.received:
        assert text.startswith("Title: ")
        assert text.endswith(")")
        assert_only_the_document_was_cut(spy.model, query, text)


def test_truncate_keeps_the_template_text_after_the_content(
    family_path: Path, pair_tokens: int
) -> None:
    engine, spies = _engine(
        family_path, pair_tokens, content_template="{page_content} END-MARK"
    )
    text = engine.render(LONG, {}, "document 0")
    engine.score(QUERY, [text])
    [(_, received)] = spies[0].received
    assert received.endswith(" END-MARK")
    assert LONG.startswith(received.removesuffix(" END-MARK"))
    assert_only_the_document_was_cut(spies[0].model, QUERY, received)


@pytest.mark.parametrize("long_documents", ["max_passage", "truncate"])
def test_the_model_never_truncates_a_pair_itself(
    family: tuple[str, Callable[[Path], Path]],
    family_path: Path,
    pair_tokens: int,
    long_documents: str,
) -> None:
    # With the instruction where the family reads one: its tokens count too.
    instruction = INSTRUCTION if family[0] in INSTRUCTED else None
    if instruction is not None:
        model = default_loader(family_path, device="cpu")
        pair_tokens = len(_ids(model, "", "", instruction)) + DOCUMENT_TOKENS
    engine, spies = _engine(
        family_path,
        pair_tokens,
        long_documents=long_documents,
        passage_overlap=OVERLAP,
        instruction=instruction,
    )
    queries = [QUERY, " ".join(["which option sets the needle"] * 3)]
    for query in queries:
        engine.score(query, [LONG, FILLER[:300], "short", MIXED])
    spy = spies[0]
    assert {query for query, _ in spy.received} == set(queries)
    assert set(spy.instructions) == {instruction}
    cut = 0
    for (query, text), prompt in zip(spy.received, spy.instructions, strict=True):
        untruncated = _ids(spy.model, query, text, prompt)
        assert len(untruncated) <= spy.model.max_seq_length
        # What predict builds (truncating to max_seq_length) is the whole pair.
        assert _ids(spy.model, query, text, prompt, truncate=True) == untruncated
        cut += text != LONG and LONG.startswith(text)
    assert cut > 0  # LONG was cut (or windowed): the check above had work to do


def _instructed_pair_tokens(path: Path) -> tuple[Any, int]:
    model = default_loader(path, device="cpu")
    with_instruction = len(_ids(model, "", "", INSTRUCTION))
    assert with_instruction > len(_ids(model, "", ""))  # longer than the default
    return model, with_instruction + DOCUMENT_TOKENS


def _assert_whole_instruction_and_query(model: Any, query: str, text: str) -> None:
    read = model.tokenizer.decode(_ids(model, query, text, INSTRUCTION, truncate=True))
    assert f"<Instruct>: {INSTRUCTION}\n<Query>: {query}\n<Document>: " in read
    assert read.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


@pytest.mark.parametrize("per_call", [False, True], ids=["setting", "per-call"])
def test_causal_lm_windows_keep_the_instruction_and_query_whole(
    causal_lm_standin_path: Path, per_call: bool
) -> None:
    _, pair_tokens = _instructed_pair_tokens(causal_lm_standin_path)
    engine, spies = _engine(
        causal_lm_standin_path,
        pair_tokens,
        long_documents="max_passage",
        passage_overlap=OVERLAP,
        instruction=None if per_call else INSTRUCTION,
    )
    call = {"instruction": INSTRUCTION} if per_call else {}
    results = engine.rank(QUERY, ["a short unrelated text", LONG], **call)
    assert results[0].index == 1
    assert results[0].score == 1.0
    spy = spies[0]
    assert set(spy.instructions) == {INSTRUCTION}
    windows = [text for _, text in spy.received if text != "a short unrelated text"]
    assert len(windows) > 3
    assert NEEDLE not in windows[0]
    for query, window in spy.received:
        assert query == QUERY
        assert_only_the_document_was_cut(spy.model, query, window, INSTRUCTION)
        _assert_whole_instruction_and_query(spy.model, query, window)
    # The windows use the room the instruction leaves: the largest pair is full
    # to within one word.
    longest = max(len(_ids(spy.model, QUERY, w, INSTRUCTION)) for w in windows)
    assert longest >= pair_tokens - 8


@pytest.mark.parametrize("max_tokens", [20, 500])
def test_causal_lm_max_tokens_per_doc_with_an_instruction_cuts_only_the_document(
    causal_lm_standin_path: Path, max_tokens: int
) -> None:
    # The HTTP door's `max_tokens_per_doc` (score_jobs), then the engine's own
    # cut to the pair: 20 tokens fit beside the instruction, 500 do not.
    model, pair_tokens = _instructed_pair_tokens(causal_lm_standin_path)
    engine, spies = _engine(causal_lm_standin_path, pair_tokens)
    job = ScoreJob(QUERY, [LONG], max_tokens=max_tokens, instruction=INSTRUCTION)
    [outcome] = score_jobs(engine, [job])
    assert isinstance(outcome, list)
    spy = spies[0]
    [(query, text)] = spy.received
    assert (query, spy.instructions) == (QUERY, [INSTRUCTION])
    assert LONG.startswith(text)
    tokens = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert tokens == min(max_tokens, tokens)
    if max_tokens == 20:
        assert tokens == 20
    else:  # cut again to the room the instruction and query leave
        assert tokens < max_tokens
        assert len(_ids(model, QUERY, text, INSTRUCTION)) >= pair_tokens - 1
    assert_only_the_document_was_cut(spy.model, query, text, INSTRUCTION)
    _assert_whole_instruction_and_query(spy.model, query, text)


def test_a_query_and_instruction_filling_a_causal_lm(
    causal_lm_standin_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The warning and the error name the instruction, which the user can
    # shorten too; the warning says a chat-template model loses the document.
    _, pair_tokens = _instructed_pair_tokens(causal_lm_standin_path)
    query = "needle " * DOCUMENT_TOKENS
    engine, spies = _engine(
        causal_lm_standin_path, pair_tokens, instruction=INSTRUCTION
    )
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank.engine.windows"):
        engine.score(query, [LONG])
    assert spies[0].received == [(query, LONG)]
    [warning] = [r for r in caplog.records if r.name.endswith("engine.windows")]
    message = warning.getMessage()
    assert "shorten the query or the instruction" in message
    assert "drops the whole document" in message
    engine, _ = _engine(
        causal_lm_standin_path,
        pair_tokens,
        instruction=INSTRUCTION,
        long_documents="max_passage",
    )
    with pytest.raises(ValueError, match="shorten the query or the instruction"):
        engine.score(query, [LONG])


def test_max_tokens_per_doc_keeps_at_most_its_tokens(family_path: Path) -> None:
    # Tokens that share characters with the next one (SentencePiece's lone
    # "▁" before a word, byte-level BPE's pieces of one character) are never
    # cut after with the next one's characters, which would re-tokenize into
    # one token more than max_tokens_per_doc.
    text = MIXED
    engine = Reranker(model=family_path, device="cpu")
    tokenizer = engine.load_model().tokenizer
    total = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    for max_tokens in range(1, total + 2):
        [cut] = engine.truncate([text], max_tokens)
        assert text.startswith(cut)
        kept = len(tokenizer(cut, add_special_tokens=False)["input_ids"])
        assert max_tokens - 4 <= kept <= max_tokens  # less only inside a character
    assert engine.truncate([text], total) == [text]


def test_rendered_texts_locate_their_content_only_when_it_is_plain() -> None:
    from langchain_ce_rerank.engine.rendering import content_parts, render

    text = render("[{title}] {page_content}!", "body", {"title": "T"}, "doc")
    assert text == "[T] body!"
    assert content_parts(text) == ("[T] ", "body", "!")
    # Formatted, repeated or absent content cannot be cut apart: all content.
    for template in ("{page_content:.2}", "{page_content} {page_content}", "{title}"):
        odd = render(template, "body", {"title": "T"}, "doc")
        assert content_parts(odd) == ("", str(odd), "")
    assert render(None, "body", {}, "doc") == "body"
