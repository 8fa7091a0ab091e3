"""The LlamaIndex door: `CrossEncoderRerank` over the engine, with model doubles."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from doubles import BlockingCrossEncoder, TableCrossEncoder, WordOverlapCrossEncoder
from fake_rerank_servers import FakeRerankServers, fake_logit
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import (
    ReRankEndEvent,
    ReRankStartEvent,
)
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.protocols import AsyncPairScorer
from langchain_ce_rerank.llama_index import BOOKKEEPING_KEYS, CrossEncoderRerank
from langchain_ce_rerank.optional import install_hint
from langchain_ce_rerank.serving import RemoteCrossEncoder


def _nodes(
    *texts: str, scores: list[float | None] | None = None
) -> list[NodeWithScore]:
    scores = scores if scores is not None else [1.0 - i / 10 for i in range(len(texts))]
    return [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=score)
        for i, (text, score) in enumerate(zip(texts, scores, strict=True))
    ]


class _NumpyScorer:
    """Returns numpy float32 scores, as sentence-transformers' predict does."""

    def score(self, text_pairs):
        return list(np.array([len(t) for _, t in text_pairs], dtype=np.float32))


class _AsyncOnlyScorer:
    """`_NumpyScorer`'s scores, but only awaitable: its blocking `score` fails."""

    def __init__(self) -> None:
        self.awaited: list[list[tuple[str, str]]] = []
        self.threads: set[int] = set()

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        raise AssertionError("score() was called; ascore() should have been awaited")

    async def ascore(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.awaited.append(list(text_pairs))
        self.threads.add(threading.get_ident())
        await asyncio.sleep(0)
        return [float(len(text)) for _, text in text_pairs]


def test_it_is_a_llama_index_node_postprocessor() -> None:
    rerank = CrossEncoderRerank(model=WordOverlapCrossEncoder())
    assert isinstance(rerank, BaseNodePostprocessor)
    assert rerank.class_name() == "CrossEncoderRerank"
    assert rerank.metadata_mode == MetadataMode.EMBED


def test_the_embed_text_of_each_node_is_what_is_scored() -> None:
    node = TextNode(
        text="Restore the volume from the tar archive.",
        id_="a",
        metadata={"title": "Backups", "internal_id": "x-17"},
        excluded_embed_metadata_keys=["internal_id"],
    )
    other = TextNode(text="Cats purr.", id_="b", metadata={"title": "Pets"})
    embed_text = node.get_content(metadata_mode=MetadataMode.EMBED)
    assert "title: Backups" in embed_text
    assert "x-17" not in embed_text
    # The table knows only the EMBED text: the node scores 5.0 only if that
    # exact text (metadata header included, excluded keys left out) is scored.
    model = TableCrossEncoder({embed_text: 5.0})
    rerank = CrossEncoderRerank(model=model, top_n=None)
    out = rerank.postprocess_nodes(
        [NodeWithScore(node=other, score=0.9), NodeWithScore(node=node, score=0.8)],
        query_str="restore a backup",
    )
    assert [n.node.node_id for n in out] == ["a", "b"]
    assert out[0].score == 5.0
    assert model.calls[0] == sorted(
        [
            ("restore a backup", other.get_content(metadata_mode=MetadataMode.EMBED)),
            ("restore a backup", embed_text),
        ],
        key=lambda pair: len(pair[1]),
    )


@pytest.mark.parametrize("mode", [MetadataMode.NONE, MetadataMode.LLM, "all"])
def test_metadata_mode_chooses_the_text(mode: MetadataMode | str) -> None:
    node = TextNode(text="body", metadata={"title": "T"})
    model = TableCrossEncoder()
    CrossEncoderRerank(model=model, metadata_mode=mode).postprocess_nodes(
        [NodeWithScore(node=node)], query_str="q"
    )
    assert model.calls == [[("q", node.get_content(metadata_mode=MetadataMode(mode)))]]


def test_content_template_reads_node_metadata() -> None:
    node = TextNode(text="body", metadata={"title": "T"})
    model = TableCrossEncoder()
    rerank = CrossEncoderRerank(
        model=model,
        metadata_mode="none",
        content_template="{title} | {page_content}",
    )
    rerank.postprocess_nodes([NodeWithScore(node=node)], query_str="q")
    assert model.calls == [[("q", "T | body")]]

    missing = TextNode(text="body", id_="m")
    with pytest.raises(ValueError, match=r"'title'.*node 'm' \(position 0\)"):
        rerank.postprocess_nodes([NodeWithScore(node=missing)], query_str="q")


def test_scores_are_plain_floats_and_serialize_to_json() -> None:
    out = CrossEncoderRerank(model=_NumpyScorer(), top_n=None).postprocess_nodes(
        _nodes("aaa", "a", "aa", scores=[np.float32(0.3), 0.2, None]),
        query_str="q",
    )
    assert [n.node.text for n in out] == ["aaa", "aa", "a"]
    for item in out:
        assert type(item.score) is float
        for key in ("retrieval_score",):
            if key in item.node.metadata:
                assert type(item.node.metadata[key]) is float
    assert json.loads(json.dumps([n.to_dict() for n in out]))


def test_first_stage_score_and_rank_are_kept_on_copies() -> None:
    nodes = _nodes("a", "ccc", "bb", scores=[0.9, 0.8, None])
    for item in nodes:
        item.node.metadata["source"] = "kb"
    before = [item.model_dump() for item in nodes]
    out = CrossEncoderRerank(model=_NumpyScorer(), top_n=None).postprocess_nodes(
        nodes, query_str="q"
    )
    assert [item.model_dump() for item in nodes] == before
    assert [n.node.node_id for n in out] == ["n1", "n2", "n0"]
    assert [n.node.metadata for n in out] == [
        {"source": "kb", "retrieval_rank": 2, "retrieval_score": 0.8},
        {"source": "kb", "retrieval_rank": 3},  # no first-stage score to keep
        {"source": "kb", "retrieval_rank": 1, "retrieval_score": 0.9},
    ]
    inputs = {id(x) for item in nodes for x in (item, item.node, item.node.metadata)}
    for item in out:
        assert not {id(item), id(item.node), id(item.node.metadata)} & inputs


def test_bookkeeping_keys_stay_out_of_the_llm_and_embed_text() -> None:
    node = TextNode(text="body", metadata={"title": "T"})
    out = CrossEncoderRerank(model=_NumpyScorer()).postprocess_nodes(
        [NodeWithScore(node=node, score=0.5)], query_str="q"
    )
    copy = out[0].node
    assert copy.metadata["retrieval_score"] == 0.5
    for mode in (MetadataMode.LLM, MetadataMode.EMBED):
        assert copy.get_content(metadata_mode=mode) == node.get_content(
            metadata_mode=mode
        )
    assert set(BOOKKEEPING_KEYS) <= set(copy.excluded_llm_metadata_keys)
    assert node.excluded_llm_metadata_keys == []


def test_top_n_and_threshold_from_settings_and_per_call() -> None:
    texts = ("a", "aaaa", "aa", "aaa")
    rerank = CrossEncoderRerank(model=_NumpyScorer(), top_n=2)
    out = rerank.postprocess_nodes(_nodes(*texts), query_str="q")
    assert [n.node.text for n in out] == ["aaaa", "aaa"]
    out = rerank.postprocess_nodes(_nodes(*texts), query_str="q", top_n=None)
    assert [n.node.text for n in out] == ["aaaa", "aaa", "aa", "a"]
    out = rerank.postprocess_nodes(
        _nodes(*texts), QueryBundle("q"), top_n=3, score_threshold=2.5
    )
    assert [n.node.text for n in out] == ["aaaa", "aaa"]
    assert rerank.top_n == 2
    with pytest.raises(ValueError, match=r"top_n must be a positive integer.*got 0"):
        rerank.postprocess_nodes(_nodes(*texts), query_str="q", top_n=0)


def test_ties_keep_the_input_order() -> None:
    out = CrossEncoderRerank(model=_NumpyScorer(), top_n=None).postprocess_nodes(
        _nodes("xx", "b", "yy", "c"), query_str="q"
    )
    assert [n.node.node_id for n in out] == ["n0", "n2", "n1", "n3"]


def test_settings_are_validated_at_construction() -> None:
    with pytest.raises(ValueError, match="topn"):
        CrossEncoderRerank(model=_NumpyScorer(), topn=3)
    with pytest.raises(ValueError, match="top_n"):
        CrossEncoderRerank(model=_NumpyScorer(), top_n=0)
    with pytest.raises(ValueError, match="metadata_mode"):
        CrossEncoderRerank(model=_NumpyScorer(), metadata_mode="embedding")


def test_query_errors_and_empty_nodes() -> None:
    model = TableCrossEncoder()
    rerank = CrossEncoderRerank(model=model)
    with pytest.raises(ValueError, match=r"needs a query.*query_str="):
        rerank.postprocess_nodes(_nodes("a"))
    with pytest.raises(ValueError, match="not both"):
        rerank.postprocess_nodes(_nodes("a"), QueryBundle("q"), query_str="q")
    with pytest.raises(ValueError, match=r"query is empty or only whitespace \(' '\)"):
        rerank.postprocess_nodes(_nodes("a"), query_str=" ")
    with pytest.raises(TypeError, match=r"item 0 is a str"):
        rerank.postprocess_nodes(["a"], query_str="q")  # type: ignore[list-item]
    assert rerank.postprocess_nodes([], query_str="q") == []
    assert model.calls == []


def test_max_passage_records_the_best_window_span() -> None:
    words = [f"w{i}" for i in range(30)]
    words[20] = "kappa"
    text = " ".join(words)
    rerank = CrossEncoderRerank(
        model=WordOverlapCrossEncoder(),
        metadata_mode="none",
        long_documents="max_passage",
        passage_tokens=8,
        passage_overlap=1,
    )
    out = rerank.postprocess_nodes(_nodes(text), query_str="kappa")
    start, end = out[0].node.metadata["relevance_passage"]
    assert "kappa" in text[start:end]
    assert "w0" not in text[start:end]
    assert out[0].score == 1.0
    assert "relevance_passage" not in out[0].node.get_content(MetadataMode.LLM)


def test_rrf_fusion_uses_the_input_order_as_first_stage() -> None:
    rerank = CrossEncoderRerank(model=_NumpyScorer(), top_n=None, fusion="rrf", rrf_k=1)
    out = rerank.postprocess_nodes(_nodes("cc", "dddd", "a", "bbb"), query_str="q")
    # Cross-encoder ranks 3, 1, 4, 2; first stage 1, 2, 3, 4: "cc" (1/4 + 1/2)
    # passes "bbb" (1/3 + 1/5), which the cross-encoder alone preferred.
    assert [n.node.text for n in out] == ["dddd", "cc", "bbb", "a"]
    assert [n.score for n in out] == [4.0, 2.0, 3.0, 1.0]
    assert out[1].node.metadata["fused_score"] == pytest.approx(1 / 4 + 1 / 2)


def test_a_reranker_engine_is_used_as_is() -> None:
    engine = Reranker(model=_NumpyScorer(), activation="sigmoid")
    rerank = CrossEncoderRerank(model=engine, top_n=1)
    assert rerank.engine is engine
    out = rerank.postprocess_nodes(_nodes("a", "aa"), query_str="q")
    assert out[0].score == pytest.approx(1 / (1 + np.exp(-2)))
    assert engine.cache_info().misses == 2
    with pytest.raises(ValueError, match=r"activation configure scoring.*engine"):
        CrossEncoderRerank(model=engine, activation="sigmoid")


def test_model_copy_with_other_settings_gets_its_own_engine() -> None:
    rerank = CrossEncoderRerank(model=_NumpyScorer(), top_n=None)
    first = rerank.postprocess_nodes(_nodes("a", "aa"), query_str="q")
    sigmoid = rerank.model_copy(update={"activation": "sigmoid"})
    second = sigmoid.postprocess_nodes(_nodes("a", "aa"), query_str="q")
    assert [n.score for n in first] == [2.0, 1.0]
    assert second[0].score == pytest.approx(1 / (1 + np.exp(-2)))
    assert rerank.engine.activation == "none"


class _Recorder(BaseEventHandler):
    events: list[BaseEvent] = []  # noqa: RUF012 - pydantic field

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: object) -> None:
        self.events.append(event)


