"""End to end: ce-rerank index, query and eval, as a user runs them.

Every test runs the real command in a subprocess; the error paths are in
test_cli_errors.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import cli_error, run_cli
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import FaissVectorStore

ROOT = Path(__file__).parents[2]
EXAMPLE_DATA = ROOT / "examples" / "data"
DATASET = ROOT / "tests" / "data" / "stdlib-docs"
QUESTION = "How do I restore a Docker volume backup on another host?"
_cli = run_cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "data"
    shutil.copytree(EXAMPLE_DATA, folder)
    (folder / "legacy.txt").write_bytes("caf\xe9 latin-1 text".encode("latin-1"))
    (folder / "notes.pdf").write_bytes(b"%PDF-1.7\n\x00\x01 binary stream")
    (folder / "LICENSE").write_text("A text file without an extension is read too.")
    return folder


@pytest.fixture(scope="module")
def built(
    corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("index") / "ix"
    result = _cli("index", str(corpus), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Indexed 6 files" in result.stdout
    return out, result


@pytest.fixture(scope="module")
def index(built: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def index_run(built: tuple[Path, subprocess.CompletedProcess[str]]) -> str:
    """What `index` printed on stderr (progress bar, skipped files)."""
    return built[1].stderr


def test_query_table_shows_movement_scores_source_and_snippet(
    index: Path, standin_ce_path: Path
) -> None:
    result = _cli(
        "query",
        str(index),
        QUESTION,
        "-k",
        "6",
        "--top-n",
        "3",
        "--reranker",
        str(standin_ce_path),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for column in ("move", "rerank score", "cosine", "source", "snippet"):
        assert column in out
    assert out.count(" -> ") >= 3
    assert "docker-volume-backup.md" in out
    # The index keeps BM25, so the first stage is hybrid by default.
    assert "6 hybrid (rrf of dense and BM25, alpha 0.7) first-stage candidates" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 3
    for line in rows:  # COLUMNS=160 is honoured when stdout is a pipe
        assert line.endswith("│")
        assert len(line) <= 160
        assert re.fullmatch(r"\d+ -> \d", line.split("│")[1].strip())


def test_query_json(index: Path, standin_ce_path: Path) -> None:
    result = _cli(
        "query",
        str(index),
        QUESTION,
        "-k",
        "6",
        "--top-n",
        "3",
        "--reranker",
        str(standin_ce_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == QUESTION
    assert len(payload["first_stage"]) == 6
    assert len(payload["results"]) == 3
    top_cosine = payload["first_stage"][0]
    assert top_cosine["rank"] == 1
    row = payload["results"][0]
    assert set(row) >= {
        "id",
        "rank",
        "retrieval_rank",
        "retrieval_score",
        "relevance_score",
        "source",
        "text",
    }
    scores = [r["relevance_score"] for r in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_query_shapes_the_context_and_says_what_it_left_out(
    index: Path, standin_ce_path: Path
) -> None:
    args = ("query", str(index), QUESTION, "-k", "8", "--top-n", "4")
    shaping = ("--group-by", "source", "--max-context-tokens", "120")
    reranker = ("--reranker", str(standin_ce_path))
    result = _cli(*args, *reranker, *shaping, "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    sources = [row["source"] for row in payload["results"]]
    assert len(sources) == len(set(sources)) >= 1
    assert sum(row["context_tokens"] for row in payload["results"]) <= 120
    reasons = {row["reason"] for row in payload["dropped"]}
    assert reasons <= {"group_full", "context_budget", "top_n"}
    assert len(payload["results"]) + len(payload["dropped"]) == 8
    table = _cli(*args, *reranker, *shaping)
    assert table.returncode == 0, table.stderr
    assert "not shown:" in " ".join(table.stdout.split())


def test_query_parents_shows_whole_files(index: Path, standin_ce_path: Path) -> None:
    result = _cli(
        "query",
        str(index),
        QUESTION,
        "-k",
        "8",
        "--top-n",
        "2",
        "--reranker",
        str(standin_ce_path),
        "--parents",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    for row in payload["results"]:
        source = Path(row["source"])
        if source.suffix != ".jsonl":
            assert row["text"] == source.read_text()
        assert row["parent_chunks"]
        assert "relevance_passage" in row
    ids = [row["id"] for row in payload["results"]]
    assert len(ids) == len(set(ids))


def test_query_with_diversity_and_a_deadline(
    index: Path, standin_ce_path: Path
) -> None:
    args = ["query", str(index), QUESTION, "-k", "6", "--top-n", "3"]
    args += ["--reranker", str(standin_ce_path), "--diversity", "0.5"]
    table = _cli(*args)
    assert table.returncode == 0, table.stderr
    assert "Ordered for diversity 0.5" in table.stdout
    # A budget too small to score anything in time: whatever was scored, the
    # three results come back, unscored ones last, in first-stage order.
    result = _cli(*args, "--deadline-ms", "0.001", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["diversity"], payload["deadline_ms"]) == (0.5, 0.001)
    rows = payload["results"]
    assert len(rows) == 3
    assert [r["relevance_score"] is None for r in rows] == [
        not r["reranked"] for r in rows
    ]
    unscored = [r for r in rows if not r["reranked"]]
    assert rows[len(rows) - len(unscored) :] == unscored
    ranks = [r["retrieval_rank"] for r in unscored]
    assert ranks == sorted(ranks)
    assert "retrieval_embedding" not in result.stdout


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--diversity", "1.5", "a number from 0 (off) to 1, got '1.5'"),
        ("--diversity", "much", "a number from 0 (off) to 1, got 'much'"),
        ("--deadline-ms", "0", "a finite number of milliseconds above 0, got '0'"),
        ("--deadline-ms", "inf", "a finite number of milliseconds above 0, got 'inf'"),
    ],
)
def test_shaping_flags_out_of_range_are_usage_errors(
    flag: str, value: str, words: str, tmp_path: Path
) -> None:
    result = run_cli("query", str(tmp_path), "q", flag, value)
    assert result.returncode == 2
    assert f"argument {flag}: must be {words}" in result.stderr


def test_reindex_updates_changed_and_removes_deleted_files(
    index: Path, corpus: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "ix"
    shutil.copytree(index, copy)
    (corpus / "container-logs.md").write_text("# Logs\n\nUse docker logs --follow.\n")
    (corpus / "release-checklist.txt").unlink()
    try:
        result = _cli("index", str(corpus), "--out", str(copy))
        assert result.returncode == 0, result.stderr
        assert "1 chunk added," in result.stdout
        assert "2 removed" in result.stdout
    finally:
        shutil.copy(EXAMPLE_DATA / "container-logs.md", corpus / "container-logs.md")
        shutil.copy(
            EXAMPLE_DATA / "release-checklist.txt", corpus / "release-checklist.txt"
        )


def test_eval_on_the_beir_dataset(standin_ce_path: Path, tmp_path: Path) -> None:
    result = _cli(
        "eval",
        "--dataset",
        str(DATASET),
        "-k",
        "4",
        "--top-n",
        "2",
        "--reranker",
        str(standin_ce_path),
        "--json",
        str(tmp_path / "eval.json"),
        "--save-run",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 0, result.stderr
    assert "hybrid + rerank, RRF" in result.stdout
    assert "nDCG@10" in result.stdout
    assert "ms: mean per query" in result.stdout
    for bar in ("Embedding corpus", "First stage", "Reranking"):
        assert bar not in result.stderr  # stderr is not a terminal: quiet
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["num_queries"] == 25
    names = [c["name"] for c in data["configurations"]]
    # The default: every first stage the index can run, each alone and reranked.
    assert names == [
        f"{stage}{order}"
        for stage in ("dense", "bm25", "hybrid")
        for order in ("", " + rerank", " + rerank, RRF")
    ]
    by_name = {c["name"]: c for c in data["configurations"]}
    for stage in ("dense", "bm25", "hybrid"):
        metrics = by_name[stage]["metrics"]
        assert set(metrics) == {"nDCG@10", "MRR@10", "Recall@2", "Recall@4"}
        assert metrics["nDCG@10"] > 0.5  # each first stage finds these
        assert by_name[stage]["latency_ms"]["first_stage"] > 0
        assert by_name[f"{stage} + rerank"]["latency_ms"]["rerank"] > 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == sorted(
        f"{stage}{order}.trec"
        for stage in ("dense", "bm25", "hybrid")
        for order in ("", "_rerank", "_rerank_RRF")
    )
    line = (tmp_path / "runs" / "hybrid.trec").read_text().splitlines()[0]
    assert line.split()[1] == "Q0"
    assert line.split()[3] == "1"


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run `ce-rerank ARGS...` with stderr on a pseudo-terminal; return what it drew."""
    import fcntl
    import pty
    import struct
    import termios

    terminal, its_side = pty.openpty()
    # 24 rows, 160 columns: a new pseudo-terminal is 0 x 0, where tqdm draws nothing.
    fcntl.ioctl(its_side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_ce_rerank.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=its_side,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"},
    )
    os.close(its_side)
    drawn = b""
    while True:
        try:
            data = os.read(terminal, 65536)
        except OSError:  # EIO: the command closed its side
            break
        if not data:
            break
        drawn += data
    os.close(terminal)
    return process.wait(timeout=600), drawn.decode("utf-8", "replace")


