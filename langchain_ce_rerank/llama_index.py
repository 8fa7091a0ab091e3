"""`CrossEncoderRerank`: rerank LlamaIndex nodes with a cross-encoder.

A thin LlamaIndex door over the framework-neutral engine
(`langchain_ce_rerank.engine.Reranker`), the twin of the LangChain
`CrossEncoderCompressor`: same settings, same scores. It turns
`NodeWithScore`s into the texts the engine scores and the engine's results
back into new `NodeWithScore`s.

Import it explicitly (`import langchain_ce_rerank` never imports LlamaIndex);
it needs the `[llama-index]` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_ce_rerank.optional import install_hint

try:
    from llama_index.core.callbacks import CBEventType, EventPayload

    # LlamaIndex's own postprocessors import it from here (re-exported
    # without __all__, so mypy --strict needs telling).
    from llama_index.core.instrumentation import (  # type: ignore[attr-defined]
        get_dispatcher,
    )
    from llama_index.core.instrumentation.events.rerank import (
        ReRankEndEvent,
        ReRankStartEvent,
    )
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as err:  # pragma: no cover - tested in a subprocess
    msg = (
        "langchain_ce_rerank.llama_index needs llama-index-core, which is not "
        f"installed ({err}); install it with: {install_hint('llama-index')}"
    )
    raise ImportError(msg) from err

from pydantic import (
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from typing_extensions import override

from langchain_ce_rerank.engine import (
    UNSET,
    GroupBy,
    RankingSettings,
    Reranker,
    RerankResult,
    ScoredText,
    Unset,
    group_keys,
    result_metadata,
)
from langchain_ce_rerank.engine.diversity import first_stage_embeddings
from langchain_ce_rerank.engine.door import ENGINE_KEYWORDS, EngineDoor
from langchain_ce_rerank.engine.results import RESULT_METADATA_KEYS

__all__ = ["BOOKKEEPING_KEYS", "CrossEncoderRerank"]

dispatcher = get_dispatcher(__name__)

BOOKKEEPING_KEYS = tuple(
    key for key in RESULT_METADATA_KEYS if key != "relevance_score"
)
"""Metadata keys the reranker writes (the score goes to `NodeWithScore.score`);
hidden from the LLM and embedding text."""


class CrossEncoderRerank(EngineDoor, BaseNodePostprocessor):
    """Rerank LlamaIndex nodes by a cross-encoder's score for each (query, node).

    A node postprocessor for any query engine or retriever pipeline. Returns
    new `NodeWithScore`s over copies of the nodes (the caller's nodes and
    `NodeWithScore`s are never mutated), sorted by the cross-encoder's score,
    highest first, ties kept in input order, cut to `top_n`, then filtered by
    `score_threshold`. Each `score` is a plain Python float. On each copy,
    `metadata["retrieval_score"]` and `metadata["retrieval_rank"]` keep the
    first stage's score and 1-based position (plus `fused_score` for
    `fusion="rrf"`, `relevance_passage` for `long_documents="max_passage"` and
    `relevance_probability` with a `calibration`); these keys are excluded
    from the text the LLM and embeddings read.

    The model reads `node.get_content(metadata_mode=...)` (`"embed"` by
    default, as LlamaIndex embeds the node), or `content_template` filled with
    the node's metadata and `{page_content}` (that content). Every other
    setting means what it means for `CrossEncoderCompressor`; `model=` also
    takes a `Reranker` engine, to share its model and score cache with other
    doors. `postprocess_nodes(nodes, query_str=..., top_n=3)` overrides
    `top_n`, `score_threshold`, `group_by` (a metadata key or a function of
    the node), `max_per_group`, `max_context_tokens`, `diversity`,
    `deadline_ms`, `min_probability` or `instruction` for one call. The
    token budget counts each node's own text (its metadata, which the LLM
    may also read, is not counted), and a node cut to fit gets that text.
    `diversity` compares nodes by their `node.embedding` when every node
    has one (the first stage's vector; no second embedding pass), else by
    `metadata["retrieval_embedding"]`, else by their word sets. A node the
    deadline left unscored comes back with `score=None` and
    `metadata["reranked"] = False`, after the scored ones, in input order;
    `min_probability` (with a `calibration`) drops only scored nodes, whose
    metadata carries `relevance_probability`.
    `apostprocess_nodes` keeps the event loop free: a model with its own
    `async ascore(pairs)` (such as `RemoteCrossEncoder`) is awaited directly,
    any other model runs in a worker thread. Both emit LlamaIndex's
    `ReRankStartEvent` / `ReRankEndEvent` and the `RERANKING` callback event.

    Example:
        ```python
        from llama_index.core.schema import NodeWithScore, TextNode
        from langchain_ce_rerank.llama_index import CrossEncoderRerank


        class Overlap:  # any object with score(pairs) works; or a model id
            def score(self, text_pairs):
                return [
                    float(len(set(q.split()) & set(t.split()))) for q, t in text_pairs
                ]


        # e.g. CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L6-v2")
        rerank = CrossEncoderRerank(model=Overlap(), top_n=1)
        nodes = [
            NodeWithScore(node=TextNode(text="Cats purr."), score=0.6),
            NodeWithScore(node=TextNode(text="Paris is in France."), score=0.4),
        ]
        best = rerank.postprocess_nodes(nodes, query_str="Where is Paris")
        print(best[0].score, best[0].node.metadata["retrieval_rank"])  # 2.0 2
        ```
    """

    metadata_mode: MetadataMode = MetadataMode.EMBED
    """Which metadata `node.get_content` puts in the text the model reads:
    `"embed"` (LlamaIndex's default for retrieval: metadata not in
    `excluded_embed_metadata_keys`), `"llm"`, `"all"`, or `"none"` (the node's
    text alone)."""

    @classmethod
    @override
    def class_name(cls) -> str:
        """The name LlamaIndex serializes this component under."""
        return "CrossEncoderRerank"

    @model_serializer(mode="wrap")
    @override
    def custom_model_dump(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        """LlamaIndex's dump plus the engine settings, for `from_dict`."""
        data: dict[str, Any] = handler(self)
        data["class_name"] = self.class_name()
        if not isinstance(self.model, Reranker):
            data.update(self.engine.model_dump(include=set(ENGINE_KEYWORDS)))
        return data

    def _model_name(self) -> str:
        model = self.engine.model
        return str(model) if isinstance(model, str | Path) else type(model).__name__

    # -- scoring --------------------------------------------------------------

    def node_texts(self, nodes: list[NodeWithScore]) -> list[str]:
        """The text the model reads for each node (`metadata_mode`, template).

        Args:
            nodes: The candidates.

        Returns:
            One text per node, in input order.

        Raises:
            TypeError: An item is not a `NodeWithScore`.
            ValueError: `content_template` needs a field a node's metadata lacks.
        """
        engine = self.engine
        texts = []
        for position, item in enumerate(nodes):
            if not isinstance(item, NodeWithScore):
                msg = (
                    "nodes must be llama_index NodeWithScore objects, but item "
                    f"{position} is a {type(item).__name__} ({item!r:.60}); wrap "
                    "nodes as NodeWithScore(node=node, score=None)"
                )
                raise TypeError(msg)
            node = item.node
            texts.append(
                engine.render(
                    node.get_content(metadata_mode=self.metadata_mode),
                    node.metadata,
                    f"node {node.node_id!r} (position {position})",
                )
            )
        return texts

    def _copies(
        self, nodes: list[NodeWithScore], results: list[RerankResult]
    ) -> list[NodeWithScore]:
        """New NodeWithScores over copies of the kept nodes, in result order."""
        reranked = []
        for result in results:
            item = nodes[result.index]
            node = item.node
            extra = result_metadata(
                result, score_field=True, first_stage_score=item.score
            )
            copy = node.model_copy(
                update={
                    "metadata": {**node.metadata, **extra},
                    "excluded_embed_metadata_keys": _hide(
                        node.excluded_embed_metadata_keys
                    ),
                    "excluded_llm_metadata_keys": _hide(
                        node.excluded_llm_metadata_keys
                    ),
                }
            )
            if result.cut is not None:
                copy.set_content(
                    result.content(node.get_content(metadata_mode=MetadataMode.NONE))
                )
            score = float(result.score) if result.reranked else None
            reranked.append(NodeWithScore(node=copy, score=score))
        return reranked

    # -- LlamaIndex's interface -----------------------------------------------

    @override
    def postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        query_str: str | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> list[NodeWithScore]:
        """Rerank `nodes` for the query; see the class docstring for the rules.

        Args:
            nodes: Candidates, e.g. a retriever's output in its order.
            query_bundle: The query (or pass `query_str`, not both).
            query_str: The query text.
            top_n: Override of the `top_n` setting for this call.
            score_threshold: Override of the `score_threshold` setting.
            group_by: Override of the `group_by` setting (a metadata key, or
                a function of the node).
            max_per_group: Override of the `max_per_group` setting.
            max_context_tokens: Override of the `max_context_tokens` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting (with
                a `calibration`).
            instruction: Override of the `instruction` setting, for rerankers
                that read one.

        Returns:
            New `NodeWithScore`s over copies of the kept nodes, best first.

        Raises:
            ValueError: No query, a blank query, or both forms of the query.
        """
        return self._postprocess_nodes(
            nodes,
            _query_bundle(query_bundle, query_str),
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
            instruction=instruction,
        )

    @override
    async def apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        query_str: str | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> list[NodeWithScore]:
        """`postprocess_nodes` without blocking the event loop.

        A model with its own `async ascore(pairs)` (such as
        `RemoteCrossEncoder`) is awaited directly; any other model runs in a
        worker thread. Same arguments, results and events as the sync call.
        """
        return await self._apostprocess_nodes(
            nodes,
            _query_bundle(query_bundle, query_str),
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
            instruction=instruction,
        )

    @override
    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        **options: Any,
    ) -> list[NodeWithScore]:
        with self._reranking(nodes, query_bundle, options) as call:
            deadline_ms = call.ranking.deadline_ms
            # Without nodes there is nothing to await, only the query to check.
            call.scored = (
                await self.engine.ascore_batch(
                    call.items, deadline_ms=deadline_ms, instruction=call.instruction
                )
                if nodes
                else self.engine.score_batch(call.items, instruction=call.instruction)
            )
        return call.reranked

    @override
    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        **options: Any,
    ) -> list[NodeWithScore]:
        with self._reranking(nodes, query_bundle, options) as call:
            call.scored = self.engine.score_batch(
                call.items,
                deadline_ms=call.ranking.deadline_ms,
                instruction=call.instruction,
            )
        return call.reranked

    @contextmanager
    def _reranking(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None,
        options: dict[str, Any],
    ) -> Iterator[_Call]:
        """One rerank call around its scoring, shared by the sync and async paths.

        Resolves the call's options, reads the nodes' texts, emits the start
        events and yields a `_Call`; the caller scores `call.items` into
        `call.scored` (the engine checks the query there, once). On leaving,
        the scores are ranked into `call.reranked` and the end events are
        emitted.
        """
        if query_bundle is None:
            msg = (
                "CrossEncoderRerank needs a query: call "
                "postprocess_nodes(nodes, query_str='...') or pass "
                "query_bundle=QueryBundle('...')"
            )
            raise ValueError(msg)
        # The instruction is a scoring option, not a ranking one.
        instruction = options.get("instruction", UNSET)
        ranking = self.for_call(
            **{name: value for name, value in options.items() if name != "instruction"}
        )
        self.engine.check_call_calibration(ranking.calibration, instruction)
        query = query_bundle.query_str
        texts = self.node_texts(nodes)
        groups = (
            None
            if ranking.group_by is None
            else group_keys(
                ranking.group_by,
                [item.node for item in nodes],
                lambda node: node.metadata,
                lambda i: f"node {nodes[i].node.node_id!r} (position {i})",
            )
        )
        call = _Call(items=[(query, texts)], ranking=ranking, instruction=instruction)
        model_name = self._model_name()
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=nodes,
                top_n=len(nodes) if ranking.top_n is None else ranking.top_n,
                model_name=model_name,
            )
        )
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: model_name,
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: ranking.top_n,
            },
        ) as event:
            yield call
            results = self.engine.select(
                call.scored[0],
                ranking,
                groups=groups,
                contents=[
                    item.node.get_content(metadata_mode=MetadataMode.NONE)
                    for item in nodes
                ],
                scored_texts=texts,
                embeddings=_embeddings(nodes) if ranking.diversity > 0 else None,
            ).results
            call.reranked = self._copies(nodes, results)
            event.on_end(payload={EventPayload.NODES: call.reranked})
        dispatcher.event(ReRankEndEvent(nodes=call.reranked))


