"""Scorers without `predict` count windows in the tokenizer they name."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank.engine import Reranker, TokenizedScorer
from langchain_ce_rerank.engine.tokens import load_tokenizer, pair_format
from langchain_ce_rerank.serving import RemoteCrossEncoder

NEEDLE = "the needle sentence is here."
# Flags and paths: many more tokens than whitespace-separated words.
FILLER = "".join(f"--opt{i}=/usr/lib/x86_64-linux/libfoo.so.{i} " for i in range(60))
LONG = FILLER + NEEDLE + " trailing words" * 10
QUERY = "where is the needle"
PAIR_TOKENS = 64


def _chars(text: str) -> list[tuple[int, int]]:
    """Every non-space character is one token."""
    return [(i, i + 1) for i, c in enumerate(text) if not c.isspace()]


class NamedScorer(TableCrossEncoder):
    """A `score()` scorer that names its tokenizer."""

    def __init__(self, tokenizer: object) -> None:
        super().__init__()
        self.tokenizer = tokenizer


def _tei_server(received: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["texts"]
        received.extend(texts)
        ranks = [{"index": i, "score": float(NEEDLE in t)} for i, t in enumerate(texts)]
        return httpx.Response(200, json=ranks)

    return httpx.MockTransport(handler)


def _pair_tokens(tokenizer: object, query: str, text: str) -> int:
    return len(tokenizer(query, text)["input_ids"])  # type: ignore[operator]


@pytest.mark.parametrize("named", [True, False])
def test_remote_windows_fit_the_named_tokenizer(
    standin_ce_path: Path, named: bool
) -> None:
    received: list[str] = []
    remote = RemoteCrossEncoder(
        "http://tei:8080",
        "tei",
        transport=_tei_server(received),
        tokenizer=standin_ce_path if named else None,
    )
    engine = Reranker(
        model=remote,
        long_documents="max_passage",
        passage_tokens=PAIR_TOKENS,
        passage_overlap=8,
    )
    [result] = engine.rank(QUERY, [LONG])
    assert result.score == 1.0
    tokenizer = load_tokenizer(str(standin_ce_path))
    sizes = [_pair_tokens(tokenizer, QUERY, text) for text in received]
    if named:  # every window, with the query and special tokens, fits
        assert max(sizes) <= PAIR_TOKENS
        assert isinstance(remote, TokenizedScorer)
    else:  # counted in words, windows overflow the model's 64 tokens
        assert max(sizes) > 2 * PAIR_TOKENS


def test_a_callable_tokenizer_counts_its_spans() -> None:
    scorer = NamedScorer(_chars)
    engine = Reranker(
        model=scorer, long_documents="max_passage", passage_tokens=40, passage_overlap=4
    )
    engine.score("abc", ["x" * 100])
    texts = [text for _, text in scorer.calls[0]]
    assert max(len(t) for t in texts) == 40 - 3  # the query's 3 characters
    assert engine.truncate(["abcdef", "ab"], 3) == ["abc", "ab"]


def test_a_loaded_tokenizer_counts_special_tokens(standin_ce_path: Path) -> None:
    tokenizer = load_tokenizer(str(standin_ce_path))
    fmt = pair_format(NamedScorer(tokenizer))
    # [CLS] where is the needle [SEP] [SEP]
    assert fmt.reserved(QUERY) == len(tokenizer.tokenize(QUERY)) + 3
    assert not fmt.in_words


def test_words_are_a_warned_fallback_once_per_scorer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = TableCrossEncoder(), TableCrossEncoder()
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank.engine.tokens"):
        for scorer in (first, first, second):
            Reranker(
                model=scorer,
                long_documents="max_passage",
                passage_tokens=32,
                passage_overlap=4,
            ).score(QUERY, [LONG])
            Reranker(model=scorer).truncate([LONG], 5)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "tokenizer" in warnings[0]
    assert "RemoteCrossEncoder(url, api, tokenizer=" in warnings[0]


def test_a_named_tokenizer_logs_no_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank.engine.tokens"):
        Reranker(model=NamedScorer(_chars)).truncate([LONG], 5)
    assert not caplog.records


def test_bad_tokenizers_are_refused() -> None:
    with pytest.raises(ValidationError, match="tokenizer must be"):
        RemoteCrossEncoder("http://tei:8080", "tei", tokenizer=42)
    with pytest.raises(ValueError, match="could not be loaded"):
        Reranker(model=NamedScorer("no-such/tokenizer-anywhere")).truncate(["a"], 1)
    with pytest.raises(TypeError, match="tokenizer must be"):
        Reranker(model=NamedScorer(42)).truncate(["a"], 1)