def test_eval_shows_a_bar_per_query_on_a_terminal(standin_ce_path: Path) -> None:
    status, drawn = _on_a_terminal(
        "eval",
        "--dataset",
        str(DATASET),
        "-k",
        "4",
        "--reranker",
        str(standin_ce_path),
    )
    assert status == 0, drawn
    assert re.search(r"Embedding corpus: 100%.* 60/60", drawn), drawn
    assert re.search(r"First stage: 100%.* 25/25", drawn), drawn
    assert re.search(r"Reranking: 100%.* 25/25", drawn), drawn


# -- index: what was skipped, what was merged ----------------------------------


def test_index_lists_files_it_does_not_read(index_run: str) -> None:
    assert "Skipped 2 (1 not UTF-8, 1 binary):" in index_run
    assert "legacy.txt: not UTF-8" in index_run
    assert "notes.pdf: binary (a NUL byte in its first 8 KB)" in index_run
    assert "LICENSE" not in index_run  # text without an extension: read
    assert index_run.count("legacy.txt") == 1  # listed once, not warned twice
    assert "Embedding" not in index_run  # stderr is not a terminal: no bar


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    root = tmp_path / "copies"
    (root / "old").mkdir(parents=True)
    text = (EXAMPLE_DATA / "docker-volume-backup.md").read_text()
    (root / "a.md").write_text(text)
    (root / "old" / "b.md").write_text(text)
    shutil.copy(EXAMPLE_DATA / "container-logs.md", root / "c.md")
    return root


