"""Long documents: whole pages, chunks, or chunks collapsed to their parents?

On the man-page set of `man_pages.py` (run it first), with the bundled real
all-MiniLM-L6-v2 as the first stage, three pipelines hand a reranker `k`
candidates for each query whose answer sits deep inside a page:

- pages + max_passage: the pages are embedded whole (the bi-encoder reads
  their first 256 tokens), the top `k` pages are reranked with
  `long_documents="max_passage"` (every window of every page is scored);
- chunks: the pages are cut into chunks that fit the bi-encoder's window
  (`load_corpus`), the top `k` chunks are reranked as they are;
- chunks -> parents: the same top `k` chunks, collapsed to their pages
  (`CrossEncoderCompressor(parents=SourceFiles())`, one setting), each page
  reranked whole with max_passage.

No trained cross-encoder exists offline, so the reranker's own ranking cannot
be measured. What can be, exactly, is what each pipeline lets the reranker
read at depth `k`:

- page recall: the answer's page is among the candidates;
- answer recall: the answer sentence itself is in the text the reranker reads
  (for chunks: inside one of the `k` chunks; a page read whole holds it);
- pairs: (query, window) pairs the reranker must score, from the stand-in's
  tokenizer and window (512 tokens, 64 overlap), and, on `--timed` queries,
  the stand-in's measured time per query at one `k` (cost only: its scores
  are noise).

    python benchmarks/man_pages.py          # once: .cache/man-pages/
    python benchmarks/long_documents.py --reranker .cache/standin-cross-encoder

The two indexes are saved under the data folder and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, SourceFiles, load_corpus
from langchain_ce_rerank.engine.windows import tokenizer_spans, windows
from langchain_ce_rerank.models import load_embeddings
from langchain_ce_rerank.store import new_index, open_index

ROOT = Path(__file__).resolve().parents[1]
DEPTHS = (1, 5, 10, 20, 50)
OVERLAP = 64


def _index(folder: Path, docs: list[Document], embeddings: Any) -> Any:
    if (folder / "manifest.json").is_file():
        return open_index(folder, embeddings)
    store = new_index(embeddings)
    started = time.perf_counter()
    store.add_documents(docs)
    print(f"  embedded {len(docs)} texts in {time.perf_counter() - started:.0f} s")
    store.save_local(folder)
    return store


def _contains(chunk: Document, start: int, end: int) -> bool:
    first = int(chunk.metadata["start_index"])
    return first <= start and end <= first + len(chunk.page_content)


class Windows:
    """(query, window) pairs a page costs a max_passage reranker, as the engine cuts."""

    def __init__(self, model: Any) -> None:
        self.tokenizer = model.tokenizer
        self.spans = tokenizer_spans(model.tokenizer)
        self.budget = int(model.max_seq_length)
        self.special = model.tokenizer.num_special_tokens_to_add(pair=True)
        self.known: dict[str, list[tuple[int, int]]] = {}

    def count(self, query: str, name: str, text: str) -> int:
        if name not in self.known:
            self.known[name] = self.spans(text)
        size = self.budget - len(self.spans(query)) - self.special
        return len(windows(text, self.known[name], size, OVERLAP))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "man-pages")
    parser.add_argument("--reranker", required=True, help="the stand-in's folder")
    parser.add_argument("--timed", type=int, default=20, help="queries timed")
    parser.add_argument("--timed-k", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()

    pages_dir = args.data / "pages"
    queries = [
        json.loads(line)
        for line in (args.data / "queries.jsonl").read_text().splitlines()
    ]
    embeddings = load_embeddings(device="cpu")
    texts = {p.stem: p.read_text(encoding="utf-8") for p in pages_dir.glob("*.txt")}
    paths = {p.stem: str(p.resolve()) for p in pages_dir.glob("*.txt")}

    print("chunk index (load_corpus, cut to the bi-encoder's window):")
    chunks = load_corpus([pages_dir], embedding=embeddings).documents
    chunk_store = _index(args.data / "index-chunks", chunks, embeddings)
    print("page index (whole pages; the bi-encoder reads their first 256 tokens):")
    pages = [
        Document(page_content=texts[name], id=name, metadata={"source": paths[name]})
        for name in sorted(texts)
    ]
    page_store = _index(args.data / "index-pages", pages, embeddings)
    print(f"{len(texts)} pages, {len(chunks)} chunks, {len(queries)} queries")

    deepest = max(DEPTHS)
    asked = [q["query"] for q in queries]
    started = time.perf_counter()
    found_pages = page_store.as_retriever(k=deepest).batch(asked)
    found_chunks = chunk_store.as_retriever(k=deepest).batch(asked)
    print(f"first stage: {time.perf_counter() - started:.1f} s for both indexes")

    by_path = {path: name for name, path in paths.items()}
    compressor = CrossEncoderCompressor(model=args.reranker, device="cpu")
    counter = Windows(compressor.load_model())
    rows: dict[str, dict[str, list[float]]] = {}
    for k in DEPTHS:
        tally: dict[str, list[float]] = {}
        for query, got_pages, got_chunks in zip(
            queries, found_pages, found_chunks, strict=True
        ):
            page, start, end = query["page"], query["start"], query["end"]
            top_pages = [doc.id for doc in got_pages[:k]]
            top_chunks = got_chunks[:k]
            parents = list(
                dict.fromkeys(by_path[c.metadata["source"]] for c in top_chunks)
            )
            marks = {
                "pages + max_passage: page": page in top_pages,
                "pages + max_passage: answer": page in top_pages,
                "pages + max_passage: pairs": sum(
                    counter.count(query["query"], n, texts[n]) for n in top_pages
                ),
                "chunks: page": page in parents,
                "chunks: answer": any(
                    by_path[c.metadata["source"]] == page and _contains(c, start, end)
                    for c in top_chunks
                ),
                "chunks: pairs": len(top_chunks),
                "chunks -> parents: page": page in parents,
                "chunks -> parents: answer": page in parents,
                "chunks -> parents: pairs": sum(
                    counter.count(query["query"], n, texts[n]) for n in parents
                ),
                "chunks -> parents: parents": len(parents),
            }
            for name, value in marks.items():
                tally.setdefault(name, []).append(float(value))
        rows[str(k)] = tally

    print()
    print(
        f"{'pipeline':<22}{'k':>4}{'page recall':>13}{'answer recall':>15}"
        f"{'pairs/query':>13}"
    )
    for pipeline in ("pages + max_passage", "chunks", "chunks -> parents"):
        for k in DEPTHS:
            tally = rows[str(k)]
            extra = (
                f"  ({statistics.mean(tally[f'{pipeline}: parents']):.1f} parents)"
                if pipeline == "chunks -> parents"
                else ""
            )
            print(
                f"{pipeline:<22}{k:>4}"
                f"{statistics.mean(tally[f'{pipeline}: page']):>13.3f}"
                f"{statistics.mean(tally[f'{pipeline}: answer']):>15.3f}"
                f"{statistics.mean(tally[f'{pipeline}: pairs']):>13.1f}{extra}"
            )

    timed = {}
    if args.timed:
        k = args.timed_k
        sample = list(range(0, len(queries), max(1, len(queries) // args.timed)))
        sample = sample[: args.timed]
        doors = {
            "pages + max_passage": CrossEncoderCompressor(
                model=args.reranker,
                device="cpu",
                long_documents="max_passage",
                top_n=5,
                cache_size=0,
            ),
            "chunks": CrossEncoderCompressor(
                model=args.reranker, device="cpu", top_n=5, cache_size=0
            ),
            "chunks -> parents": CrossEncoderCompressor(
                model=args.reranker,
                device="cpu",
                parents=SourceFiles(),
                top_n=5,
                cache_size=0,
            ),
        }
        print(f"\nstand-in reranker, {len(sample)} queries, k={k} (cost only):")
        for name, door in doors.items():
            spent = []
            for i in sample:
                found = found_pages[i] if name.startswith("pages") else found_chunks[i]
                began = time.perf_counter()
                door.compress_documents(found[:k], queries[i]["query"])
                spent.append(time.perf_counter() - began)
            timed[name] = {
                "mean_s": statistics.mean(spent),
                "median_s": statistics.median(spent),
            }
            print(
                f"  {name:<22} mean {statistics.mean(spent):6.2f} s, "
                f"median {statistics.median(spent):6.2f} s per query"
            )

    if args.json:
        summary = {
            "pages": len(texts),
            "chunks": len(chunks),
            "queries": len(queries),
            "depths": {
                k: {name: statistics.mean(v) for name, v in tally.items()}
                for k, tally in rows.items()
            },
            "timed": timed,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
