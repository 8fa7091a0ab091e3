"""Rich displays: reranked results, evaluation reports and the store, as people see them."""

from __future__ import annotations

import itertools
import re
import sys

import pytest
from doubles import AxisEmbeddings, TableCrossEncoder
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import FaissVectorStore, build_reranking_retriever
from langchain_ce_rerank.display import RerankExplanation, explain
from langchain_ce_rerank.evaluation import ConfigurationResult, EvaluationReport

ANSI = re.compile(r"\x1b\[")
TEXTS = ["docker volume backup", "docker logs", "logs"]
QUERY = "docker volume backup"


def _retriever(**kwargs: object):
    # First stage by cosine: "docker volume backup" 1st, "docker logs" 2nd,
    # "logs" 3rd; the reranker then puts "logs" first.
    scores = {"logs": 5.0, "docker volume backup": 1.0, "docker logs": 0.0}
    return build_reranking_retriever(
        [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)],
        embedding=AxisEmbeddings(["docker", "volume", "backup", "logs"]),
        reranker=TableCrossEncoder(scores),
        k=3,
        top_n=None,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "140")


# -- explain / RerankExplanation ------------------------------------------------


def test_explain_keeps_the_documents_invoke_returns() -> None:
    retriever = _retriever()
    shown = explain(retriever, QUERY)
    invoked = retriever.invoke(QUERY)
    assert shown.documents == invoked
    assert type(shown.documents) is list
    assert list(shown) == invoked
    assert len(shown) == 3
    assert shown[0].page_content == "logs"
    assert shown[-2:] == invoked[-2:]
    # invoke itself still returns plain Documents for chains
    assert all(type(d) is Document for d in invoked)


def test_explain_reports_the_movement_and_both_scores() -> None:
    shown = explain(_retriever(), QUERY)
    first = shown.rows[0]
    assert (first.rank, first.retrieval_rank, first.movement) == (1, 3, 2)
    assert first.relevance_score == 5.0
    assert first.source == "d2"  # no metadata["source"]: the id
    assert shown.score_kind == "logit"
    assert shown.retrieval_kind == "cosine"
    text = str(shown)
    assert "Query: docker volume backup" in text
    assert "3 -> 1" in text
    assert "1 -> 2" in text
    assert "rerank (logit)" in text
    assert "cosine" in text
    assert "5.000" in text
    assert not ANSI.search(text)
    assert repr(shown) == text
    html = shown._repr_html_()
    assert "3 &rarr; 1" in html
    assert "&#9650;2" in html  # moved up two places
    assert "rerank (logit)" in html
    assert "docker volume backup" in html


def test_explain_says_probability_for_a_sigmoid_reranker() -> None:
    shown = explain(_retriever(activation="sigmoid"), QUERY)
    assert shown.score_kind == "probability"
    assert "rerank (probability)" in str(shown)
    assert "probability" in shown._repr_html_()


def test_explain_passes_invoke_kwargs() -> None:
    shown = explain(_retriever(), QUERY, k=2)
    assert len(shown) == 2


def test_explain_a_first_stage_alone_leaves_the_reranker_out() -> None:
    store = FaissVectorStore.from_texts(
        TEXTS, AxisEmbeddings(["docker", "volume", "backup", "logs"])
    )
    shown = explain(store.as_retriever(k=2), QUERY)
    assert shown.score_kind == "score"
    assert [r.relevance_score for r in shown.rows] == [None, None]
    assert "rerank (" not in str(shown)
    assert "rerank (" not in shown._repr_html_()
    assert "1 -> 1" in str(shown)


def test_the_first_stage_kind_follows_the_store_distance() -> None:
    store = FaissVectorStore.from_texts(
        TEXTS, AxisEmbeddings(["docker", "logs"]), distance_strategy="l2"
    )
    shown = explain(store.as_retriever(k=1), "docker")
    assert shown.retrieval_kind == "L2 distance"
    assert "lower is closer" in str(shown)


def test_user_text_is_escaped_in_html() -> None:
    doc = Document(
        page_content="<script>alert('x')</script> & more",
        metadata={"source": 'a"b<c>.md', "retrieval_rank": 1, "relevance_score": 1.0},
    )
    html = RerankExplanation.from_documents("<img src=x onerror=alert(1)>", [doc])
    rendered = html._repr_html_()
    assert "<script>" not in rendered
    assert "<img" not in rendered
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert "a&quot;b&lt;c&gt;.md" in rendered


