"""Keyword and hybrid first stage: our store vs. raw bm25s vs. LangChain's BM25Retriever.

Text is real English (`_texts.wide_passages`: distinct docstring passages of
installed packages, about 24,000 of 93 words on average here), repeated to
reach the corpus size; each repetition drops one more leading word, so no two
documents are the same text (repeats would tie in BM25). 64 held-out passages'
first 10 words are the batch's queries; `_texts.QUERY` is the single one.

Dense vectors are cheap and deterministic, so embedding time does not hide the
search: documents get seeded random 384-d vectors (`add_embeddings`), queries
`DeterministicFakeEmbedding(size=384)` (a seeded random vector per text, tens
of microseconds). Their ranking means nothing; their cost is FAISS's.

At `--size` documents (k=50, interleaved medians, `_timing`):

- BM25 for one query and for a batch of 64, ours against raw `bm25s` on the
  store's own index: `BM25.retrieve` with the store's own terms of the query,
  the same after `bm25s.tokenize`, and, when numba is installed, bm25s's numba
  backend (which the store does not use: it compiles for tens of seconds in
  every new process). Ours: `bm25_search_with_score`, `FaissRetriever`
  (`search_type="bm25"`) `invoke` / `batch` (and 64 `invoke`s), and the index
  alone (`BM25Index.search_many`, rows without documents). Ours must agree
  with raw bm25s (same scores; ids up to ties at the k-th score).
- The same against langchain-community's `BM25Retriever` (rank-bm25), given
  our tokenizer as its `preprocess_func` so that both rank the same terms; it
  takes about a second a query at 100,000 documents, so fewer rounds.
- hybrid (`search_type="hybrid"`, RRF) against dense alone, one query and 64.

At each of `--rebuild-sizes`: the first keyword search of a new store (it
tokenizes everything), then, in interleaved rounds, the first keyword search
after upserting one document (the `TermCache` re-tokenizes only that one), a
full build from text (what every rebuild cost before the cache), bm25s
indexing the already-tokenized corpus (the floor for any rebuild through
bm25s) and a warm search; and the saved folder's size (BM25 files, FAISS,
docstore).

    python benchmarks/bm25.py                        # 100,000; rebuild at 10k, 100k
    python benchmarks/bm25.py --size 5000 --rebuild-sizes 2000 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import itertools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import bm25s
import numpy as np
from _texts import QUERY, wide_passages
from _timing import interleaved_median_ms
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.store.bm25 import TOKEN_PATTERN, TermCache

DIM = 384
K = 50
BATCH = 64
ANCHOR_BATCH_REPEATS = 3  # LangChain's batch of 64 takes about 40 s at 100k


def corpus(size: int, pool: list[str]) -> list[str]:
    """`size` texts: `pool`, then `pool` less its first word each, and so on."""
    texts: list[str] = []
    for dropped in itertools.count():
        for passage in pool:
            texts.append(" ".join(passage.split()[dropped:]))
            if len(texts) == size:
                return texts
    raise AssertionError  # unreachable: count() never ends


def new_store(texts: list[str]) -> FaissVectorStore:
    rng = np.random.default_rng(0)
    store = FaissVectorStore(DeterministicFakeEmbedding(size=DIM))
    vectors = rng.standard_normal((len(texts), DIM), dtype=np.float32)
    store.add_embeddings(texts, vectors, ids=[str(i) for i in range(len(texts))])
    return store


def table(
    title: str, rows: dict[str, float], base: str, label: str, per: bool = True
) -> None:
    """Milliseconds and, in a second column, each row / `base` (or `base` / it)."""
    print(f"\n{title}")
    print(f"  {'':<46} {'ms':>9} {label:>17}")
    for name, ms in rows.items():
        ratio = ms / rows[base] if per else rows[base] / ms
        print(f"  {name:<46} {ms:>9.2f} {ratio:>16.2f}x")


def agree(
    ours: list[tuple[str, float]], raw: list[tuple[str, float]]
) -> tuple[bool, bool]:
    """(same scores, same ids but for ties at the k-th score) of two rankings."""
    same_scores = len(ours) == len(raw) and bool(
        np.allclose([s for _, s in ours], [s for _, s in raw], rtol=1e-6)
    )
    if not same_scores or not ours:
        return same_scores, same_scores
    last = ours[-1][1] * (1 + 1e-6)
    above = [{i for i, s in side if s > last} for side in (ours, raw)]
    return True, above[0] == above[1]


def search_speed(
    texts: list[str], queries: list[str], repeats: int, batch_repeats: int
) -> None:
    store = new_store(texts)
    store.bm25_search_with_score(QUERY)  # builds the index
    keyword_tables(store, texts, queries, repeats, batch_repeats)
    gc.collect()  # LangChain's index is gone: its objects no longer slow gc
    hybrid_tables(store, len(texts), queries, repeats, batch_repeats)


def keyword_tables(
    store: FaissVectorStore,
    texts: list[str],
    queries: list[str],
    repeats: int,
    batch_repeats: int,
) -> None:
    from langchain_community.retrievers import BM25Retriever

    index = store._bm25
    assert index is not None
    model, settings = index.model, store.bm25_settings
    stopwords = settings.language if settings.stopwords is True else None

    def raw(batch: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = model.retrieve(batch, k=K, show_progress=False, n_threads=0)
        return rows, scores

    def raw_tokenized(batch: list[str]) -> object:
        tokens = bm25s.tokenize(
            batch,
            token_pattern=TOKEN_PATTERN,
            stopwords=stopwords,
            return_ids=False,
            show_progress=False,
        )
        return raw(tokens)

    one_terms = [index.terms(QUERY)]
    batch_terms = index.terms_many(queries)
    bm25 = store.as_retriever(search_type="bm25", k=K)
    # bm25s's numba backend, when numba is installed: the same index object
    # with `backend="numba"` (what `BM25(backend="numba")` sets). It compiles
    # on its first call in every process; the store does not use it.
    numba = None
    if importlib.util.find_spec("numba") is not None:
        numba = copy.copy(model)
        numba.backend = "numba"
        start = time.perf_counter()
        numba.retrieve(batch_terms, k=K, show_progress=False, n_threads=0)
        print(f"bm25s numba backend compiled in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    langchain = BM25Retriever.from_texts(
        texts,
        ids=[str(i) for i in range(len(texts))],
        preprocess_func=lambda text: settings.tokenize([text])[0],
        k=K,
    )
    print(f"LangChain BM25Retriever built in {time.perf_counter() - start:.1f} s")

    # Correctness first: ours gives raw bm25s's ranking (ties aside).
    checks = []
    rows, scores = raw(batch_terms)
    for query, row, score in zip(queries, rows, scores, strict=True):
        reference = [
            (index.ids[r], s)
            for r, s in zip(row.tolist(), score.tolist(), strict=True)
            if s > 0
        ]
        ours = [(str(d.id), s) for d, s in store.bm25_search_with_score(query, k=K)]
        checks.append(agree(ours, reference))
    print(
        f"ours vs raw bm25s on {len(queries)} queries: same scores "
        f"{sum(c[0] for c in checks)}/{len(checks)}, same ids above the k-th "
        f"score {sum(c[1] for c in checks)}/{len(checks)}"
    )
    overlap = np.mean(
        [
            len({d.id for d in a} & {d.id for d in b}) / K
            for a, b in zip(bm25.batch(queries), langchain.batch(queries), strict=True)
        ]
    )
    print(
        f"top-{K} overlap with LangChain's BM25Retriever: {overlap:.3f} "
        "(rank-bm25's Okapi idf differs from bm25s's Lucene idf)"
    )

    single: dict[str, Callable[[], object]] = {
        "raw bm25s retrieve, store's terms": lambda: raw(one_terms),
        "raw bm25s tokenize + retrieve": lambda: raw_tokenized([QUERY]),
        "ours bm25_search_with_score": lambda: store.bm25_search_with_score(QUERY, k=K),
        "ours FaissRetriever(bm25).invoke": lambda: bm25.invoke(QUERY),
    }
    if numba is not None:
        single["raw bm25s retrieve, numba backend"] = lambda: numba.retrieve(
            one_terms, k=K, show_progress=False, n_threads=0
        )
    table(
        f"{len(texts):,} documents, k={K}, one query: ours vs raw bm25s",
        interleaved_median_ms(single, repeats),
        "raw bm25s retrieve, store's terms",
        "/ raw retrieve",
    )
    many: dict[str, Callable[[], object]] = {
        f"raw bm25s retrieve, {BATCH} queries": lambda: raw(batch_terms),
        "raw bm25s tokenize + retrieve": lambda: raw_tokenized(queries),
        "ours BM25Index.search_many (rows, no copies)": lambda: index.search_many(
            batch_terms, K, None
        ),
        f"ours FaissRetriever(bm25).batch({BATCH})": lambda: bm25.batch(queries),
        f"ours {BATCH} x FaissRetriever(bm25).invoke": lambda: [
            bm25.invoke(q) for q in queries
        ],
    }
    if numba is not None:
        many["raw bm25s retrieve, numba backend"] = lambda: numba.retrieve(
            batch_terms, k=K, show_progress=False, n_threads=0
        )
    table(
        f"{len(texts):,} documents, k={K}, {BATCH} queries: ours vs raw bm25s",
        interleaved_median_ms(many, batch_repeats),
        f"raw bm25s retrieve, {BATCH} queries",
        "/ raw retrieve",
    )
    # LangChain takes about a second a query at 100,000 documents: fewer rounds.
    anchor: dict[str, Callable[[], object]] = {
        "LangChain BM25Retriever.invoke": lambda: langchain.invoke(QUERY),
        "ours FaissRetriever(bm25).invoke": lambda: bm25.invoke(QUERY),
    }
    table(
        f"{len(texts):,} documents, k={K}: ours vs LangChain's BM25Retriever",
        interleaved_median_ms(anchor, max(3, repeats // 5)),
        "LangChain BM25Retriever.invoke",
        "LangChain / this",
        per=False,
    )
    anchor = {
        f"LangChain BM25Retriever.batch({BATCH})": lambda: langchain.batch(queries),
        f"ours FaissRetriever(bm25).batch({BATCH})": lambda: bm25.batch(queries),
    }
    table(
        "",
        interleaved_median_ms(anchor, ANCHOR_BATCH_REPEATS),
        f"LangChain BM25Retriever.batch({BATCH})",
        "LangChain / this",
        per=False,
    )


def hybrid_tables(
    store: FaissVectorStore,
    size: int,
    queries: list[str],
    repeats: int,
    batch_repeats: int,
) -> None:
    dense = store.as_retriever(k=K)
    hybrid = store.as_retriever(search_type="hybrid", k=K)
    fused: dict[str, Callable[[], object]] = {
        "dense FaissRetriever.invoke": lambda: dense.invoke(QUERY),
        "hybrid FaissRetriever.invoke": lambda: hybrid.invoke(QUERY),
    }
    rows = interleaved_median_ms(fused, repeats)
    table(
        f"{size:,} documents, k={K}, {DIM}-d flat index: hybrid vs dense",
        rows,
        "dense FaissRetriever.invoke",
        "/ dense",
    )
    extra = rows["hybrid FaissRetriever.invoke"] - rows["dense FaissRetriever.invoke"]
    print(f"  hybrid adds {extra:.2f} ms to a query")
    fused = {
        f"dense FaissRetriever.batch({BATCH})": lambda: dense.batch(queries),
        f"hybrid FaissRetriever.batch({BATCH})": lambda: hybrid.batch(queries),
        f"hybrid {BATCH} x invoke": lambda: [hybrid.invoke(q) for q in queries],
    }
    rows = interleaved_median_ms(fused, batch_repeats)
    table("", rows, f"dense FaissRetriever.batch({BATCH})", "/ dense")
    extra = (
        rows[f"hybrid FaissRetriever.batch({BATCH})"]
        - rows[f"dense FaissRetriever.batch({BATCH})"]
    )
    print(f"  hybrid adds {extra / BATCH:.2f} ms a query to a batch of {BATCH}")


def rebuild(texts: list[str], repeats: int) -> None:
    store = new_store(texts)
    start = time.perf_counter()
    store.bm25_search_with_score(QUERY, k=K)
    first = time.perf_counter() - start
    settings = store.bm25_settings
    ids = [str(i) for i in range(len(texts))]
    tokens = settings.tokenize(texts)
    rng = np.random.default_rng(1)
    upserts = itertools.count()

    def upsert() -> None:
        n = next(upserts)
        store.add_embeddings(
            [f"an upserted passage, version {n}"],
            rng.standard_normal((1, DIM), dtype=np.float32),
            ids=[str(n % len(texts))],
        )

    def bm25s_index() -> None:
        bm25s.BM25().index(tokens, show_progress=False)

    rows = interleaved_median_ms(
        {
            "search after one upsert (TermCache)": lambda: store.bm25_search_with_score(
                QUERY, k=K
            ),
            "full build from text (no cache)": lambda: TermCache(settings).build(
                ids, lambda i: texts[int(i)]
            ),
            "bm25s index of the tokenized corpus": bm25s_index,
            "warm keyword search": lambda: store.bm25_search_with_score(QUERY, k=K),
        },
        repeats,
        setup={"search after one upsert (TermCache)": upsert},
    )
    print(
        f"\n{len(texts):,} documents: rebuild after a write "
        f"(first keyword search of a new store {first:.2f} s)"
    )
    base = rows["search after one upsert (TermCache)"]
    for name, ms in rows.items():
        print(f"  {name:<44} {ms:>10.1f} ms {ms / base:>8.2f}x the rebuild")
    with tempfile.TemporaryDirectory() as folder:
        store.save_local(folder)
        files = json.loads((Path(folder) / "manifest.json").read_text())["files"]
    bm25_mb = sum(e["bytes"] for r, e in files.items() if r.startswith("bm25")) / 1e6
    print(
        f"  on disk: BM25 {bm25_mb:.1f} MB, FAISS ({DIM}-d flat) "
        f"{files['index']['bytes'] / 1e6:.1f} MB, docstore "
        f"{files['docstore']['bytes'] / 1e6:.1f} MB"
    )


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument(
        "--rebuild-sizes", type=int, nargs="+", default=[10_000, 100_000]
    )
    parser.add_argument("--repeats", type=int, default=50, help="single queries")
    parser.add_argument("--batch-repeats", type=int, default=10)
    parser.add_argument("--rebuild-repeats", type=int, default=3)
    args = parser.parse_args()
    versions = ", ".join(
        f"{name} {version(name)}"
        for name in ("bm25s", "rank-bm25", "langchain-community", "faiss-cpu", "numpy")
    )
    print(f"{_cpu()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(versions)
    pool = wide_passages(max(args.size, *args.rebuild_sizes) + BATCH)
    held_out, pool = pool[-BATCH:], pool[:-BATCH]
    queries = [" ".join(text.split()[:10]) for text in held_out]
    words = np.mean([len(t.split()) for t in pool])
    print(f"{len(pool):,} distinct passages, {words:.0f} words on average")
    if args.size:
        search_speed(corpus(args.size, pool), queries, args.repeats, args.batch_repeats)
        gc.collect()
    for size in args.rebuild_sizes:
        rebuild(corpus(size, pool), args.rebuild_repeats)
        gc.collect()


if __name__ == "__main__":
    main()
