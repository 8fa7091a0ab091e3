"""First-stage speed, memory and recall: FaissVectorStore vs. raw FAISS vs. LangChain.

Normalized random 384-d vectors (random is fine for speed), k=50, one query and
a batch of 64 queries. For each corpus size it reports, side by side in one
run: raw `faiss` search, `FaissVectorStore.similarity_search_with_score_by_vector`,
`FaissRetriever.invoke` / `.batch`, and langchain-community `FAISS`
(benchmark-only; 100k only, since it needs Python lists of every vector), with
ratios to raw FAISS; then build time, resident memory and recall@50 against the
exact index for each index type offered.

    python benchmarks/retrieval.py --sizes 100000 1000000
    python benchmarks/retrieval.py --real 20000   # recall on real embeddings

`--real N` embeds N real passages (docstrings of installed packages) with
all-MiniLM-L6-v2 and 64 held-out passages' first words as queries, then builds
each index type on them: random vectors have no neighbourhood structure, so
their recall is a floor, and this is the figure to choose an index by.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import faiss
import numpy as np
from _timing import median_ms
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import FaissVectorStore

DIM = 384
K = 50
TYPES = [
    ("Flat", {}),
    ("HNSW32", {"ef_search": 128}),
    ("IVF1024,SQ8", {"nprobe": 32}),
    ("IVF1024,PQ48", {"nprobe": 32}),
]


class QueryTable(Embeddings):
    """Queries "q0".."qN" map to precomputed vectors, so timing excludes models."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("documents are added with add_embeddings")

    def embed_query(self, text: str) -> list[float]:
        return self.queries[int(text[1:])].tolist()


def _rss_mb() -> float:
    # ru_maxrss is the peak in KiB on Linux; read the current size instead.
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def speed(size: int, vectors: np.ndarray, queries: np.ndarray) -> None:
    texts = [f"doc {i}" for i in range(size)]
    raw = faiss.IndexFlatIP(DIM)
    raw.add(vectors)
    store = FaissVectorStore(QueryTable(queries))
    store.add_embeddings(texts, vectors, ids=[str(i) for i in range(size)])
    retriever = store.as_retriever(k=K)
    batch = [f"q{i}" for i in range(64)]
    single = {
        "raw faiss, 1 query": lambda: raw.search(queries[:1], K),
        "FaissVectorStore by vector": lambda: (
            store.similarity_search_with_score_by_vector(queries[0].tolist(), k=K)
        ),
        "FaissRetriever.invoke": lambda: retriever.invoke("q0"),
    }
    many = {
        "raw faiss, 64 queries": lambda: raw.search(queries[:64], K),
        "FaissRetriever.batch(64)": lambda: retriever.batch(batch),
    }
    if size <= 200_000:
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        community = FAISS.from_embeddings(
            list(zip(texts, vectors.tolist(), strict=True)),
            QueryTable(queries),
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        community_retriever = community.as_retriever(search_kwargs={"k": K})
        single["langchain-community FAISS retriever"] = lambda: (
            community_retriever.invoke("q0")
        )
        many["langchain-community FAISS batch(64)"] = lambda: community_retriever.batch(
            batch
        )
    # Back to back, not interleaved: FAISS (OpenMP) and numpy (OpenBLAS) each
    # keep their worker threads spinning for a while after a call, so
    # alternating them makes each wait on the other's pool, which measured
    # raw FAISS at 3x its solo time.
    rows = {name: median_ms(fn) for name, fn in single.items()} | {
        name: median_ms(fn, 5) for name, fn in many.items()
    }
    one, batched = rows["raw faiss, 1 query"], rows["raw faiss, 64 queries"]
    print(f"\n{size:,} vectors, k={K}")
    for name, ms in rows.items():
        base = batched if "64" in name else one
        print(f"  {name:<38} {ms:>9.2f} ms  {ms / base:>6.2f}x raw faiss")


def index_types(
    size: int, vectors: np.ndarray, queries: np.ndarray, names: list[str]
) -> None:
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(queries, K)
    del exact
    print(f"\n{size:,} vectors: index types (recall@{K} against exact, 64 queries)")
    for factory, knobs in TYPES:
        if factory not in names:
            continue
        gc.collect()
        before = _rss_mb()
        start = time.perf_counter()
        store = FaissVectorStore(QueryTable(queries), index_factory=factory, **knobs)  # type: ignore[arg-type]
        if factory.startswith("IVF"):
            rows = np.random.default_rng(1).choice(
                size, min(size, 100_000), replace=False
            )
            store.train(embeddings=vectors[rows])
        store.add_embeddings([""] * size, vectors, ids=[str(i) for i in range(size)])
        build = time.perf_counter() - start
        memory = _rss_mb() - before
        index_mb = faiss.serialize_index(store._index).nbytes / 2**20
        found = [
            {
                int(str(d.id))
                for d, _ in store.similarity_search_with_score_by_vector(
                    q.tolist(), k=K
                )
            }
            for q in queries
        ]
        recall = np.mean(
            [len(f & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]
        )
        ms = median_ms(
            lambda: store.similarity_search_with_score_by_vector(
                queries[0].tolist(), k=K
            )
        )
        print(
            f"  {factory:<14} build {build:>7.1f} s  index {index_mb:>7.0f} MB  "
            f"RSS +{memory:>6.0f} MB  "
            f"recall@{K} {recall:.3f}  query {ms:.2f} ms"
        )


def real(count: int, names: list[str]) -> None:
    from _texts import wide_passages

    from langchain_ce_rerank import load_embeddings

    texts = wide_passages(count + 64)
    queries_text = [" ".join(t.split()[:12]) for t in texts[count:]]
    texts = texts[:count]
    try:
        embedding = load_embeddings(
            device="cpu", backend="openvino", quantization="int8"
        )
        name = "openvino int8"
    except ImportError:
        embedding = load_embeddings(device="cpu")
        name = "torch"
    start = time.perf_counter()
    vectors = np.array(embedding.embed_documents(texts), dtype=np.float32)
    queries = np.array(
        [embedding.embed_query(q) for q in queries_text], dtype=np.float32
    )
    print(
        f"{len(texts):,} real passages embedded with all-MiniLM-L6-v2 ({name}) "
        f"in {time.perf_counter() - start:.0f} s"
    )
    index_types(len(texts), vectors, queries, names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--skip-types", action="store_true", help="only the speed table"
    )
    parser.add_argument(
        "--types",
        nargs="+",
        default=[name for name, _ in TYPES],
        help="index types to build (HNSW32 at 1M takes long on 2 cores)",
    )
    parser.add_argument(
        "--real",
        type=int,
        metavar="N",
        help="recall of each index type on N real passages' embeddings instead",
    )
    args = parser.parse_args()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    if args.real:
        real(args.real, args.types)
        return
    rng = np.random.default_rng(0)
    queries = _unit(rng, 64)
    for size in args.sizes:
        vectors = _unit(rng, size)
        speed(size, vectors, queries)
        if not args.skip_types:
            index_types(size, vectors, queries, args.types)
        del vectors
        gc.collect()


if __name__ == "__main__":
    main()
