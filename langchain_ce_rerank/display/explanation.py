"""`RerankExplanation` and `explain()`: reranked documents and why they are in order.

Next to the final order, the explanation lists the candidates the reranker
scored but did not return, each with the reason it was dropped
(`langchain_ce_rerank.engine.DROP_REASONS`: past `top_n`, under
`score_threshold`, its group full, the context budget full, pushed out by
diversity, under `min_probability`). A deadline drops nothing: candidates
`deadline_ms` left unscored show "not scored" where their score would be, in
either table, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from langchain_ce_rerank.display.first_stage import (
    FOUND_BY_NOTE,
    first_stage_kind,
    found_by,
)
from langchain_ce_rerank.display.render import (
    DOWN,
    MUTED,
    NUMBER,
    TABLE,
    TD,
    TH,
    UP,
    FittedColumn,
    esc,
    fitted_table,
    number_cell,
    render_text,
    score_text,
    shorten_left,
    snippet,
    text_width,
)
from langchain_ce_rerank.engine.results import DROP_REASONS

__all__ = [
    "DroppedDocument",
    "RankedDocument",
    "RerankExplanation",
    "ScoreKind",
    "explain",
]

ScoreKind = Literal["logit", "probability", "score"]
"""What a reranker score is: a raw logit, a 0..1 probability, or unknown."""

_SCORE_KINDS: tuple[ScoreKind, ...] = ("logit", "probability", "score")
_ACTIVATION_KINDS: dict[str, ScoreKind] = {"none": "logit", "sigmoid": "probability"}
_SCORE_NOTES: dict[str, str] = {
    "logit": "cross-encoder logit: higher is more relevant; compare within one query",
    "probability": "cross-encoder probability (sigmoid of the logit), 0 to 1",
    "score": "reranker score: higher is more relevant",
}
_RETRIEVAL_KINDS: dict[str, str] = {
    "cosine": "cosine",
    "l2": "L2 distance",
    "inner_product": "dot product",
}
_RETRIEVAL_NOTES: dict[str, str] = {
    "cosine": "first-stage cosine similarity",
    "L2 distance": "first-stage Euclidean distance: lower is closer",
    "dot product": "first-stage dot product",
    "BM25": "first-stage BM25 keyword score",
    "hybrid": "first-stage fused score of dense and BM25 search",
}

_TEXT_SNIPPET = 160
_HTML_SNIPPET = 280
_SOURCE = 36
_TITLE = 2000
_SHRINK: dict[str, Literal["start", "end"]] = {"source": "start", "snippet": "end"}
"""The text table's columns that give way to a narrow terminal, and how."""
_LIMITS = {"source": _SOURCE, "snippet": _TEXT_SNIPPET}
_UNSCORED = "not scored"
_UNSCORED_NOTE = (
    "not scored: deadline_ms ran out before the reranker reached it; it "
    "follows the scored ones in first-stage order"
)


@dataclass(frozen=True)
class RankedDocument:
    """One row of a `RerankExplanation`: a document and where it ended up.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank.display import RerankExplanation

        doc = Document(page_content="x", metadata={"retrieval_rank": 3})
        row = RerankExplanation.from_documents("q", [doc]).rows[0]
        print(row.rank, row.retrieval_rank, row.movement)  # 1 3 2
        ```
    """

    rank: int
    """Final position, 1-based."""
    retrieval_rank: int | None
    """First-stage position (`metadata["retrieval_rank"]`), if recorded."""
    relevance_score: float | None
    """Reranker score (`metadata["relevance_score"]`), if any."""
    retrieval_score: float | None
    """First-stage score (`metadata["retrieval_score"]`), if any."""
    fused_score: float | None
    """RRF score (`metadata["fused_score"]`) when the reranker fused ranks."""
    source: str
    """`metadata["source"]`, else the document id, else empty."""
    document: Document
    """The document as the retriever returned it."""
    found_by: str | None = None
    """The first-stage side that returned it, with its rank there (`"dense
    3"`, `"bm25 1"`, `"both 2/7"`), from a keyword or hybrid first stage's
    metadata; None when the metadata does not say (plain dense search)."""
    scored: bool = True
    """False when `deadline_ms` ran out before it was scored
    (`metadata["reranked"] = False`): it follows in first-stage order."""

    @property
    def movement(self) -> int | None:
        """Places gained from the first stage (negative: places lost)."""
        if self.retrieval_rank is None:
            return None
        return self.retrieval_rank - self.rank