def test_rich_markup_in_documents_is_shown_as_written() -> None:
    doc = Document(page_content="[bold]not bold[/bold] [/] [link]", id="x")
    assert "[bold]not bold[/bold] [/] [link]" in str(
        RerankExplanation.from_documents("q [red]", [doc])
    )


def test_long_texts_are_cut_and_whitespace_flattened() -> None:
    text = "word\n\t " * 500
    doc = Document(page_content=text, metadata={"source": "/x/" * 40 + "file.md"})
    shown = RerankExplanation.from_documents("q", [doc])
    rendered = shown._repr_html_()
    snippet = re.search(r'overflow-wrap:anywhere" title="[^"]*">([^<]*)</td>', rendered)
    assert snippet is not None
    assert 100 < len(snippet.group(1)) <= 280
    assert snippet.group(1).endswith("…")
    assert "\n" not in snippet.group(1)
    lines = str(shown).splitlines()
    assert max(len(line) for line in lines) <= 140
    assert any("file.md" in line for line in lines)  # the path keeps its end


def test_text_fits_a_narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = str(explain(_retriever(), QUERY))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "3 -> 1" in text  # numbers are never squeezed out
    assert "5.000" in text


def test_missing_metadata_shows_blanks() -> None:
    shown = RerankExplanation.from_documents("q", [Document(page_content="x")])
    row = shown.rows[0]
    assert (row.retrieval_rank, row.relevance_score, row.movement) == (None, None, None)
    assert "? -> 1" in str(shown)
    assert re.search(r"\?</span> &rarr; 1", shown._repr_html_())
    assert "move: first-stage rank -> final rank" in str(shown)  # never wrapped


def test_no_documents() -> None:
    shown = RerankExplanation.from_documents("q", [])
    assert len(shown) == 0
    assert shown.documents == []
    assert "no documents" in str(shown)
    assert "no documents" in shown._repr_html_()


def test_fused_scores_get_their_own_column() -> None:
    shown = explain(_retriever(fusion="rrf"), QUERY)
    assert all(r.fused_score is not None for r in shown.rows)
    assert "RRF score" in str(shown)


def test_from_documents_rejects_an_unknown_score_kind() -> None:
    with pytest.raises(ValueError, match=r"score_kind must be .*got 'logits'"):
        RerankExplanation.from_documents("q", [], score_kind="logits")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str at position 1"):
        RerankExplanation.from_documents("q", ["text"])  # type: ignore[list-item]


def test_explanations_are_frozen() -> None:
    shown = RerankExplanation.from_documents("q", [])
    with pytest.raises(AttributeError):
        shown.query = "other"  # type: ignore[misc]


# -- the store -------------------------------------------------------------------


