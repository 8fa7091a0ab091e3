"""`CompressorContractTests`: the promises a reranking document compressor keeps.

`langchain-tests` has standard suites for retrievers and vector stores but none
for `BaseDocumentCompressor`, so every reranker makes up its own rules. This is
ours, written as a pytest base class in the shape of
`langchain_tests.integration_tests.VectorStoreIntegrationTests`: subclass it,
provide one fixture, and each promise runs as its own test.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import numbers
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document

__all__ = ["CompressorContractTests", "CompressorFactory"]

CutOrder = Literal["top_n_then_threshold", "threshold_then_top_n"]


class CompressorFactory(Protocol):
    """Builds the compressor under test with the given cut settings.

    `top_n=None` must mean "no cut" and `score_threshold=None` "no threshold";
    map them to your compressor's own fields (e.g. `top_n=None` to a large
    number, or a threshold to a field named `min_score`).
    """

    def __call__(
        self, *, top_n: int | None = None, score_threshold: float | None = None
    ) -> BaseDocumentCompressor:
        """Return a new compressor with these settings."""


class _RecordingHandler(BaseCallbackHandler):
    """A callback handler that only counts what it is told."""

    def __init__(self) -> None:
        self.events = 0

    def on_text(self, text: str, **kwargs: Any) -> None:
        self.events += 1


class CompressorContractTests:
    """Standard tests for a reranking `BaseDocumentCompressor`.

    Subclass it (in a class named `Test...`) and provide the
    `compressor_factory` fixture; each promise below is one test method.
    Class attributes describe what your compressor documents where rerankers
    legitimately differ: where the score lives (`score_key`), what the output
    is ordered by (`order_key`), which cut comes first (`cut_order`), what a
    blank query does (`blank_query`), and which knobs exist (`has_top_n`,
    `has_score_threshold`). `known_breaks` marks promises a compressor is known
    not to keep as strict `xfail`s, with the reason, instead of overriding the
    test methods. The documents are a handful of short texts, so a model double
    keeps the whole contract fast; scores must be deterministic and distinct.

    Example:
        ```python
        import pytest
        from langchain_core.documents import BaseDocumentCompressor

        from langchain_ce_rerank import CrossEncoderCompressor
        from langchain_ce_rerank.testing import CompressorContractTests


        class TestMyReranker(CompressorContractTests):
            @pytest.fixture
            def compressor_factory(self):
                def make(*, top_n=None, score_threshold=None) -> BaseDocumentCompressor:
                    return CrossEncoderCompressor(
                        model=my_cross_encoder,  # e.g. a deterministic double
                        top_n=top_n,
                        score_threshold=score_threshold,
                    )

                return make
        ```
    """

    score_key: ClassVar[str] = "relevance_score"
    """The metadata key holding each returned document's score; the threshold
    applies to it."""

    order_key: ClassVar[str | None] = None
    """The metadata key the output is sorted by (descending); None means
    `score_key`. Differs for fused rankings (e.g. `"fused_score"`)."""

    has_top_n: ClassVar[bool] = True
    """The compressor can cut its output to the best `top_n`."""

    has_score_threshold: ClassVar[bool] = True
    """The compressor can drop documents scoring below a threshold."""

    cut_order: ClassVar[CutOrder] = "top_n_then_threshold"
    """Which cut is applied first when both are set. The two agree whenever the
    output is ordered by the thresholded score; they differ only when it is not
    (`order_key != score_key`), and the test then checks the documented one."""

    blank_query: ClassVar[Literal["raises", "empty"]] = "raises"
    """What an empty or whitespace-only query does: raise `blank_query_error`,
    or return no documents."""

    blank_query_error: ClassVar[type[Exception]] = ValueError
    """The exception expected for a blank query when `blank_query="raises"`."""

    known_breaks: ClassVar[Mapping[str, str]] = {}
    """`{test name: reason}` for promises this compressor is known to break;
    each runs as `xfail(strict=True)`, so a fix shows up as a failure to update
    this mapping."""

    @abstractmethod
    @pytest.fixture
    def compressor_factory(self) -> CompressorFactory:
        """Return a `CompressorFactory` building the compressor under test."""

    @pytest.fixture(autouse=True)
    def _mark_known_breaks(self, request: pytest.FixtureRequest) -> None:
        reason = self.known_breaks.get(request.function.__name__)
        if reason is not None:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    @property
    def query(self) -> str:
        """The query every test reranks for."""
        return "How do I move a Docker volume to another host?"

    @property
    def documents(self) -> list[Document]:
        """Fresh candidate documents: distinct texts, ids and nested metadata."""
        texts = [
            "Tar the Docker volume, copy the archive to the new host, untar it.",
            "docker logs shows what a container printed.",
            "Move a volume: stop the container before copying the volume.",
            "Release checklist: tag the images.",
            "Docker compose up recreates containers after an image update.",
            "Cats purr when content.",
        ]
        return [
            Document(
                id=f"doc-{i}",
                page_content=text,
                metadata={
                    "source": f"notes/{i}.md",
                    "retrieval_rank": i + 1,
                    "tags": ["docker", f"t{i}"],
                    "section": {"title": f"Section {i}", "lines": [i, i + 3]},
                },
            )
            for i, text in enumerate(texts)
        ]

    # -- helpers -----------------------------------------------------------

    @property
    def _order_key(self) -> str:
        return self.order_key or self.score_key

    def _compress(
        self,
        factory: CompressorFactory,
        documents: Sequence[Document] | None = None,
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
    ) -> list[Document]:
        docs = self.documents if documents is None else documents
        result = factory(top_n=top_n, score_threshold=score_threshold)
        out = result.compress_documents(docs, self.query)
        assert all(isinstance(d, Document) for d in out), (
            f"compress_documents returned non-Document items: {list(out)!r}"
        )
        return list(out)

    def _value(self, doc: Document, key: str) -> float:
        assert key in doc.metadata, (
            f"returned document {doc.id!r} ({doc.page_content[:40]!r}) has no "
            f"metadata[{key!r}] (its keys: {sorted(doc.metadata)}); set score_key "
            "(and order_key) to where the compressor writes its score"
        )
        value = doc.metadata[key]
        assert isinstance(value, numbers.Real), (
            f"metadata[{key!r}] of {doc.id!r} is {value!r}, not a number"
        )
        return float(value)

    def _scores(self, docs: Sequence[Document]) -> list[float]:
        return [self._value(d, self.score_key) for d in docs]

    def _source(self, doc: Document, inputs: Sequence[Document]) -> int:
        matches = [
            i for i, d in enumerate(inputs) if d.page_content == doc.page_content
        ]
        assert matches, (
            f"returned document {doc.page_content[:60]!r} matches no input "
            "document's page_content: the text was changed or invented"
        )
        return matches[0]

    @staticmethod
    def _texts(docs: Sequence[Document]) -> list[str]:
        return [d.page_content for d in docs]

    def _thresholds(self, scores: Sequence[float]) -> list[float]:
        """Midpoints between distinct scores: no document sits on a threshold."""
        distinct = sorted(set(scores), reverse=True)
        if len(distinct) < 3:
            pytest.fail(
                f"the compressor gave fewer than 3 distinct scores ({distinct}) for "
                "the contract's documents; override `documents` (or the model "
                "double) so scores differ"
            )
        return [(a + b) / 2 for a, b in itertools.pairwise(distinct)]

    def _assert_same(self, got: Sequence[Document], want: Sequence[Document]) -> None:
        assert self._texts(got) == self._texts(want), (
            f"different documents or order: got {self._texts(got)}, "
            f"want {self._texts(want)}"
        )
        for a, b in zip(got, want, strict=True):
            assert a.id == b.id, f"id {a.id!r} != {b.id!r} for {a.page_content!r}"
            assert set(a.metadata) == set(b.metadata), (
                f"metadata keys differ for {a.page_content!r}: "
                f"{sorted(a.metadata)} != {sorted(b.metadata)}"
            )
            for key, value in a.metadata.items():
                other = b.metadata[key]
                if isinstance(value, float) and isinstance(other, float):
                    assert math.isclose(value, other, rel_tol=1e-6, abs_tol=1e-9), (
                        f"metadata[{key!r}] of {a.page_content!r}: {value} != {other}"
                    )
                else:
                    assert value == other, (
                        f"metadata[{key!r}] of {a.page_content!r}: "
                        f"{value!r} != {other!r}"
                    )

    # -- the promises --------------------------------------------------------

    def test_sorted_by_score(self, compressor_factory: CompressorFactory) -> None:
        """The output is sorted by `metadata[order_key]`, highest first."""
        out = self._compress(compressor_factory)
        values = [self._value(d, self._order_key) for d in out]
        assert len(out) > 1, f"expected several documents back, got {len(out)}"
        assert all(a >= b for a, b in itertools.pairwise(values)), (
            f"metadata[{self._order_key!r}] is not descending: {values}"
        )

    def test_top_n_cuts(self, compressor_factory: CompressorFactory) -> None:
        """`top_n=None` returns every document; `top_n=k` the best k of them."""
        if not self.has_top_n:
            pytest.skip("no top_n option (has_top_n=False)")
        full = self._compress(compressor_factory)
        n = len(self.documents)
        assert len(full) == n, (
            f"top_n=None returned {len(full)} of {n} documents; without cuts "
            "every document must come back"
        )
        for k in (1, 3, n + 2):
            cut = self._compress(compressor_factory, top_n=k)
            assert self._texts(cut) == self._texts(full)[:k], (
                f"top_n={k} returned {self._texts(cut)}, not the first {k} of the "
                f"uncut ranking {self._texts(full)}"
            )

    def test_score_threshold_applies(
        self, compressor_factory: CompressorFactory
    ) -> None:
        """`score_threshold=t` keeps exactly the documents scoring at least t."""
        if not self.has_score_threshold:
            pytest.skip("no score threshold option (has_score_threshold=False)")
        full = self._compress(compressor_factory)
        scores = self._scores(full)
        for t in self._thresholds(scores)[:3]:
            want = [d for d, s in zip(full, scores, strict=True) if s >= t]
            got = self._compress(compressor_factory, score_threshold=t)
            assert self._texts(got) == self._texts(want), (
                f"score_threshold={t} returned {self._texts(got)}; the documents "
                f"scoring >= {t} (scores {scores}) are {self._texts(want)}"
            )

    def test_cut_order(self, compressor_factory: CompressorFactory) -> None:
        """With both `top_n` and `score_threshold`, the cuts apply in `cut_order`."""
        if not (self.has_top_n and self.has_score_threshold):
            pytest.skip("needs both top_n and a score threshold option")
        full = self._compress(compressor_factory)
        scores = self._scores(full)
        pairs = [(k, t) for k in range(1, len(full)) for t in self._thresholds(scores)]

        def expected(k: int, t: float, order: CutOrder) -> list[str]:
            keep = [d for d, s in zip(full, scores, strict=True) if s >= t]
            if order == "threshold_then_top_n":
                return self._texts(keep[:k])
            return [d.page_content for d in full[:k] if d in keep]

        # Prefer settings where the two orders disagree, so the check has teeth.
        telling = [
            (k, t)
            for k, t in pairs
            if expected(k, t, "top_n_then_threshold")
            != expected(k, t, "threshold_then_top_n")
        ]
        k, t = (telling or pairs)[len(telling or pairs) // 2]
        got = self._texts(
            self._compress(compressor_factory, top_n=k, score_threshold=t)
        )
        want = expected(k, t, self.cut_order)
        other: CutOrder = (
            "threshold_then_top_n"
            if self.cut_order == "top_n_then_threshold"
            else "top_n_then_threshold"
        )
        hint = (
            f"; that is {other}: set cut_order = {other!r} if that is documented"
            if telling and got == expected(k, t, other)
            else ""
        )
        assert got == want, (
            f"top_n={k}, score_threshold={t} returned {got}; {self.cut_order} "
            f"gives {want}{hint}"
        )

    def test_inputs_not_mutated(self, compressor_factory: CompressorFactory) -> None:
        """The input list, its documents and their metadata are left as they were."""
        docs = self.documents
        snapshot = copy.deepcopy(docs)
        identities = [(id(d), id(d.metadata)) for d in docs]
        compressor = compressor_factory(top_n=3)
        compressor.compress_documents(docs, self.query)
        assert [(id(d), id(d.metadata)) for d in docs] == identities, (
            "the input list was reordered, resized or had documents replaced"
        )
        for before, after in zip(snapshot, docs, strict=True):
            assert after.id == before.id, (
                f"input id changed: {before.id!r} -> {after.id!r}"
            )
            assert after.page_content == before.page_content, (
                f"input page_content of {before.id!r} changed"
            )
            assert after.metadata == before.metadata, (
                f"input metadata of {before.id!r} changed: {before.metadata!r} -> "
                f"{after.metadata!r}"
            )

    def test_returns_new_documents(self, compressor_factory: CompressorFactory) -> None:
        """Results are new objects: editing a result's metadata leaves the input."""
        docs = self.documents
        out = self._compress(compressor_factory, docs)
        for doc in out:
            source = docs[self._source(doc, docs)]
            assert doc is not source, (
                f"returned the input Document object {source.id!r} itself; return a "
                "copy so callers editing results do not edit their inputs"
            )
            assert doc.metadata is not source.metadata, (
                f"returned document shares its metadata dict with input {source.id!r}"
            )

    def test_keeps_id_content_and_metadata(
        self, compressor_factory: CompressorFactory
    ) -> None:
        """Each result is an input document: same id and text, metadata a superset."""
        docs = self.documents
        out = self._compress(compressor_factory, docs)
        written = {self.score_key, self._order_key}
        for doc in out:
            source = docs[self._source(doc, docs)]
            assert doc.id == source.id, (
                f"id lost: input {source.id!r} came back as {doc.id!r} "
                f"({doc.page_content[:40]!r})"
            )
            for key, value in source.metadata.items():
                if key in written:
                    continue
                assert key in doc.metadata, (
                    f"metadata[{key!r}] of {source.id!r} was dropped"
                )
                assert doc.metadata[key] == value, (
                    f"metadata[{key!r}] of {source.id!r} changed: {value!r} -> "
                    f"{doc.metadata[key]!r}"
                )

    def test_scores_are_plain_floats(
        self, compressor_factory: CompressorFactory
    ) -> None:
        """Scores are built-in `float` (`type(x) is float`), never numpy scalars."""
        out = self._compress(compressor_factory)
        assert out, "no documents came back"
        for doc in out:
            for key in dict.fromkeys((self.score_key, self._order_key)):
                self._value(doc, key)
                value = doc.metadata[key]
                assert type(value) is float, (
                    f"metadata[{key!r}] is {type(value).__module__}."
                    f"{type(value).__qualname__} ({value!r}); scores must be plain "
                    "Python float (numpy scalars break json.dumps and leak into reprs)"
                )

    def test_empty_input(self, compressor_factory: CompressorFactory) -> None:
        """No documents in, no documents out, no error."""
        try:
            out = compressor_factory(top_n=3).compress_documents([], self.query)
        except Exception as err:
            msg = f"empty input raised {type(err).__name__}: {err}"
            raise AssertionError(msg) from err
        assert list(out) == [], f"empty input returned {out!r}"

    def test_blank_query(self, compressor_factory: CompressorFactory) -> None:
        """A blank query raises or returns nothing, as `blank_query` says."""
        compressor = compressor_factory(top_n=3)
        for query in ("", "   "):
            if self.blank_query == "raises":
                try:
                    out = compressor.compress_documents(self.documents, query)
                except self.blank_query_error:
                    continue
                msg = (
                    f"query {query!r} returned {len(out)} documents instead of "
                    f"raising {self.blank_query_error.__name__}"
                )
                raise AssertionError(msg)
            else:
                out = compressor.compress_documents(self.documents, query)
                assert list(out) == [], (
                    f"query {query!r} returned {len(out)} documents, expected none"
                )

    def test_async_matches_sync(self, compressor_factory: CompressorFactory) -> None:
        """`acompress_documents` returns what `compress_documents` returns."""
        sync = self._compress(compressor_factory, top_n=4)
        compressor = compressor_factory(top_n=4)
        out = asyncio.run(compressor.acompress_documents(self.documents, self.query))
        self._assert_same(list(out), sync)

    def test_callbacks_accepted(self, compressor_factory: CompressorFactory) -> None:
        """A handler list or a `CallbackManager` is accepted and changes nothing."""
        plain = self._compress(compressor_factory, top_n=4)
        handler = _RecordingHandler()
        options: list[Callbacks] = [[handler], CallbackManager(handlers=[handler])]
        for callbacks in options:
            compressor = compressor_factory(top_n=4)
            try:
                out = compressor.compress_documents(
                    self.documents, self.query, callbacks=callbacks
                )
                aout = asyncio.run(
                    compressor.acompress_documents(
                        self.documents, self.query, callbacks=callbacks
                    )
                )
            except Exception as err:
                msg = (
                    f"callbacks={type(callbacks).__name__} raised "
                    f"{type(err).__name__}: {err}"
                )
                raise AssertionError(msg) from err
            self._assert_same(list(out), plain)
            self._assert_same(list(aout), plain)

    def test_no_duplicates(self, compressor_factory: CompressorFactory) -> None:
        """No input document comes back twice."""
        docs = self.documents
        for top_n in (None, 3):
            out = self._compress(compressor_factory, docs, top_n=top_n)
            sources = [self._source(d, docs) for d in out]
            assert len(sources) == len(set(sources)), (
                f"top_n={top_n}: some documents came back twice: {self._texts(out)}"
            )

    def test_never_more_than_given(self, compressor_factory: CompressorFactory) -> None:
        """The output is never longer than the input, whatever `top_n` says."""
        docs = self.documents
        for count in (1, 2, len(docs)):
            for top_n in (None, count + 5):
                out = self._compress(compressor_factory, docs[:count], top_n=top_n)
                assert len(out) <= count, (
                    f"{count} documents in, {len(out)} out (top_n={top_n})"
                )