def _chunk_count(stdout: str) -> int:
    return int(stdout.split("(")[1].split(" in the index")[0])


def test_index_merges_duplicates_by_default_and_stays_idempotent(
    copies: Path, tmp_path: Path, standin_ce_path: Path
) -> None:
    out = tmp_path / "ix"
    first = run_cli("index", str(copies), "--out", str(out), cwd=copies)
    assert first.returncode == 0, first.stderr
    merged = [line for line in first.stdout.splitlines() if "merged" in line]
    assert len(merged) == 1
    assert "duplicate chunks merged (same text in a.md and old/b.md)" in merged[0]
    assert "--no-dedupe" in merged[0]
    total = _chunk_count(first.stdout)

    again = run_cli("index", str(copies), "--out", str(out), cwd=copies)
    assert again.returncode == 0, again.stderr
    assert f"0 chunks added, {total} unchanged, 0 removed ({total} in" in again.stdout

    # The duplicates no longer fill the top of the results.
    result = run_cli(
        "query",
        str(out),
        QUESTION,
        "-k",
        "8",
        "--top-n",
        "8",
        "--reranker",
        str(standin_ce_path),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    texts = [row["text"] for row in json.loads(result.stdout)["results"]]
    assert len(texts) == len(set(texts))

    kept = run_cli("index", str(copies), "--out", str(tmp_path / "all"), "--no-dedupe")
    assert kept.returncode == 0, kept.stderr
    assert "merged" not in kept.stdout
    assert _chunk_count(kept.stdout) > total


def test_chunks_past_the_embedders_window_are_one_warning_line(
    tmp_path: Path,
) -> None:
    words = " ".join(f"--flag-{i}=0x{i * 7919:04X}" for i in range(400))
    (tmp_path / "page.md").write_text(words, encoding="utf-8")
    cut = _cli(
        "index", str(tmp_path), "--out", str(tmp_path / "ix"), "--chunk-size", "1500"
    )
    assert cut.returncode == 0, cut.stderr
    [line] = [x for x in cut.stderr.splitlines() if x.startswith("warning:")]
    assert re.search(
        r"warning: \d+ of \d+ chunks \(\d+\.\d%\) are longer than the embedding "
        r"model's window of 256 tokens",
        line,
    )
    assert line.endswith(
        "use a smaller --chunk-size, or leave it out to cut chunks to the window."
    )
    fitted = _cli("index", str(tmp_path), "--out", str(tmp_path / "fitted"))
    assert fitted.returncode == 0, fitted.stderr
    assert "warning:" not in fitted.stderr


def test_merged_chunks_keep_their_sources_in_metadata(
    copies: Path, tmp_path: Path, minilm_embeddings: Embeddings
) -> None:
    out = tmp_path / "ix"
    assert run_cli("index", str(copies), "--out", str(out)).returncode == 0
    store = FaissVectorStore.load_local(out, minilm_embeddings)
    docs = store.get_by_ids(store.ids)
    merged = [d for d in docs if "duplicate_sources" in d.metadata]
    assert merged
    for doc in merged:
        assert doc.metadata["source"] == str(copies / "a.md")
        assert doc.metadata["duplicate_sources"] == [str(copies / "old" / "b.md")]


# -- help -------------------------------------------------------------------------


def test_top_level_help_shows_commands_and_examples() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("index", "query", "eval", "examples:", "ce-rerank index"):
        assert word in result.stdout


@pytest.mark.parametrize("command", ["index", "query", "eval"])
def test_help_explains_every_option_with_its_default(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    text = result.stdout
    assert len(text.splitlines()) > 10
    # argparse puts an option's help after two spaces or on the next line.
    entries = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    for entry in entries[1:]:
        flags, _, explained = entry.partition("  ")
        assert explained.strip(), f"undocumented option: {flags}"
        options = {
            "--chunk-size",
            "--chunk-overlap",
            "--batch-size",
            "-k",
            "--top-n",
            "--reranker",
            "--long-documents",
            "--fusion",
            "--backend",
            "--split",
            "--device",
            "--embedding",
        }
        if flags.split()[0] in options:
            assert "default" in " ".join(explained.split()), flags


def test_eval_against_an_index_built_from_a_beir_corpus(
    standin_ce_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ix"
    built = _cli("index", str(DATASET / "corpus.jsonl"), "--out", str(out))
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 file into" in built.stdout
    result = _cli(
        "eval",
        "--index",
        str(out),
        "--queries",
        str(DATASET / "queries.jsonl"),
        "--qrels",
        str(DATASET / "qrels" / "test.tsv"),
        "-k",
        "3",
        "--top-n",
        "1",
        "--reranker",
        str(standin_ce_path),
        "--first-stage",
        "hybrid",
        "--json",
        "-",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    names = [c["name"] for c in data["configurations"]]
    assert names == ["hybrid", "hybrid + rerank", "hybrid + rerank, RRF"]
    first = data["configurations"][0]["metrics"]
    assert data["num_queries"] == 25
    assert first["Recall@3"] > 0.5  # chunk doc_ids map back to corpus ids


@pytest.mark.openvino
def test_query_with_the_openvino_int8_reranker(
    index: Path, standin_ce_path: Path, tmp_path: Path
) -> None:
    env_cache = {"LANGCHAIN_CE_RERANK_CACHE": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_ce_rerank.cli",
            "query",
            str(index),
            QUESTION,
            "--reranker",
            str(standin_ce_path),
            "--backend",
            "openvino",
            "--int8",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **env_cache},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["results"]) == 5
    (export,) = (tmp_path / "exports").iterdir()
    assert "-openvino-int8-" in export.name


def test_serve_is_a_command_of_ce_rerank() -> None:
    result = run_cli("--help")
    assert "serve" in result.stdout
    help_text = run_cli("serve", "--help").stdout
    for option in ("--reranker", "--host", "--port", "--api-key", "--no-batching"):
        assert option in help_text
    assert "/v2/rerank" in help_text
    assert cli_error("serve", "--int8").endswith(
        "--int8 needs --backend openvino (static int8, fastest on CPU) or "
        "--backend onnx (dynamic int8)"
    )