class _CountingEmbeddings(Embeddings):
    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [[float(len(t)), 1.0, 0.5] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return [float(len(text)), 1.0, 0.5]


def test_store_repr_shows_size_dimension_index_distance_and_model() -> None:
    embedding = _CountingEmbeddings()
    store = FaissVectorStore(embedding, distance_strategy="l2")
    assert repr(store) == (
        "FaissVectorStore(size=0, dimension=None, index='Flat', distance='l2', "
        "embedding='_CountingEmbeddings', bm25=True)"
    )
    store.add_texts(["a", "bb"])
    calls = embedding.calls
    assert repr(store) == (
        "FaissVectorStore(size=2, dimension=3, index='Flat', distance='l2', "
        "embedding='_CountingEmbeddings', bm25=True)"
    )
    html = store._repr_html_()
    assert "FaissVectorStore" in html
    for value in (">2<", ">3<", ">Flat<", ">l2<", ">_CountingEmbeddings<"):
        assert value in html
    assert embedding.calls == calls  # no embedding call to describe the store


# -- evaluation reports -------------------------------------------------------------


def _report() -> EvaluationReport:
    def config(name: str, ndcg: float, rerank_ms: float) -> ConfigurationResult:
        metrics = {"nDCG@10": ndcg, "MRR@10": ndcg - 0.1, "Recall@5": 1.0}
        latency = {"first_stage": 2.0, "rerank": rerank_ms, "total": 2.0 + rerank_ms}
        return ConfigurationResult(name, metrics, latency, {})

    return EvaluationReport(
        [
            config("first stage", 0.9114, 0.0),
            config("+ cross-encoder", 0.4868, 738.25),
            config("+ cross-encoder, RRF", 0.7062, 738.25),
        ],
        num_queries=25,
        k=5,
        top_n=3,
    )


def test_report_str_is_the_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    from langchain_ce_rerank.cli import print_report

    report = _report()
    print_report(report)
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert printed == str(report).splitlines()
    text = str(report)
    assert text.splitlines()[0].strip() == "25 queries, k=5, top_n=3"
    assert "│ + cross-encoder      │  0.4868 │" in text
    assert "740.2" in text
    assert not ANSI.search(text)


def test_report_html_marks_the_best_value_of_each_metric() -> None:
    html = _report()._repr_html_()
    for header in ("configuration", "nDCG@10", "MRR@10", "first stage ms", "total ms"):
        assert f">{header}</th>" in html
    assert "25 queries, k=5, top_n=3" in html
    assert re.search(r'font-weight:700">0\.9114<', html)
    assert not re.search(r'font-weight:700">0\.4868<', html)
    assert not re.search(r'font-weight:700">1\.0000<', html)  # Recall@5: all tie
    assert "+ cross-encoder, RRF" in html


def test_report_to_dataframe() -> None:
    frame = _report().to_dataframe()
    assert list(frame.index) == [
        "first stage",
        "+ cross-encoder",
        "+ cross-encoder, RRF",
    ]
    assert list(frame.columns) == [
        "nDCG@10",
        "MRR@10",
        "Recall@5",
        "first stage ms",
        "rerank ms",
        "total ms",
    ]
    assert frame.loc["+ cross-encoder", "total ms"] == pytest.approx(740.25)


def test_report_plot_draws_one_bar_per_configuration() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = _report().plot()
    try:
        widths = [bar.get_width() for bar in ax.patches]
        assert widths == pytest.approx([0.9114, 0.4868, 0.7062])
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == ["first stage", "+ cross-encoder", "+ cross-encoder, RRF"]
        # The table's first row on top.
        tops = [bar.get_y() for bar in ax.patches]
        assert tops == sorted(tops)
        assert ax.yaxis_inverted()
        assert ax.get_xlabel() == "nDCG@10"
        assert "0.911" in [t.get_text() for t in ax.texts]
        mrr = _report().plot("MRR@10", ax=ax)
        assert mrr is ax
    finally:
        plt.close("all")


def _three_first_stages() -> EvaluationReport:
    configs = []
    for number, stage in enumerate(("dense", "bm25", "hybrid")):
        for suffix, rerank_ms in (
            ("", 0.0),
            (" + rerank", 700.0),
            (" + rerank, RRF", 700.0),
        ):
            ndcg = 0.5 + 0.1 * number + (0.05 if suffix else 0.0)
            metrics = {"nDCG@10": ndcg, "MRR@10": ndcg, "Recall@5": 1.0}
            latency = {
                "first_stage": 3.0,
                "rerank": rerank_ms,
                "total": 3.0 + rerank_ms,
            }
            configs.append(
                ConfigurationResult(stage + suffix, metrics, latency, {}, stage)
            )
    return EvaluationReport(configs, num_queries=25, k=10, top_n=5)


def test_report_plot_of_three_first_stages_stays_legible() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = _three_first_stages().plot()
    try:
        ax.figure.canvas.draw()
        renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
        boxes = [t.get_window_extent(renderer) for t in ax.get_yticklabels()]
        assert [t.get_text() for t in ax.get_yticklabels()][
            -1
        ] == "hybrid + rerank, RRF"
        assert len(boxes) == 9
        for upper, lower in itertools.pairwise(boxes):
            assert not upper.overlaps(lower)  # no name drawn over another
        # One colour per ordering, the same in every first stage.
        colors = [bar.get_facecolor() for bar in ax.patches]
        assert colors[0:3] == colors[3:6] == colors[6:9]
        assert len(set(colors[0:3])) == 3
    finally:
        plt.close("all")


def test_report_table_rules_off_each_first_stage_and_says_what_ms_means() -> None:
    text = str(_three_first_stages())
    lines = text.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if "│ dense " in line) :]
    rules = [i for i, line in enumerate(body) if line.startswith("├")]
    names = [line.split("│")[1].strip() for line in body if line.startswith("│")]
    assert names[:3] == ["dense", "dense + rerank", "dense + rerank, RRF"]
    # A rule after each first stage's last row, none inside a group.
    assert [body[i - 1].split("│")[1].strip() for i in rules] == [
        "dense + rerank, RRF",
        "bm25 + rerank, RRF",
    ]
    assert lines[-1] == "ms: mean per query; bold: best value of each metric"
    assert "├" not in str(_report())  # one first stage: no rule
    html = _three_first_stages()._repr_html_()
    assert "ms: mean per query; bold: best value of each metric" in html
    rows = html.split("<tr>")[2:]
    ruled = [i for i, row in enumerate(rows) if "rgba(127,127,127,0.7)" in row]
    assert ruled == [2, 5]


