"""Real processes saving and loading one folder at the same time.

Each test starts `persistence_worker.py` processes, lets them import, then
starts them together; every loop is bounded by a count, never by a clock.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from store_reference import bm25_scores, check_top_k, cosine_scores

from langchain_ce_rerank import FaissVectorStore
from langchain_ce_rerank.store.bm25 import BM25Index

WORKER = Path(__file__).with_name("persistence_worker.py")
# A safety net against a hung worker, not a measure of anything.
HANG_LIMIT_SECONDS = 300


def _worker_module() -> Any:
    spec = importlib.util.spec_from_file_location("persistence_worker", WORKER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _start(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_together(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdout is not None
        assert process.stdin is not None
        if process.stdout.readline().strip() != "ready":
            _, err = process.communicate(timeout=HANG_LIMIT_SECONDS)
            raise AssertionError(f"worker failed to start:\n{err}")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=HANG_LIMIT_SECONDS)
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert process.returncode == 0, f"{summary}\n{err}"
    return summary


def _load_generation(folder: Path) -> str:
    store = FaissVectorStore.load_local(folder, DeterministicFakeEmbedding(size=8))
    generations = {doc.metadata["generation"] for doc in store.get_by_ids(store.ids)}
    assert len(generations) == 1, generations
    return str(generations.pop())


def test_loads_while_another_process_saves_always_get_one_whole_generation(
    tmp_path: Path,
) -> None:
    folder, stop = tmp_path / "index", tmp_path / "loader-done"
    _worker_module().build("first", 0).save_local(folder)
    # The saver keeps saving until the loader has finished its 30 loads. Before
    # the fix, 2 to 6 loads of 30 found a data file already deleted.
    saver = _start("save", folder, "g", 100_000, stop)
    loader = _start("load", folder, 30, stop)
    _start_together([saver, loader])
    loaded, saved = _result(loader), _result(saver)
    assert loaded["failures"] == []
    assert len(loaded["generations"]) >= 2, "the saves and loads did not overlap"
    assert saved["saved"] >= 1
    assert _load_generation(folder).startswith("g-")


def test_two_processes_saving_at_once_both_succeed(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    # Before the fix, one saver deleted the other's in-flight temporary file.
    savers = [_start("save", folder, tag, 8) for tag in ("a", "b")]
    _start_together(savers)
    assert [_result(saver) for saver in savers] == [{"saved": 8}] * 2
    assert _load_generation(folder) in {"a-1", "b-1"}  # each one's 8th save
    names = sorted(path.name for path in folder.iterdir())
    assert not [name for name in names if name.startswith(".tmp-")], names
    # The current generation and at most the one it replaced.
    assert len([name for name in names if name.startswith("index.")]) <= 2, names
    assert len([name for name in names if name.startswith("docstore.")]) <= 2, names


class _Lines:
    """A worker's stdout, line by line, each wait bounded by HANG_LIMIT_SECONDS."""

    def __init__(self, process: subprocess.Popen[str], stderr: Path) -> None:
        self.process = process
        self.stderr = stderr
        self.lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(
            target=lambda: [self.lines.put(line) for line in stdout], daemon=True
        ).start()

    def next(self) -> str:
        try:
            return self.lines.get(timeout=HANG_LIMIT_SECONDS).strip()
        except queue.Empty:
            err = self.stderr.read_text()
            raise AssertionError(f"the worker hung or died:\n{err}") from None

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


def _whole_state(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """Load `folder`, check FAISS and BM25 agree with its docstore; its documents."""

    def no_rebuild(*args: object) -> None:
        raise AssertionError("BM25 was rebuilt: the folder carried no BM25 index")

    files = FaissVectorStore.read_manifest(folder)["files"]
    assert {"bm25_data", "bm25_vocab", "bm25_params"} <= set(files)
    embedding = DeterministicFakeEmbedding(size=8)
    with monkeypatch.context() as patch:
        patch.setattr(BM25Index, "from_ids", no_rebuild)
        store = FaissVectorStore.load_local(folder, embedding)
        docs = store.get_by_ids(store.ids)
        texts = {str(doc.id): doc.page_content for doc in docs}
        worker = _worker_module()
        for query in [*worker.CRASH_WORDS, "cherry walnut pear"]:
            where = f"{folder.name}, query {query!r}"
            dense = store.similarity_search_with_score(query, k=len(texts))
            check_top_k(
                [(str(doc.id), score) for doc, score in dense],
                cosine_scores(embedding, texts, query),
                len(texts),
                tolerance=1e-5,
                what=f"{where}: FAISS vectors are not the docstore's texts",
            )
            keyword = store.bm25_search_with_score(query, k=len(texts))
            check_top_k(
                [(str(doc.id), score) for doc, score in keyword],
                bm25_scores(texts, query),
                len(texts),
                tolerance=1e-4,
                what=f"{where}: the BM25 index is not the docstore's texts",
            )
    return tuple(
        sorted((str(d.id), d.page_content, json.dumps(d.metadata)) for d in docs)
    )


def test_save_local_killed_at_any_point_leaves_the_old_or_the_new_state_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL before each file system call of a save that rebuilds BM25.

    Every kill leaves a folder that loads as the old state or the new one, whole:
    docstore, FAISS vectors and the saved BM25 index of the same documents.
    """
    base = tmp_path / "base"  # the old state (and the one before it)
    stderr = tmp_path / "worker.err"
    with stderr.open("w") as err:
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), "crash", str(base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # its own process group: worker and children
        )
    lines = _Lines(worker, stderr)
    try:
        assert lines.next() == "ready"
        complete = tmp_path / "complete"
        shutil.copytree(base, complete)
        lines.send(f"save {complete}")
        events = json.loads(lines.next())
        assert lines.next() == "reaped 0"
        old, new = _whole_state(base, monkeypatch), _whole_state(complete, monkeypatch)
        assert old != new
        # Every data file and the manifest are written, then the generation
        # before the old one is collected: each is a place to be killed.
        manifest_at = next(
            i for i, event in enumerate(events) if event.endswith("-> manifest.json")
        )
        assert len([e for e in events if e.startswith("replace ")]) == 8, events
        assert any(e.startswith("unlink ") for e in events[manifest_at:]), events
        found = []
        for number, event in enumerate(events):
            target = tmp_path / f"killed-{number}"
            shutil.copytree(base, target)
            lines.send(f"save {target} {number}")
            paused, pid, at = lines.next().split(" ", 2)
            assert (paused, at) == ("paused", event)
            os.kill(int(pid), signal.SIGKILL)
            assert lines.next() == f"reaped {-signal.SIGKILL}"
            state = _whole_state(target, monkeypatch)
            assert state in (old, new), f"killed before {event!r}: a mixed state"
            found.append("new" if state == new else "old")
            # The lock died with the process: saving there again works.
            FaissVectorStore.load_local(
                target, DeterministicFakeEmbedding(size=8)
            ).save_local(target)
            assert _whole_state(target, monkeypatch) == state
        # Killed before the manifest's swap: old; after it: new.
        assert found == ["old"] * (manifest_at + 1) + ["new"] * (
            len(events) - manifest_at - 1
        ), list(zip(events, found, strict=True))
    finally:
        # A failed check may leave a child paused: end the worker's group.
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=HANG_LIMIT_SECONDS)
        assert worker.stdin is not None
        worker.stdin.close()