def _embeddings(nodes: list[NodeWithScore]) -> list[Any] | None:
    """The first stage's vectors: every `node.embedding`, else the metadata key."""
    vectors = [item.node.embedding for item in nodes]
    if all(vector is not None for vector in vectors):
        return vectors
    return first_stage_embeddings([item.node.metadata for item in nodes])


@dataclass
class _Call:
    """One rerank call's scoring step, between `_reranking` and its caller."""

    items: list[tuple[str, list[str]]]
    """What to score: one `Reranker.score_batch` item."""
    ranking: RankingSettings
    """The call's resolved ranking settings (its `deadline_ms` for scoring)."""
    instruction: str | Unset | None = UNSET
    """The call's `instruction` override, for scoring."""
    scored: list[list[ScoredText]] = field(default_factory=list)
    """Their scores, set by the caller."""
    reranked: list[NodeWithScore] = field(default_factory=list)
    """The result, set by `_reranking` once the scores are in."""


def _hide(keys: list[str]) -> list[str]:
    return [*keys, *(key for key in BOOKKEEPING_KEYS if key not in keys)]


def _query_bundle(
    query_bundle: QueryBundle | None, query_str: str | None
) -> QueryBundle | None:
    if query_str is not None and query_bundle is not None:
        msg = "pass the query as query_bundle or as query_str, not both"
        raise ValueError(msg)
    if query_str is not None:
        return QueryBundle(query_str)
    return query_bundle