def test_report_plot_rejects_an_unknown_metric() -> None:
    with pytest.raises(ValueError, match=r"'nDCG@5' is not in this report.*MRR@10"):
        _report().plot("nDCG@5")


@pytest.mark.parametrize(
    ("method", "modules", "message"),
    [
        ("to_dataframe", ["pandas"], "pip install pandas"),
        ("plot", ["matplotlib", "matplotlib.pyplot"], "pip install matplotlib"),
    ],
)
def test_optional_dependencies_name_what_to_install(
    monkeypatch: pytest.MonkeyPatch, method: str, modules: list[str], message: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=message):
        getattr(_report(), method)()


# -- tables that fit the terminal -------------------------------------------------


def _long_rows() -> list[Document]:
    """Twelve results, double-digit first-stage ranks, deep paths, long text."""
    return [
        Document(
            page_content="Docker volumes outlive containers; tar them to move. " * 9,
            metadata={
                "retrieval_rank": 13 - rank,
                "retrieval_score": 0.4567,
                "relevance_score": -10.123,
                "source": "/srv/some/much/deeper/folder/tree/" + f"notes-{rank:02}.md",
            },
        )
        for rank in range(1, 13)
    ]


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_explanation_rows_keep_their_border_movement_and_scores(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    text = str(RerankExplanation.from_documents("q", _long_rows()))
    rows = _table_rows(text)
    assert len(rows) == 12
    for rank, row in enumerate(rows, start=1):
        assert row.endswith("│")  # the right border is there
        assert len(row) <= width
        cells = [cell.strip() for cell in row.strip("│").split("│")]
        assert cells[1] == f"{13 - rank} -> {rank}"  # whole, never "12 ->…"
        assert cells[2] == "-10.123"
        assert cells[3] == "0.457"
    assert "…" in rows[0]  # the snippet gave way
    if width >= 120:
        assert "notes-01.md" in rows[0]  # the source keeps its file name


@pytest.mark.parametrize("width", [80, 120, 200])
def test_a_fitted_table_shrinks_only_the_text_columns(width: int) -> None:
    from langchain_ce_rerank.display.render import (
        FittedColumn,
        fitted_table,
        render_text,
    )

    columns = [
        FittedColumn("move"),
        FittedColumn("rerank score"),
        FittedColumn("cosine"),
        FittedColumn("source", justify="left", shrink="start", keep=20),
        FittedColumn("snippet", justify="left", shrink="end", limit=60, keep=20),
    ]
    rows = [
        [f"{rank + 9} -> {rank}", "12.345", "0.599", "deep/" * 12 + "a.md", "x" * 99]
        for rank in range(1, 13)
    ]
    text = render_text(fitted_table(columns, rows, width, title="q"), width=width)
    lines = _table_rows(text)
    assert len(lines) == 12
    for rank, line in enumerate(lines, start=1):
        assert line.endswith("│")
        assert len(line) <= width
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[:3] == [f"{rank + 9} -> {rank}", "12.345", "0.599"]
        assert cells[3].endswith("a.md")
        assert cells[4].endswith("…")


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_query_table_fits_with_whole_movement_and_scores(width: int) -> None:
    from langchain_ce_rerank.cli.query import _table
    from langchain_ce_rerank.display.render import render_text

    docs = _long_rows()
    rows = [
        {
            "rank": rank,
            "retrieval_rank": doc.metadata["retrieval_rank"],
            "retrieval_score": doc.metadata["retrieval_score"],
            "relevance_score": doc.metadata["relevance_score"],
        }
        for rank, doc in enumerate(docs, start=1)
    ]
    text = render_text(_table("q [bold]", docs, rows, width), width=width)
    assert "q [bold]" in text  # the question is shown as typed
    lines = _table_rows(text)
    assert len(lines) == 12
    for rank, line in enumerate(lines, start=1):
        assert line.endswith("│")
        assert len(line) <= width
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        assert cells[:3] == [f"{13 - rank} -> {rank}", "-10.123", "0.457"]
        assert cells[3].endswith(f"notes-{rank:02}.md")