@dataclass(frozen=True)
class DroppedDocument:
    """A candidate the reranker scored but did not return, and why.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank.display import RerankExplanation

        gone = Document(
            page_content="x",
            metadata={"retrieval_rank": 2, "drop_reason": "group_full"},
        )
        shown = RerankExplanation.from_documents("q", [], dropped=[gone])
        print(shown.dropped[0].why)  # its group already had max_per_group results
        ```
    """

    retrieval_rank: int | None
    """First-stage position (`metadata["retrieval_rank"]`), if recorded."""
    relevance_score: float | None
    """Reranker score (`metadata["relevance_score"]`), if any."""
    reason: str
    """`metadata["drop_reason"]`: a key of `DROP_REASONS` such as
    `"top_n"`, `"score_threshold"`, `"group_full"`, `"context_budget"`."""
    source: str
    """`metadata["source"]`, else the document id, else empty."""
    document: Document
    """The dropped candidate, as the reranker scored it."""
    scored: bool = True
    """False when `deadline_ms` ran out before it was scored: dropped for
    `top_n`, `max_per_group` or the token budget without a score."""

    @property
    def why(self) -> str:
        """The reason in words (the key itself for a reason this version lacks)."""
        return DROP_REASONS.get(self.reason, self.reason)


@dataclass(frozen=True)
class RerankExplanation(Sequence[Document]):
    """Reranked documents with the reasons for their order, ready to display.

    Renders as an HTML table in Jupyter and as a text table in `print()` or
    `repr()`: final rank, movement from the first stage (`7 -> 1`), the
    reranker score (and whether it is a logit or a probability), the first-stage
    score, which side found it (after a keyword or hybrid first stage), the
    source and a snippet, under the query; then, when known, a second table
    of the candidates that were not returned, each with why it was dropped.
    It is a sequence of the returned documents (iterate, index, `len`);
    `.documents` is a plain `list[Document]` to hand to a chain.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank.display import RerankExplanation

        docs = [
            Document(
                page_content="Tar the volume and copy it.",
                metadata={
                    "retrieval_rank": 2,
                    "retrieval_score": 0.61,
                    "relevance_score": 3.2,
                    "source": "backup.md",
                },
            )
        ]
        shown = RerankExplanation.from_documents("Move a volume?", docs)
        print(shown)  # the table; shown._repr_html_() is what Jupyter draws
        assert shown.documents == docs and shown[0] is docs[0]
        ```
    """

    query: str
    """The query the documents answer."""
    rows: tuple[RankedDocument, ...]
    """One row per document, in final order."""
    score_kind: ScoreKind = "logit"
    """What `relevance_score` is: `"logit"`, `"probability"` or `"score"`."""
    retrieval_kind: str = "cosine"
    """What `retrieval_score` is: `"cosine"`, `"L2 distance"`, `"dot product"`,
    `"BM25"`, `"hybrid"` (the fused score) or `"score"`."""
    dropped: tuple[DroppedDocument, ...] = ()
    """The candidates not returned, best first, each with its reason."""

    @classmethod
    def from_documents(
        cls,
        query: str,
        documents: Iterable[Document],
        *,
        dropped: Iterable[Document] = (),
        score_kind: ScoreKind = "logit",
        retrieval_kind: str | None = None,
    ) -> RerankExplanation:
        """Explain documents already in hand, e.g. from `retriever.invoke(query)`.

        Args:
            query: The query they were ranked for.
            documents: Documents in final order; their metadata supplies the
                columns (`retrieval_rank`, `retrieval_score`, `relevance_score`,
                `fused_score`, `source`, and `dense_rank` / `bm25_rank` for the
                "found by" column); missing values show as blanks.
            score_kind: `"logit"` (the compressor's default `activation="none"`),
                `"probability"` (`activation="sigmoid"`) or `"score"`.
            dropped: The candidates not returned (`invoke_explained`'s or
                `compress_documents_explained`'s `dropped`), each with
                `metadata["drop_reason"]`.
            retrieval_kind: What the first-stage score is. None (default):
                `"cosine"` (the store's default distance), or `"BM25"` /
                `"hybrid"` when the metadata shows a keyword or hybrid first
                stage.

        Raises:
            ValueError: An unknown `score_kind`.
            TypeError: `query` is not a string or an item is not a `Document`.
        """
        if score_kind not in _SCORE_KINDS:
            msg = (
                f"score_kind must be 'logit', 'probability' or 'score', got "
                f"{score_kind!r}: RerankExplanation.from_documents(query, docs, "
                "score_kind='probability') for activation='sigmoid'"
            )
            raise ValueError(msg)
        if not isinstance(query, str):
            msg = f"query must be a string, got {type(query).__name__}: {query!r}"
            raise TypeError(msg)
        rows = []
        for rank, doc in enumerate(documents, start=1):
            meta = _checked(doc, "documents", rank).metadata
            rows.append(
                RankedDocument(
                    rank=rank,
                    retrieval_rank=_rank(meta.get("retrieval_rank")),
                    relevance_score=_number(meta.get("relevance_score")),
                    retrieval_score=_number(meta.get("retrieval_score")),
                    fused_score=_number(meta.get("fused_score")),
                    source=str(meta.get("source") or doc.id or ""),
                    document=doc,
                    found_by=found_by(meta),
                    scored=meta.get("reranked") is not False,
                )
            )
        gone = []
        for position, doc in enumerate(dropped, start=1):
            meta = _checked(doc, "dropped", position).metadata
            if not isinstance(meta.get("drop_reason"), str):
                msg = (
                    f"dropped document {position} (id={doc.id!r}) has no "
                    "metadata['drop_reason']; pass the dropped list of "
                    "invoke_explained() or compress_documents_explained()"
                )
                raise ValueError(msg)
            gone.append(
                DroppedDocument(
                    retrieval_rank=_rank(meta.get("retrieval_rank")),
                    relevance_score=_number(meta.get("relevance_score")),
                    reason=meta["drop_reason"],
                    source=str(meta.get("source") or doc.id or ""),
                    scored=meta.get("reranked") is not False,
                    document=doc,
                )
            )
        if retrieval_kind is None:
            retrieval_kind = first_stage_kind(
                (row.document.metadata for row in rows), "cosine"
            )
        return cls(query, tuple(rows), score_kind, retrieval_kind, tuple(gone))

    @property
    def documents(self) -> list[Document]:
        """The documents in final order, as a new plain list."""
        return [row.document for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Document: ...

    @overload
    def __getitem__(self, index: slice) -> list[Document]: ...

    def __getitem__(self, index: int | slice) -> Document | list[Document]:
        if isinstance(index, slice):
            return [row.document for row in self.rows[index]]
        return self.rows[index].document

    def __iter__(self) -> Iterator[Document]:
        return (row.document for row in self.rows)

    # -- rendering ----------------------------------------------------------------

    def _columns(self) -> list[str]:
        columns = ["#", "move"]
        if any(r.relevance_score is not None or not r.scored for r in self.rows):
            columns.append("rerank")
        if any(r.fused_score is not None for r in self.rows):
            columns.append("rrf")
        if any(r.retrieval_score is not None for r in self.rows):
            columns.append("first stage")
        if any(r.found_by is not None for r in self.rows):
            columns.append("found by")
        columns += ["source", "snippet"]
        return columns

    def _header(self, column: str) -> str:
        if column == "rerank":
            return f"rerank ({self.score_kind})"
        if column == "rrf":
            return "RRF score"
        if column == "first stage":
            return self.retrieval_kind
        return column

    def _notes(self) -> list[str]:
        columns = self._columns()
        notes = ["move: first-stage rank -> final rank"]
        if "rerank" in columns:
            notes.append(f"rerank: {_SCORE_NOTES[self.score_kind]}")
        if "rrf" in columns:
            notes.append("RRF score: the order (reranker rank fused with first stage)")
        if "first stage" in columns:
            note = _RETRIEVAL_NOTES.get(self.retrieval_kind, "first-stage score")
            notes.append(f"{self.retrieval_kind}: {note}")
        if "found by" in columns:
            notes.append(FOUND_BY_NOTE)
        if not all(r.scored for r in self.rows) or not all(
            d.scored for d in self.dropped
        ):
            notes.append(_UNSCORED_NOTE)
        return notes

    def __str__(self) -> str:
        from rich.text import Text

        columns = self._columns()
        width = text_width()
        cells = [
            {
                "#": str(row.rank),
                "move": _move_text(row),
                "rerank": _score_or_unscored(row),
                "rrf": score_text(row.fused_score),
                "first stage": score_text(row.retrieval_score),
                "found by": row.found_by or "",
                "source": row.source,
                "snippet": " ".join(row.document.page_content.split()),
            }
            for row in self.rows
        ]
        # Ranks, movement and scores stay whole; the snippet, then the source
        # (keeping its end: the file name), give way to fit the terminal.
        fitted = [
            FittedColumn(
                self._header(c),
                justify=_align(c),
                shrink=_SHRINK.get(c, "never"),
                limit=_LIMITS.get(c),
                keep=20,
            )
            for c in columns
        ]
        table = fitted_table(
            fitted,
            [[row[c] for c in columns] for row in cells],
            width,
            title=f"Query: {self.query}",
        )
        notes = "\n".join(self._notes()) if self.rows else "no documents"
        if not self.dropped:
            return render_text(table, Text(notes), width=width)
        dropped_columns = [
            FittedColumn("first stage"),
            FittedColumn(f"rerank ({self.score_kind})"),
            FittedColumn("why not returned", justify="left", shrink="end", keep=24),
            FittedColumn("source", justify="left", shrink="start", limit=_SOURCE),
            FittedColumn(
                "snippet", justify="left", shrink="end", limit=_TEXT_SNIPPET, keep=20
            ),
        ]
        dropped_table = fitted_table(
            dropped_columns,
            [
                [
                    "?" if row.retrieval_rank is None else str(row.retrieval_rank),
                    _score_or_unscored(row),
                    row.why,
                    row.source,
                    " ".join(row.document.page_content.split()),
                ]
                for row in self.dropped
            ],
            width,
            title=f"Not returned ({len(self.dropped)})",
        )
        return render_text(table, Text(notes), dropped_table, width=width)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        columns = self._columns()
        head = "".join(
            f'<th style="{TH};text-align:{_align(c)}">{esc(self._header(c))}</th>'
            for c in columns
        )
        body = []
        for row in self.rows:
            cells = {
                "#": f'<td style="{TD};{NUMBER}">{row.rank}</td>',
                "move": f'<td style="{TD};{NUMBER}">{_move_html(row)}</td>',
                "rerank": _score_cell(row),
                "rrf": number_cell(row.fused_score),
                "first stage": number_cell(row.retrieval_score),
                "found by": (
                    f'<td style="{TD};{NUMBER}">{esc(row.found_by or "")}</td>'
                ),
                "source": (
                    f'<td style="{TD};white-space:nowrap" '
                    f'title="{esc(row.source)}">'
                    f"{esc(shorten_left(row.source, _SOURCE))}</td>"
                ),
                "snippet": (
                    f'<td style="{TD};text-align:left;min-width:24em;'
                    f'max-width:46em;white-space:normal;overflow-wrap:anywhere" '
                    f'title="{esc(snippet(row.document.page_content, _TITLE))}">'
                    f"{esc(snippet(row.document.page_content, _HTML_SNIPPET))}</td>"
                ),
            }
            body.append("<tr>" + "".join(cells[c] for c in columns) + "</tr>")
        if not self.rows:
            body.append(
                f'<tr><td style="{TD};{MUTED}" colspan="{len(columns)}">'
                "no documents</td></tr>"
            )
        notes = " &middot; ".join(
            esc(n).replace("-&gt;", "&rarr;") for n in self._notes()
        )
        return (
            '<div class="ce-rerank-explanation" style="color:inherit">'
            f'<div style="margin:0.2em 0"><span style="{MUTED}">Query:</span> '
            f"<b>{esc(self.query)}</b></div>"
            f'<table class="ce-rerank" style="{TABLE}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<div style="font-size:0.82em;{MUTED}">{notes}</div>'
            f"{self._dropped_html()}</div>"
        )

    def _dropped_html(self) -> str:
        if not self.dropped:
            return ""
        headers = ["first stage", f"rerank ({self.score_kind})", "why not returned"]
        head = "".join(
            f'<th style="{TH};text-align:{align}">{esc(name)}</th>'
            for name, align in zip(
                [*headers, "source", "snippet"],
                ["right", "right", "left", "left", "left"],
                strict=True,
            )
        )
        body = "".join(
            "<tr>"
            f'<td style="{TD};{NUMBER}">'
            f"{'?' if row.retrieval_rank is None else row.retrieval_rank}</td>"
            f"{_score_cell(row)}"
            f'<td style="{TD};text-align:left" title="{esc(row.reason)}">'
            f"{esc(row.why)}</td>"
            f'<td style="{TD};white-space:nowrap" title="{esc(row.source)}">'
            f"{esc(shorten_left(row.source, _SOURCE))}</td>"
            f'<td style="{TD};text-align:left;min-width:24em;max-width:46em;'
            f'white-space:normal;overflow-wrap:anywhere">'
            f"{esc(snippet(row.document.page_content, _HTML_SNIPPET))}</td>"
            "</tr>"
            for row in self.dropped
        )
        return (
            f'<div style="margin:0.6em 0 0.2em 0"><span style="{MUTED}">'
            f"Not returned ({len(self.dropped)})</span></div>"
            f'<table class="ce-rerank-dropped" style="{TABLE}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def explain(
    retriever: BaseRetriever, query: str, **invoke_kwargs: Any
) -> RerankExplanation:
    """Run `retriever.invoke(query)` and explain the order of what comes back.

    With a `RerankingRetriever` (`build_reranking_retriever`), the candidates
    the reranker dropped are shown too, each with its reason
    (`invoke_explained`).

    The reranker score's meaning comes from the compressor behind a
    `ContextualCompressionRetriever` (`build_reranking_retriever`): its
    `activation` field, `"none"` for logits or `"sigmoid"` for probabilities.
    The first-stage score's meaning comes from the store's distance strategy
    (cosine by default), or is the BM25 or fused hybrid score when the
    documents' metadata shows a keyword or hybrid first stage, whose "found
    by" column says which side returned each document. Any other retriever
    works too; columns it does not fill are left out or blank.

    Args:
        retriever: The retriever to query, usually `build_reranking_retriever`'s.
        query: The query text.
        **invoke_kwargs: Passed to `retriever.invoke`, e.g. `k=8`.

    Returns:
        A `RerankExplanation`: a table in Jupyter, a sequence of the documents
        everywhere (`.documents` for the plain list).

    Example:
        ```python
        from langchain_core.cross_encoders import BaseCrossEncoder
        from langchain_core.documents import Document
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import build_reranking_retriever
        from langchain_ce_rerank.display import explain


        class Overlap(BaseCrossEncoder):  # counts shared words; any model works
            def score(self, text_pairs):
                return [
                    float(len(set(q.split()) & set(t.split()))) for q, t in text_pairs
                ]


        retriever = build_reranking_retriever(
            [Document(page_content=t) for t in ["red apple", "blue sky", "red sky"]],
            embedding=DeterministicFakeEmbedding(size=8),
            reranker=Overlap(),
            k=3,
        )
        shown = explain(retriever, "red apple")
        print(shown)
        best = shown.documents[0]
        ```
    """
    explained = getattr(retriever, "invoke_explained", None)
    compressor = getattr(retriever, "base_compressor", None)
    dropped: list[Document] = []
    if explained is not None and hasattr(compressor, "compress_documents_explained"):
        documents, dropped = explained(query, **invoke_kwargs)
    else:
        documents = retriever.invoke(query, **invoke_kwargs)
    activation = getattr(
        getattr(retriever, "base_compressor", None), "activation", None
    )
    score_kind = _ACTIVATION_KINDS.get(activation, "score") if activation else "score"
    first = getattr(retriever, "base_retriever", retriever)
    distance = getattr(getattr(first, "vectorstore", None), "distance_strategy", None)
    retrieval_kind = first_stage_kind(
        (doc.metadata for doc in documents),
        _RETRIEVAL_KINDS.get(str(distance), "score"),
    )
    return RerankExplanation.from_documents(
        query,
        documents,
        dropped=dropped,
        score_kind=score_kind,
        retrieval_kind=retrieval_kind,
    )


# -- helpers ------------------------------------------------------------------------


def _checked(doc: object, name: str, position: int) -> Document:
    if not isinstance(doc, Document):
        msg = (
            f"{name} must be langchain Documents, got "
            f"{type(doc).__name__} at position {position}"
        )
        raise TypeError(msg)
    return doc


def _score_or_unscored(row: RankedDocument | DroppedDocument) -> str:
    """The reranker score as shown, or "not scored" where the deadline left it."""
    return score_text(row.relevance_score) if row.scored else _UNSCORED


def _score_cell(row: RankedDocument | DroppedDocument) -> str:
    """`_score_or_unscored` as an HTML cell (muted when not scored)."""
    if row.scored:
        return number_cell(row.relevance_score)
    return f'<td style="{TD};{NUMBER};{MUTED}">{_UNSCORED}</td>'


def _rank(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _align(column: str) -> Literal["left", "right"]:
    return "left" if column in ("source", "snippet") else "right"


def _move_text(row: RankedDocument) -> str:
    if row.retrieval_rank is None:
        return f"? -> {row.rank}"
    return f"{row.retrieval_rank} -> {row.rank}"


def _move_html(row: RankedDocument) -> str:
    moved = row.movement
    if moved is None:
        return f'<span style="{MUTED}">?</span> &rarr; {row.rank}'
    if moved > 0:
        badge = f'<span style="color:{UP};font-weight:600">&#9650;{moved}</span>'
    elif moved < 0:
        badge = f'<span style="color:{DOWN};font-weight:600">&#9660;{-moved}</span>'
    else:
        badge = f'<span style="{MUTED}">=</span>'
    return (
        f"{row.retrieval_rank} &rarr; {row.rank} "
        f'<span style="display:inline-block;min-width:2.4em;text-align:left">'
        f"{badge}</span>"
    )