@contextmanager
def _recording() -> Iterator[tuple[_Recorder, LlamaDebugHandler]]:
    """Capture instrumentation events and (via the debug handler) callbacks."""
    recorder = _Recorder(events=[])
    root = get_dispatcher()
    root.add_event_handler(recorder)
    try:
        yield recorder, LlamaDebugHandler()
    finally:
        root.event_handlers.remove(recorder)


def _check_events(
    recorder: _Recorder,
    debug: LlamaDebugHandler,
    out: list[NodeWithScore],
    model_name: str,
) -> None:
    starts = [e for e in recorder.events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in recorder.events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 1
    assert starts[0].top_n == 1
    assert starts[0].model_name == model_name
    assert [n.node.text for n in ends[0].nodes] == ["aa"]
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert pair[0].payload["query_str"] == "q"
    assert pair[1].payload["nodes"] == out


def test_emits_instrumentation_and_callback_events() -> None:
    with _recording() as (recorder, debug):
        rerank = CrossEncoderRerank(
            model=_NumpyScorer(),
            top_n=1,
            callback_manager=CallbackManager([debug]),
        )
        out = rerank.postprocess_nodes(_nodes("a", "aa"), query_str="q")
    _check_events(recorder, debug, out, "_NumpyScorer")


async def test_apostprocess_keeps_the_event_loop_responsive() -> None:
    model = BlockingCrossEncoder()
    rerank = CrossEncoderRerank(model=model, top_n=None)
    task = asyncio.create_task(
        rerank.apostprocess_nodes(_nodes("aa", "a"), query_str="q")
    )
    # While the model is busy in a worker thread, this coroutine keeps running
    # and is the one that lets the model finish.
    while not model.started.is_set():
        await asyncio.sleep(0)
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0)
        ticks += 1
    model.release.set()
    out = await task
    assert ticks == 10
    assert [n.node.text for n in out] == ["aa", "a"]


