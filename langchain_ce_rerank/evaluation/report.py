"""`EvaluationReport`: every configuration's metrics and latency, to read or plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.evaluation.datasets import Run
from langchain_ce_rerank.optional import require

if TYPE_CHECKING:
    import pandas
    from matplotlib.axes import Axes

__all__ = ["ConfigurationResult", "EvaluationReport"]


@dataclass
class ConfigurationResult:
    """Metrics, mean per-query latency and the run of one configuration."""

    name: str
    """What was measured: the first stage (`"hybrid"`), reranked
    (`"hybrid + rerank"`) or reranked and fused with it by RRF
    (`"hybrid + rerank, RRF"`)."""

    metrics: dict[str, float]
    """nDCG@10, MRR@10 and Recall@k, Recall@top_n and any extra cutoffs."""

    latency_ms: dict[str, float]
    """Mean ms per query: `first_stage` (the first stage's search), `rerank`
    (scoring its candidates; 0.0 without reranking) and `total`."""

    run: Run = field(repr=False)
    """{query id: {doc id: score}}, the order this configuration returned."""

    first_stage: str = "first stage"
    """The first stage whose candidates it ranks: `"dense"`, `"bm25"`,
    `"hybrid"`, or `"first stage"` for a retriever that is not the store's."""


@dataclass
class EvaluationReport:
    """Every configuration of one evaluation, measured on the same queries.

    A first stage's configurations (`"hybrid"`, `"hybrid + rerank"`,
    `"hybrid + rerank, RRF"`) rank the same candidates; `to_dict()` is the
    `ce-rerank eval --json` output.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, evaluate

        store = FaissVectorStore.from_texts(
            ["a cat", "a dog"], DeterministicFakeEmbedding(size=8), ids=["cat", "dog"]
        )
        report = evaluate(store.as_retriever(k=2), {"q": "a cat"}, {"q": {"cat": 1}})
        for config in report.configurations:
            print(config.name, config.metrics, config.latency_ms)
        print(report.to_dict())
        print(report)  # the `ce-rerank eval` table; Jupyter shows it as HTML
        ```
    """

    configurations: list[ConfigurationResult]
    """In the order of the table: per first stage, alone, then reranked."""

    num_queries: int
    """Queries measured (those with relevance judgements)."""

    k: int
    """The most candidates any first stage returned for a query."""

    top_n: int | None
    """The reranker's `top_n` (reported as Recall@top_n); None without one."""

    reranker_scores: dict[str, dict[str, float]] = field(
        default_factory=dict, repr=False
    )
    """Per query, each candidate's cross-encoder score as the reranker
    reports it (`relevance_score`), by doc id (a document's best chunk); empty
    without a cross-encoder. With several first stages, the scores of the
    first one reranked (`evaluate(first_stages=...)` in its order), so a fit
    sees each (query, document) pair once. What `calibrate_scores` fits a
    calibration on."""

    def to_dict(self, include_runs: bool = False) -> dict[str, Any]:
        """Plain data for JSON; runs and scores are left out unless asked for."""
        data = asdict(self)
        if not include_runs:
            for config in data["configurations"]:
                config.pop("run")
            data.pop("reranker_scores")
        return data

    def __str__(self) -> str:
        from langchain_ce_rerank.evaluation.rendering import report_text

        return report_text(self)

    def _repr_html_(self) -> str:
        from langchain_ce_rerank.evaluation.rendering import report_html

        return report_html(self)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per configuration: its metrics, then mean latency in ms.

        Columns are named as in the `ce-rerank eval` table; values are floats.

        Raises:
            ImportError: pandas is not installed (`pip install pandas`).
        """
        pandas = require(
            "pandas", extra="pandas", feature="EvaluationReport.to_dataframe()"
        )
        rows = {
            config.name: {
                **config.metrics,
                "first stage ms": config.latency_ms["first_stage"],
                "rerank ms": config.latency_ms["rerank"],
                "total ms": config.latency_ms["total"],
            }
            for config in self.configurations
        }
        frame = pandas.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "configuration"
        return frame

    def plot(self, metric: str = "nDCG@10", *, ax: Axes | None = None) -> Axes:
        """A horizontal bar of `metric` per configuration, labelled with its value.

        Bars run top to bottom in the table's order; within a first stage,
        the first stage alone, + rerank and + rerank, RRF each keep one
        colour, so the same ordering looks the same across first stages.

        Args:
            metric: Any metric of the report, e.g. `"MRR@10"`.
            ax: Axes to draw on; None makes a new pyplot figure (shown inline
                in Jupyter, by `plt.show()` in a script), as tall as the
                configurations need.

        Returns:
            The matplotlib `Axes` drawn on.

        Raises:
            ImportError: matplotlib is not installed (`pip install matplotlib`).
            ValueError: `metric` is not in the report.
        """
        names = list(self.configurations[0].metrics) if self.configurations else []
        if metric not in names:
            msg = (
                f"metric {metric!r} is not in this report; use one of {names}, "
                f"e.g. report.plot({names[0] if names else 'nDCG@10'!r})"
            )
            raise ValueError(msg)
        plt = require(
            "matplotlib.pyplot", extra="matplotlib", feature="EvaluationReport.plot()"
        )
        configs = self.configurations
        if ax is None:
            # White, not the inline backend's transparent default, so the black
            # labels stay legible under a dark notebook theme.
            _, ax = plt.subplots(
                figsize=(6.4, 1.0 + 0.4 * len(configs)),
                layout="constrained",
                facecolor="white",
            )
        labels = [config.name for config in configs]
        values = [config.metrics[metric] for config in configs]
        colors, position = [], 0
        for i, config in enumerate(configs):
            same = i > 0 and configs[i - 1].first_stage == config.first_stage
            position = position + 1 if same else 0
            colors.append(f"C{position}")
        # Horizontal, so names such as "hybrid + rerank, RRF" never collide.
        bars = ax.barh(labels, values, color=colors)
        ax.bar_label(bars, fmt="%.3f", padding=2)
        ax.invert_yaxis()  # the table's first row on top
        ax.set_xlim(0, 1.15 if max(values, default=0.0) <= 1 else None)
        ax.set_xlabel(metric)
        ax.set_title(
            f"{metric}: {self.num_queries} queries, k={self.k}, top_n={self.top_n}",
            fontsize="medium",
        )
        ax.spines[["top", "right"]].set_visible(False)
        return ax
