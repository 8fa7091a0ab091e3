"""First-stage quality: dense, BM25 and hybrid through `FaissRetriever`, on BEIR-layout sets.

The first stage's job is to hand the reranker a candidate list that holds the
answer, so the figure that counts is Recall@k at the depth the reranker reads
(20, 30, 50), with nDCG@10 beside it. Every number here comes from
`store.as_retriever(search_type=..., k=...).invoke(query)` on a
`FaissVectorStore` holding the set's corpus, embedded with the bundled
all-MiniLM-L6-v2 (torch, CPU); metrics are ir-measures' (pytrec_eval).

Dense and BM25 are called once with k=50 (their top 20 and 30 are prefixes of
it). Hybrid is called once per cutoff, with k=20, 30 and 50, because each
side's depth follows k (`max(k, 20)` by default): Recall@30 is what a
`k=30` hybrid retriever returns. Hybrid's nDCG@10 is the top 10 of its `k=30`
call, the order it would hand a reranker reading 30.

Queries are split in two halves, seeded (`--seed`): the fusion grid
(`--grid`) is scored on the tuning half, and the configurations it picks are
reported on the other, held-out half, beside the defaults; the headline table
is the held-out half too (`--all-queries` reports every query instead). The
grid does not search once per configuration: it reads each query's dense and
BM25 top 100 back from one hybrid `batch` and fuses prefixes of them with
`store.fusion.fuse`, the function the retriever calls, after checking on a
spread of configurations that this gives the retriever's own lists.

    python benchmarks/make_manpage_set.py        # once: benchmarks/data/manpages
    python benchmarks/make_docstring_set.py      # once: benchmarks/data/stdlib-docstrings
    python benchmarks/first_stage_quality.py                 # headline tables
    python benchmarks/first_stage_quality.py --grid          # + the fusion grid

Passage vectors are cached in benchmarks/data/.vectors (one file per model,
keyed by each passage's text), so a rerun embeds only the queries and any
passage it has not seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import FaissVectorStore, load_beir, load_embeddings
from langchain_ce_rerank.models import embedding_model_name
from langchain_ce_rerank.store import BM25Settings
from langchain_ce_rerank.store.fusion import fuse

ROOT = Path(__file__).parent
DATA = ROOT / "data"
SETS = {
    "stdlib-docs": ROOT.parent / "tests" / "data" / "stdlib-docs",
    "stdlib-docstrings": DATA / "stdlib-docstrings",
    "manpages": DATA / "manpages",
}
CUTOFFS = (20, 30, 50)
TUNE_K = 30


class CachedQueries(Embeddings):
    """The model, with each query embedded once (the grid asks again and again)."""

    def __init__(self, model: Embeddings) -> None:
        self.model = model
        self.model_name = embedding_model_name(model)
        self.seen: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if text not in self.seen:
            self.seen[text] = self.model.embed_query(text)
        return self.seen[text]


@dataclass(frozen=True)
class Hybrid:
    """One fusion configuration; depth None follows k (the retriever's default)."""

    fusion: str = "rrf"
    alpha: float = 0.5
    rrf_k: int = 60
    dense_depth: int | None = None
    bm25_depth: int | None = None
    depth_factor: int | None = None  # depth = factor * k on both sides

    def options(self, k: int) -> dict[str, Any]:
        dense, bm25 = self.dense_depth, self.bm25_depth
        if self.depth_factor is not None:
            dense = bm25 = self.depth_factor * k
        options: dict[str, Any] = {"fusion": self.fusion, "alpha": self.alpha}
        if self.fusion == "rrf":
            options["rrf_k"] = self.rrf_k
        if dense is not None:
            options["dense_depth"] = dense
        if bm25 is not None:
            options["bm25_depth"] = bm25
        return options

    @property
    def label(self) -> str:
        if self.depth_factor is not None:
            depth = f"{self.depth_factor}k"
        elif self.dense_depth is None and self.bm25_depth is None:
            depth = "k"
        elif self.dense_depth == self.bm25_depth:
            depth = str(self.dense_depth)
        else:
            depth = f"{self.dense_depth or 'k'}/{self.bm25_depth or 'k'}"
        head = f"rrf k={self.rrf_k}" if self.fusion == "rrf" else "weighted"
        return f"{head} a={self.alpha:.1f} depth={depth}"


DEFAULT = Hybrid()


def grid() -> list[Hybrid]:
    alphas = (0.3, 0.4, 0.5, 0.6, 0.7)
    depths: list[dict[str, Any]] = [
        {},
        {"dense_depth": 20, "bm25_depth": 20},
        {"dense_depth": 50, "bm25_depth": 50},
        {"dense_depth": 100, "bm25_depth": 100},
        {"depth_factor": 2},
    ]
    configs = [
        Hybrid(fusion="rrf", alpha=alpha, rrf_k=rrf_k, **depth)
        for rrf_k in (10, 30, 60, 100)
        for alpha in alphas
        for depth in depths
    ]
    configs += [
        Hybrid(fusion="weighted", alpha=alpha, **depth)
        for alpha in alphas
        for depth in depths
    ]
    configs += [
        Hybrid(dense_depth=dense, bm25_depth=bm25)
        for dense, bm25 in ((30, 100), (100, 30), (50, 100), (100, 50))
    ]
    return configs


@dataclass
class Dataset:
    """One set, in a store with each BM25 setting, its queries split in two."""

    name: str
    store: FaissVectorStore
    stemmed: FaissVectorStore
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    kinds: dict[str, str]
    tune: list[str]
    test: list[str]
    corpus_size: int


def _cache_path(model: Embeddings) -> Path:
    name = embedding_model_name(model) or "model"
    return DATA / ".vectors" / f"{name.replace('/', '--')}.npz"


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _vectors(texts: list[str], model: Embeddings) -> np.ndarray:
    """One vector per text; each passage is embedded once, ever, per model."""
    path = _cache_path(model)
    cached: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as saved:
            cached = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
    keys = [_key(text) for text in texts]
    missing = list(dict.fromkeys(k for k in keys if k not in cached))
    if missing:
        todo = {key: text for key, text in zip(keys, texts, strict=True)}
        start = time.perf_counter()
        fresh = model.embed_documents([todo[key] for key in missing])
        print(
            f"  embedded {len(missing):,} passages in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        cached.update(zip(missing, np.asarray(fresh, dtype=np.float32), strict=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            keys=np.array(list(cached)),
            vectors=np.stack(list(cached.values())),
        )
    return np.stack([cached[key] for key in keys])


def _kinds(folder: Path) -> dict[str, str]:
    kinds = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        kind = (row.get("metadata") or {}).get("kind")
        if kind:
            kinds[str(row["_id"])] = kind
    return kinds


def load(name: str, folder: Path, model: Embeddings, seed: int, fold: int) -> Dataset:
    data = load_beir(folder)
    texts = [doc.page_content for doc in data.corpus]
    vectors = _vectors(texts, model)
    stores = []
    for settings in (BM25Settings(), BM25Settings(stemming=True)):
        store = FaissVectorStore(model, bm25=settings)
        store.add_embeddings(
            texts,
            vectors,
            [dict(doc.metadata) for doc in data.corpus],
            ids=[str(doc.id) for doc in data.corpus],
        )
        stores.append(store)
    # Embed the queries and build the BM25 index now, so the ms columns time
    # the search alone.
    for text in data.queries.values():
        model.embed_query(text)
    for store in stores:
        store.as_retriever(search_type="bm25", k=1).invoke("warm up")
    judged = sorted(q for q in data.queries if q in data.qrels)
    random.Random(seed).shuffle(judged)
    half = len(judged) // 2
    halves = [sorted(judged[:half]), sorted(judged[half:])]
    return Dataset(
        name=name,
        store=stores[0],
        stemmed=stores[1],
        queries=data.queries,
        qrels=data.qrels,
        kinds=_kinds(folder),
        tune=halves[fold],
        test=halves[1 - fold],
        corpus_size=len(texts),
    )


Run = dict[str, dict[str, float]]


def retrieve(
    store: FaissVectorStore,
    queries: dict[str, str],
    qids: Iterable[str],
    *,
    batched: bool = False,
    **options: Any,
) -> tuple[Run, float]:
    """{qid: {doc id: score}} from `as_retriever(**options)`, and ms a query.

    `invoke` one query at a time, or with `batched` one `batch` call (the same
    results, searched together: what the grid uses, since it asks thousands).
    """
    retriever = store.as_retriever(**options)
    order = list(qids)
    start = time.perf_counter()
    if batched:
        results = retriever.batch([queries[qid] for qid in order])
    else:
        results = [retriever.invoke(queries[qid]) for qid in order]
    ms = 1000 * (time.perf_counter() - start) / max(len(order), 1)
    run: Run = {
        qid: {str(d.id): float(len(docs) - i) for i, d in enumerate(docs)}
        for qid, docs in zip(order, results, strict=True)
    }
    return run, ms


def measure(
    qrels: dict[str, dict[str, int]], run: Run, qids: Sequence[str]
) -> dict[str, float]:
    """Mean nDCG@10 and Recall@20/30/50 over `qids` (an empty list scores 0)."""
    import ir_measures
    from ir_measures import R, nDCG

    measures = {"nDCG@10": nDCG @ 10} | {f"R@{c}": R @ c for c in CUTOFFS}
    names = {m: n for n, m in measures.items()}
    per: dict[str, dict[str, float]] = {n: {} for n in measures}
    ranked = {q: run[q] for q in qids if run.get(q)}
    judged = {q: dict(qrels[q]) for q in ranked}
    for metric in ir_measures.iter_calc(list(measures.values()), judged, ranked):
        per[names[metric.measure]][metric.query_id] = float(metric.value)
    return {n: statistics.fmean(v.get(q, 0.0) for q in qids) for n, v in per.items()}


def single_side(
    data: Dataset, qids: Sequence[str], search_type: str, stemmed: bool = False
) -> dict[str, float]:
    store = data.stemmed if stemmed else data.store
    run, ms = retrieve(
        store, data.queries, qids, search_type=search_type, k=max(CUTOFFS)
    )
    return measure(data.qrels, run, qids) | {"ms": ms}


def hybrid(
    data: Dataset, qids: Sequence[str], config: Hybrid, stemmed: bool = False
) -> dict[str, float]:
    store = data.stemmed if stemmed else data.store
    row: dict[str, float] = {}
    for cutoff in CUTOFFS:
        run, ms = retrieve(
            store,
            data.queries,
            qids,
            search_type="hybrid",
            k=cutoff,
            **config.options(cutoff),
        )
        scores = measure(data.qrels, run, qids)
        row[f"R@{cutoff}"] = scores[f"R@{cutoff}"]
        if cutoff == TUNE_K:
            row["nDCG@10"] = scores["nDCG@10"]
            row["ms"] = ms
    return row


def _print_table(title: str, rows: list[tuple[str, dict[str, float]]]) -> None:
    print(f"\n{title}")
    print("| method | Recall@20 | Recall@30 | Recall@50 | nDCG@10 | ms/query |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in rows:
        cells = " | ".join(
            f"{row[key]:.3f}" for key in ("R@20", "R@30", "R@50", "nDCG@10")
        )
        print(f"| {name} | {cells} | {row['ms']:.1f} |")


def headline(
    data: Dataset, qids: Sequence[str], extra: Sequence[Hybrid]
) -> dict[str, Any]:
    rows: list[tuple[str, dict[str, float]]] = [
        ("dense", single_side(data, qids, "similarity")),
        ("BM25", single_side(data, qids, "bm25")),
        (f"hybrid ({DEFAULT.label}, the default)", hybrid(data, qids, DEFAULT)),
    ]
    rows += [
        (f"hybrid ({config.label})", hybrid(data, qids, config)) for config in extra
    ]
    rows += [
        ("BM25, stemmed", single_side(data, qids, "bm25", stemmed=True)),
        ("hybrid default, stemmed BM25", hybrid(data, qids, DEFAULT, stemmed=True)),
    ]
    judged = sum(len(data.qrels[q]) for q in qids) / len(qids)
    _print_table(
        f"{data.name}: {data.corpus_size:,} passages, {len(qids)} queries "
        f"({judged:.2f} relevant each)",
        rows,
    )
    kinds = sorted({data.kinds[q] for q in qids if q in data.kinds})
    by_kind = {}
    for kind in kinds:
        subset = [q for q in qids if data.kinds.get(q) == kind]
        kind_rows = [
            ("dense", single_side(data, subset, "similarity")),
            ("BM25", single_side(data, subset, "bm25")),
            ("hybrid (default)", hybrid(data, subset, DEFAULT)),
        ]
        _print_table(f"{data.name}, queries by {kind} ({len(subset)})", kind_rows)
        by_kind[kind] = dict(kind_rows)
    return {"rows": dict(rows), "by_kind": by_kind, "queries": len(qids)}


Side = list[tuple[str, float]]
# Deepest side the grid asks for (depth 100, or 2k at k=30).
GRID_DEPTH = 100
# The retriever's depth per side when none is set: max(k, MIN_DEPTH).
MIN_DEPTH = 20


def _both_sides(data: Dataset, qids: Sequence[str]) -> dict[str, tuple[Side, Side]]:
    """Each query's dense and BM25 top GRID_DEPTH, as the hybrid retriever saw them.

    Read back from one hybrid `batch` with both depths at GRID_DEPTH: every
    document either side found comes back with its `dense_rank`/`dense_score`
    and `bm25_rank`/`bm25_score`, so each side's ranking is rebuilt exactly.
    """
    retriever = data.store.as_retriever(
        search_type="hybrid",
        k=2 * GRID_DEPTH,
        dense_depth=GRID_DEPTH,
        bm25_depth=GRID_DEPTH,
    )
    results = retriever.batch([data.queries[q] for q in qids])
    sides = {}
    for qid, docs in zip(qids, results, strict=True):
        ranked = []
        for side in ("dense", "bm25"):
            hits = [
                (d.metadata[f"{side}_rank"], str(d.id), d.metadata[f"{side}_score"])
                for d in docs
                if d.metadata[f"{side}_rank"] is not None
            ]
            ranked.append([(doc_id, score) for _, doc_id, score in sorted(hits)])
        sides[qid] = (ranked[0], ranked[1])
    return sides


def _fused(
    data: Dataset, sides: dict[str, tuple[Side, Side]], config: Hybrid, k: int
) -> Run:
    """What `search_type="hybrid"` returns for `config`, from the saved sides.

    Each side at depth d is the first d of its GRID_DEPTH (a ranking's prefix),
    fused by `store.fusion.fuse`, the function the retriever calls: the grid
    then costs no search. `tune` checks it against the retriever.
    """
    options = config.options(k)
    dense_depth = options.get("dense_depth") or max(k, MIN_DEPTH)
    bm25_depth = options.get("bm25_depth") or max(k, MIN_DEPTH)
    if max(dense_depth, bm25_depth) > GRID_DEPTH:
        raise ValueError(f"{config.label}: deeper than GRID_DEPTH={GRID_DEPTH}")
    run: Run = {}
    for qid, (dense, bm25) in sides.items():
        fused = fuse(
            dense[:dense_depth],
            bm25[:bm25_depth],
            method=options["fusion"],
            alpha=options["alpha"],
            rrf_k=options.get("rrf_k", 60),
            dense_higher_is_better=data.store.distance_strategy != "l2",
        )[:k]
        run[qid] = {c.id: float(len(fused) - i) for i, c in enumerate(fused)}
    return run


def tune(sets: list[Dataset]) -> list[tuple[Hybrid, dict[str, dict[str, float]]]]:
    """Every grid configuration's Recall@30 and nDCG@10 at k=30 on each tuning half."""
    alone = {
        d.name: {
            side: measure(
                d.qrels,
                retrieve(
                    d.store,
                    d.queries,
                    d.tune,
                    batched=True,
                    search_type=search_type,
                    k=TUNE_K,
                )[0],
                d.tune,
            )
            for side, search_type in (("dense", "similarity"), ("bm25", "bm25"))
        }
        for d in sets
    }
    sides = {d.name: _both_sides(d, d.tune) for d in sets}
    configs = grid()
    # The grid fuses saved sides; check that this is what the retriever returns
    # (`batch`, whose results are `invoke`'s) on a spread of configurations.
    for d in sets:
        for config in [*configs[:: max(1, len(configs) // 8)], DEFAULT]:
            real, _ = retrieve(
                d.store,
                d.queries,
                d.tune,
                batched=True,
                search_type="hybrid",
                k=TUNE_K,
                **config.options(TUNE_K),
            )
            offline = _fused(d, sides[d.name], config, TUNE_K)
            if {q: list(r) for q, r in real.items()} != {
                q: list(r) for q, r in offline.items()
            }:
                raise SystemExit(f"{d.name}, {config.label}: grid != retriever")
    print(f"  the grid's fusion matches the retriever on {len(sets)} sets")
    results = []
    for config in configs:
        scores = {}
        for d in sets:
            measured = measure(
                d.qrels, _fused(d, sides[d.name], config, TUNE_K), d.tune
            )
            best = max(alone[d.name]["dense"]["R@30"], alone[d.name]["bm25"]["R@30"])
            scores[d.name] = measured | {"gap": measured["R@30"] - best}
        results.append((config, scores))
    print(f"\nTuning halves at k={TUNE_K}: each side alone")
    for name, side in alone.items():
        print(
            f"  {name}: dense R@30 {side['dense']['R@30']:.3f} nDCG@10 "
            f"{side['dense']['nDCG@10']:.3f}; BM25 R@30 {side['bm25']['R@30']:.3f} "
            f"nDCG@10 {side['bm25']['nDCG@10']:.3f}"
        )
    return results


def _objective(scores: dict[str, dict[str, float]]) -> tuple[float, float, float]:
    """Worst gap to the better side (the target), then mean Recall@30, then nDCG@10."""
    return (
        round(min(s["gap"] for s in scores.values()), 4),
        round(statistics.fmean(s["R@30"] for s in scores.values()), 4),
        statistics.fmean(s["nDCG@10"] for s in scores.values()),
    )


def print_grid(
    results: list[tuple[Hybrid, dict[str, dict[str, float]]]], top: int
) -> list[Hybrid]:
    ordered = sorted(results, key=lambda item: _objective(item[1]), reverse=True)
    names = list(results[0][1])
    print(
        f"\nGrid on the tuning halves (k={TUNE_K}), best {top} by worst gap to the better side:"
    )
    header = " | ".join(f"{n} R@30 (gap) / nDCG@10" for n in names)
    print(f"| configuration | {header} |")
    print("| --- |" + " ---: |" * len(names))
    shown = ordered[:top] + [item for item in ordered if item[0] == DEFAULT]
    for config, scores in shown:
        cells = " | ".join(
            f"{scores[n]['R@30']:.3f} ({scores[n]['gap']:+.3f}) / {scores[n]['nDCG@10']:.3f}"
            for n in names
        )
        rank = ordered.index((config, scores)) + 1
        print(f"| {rank}. {config.label} | {cells} |")
    # Best per family, for the report.
    picks: list[Hybrid] = []
    for family in ("rrf", "weighted"):
        for config, _ in ordered:
            if config.fusion == family and config not in picks and config != DEFAULT:
                picks.append(config)
                break
    return picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fold",
        type=int,
        choices=(0, 1),
        default=0,
        help="which half tunes (0: the first of the seeded shuffle); the other reports",
    )
    parser.add_argument(
        "--grid", action="store_true", help="tune the fusion on the tuning halves"
    )
    parser.add_argument("--top", type=int, default=15, help="grid rows to print")
    parser.add_argument(
        "--all-queries",
        action="store_true",
        help="report every query, not the held-out half",
    )
    parser.add_argument(
        "--also",
        nargs="*",
        default=[],
        metavar="CONFIG",
        help="extra hybrid configurations to report, as JSON: '{\"rrf_k\": 10}'",
    )
    parser.add_argument("--json", type=Path, help="write every number here too")
    args = parser.parse_args()
    model = load_embeddings(device="cpu")
    embedding = CachedQueries(model)
    sets = []
    builders = {
        "stdlib-docstrings": "make_docstring_set.py",
        "manpages": "make_manpage_set.py",
    }
    for name in args.sets:
        if not (SETS[name] / "corpus.jsonl").exists():
            raise SystemExit(
                f"{SETS[name]} is missing: build it once with "
                f"`python benchmarks/{builders.get(name, '?')}`"
            )
    for name in args.sets:
        print(f"loading {name}", flush=True)
        sets.append(load(name, SETS[name], embedding, args.seed, args.fold))
    extra = [replace(DEFAULT, **json.loads(text)) for text in args.also]
    report: dict[str, Any] = {"seed": args.seed, "fold": args.fold}
    if args.grid:
        results = tune(sets)
        extra += [c for c in print_grid(results, args.top) if c not in extra]
        report["grid"] = [
            {"config": config.label, "scores": scores} for config, scores in results
        ]
    which = "every query" if args.all_queries else "the held-out half"
    print(f"\nReported on {which} of each set (seed {args.seed}, fold {args.fold})")
    report["sets"] = {}
    for data in sets:
        qids = sorted(data.tune + data.test) if args.all_queries else data.test
        report["sets"][data.name] = headline(data, qids, extra)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