async def test_apostprocess_takes_per_call_overrides() -> None:
    rerank = CrossEncoderRerank(model=_NumpyScorer(), top_n=None)
    out = await rerank.apostprocess_nodes(
        _nodes("a", "aaa", "aa"), QueryBundle("q"), top_n=1
    )
    assert [n.node.text for n in out] == ["aaa"]
    with pytest.raises(ValueError, match="needs a query"):
        await rerank.apostprocess_nodes(_nodes("a"))


async def test_apostprocess_awaits_a_scorer_s_own_ascore() -> None:
    model = _AsyncOnlyScorer()
    assert isinstance(model, AsyncPairScorer)
    rerank = CrossEncoderRerank(model=model, top_n=None)
    nodes = _nodes("cc", "dddd", "a", "bbb", "cc")
    out = await rerank.apostprocess_nodes(nodes, query_str="q")
    # Awaited on the event loop's own thread, once, with each unique pair once.
    assert model.threads == {threading.get_ident()}
    assert len(model.awaited) == 1
    assert sorted(model.awaited[0]) == [("q", t) for t in ("a", "bbb", "cc", "dddd")]
    expected = CrossEncoderRerank(model=_NumpyScorer(), top_n=None).postprocess_nodes(
        nodes, query_str="q"
    )
    assert [(n.node.node_id, n.score) for n in out] == [
        (n.node.node_id, n.score) for n in expected
    ]
    assert [n.node.node_id for n in out] == ["n1", "n3", "n0", "n4", "n2"]
    assert all(type(n.score) is float for n in out)
    assert out[0].node.metadata["retrieval_rank"] == 2
    assert await rerank.apostprocess_nodes([], query_str="q") == []
    assert len(model.awaited) == 1


