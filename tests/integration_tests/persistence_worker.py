"""A separate process that saves or loads a `FaissVectorStore` folder in a loop.

Used by `test_persistence_processes.py` to race real processes on one folder:

    python persistence_worker.py save FOLDER TAG MAX_SAVES [STOP_FILE]
    python persistence_worker.py load FOLDER LOADS STOP_FILE
    python persistence_worker.py crash FOLDER

Each prints "ready" once imported and waits for a line on stdin before it
starts, so racing processes start together. `save` saves generations `TAG-0`, `TAG-1`, ... (each a
different number of documents, every document tagged with its generation and
holding a word only that generation has) until it has saved MAX_SAVES or
STOP_FILE exists; it writes before each save, so each save rebuilds BM25.
`load` loads LOADS times, checks that every load holds exactly one whole
generation, its BM25 index read from the folder and built from the same
documents, then creates STOP_FILE.
Both print one JSON summary line last and exit non-zero on any failure.
Loops are bounded by counts, never by a clock.

`crash` serves a test that kills `save_local` part way. It saves two states
into FOLDER (so FOLDER holds a current and a previous generation), then writes
again without a keyword search, so the next save must rebuild BM25, and prints
"ready". For each line `save TARGET [N]` on stdin it forks a child that saves
that state into TARGET; the file system calls the save makes in TARGET (fsync,
os.replace, unlink) are its events. Without N the child prints them as one JSON
line and exits; with N it prints "paused PID EVENT" just before event N and
waits to be killed (or prints "finished" if the save has fewer events). The
worker then prints "reaped STATUS" (the child's exit code, or minus the signal
that ended it). Forking gives every kill a fresh process without paying the
imports again. (POSIX fork and SIGKILL; an fsync's file is read from
/proc/self/fd, so this mode runs on Linux, as CI does.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.store.bm25 import BM25Index

DIMENSION = 8
BASE_DOCS = 1000  # large enough that reading one generation takes a while


def generation_size(number: int) -> int:
    """Documents in generation `number`: differs between neighbours."""
    return BASE_DOCS + number % 7


def build(tag: str, number: int) -> FaissVectorStore:
    """The store of generation `TAG-number`: every document names it."""
    generation = f"{tag}-{number}"
    size = generation_size(number)
    word = f"gen{tag}{number}"  # a BM25 term of this generation only
    return FaissVectorStore.from_texts(
        [f"{generation} document {i} {word}" for i in range(size)],
        DeterministicFakeEmbedding(size=DIMENSION),
        metadatas=[
            {"generation": generation, "size": size, "word": word} for _ in range(size)
        ],
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
    # The BM25 index holds this generation's documents: its word, in each one.
    word = docs[0].metadata["word"]
    hits = store.bm25_search_with_score(f"document {word}", k=expected + 1)
    if len(hits) != expected or {d.metadata["word"] for d, _ in hits} != {word}:
        msg = f"generation {generation}: BM25 found {len(hits)} of its documents"
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
        store = stores[saved % 3]
        (first,) = store.get_by_ids(store.ids[:1])
        store.add_documents([first])  # a write: this save rebuilds BM25
        store.save_local(folder)
        saved += 1
    print(json.dumps({"saved": saved}), flush=True)
    return 0


def _no_rebuild(*args: object) -> None:
    raise AssertionError("BM25 was rebuilt on load: the folder had no BM25 index")


def load(folder: Path, loads: int, stop: Path) -> int:
    # Every load must read the BM25 index saved with its documents.
    BM25Index.from_ids = _no_rebuild  # type: ignore[assignment, method-assign]
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


# -- crash: save_local killed part way --------------------------------------

CRASH_WORDS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "sage", "mint"]


def crash_writes() -> list[Callable[[FaissVectorStore], None]]:
    """Three rounds of writes, applied in turn to one store: three states.

    Each round replaces texts, deletes and adds, so the FAISS ids, the texts
    and the BM25 vocabulary all differ from the state before.
    """

    def text(i: int, shift: int) -> str:
        words = [CRASH_WORDS[(i * 3 + shift + j) % len(CRASH_WORDS)] for j in range(3)]
        return " ".join(words)

    def first(store: FaissVectorStore) -> None:
        store.add_texts(
            [text(i, 0) for i in range(10)],
            [{"state": "first", "i": i} for i in range(10)],
            ids=[f"d{i}" for i in range(10)],
        )

    def old(store: FaissVectorStore) -> None:
        store.add_texts(
            [f"{text(i, 1)} pear" for i in range(3)] + ["cherry kiwi"],
            [{"state": "old", "i": i} for i in (0, 1, 2, 10)],
            ids=["d0", "d1", "d2", "d10"],
        )
        store.delete(["d9"])

    def new(store: FaissVectorStore) -> None:
        store.add_texts(
            ["plum plum lime", "walnut fig", "cherry cherry sage"],
            [{"state": "new", "i": i} for i in (3, 4, 11)],
            ids=["d3", "d4", "d11"],
        )
        store.delete(["d5", "d10"])

    return [first, old, new]


def _events_in(target: Path) -> tuple[list[str], Callable[[str], None]]:
    """Wrap os.fsync, os.replace and os.unlink to report calls that touch target.

    Returns the list the events are appended to and a function that sets what
    happens just before each (called with the event's description).
    """
    events: list[str] = []
    before: list[Callable[[str], None]] = [lambda event: None]
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def inside(path: Any) -> str | None:
        path = Path(os.fsdecode(path))
        if path == target:
            return "."
        if path.parent != target:
            return None
        # Temporary names hold a pid and a random token: the same in every run.
        return ".tmp" if path.name.startswith(".tmp-") else path.name

    def record(event: str) -> None:
        before[0](event)
        events.append(event)

    def fsync(fd: int) -> None:
        name = inside(os.readlink(f"/proc/self/fd/{fd}"))
        if name is not None:
            record(f"fsync {name}")
        real_fsync(fd)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        name = inside(dst)
        if name is not None:
            record(f"replace {inside(src)} -> {name}")
        real_replace(src, dst, **kwargs)

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        name = None if kwargs.get("dir_fd") is not None else inside(path)
        if name is not None:
            record(f"unlink {name}")
        real_unlink(path, *args, **kwargs)

    os.fsync, os.replace, os.unlink = fsync, replace, unlink  # type: ignore[assignment]

    def set_before(hook: Callable[[str], None]) -> None:
        before[0] = hook

    return events, set_before


def _save_in_child(store: FaissVectorStore, target: Path, pause: int | None) -> None:
    """The forked child: save into target, pausing before event `pause`."""
    try:
        events, set_before = _events_in(target)
        if pause is not None:

            def stop_at(event: str) -> None:
                if len(events) == pause:
                    print(f"paused {os.getpid()} {event}", flush=True)
                    while True:  # until SIGKILL
                        signal.pause()

            set_before(stop_at)
        store.save_local(target)
        print("finished" if pause is not None else json.dumps(events), flush=True)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


def crash(folder: Path) -> int:
    store = FaissVectorStore(DeterministicFakeEmbedding(size=DIMENSION))
    *saved, last = crash_writes()
    for write in saved:
        write(store)
        store.save_local(folder)
    last(store)  # and no keyword search: the next save rebuilds BM25
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        target = Path(command[1])
        pause = int(command[2]) if len(command) > 2 else None
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _save_in_child(store, target, pause)
        _, status = os.waitpid(pid, 0)
        print(f"reaped {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode, folder = argv[0], Path(argv[1])
    if mode == "crash":
        return crash(folder)
    if mode == "save":
        stop = Path(argv[4]) if len(argv) > 4 else None
        return save(folder, argv[2], int(argv[3]), stop)
    return load(folder, int(argv[2]), Path(argv[3]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
