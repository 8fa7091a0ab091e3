"""A separate process that saves or loads a `FaissVectorStore` folder in a loop.

Used by `test_persistence_processes.py` to race real processes on one folder:

    python persistence_worker.py save FOLDER TAG MAX_SAVES [STOP_FILE]
    python persistence_worker.py load FOLDER LOADS STOP_FILE

Each prints "ready" once imported and waits for a line on stdin before it
starts, so racing processes start together. `save` saves generations `TAG-0`, `TAG-1`, ... (each a
different number of documents, every document tagged with its generation) until
it has saved MAX_SAVES or STOP_FILE exists. `load` loads LOADS times, checks
that every load holds exactly one whole generation, then creates STOP_FILE.
Both print one JSON summary line last and exit non-zero on any failure.
Loops are bounded by counts, never by a clock.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore

DIMENSION = 8
BASE_DOCS = 1000  # large enough that reading one generation takes a while


def generation_size(number: int) -> int:
    """Documents in generation `number`: differs between neighbours."""
    return BASE_DOCS + number % 7


def build(tag: str, number: int) -> FaissVectorStore:
    """The store of generation `TAG-number`: every document names it."""
    generation = f"{tag}-{number}"
    size = generation_size(number)
    return FaissVectorStore.from_texts(
        [f"{generation} document {i}" for i in range(size)],
        DeterministicFakeEmbedding(size=DIMENSION),
        metadatas=[{"generation": generation, "size": size} for _ in range(size)],
        ids=[f"{generation}/{i}" for i in range(size)],
    )


def check(store: FaissVectorStore) -> str:
    """The one generation `store` holds; raises if it mixes or misses documents."""
    docs = store.get_by_ids(store.ids)
    generations = {doc.metadata["generation"] for doc in docs}
    if len(generations) != 1:
        msg = f"documents of several generations in one load: {sorted(generations)}"
        raise AssertionError(msg)
    (generation,) = generations
    expected = docs[0].metadata["size"]
    if len(docs) != expected or store.similarity_search("document", k=1) == []:
        msg = f"generation {generation} has {len(docs)} documents, saved {expected}"
        raise AssertionError(msg)
    return str(generation)


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def save(folder: Path, tag: str, max_saves: int, stop: Path | None) -> int:
    stores = [build(tag, number) for number in range(3)]  # built once, reused
    _wait_for_go()
    saved = 0
    while saved < max_saves and not (stop is not None and stop.exists()):
        stores[saved % 3].save_local(folder)
        saved += 1
    print(json.dumps({"saved": saved}), flush=True)
    return 0


def load(folder: Path, loads: int, stop: Path) -> int:
    embedding = DeterministicFakeEmbedding(size=DIMENSION)
    seen: set[str] = set()
    failures: list[str] = []
    _wait_for_go()
    try:
        for _ in range(loads):
            try:
                seen.add(check(FaissVectorStore.load_local(folder, embedding)))
            except Exception:  # every failure is reported
                failures.append(traceback.format_exc(limit=3))
    finally:
        stop.touch()
    print(json.dumps({"generations": sorted(seen), "failures": failures}), flush=True)
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    mode, folder = argv[0], Path(argv[1])
    if mode == "save":
        stop = Path(argv[4]) if len(argv) > 4 else None
        return save(folder, argv[2], int(argv[3]), stop)
    return load(folder, int(argv[2]), Path(argv[3]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