async def test_apostprocess_with_ascore_takes_per_call_overrides() -> None:
    model = _AsyncOnlyScorer()
    rerank = CrossEncoderRerank(model=model, top_n=3, score_threshold=2.0)
    nodes = _nodes("a", "aaaa", "aa", "aaa")
    out = await rerank.apostprocess_nodes(nodes, query_str="q")
    assert [n.node.text for n in out] == ["aaaa", "aaa", "aa"]
    out = await rerank.apostprocess_nodes(nodes, query_str="q", top_n=1)
    assert [n.node.text for n in out] == ["aaaa"]
    out = await rerank.apostprocess_nodes(
        nodes, QueryBundle("q"), top_n=None, score_threshold=None
    )
    assert [n.node.text for n in out] == ["aaaa", "aaa", "aa", "a"]
    out = await rerank.apostprocess_nodes(nodes, query_str="q", score_threshold=3.5)
    assert [n.node.text for n in out] == ["aaaa"]
    with pytest.raises(ValueError, match=r"top_n must be a positive integer.*got 0"):
        await rerank.apostprocess_nodes(nodes, query_str="q", top_n=0)
    with pytest.raises(ValueError, match="needs a query"):
        await rerank.apostprocess_nodes(nodes)
    assert rerank.top_n == 3


