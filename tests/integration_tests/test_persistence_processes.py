"""Real processes saving and loading one folder at the same time.

Each test starts `persistence_worker.py` processes, lets them import, then
starts them together; every loop is bounded by a count, never by a clock.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore

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