async def test_apostprocess_with_ascore_emits_the_sync_path_s_events() -> None:
    with _recording() as (recorder, debug):
        rerank = CrossEncoderRerank(
            model=_AsyncOnlyScorer(),
            top_n=1,
            callback_manager=CallbackManager([debug]),
        )
        out = await rerank.apostprocess_nodes(_nodes("a", "aa"), query_str="q")
    _check_events(recorder, debug, out, "_AsyncOnlyScorer")


async def test_apostprocess_with_a_remote_cross_encoder_awaits_its_server() -> None:
    app, run = FakeRerankServers(), uuid.uuid4().hex
    remote = RemoteCrossEncoder(
        "http://fake/tei",
        "tei",
        headers={"x-run": run},
        # An async-only transport: a blocking score() call would fail.
        transport=httpx.ASGITransport(app=app),
    )
    texts = ["Tar the docker volume.", "Cats purr.", "Move the docker volume."]
    query = "move a docker volume"
    async with remote:
        out = await CrossEncoderRerank(model=remote, top_n=2).apostprocess_nodes(
            _nodes(*texts), query_str=query
        )
    ranked = sorted(texts, key=lambda text: -fake_logit(query, text))[:2]
    assert [n.node.text for n in out] == ranked
    assert [n.score for n in out] == pytest.approx(
        [fake_logit(query, text) for text in ranked]
    )
    assert app.stats[run].requests == 1


def test_docstring_example_runs() -> None:
    doc = CrossEncoderRerank.__doc__ or ""
    (block,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    exec(compile(textwrap.dedent(block), "<CrossEncoderRerank docstring>", "exec"), {})


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_importing_the_package_does_not_import_llama_index() -> None:
    result = _run(
        """
        import sys
        import langchain_ce_rerank, langchain_ce_rerank.engine
        for name in langchain_ce_rerank.__all__:  # names may be imported lazily
            getattr(langchain_ce_rerank, name)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "llama_index"))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_llama_index_the_import_error_names_the_extra() -> None:
    result = _run(
        """
        import sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name == "llama_index" or name.startswith("llama_index."):
                    raise ImportError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Blocker())
        import langchain_ce_rerank
        try:
            import langchain_ce_rerank.llama_index
        except ImportError as err:
            print(err)
        else:
            print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert install_hint("llama-index") in result.stdout


async def test_the_query_is_checked_once_per_call(query_checks: list[object]) -> None:
    rerank = CrossEncoderRerank(model=_NumpyScorer())
    rerank.postprocess_nodes(_nodes("a", "bb"), query_str="q")
    await rerank.apostprocess_nodes(_nodes("a"), query_str="async q")
    rerank.postprocess_nodes([], query_str="no nodes")
    assert query_checks == ["q", "async q", "no nodes"]
    with pytest.raises(ValueError, match="query is empty"):
        rerank.postprocess_nodes([], query_str=" ")


def test_to_dict_and_from_dict_keep_the_engine_settings() -> None:
    rerank = CrossEncoderRerank(
        model="some/model", batch_size=8, activation="sigmoid", top_n=2
    )
    data = rerank.to_dict()
    assert data["class_name"] == "CrossEncoderRerank"
    assert (data["batch_size"], data["activation"], data["top_n"]) == (8, "sigmoid", 2)
    copy = CrossEncoderRerank.from_dict(data)
    assert copy.top_n == 2
    assert copy.engine.settings() == rerank.engine.settings()
