"""Every CLI error is one line on stderr, exit status 1, naming what to change.

Each test runs the real `ce-rerank` in a subprocess. Cheap checks (blank
queries, missing folders, option combinations) must come before anything slow,
so several tests pass inputs that would fail later in a different way (the
default reranker is not available offline) and check the first fault is named.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_runner import cli_error, run_cli

from langchain_ce_rerank.optional import install_hint

ROOT = Path(__file__).parents[2]
DATASET = ROOT / "tests" / "data" / "stdlib-docs"
CREATE = "create one with: ce-rerank index PATHS... --out"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    (root / "docs").mkdir()
    (root / "docs" / "volumes.md").write_text(
        "# Volumes\n\nTar the Docker volume, copy it to the new host, extract it.\n"
    )
    result = run_cli("index", str(root / "docs"), "--out", str(root / "ix"))
    assert result.returncode == 0, result.stderr
    return root / "ix"


@pytest.fixture
def reranker(standin_ce_path: Path) -> tuple[str, str]:
    return ("--reranker", str(standin_ce_path))


# -- the index folder ------------------------------------------------------------


def test_missing_index_says_how_to_create_one(tmp_path: Path) -> None:
    err = cli_error("query", str(tmp_path / "nope"), "question")
    assert "INDEX_DIR" in err
    assert "does not exist" in err
    assert f"{CREATE} {tmp_path / 'nope'}" in err
    assert "save_local" not in err  # the library's remedy, not the CLI's


def test_a_file_is_not_an_index_folder(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("text")
    err = cli_error("query", str(notes), "question")
    assert "is a file, not an index folder" in err
    assert "does not exist" not in err


def test_a_folder_without_a_manifest_is_not_an_index(tmp_path: Path) -> None:
    err = cli_error("query", str(tmp_path), "question")
    assert "not an index folder (it has no manifest.json)" in err
    assert CREATE in err


def test_eval_names_its_index_flag(tmp_path: Path) -> None:
    err = cli_error(
        "eval",
        "--index",
        str(tmp_path / "nope"),
        "--queries",
        str(DATASET / "queries.jsonl"),
        "--qrels",
        str(DATASET / "qrels" / "test.tsv"),
    )
    assert err.startswith(f"ce-rerank: error: --index '{tmp_path / 'nope'}'")
    assert CREATE in err


def test_corrupted_index_says_which_file_and_how_to_rebuild(
    index: Path, tmp_path: Path, reranker: tuple[str, str]
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(index, broken)
    index_file = next(broken.glob("index.*.faiss"))
    index_file.write_bytes(index_file.read_bytes()[:50])
    err = cli_error("query", str(broken), "question", *reranker)
    assert "INDEX_DIR" in err
    assert index_file.name in err
    assert "truncated" in err
    assert f"rebuild it with: ce-rerank index PATHS... --out {broken}" in err


# -- cheap checks first ----------------------------------------------------------


def test_blank_query_is_reported_before_the_reranker_or_index_load(
    tmp_path: Path,
) -> None:
    # Neither the index nor the default reranker exist (offline): the blank
    # query is what the user has to fix first.
    err = cli_error("query", str(tmp_path / "nope"), "   ")
    assert "QUESTION is blank ('   ')" in err  # shown as typed, not collapsed


def test_blank_query_in_the_queries_file(index: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "volumes"}\n{"_id": "q2", "text": " "}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    err = cli_error(
        "eval", "--index", str(index), "--queries", str(queries), "--qrels", str(qrels)
    )
    assert "--queries: query 'q2' is blank" in err


def test_a_missing_reranker_is_reported_before_the_index_is_loaded(
    index: Path, tmp_path: Path
) -> None:
    # The index's data file is damaged: had it been loaded first, that would be
    # the error. The reranker's name is checked before anything is loaded.
    broken = tmp_path / "broken"
    shutil.copytree(index, broken)
    next(broken.glob("index.*.faiss")).write_bytes(b"damaged")
    err = cli_error("query", str(broken), "question", "--reranker", "acme/nothing")
    assert "'acme/nothing' could not be loaded" in err
    assert "--reranker PATH" in err
    assert "model='/path/to/model'" not in err


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_every_command_words_a_missing_reranker_alike(
    command: str, index: Path
) -> None:
    args = {
        "query": ("query", str(index), "question"),
        "eval": ("eval", "--dataset", str(DATASET)),
        "serve": ("serve", "--port", "0"),
    }[command]
    err = cli_error(*args, "--reranker", "acme/nothing")
    assert err.startswith("ce-rerank: error: model 'acme/nothing' could not be loaded")
    assert "--reranker PATH" in err
    # Offline, each says how to build the stand-in (serve used to leave it out).
    assert "examples/build_standin_reranker.py DIR" in err


def test_index_looks_for_its_embedding_model_before_reading_any_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.md").write_text("text")
    files_read = (
        "import sys; from langchain_ce_rerank import ingest\n"
        "def read(*args, **kwargs): raise RuntimeError('the files were read')\n"
        "ingest.load_corpus = read\n"
        "from langchain_ce_rerank.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    err = cli_error(
        "index",
        str(tmp_path / "a.md"),
        "--out",
        str(tmp_path / "ix"),
        "--embedding",
        "acme/nothing",
        python=files_read,
    )
    assert "'acme/nothing' could not be loaded" in err
    assert "--embedding PATH" in err


_CORPUS_UNREAD = (
    "import sys; from langchain_ce_rerank.evaluation import datasets\n"
    "original = datasets._read_jsonl\n"
    "def read(path):\n"
    "    if path.name == 'corpus.jsonl': raise RuntimeError('the corpus was read')\n"
    "    return original(path)\n"
    "datasets._read_jsonl = read\n"
    "from langchain_ce_rerank.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("missing", ["--reranker", "--embedding"])
def test_eval_looks_for_both_models_before_reading_the_corpus(
    missing: str, reranker: tuple[str, str]
) -> None:
    flags = [*reranker, missing, "acme/nothing"]
    err = cli_error("eval", "--dataset", str(DATASET), *flags, python=_CORPUS_UNREAD)
    assert "'acme/nothing' could not be loaded" in err
    assert f"{missing} PATH" in err


def test_a_missing_embedding_names_the_embedding_flag(
    index: Path, reranker: tuple[str, str]
) -> None:
    err = cli_error(
        "query", str(index), "question", *reranker, "--embedding", "/no/mdl"
    )
    assert "'/no/mdl' could not be loaded" in err
    assert "--embedding PATH" in err


# -- reranking options -------------------------------------------------------------


def test_malformed_content_template(index: Path, reranker: tuple[str, str]) -> None:
    err = cli_error("query", str(index), "q", *reranker, "--content-template", "{")
    assert err.startswith("ce-rerank: error: --content-template: ")
    assert "malformed" in err
    assert "validation error" not in err  # no pydantic wrapping
    assert "pydantic" not in err


def test_content_template_field_missing_from_the_documents(
    index: Path, reranker: tuple[str, str]
) -> None:
    err = cli_error(
        "query",
        str(index),
        "q",
        *reranker,
        "--content-template",
        r"{title}\n{page_content}",
    )
    assert err.startswith("ce-rerank: error: --content-template: ")
    assert "'title'" in err


def test_max_per_group_needs_group_by_and_is_checked_first(index: Path) -> None:
    # Before the (offline-missing) default reranker is looked for.
    err = cli_error("query", str(index), "volume", "--max-per-group", "2")
    assert "--max-per-group 2 needs --group-by KEY" in err
    err = cli_error("query", str(index), "volume", "--parents", "--max-per-group", "2")
    assert "--max-per-group does not apply with --parents" in err


def test_a_group_key_the_chunks_lack_names_the_flag(
    index: Path, reranker: tuple[str, str]
) -> None:
    err = cli_error("query", str(index), "volume", *reranker, "--group-by", "team")
    assert err.startswith("ce-rerank: error: --group-by team: ")
    assert "has no metadata['team']" in err


def test_a_parent_file_gone_since_indexing_names_parents(
    tmp_path: Path, reranker: tuple[str, str]
) -> None:
    (tmp_path / "docs").mkdir()
    notes = tmp_path / "docs" / "volumes.md"
    notes.write_text("# Volumes\n\nTar the Docker volume and copy it.\n")
    built = run_cli("index", str(tmp_path / "docs"), "--out", str(tmp_path / "ix"))
    assert built.returncode == 0, built.stderr
    notes.unlink()
    err = cli_error("query", str(tmp_path / "ix"), "volume", *reranker, "--parents")
    assert err.startswith("ce-rerank: error: --parents: no parent document for")
    assert "leave out --parents" in err
    assert "parents=" not in err  # the CLI's remedy, not the library's


def test_int8_needs_an_accelerated_backend(index: Path) -> None:
    err = cli_error("query", str(index), "question", "--int8")
    assert "--int8 needs --backend openvino" in err
    assert "quantization=" not in err  # the CLI's words, not the library's


def test_missing_backend_extra_is_one_line(index: Path) -> None:
    # The test environment may have the extra: hide it the way the CLI checks.
    hide_extras = (
        "import sys; from langchain_ce_rerank.models.backends import base; "
        "base._find_spec = lambda name: None; "
        "from langchain_ce_rerank.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    err = cli_error(
        "query",
        str(index),
        "question",
        "--backend",
        "openvino",
        "--int8",
        python=hide_extras,
    )
    assert err.startswith("ce-rerank: error: --backend openvino: ")
    assert install_hint("openvino") in err


def test_bad_device(index: Path) -> None:
    err = cli_error("query", str(index), "question", "--device", "gpu")
    assert "--device 'gpu' is not a torch device" in err


# -- eval data ---------------------------------------------------------------------


def test_eval_needs_data() -> None:
    err = cli_error("eval")
    assert "--dataset DIR" in err


def test_eval_with_an_index_names_the_missing_flags(index: Path) -> None:
    err = cli_error("eval", "--index", str(index))
    assert "add --queries FILE and --qrels FILE" in err


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("missing", "does not exist"),
        ("file", "is a file, not a folder"),
        ("no-corpus", "has no corpus.jsonl"),
    ],
)
def test_dataset_layouts(layout: str, expected: str, tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    if layout == "file":
        folder.write_text("x")
    elif layout == "no-corpus":
        folder.mkdir()
        (folder / "queries.jsonl").write_text("")
    err = cli_error("eval", "--dataset", str(folder))
    assert err.startswith(f"ce-rerank: error: --dataset '{folder}'")
    assert expected in err
    assert "corpus.jsonl, queries.jsonl and qrels/test.tsv" in err


def test_a_split_that_is_not_there_lists_those_that_are() -> None:
    err = cli_error("eval", "--dataset", str(DATASET), "--split", "dev")
    assert "--split 'dev'" in err
    assert "pass one of: --split test" in err


@pytest.mark.parametrize(
    ("qrels_text", "expected"),
    [
        (None, "--qrels '{path}' does not exist"),
        ("query-id\tcorpus-id\tscore\nq1 d1 1\n", "--qrels: {path}:2: expected 3"),
        ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", "relevance must be an integer"),
        ("query-id\tcorpus-id\tscore\nzz\td1\t1\n", "their query ids must match"),
    ],
)
def test_qrels_problems(
    qrels_text: str | None, expected: str, index: Path, tmp_path: Path
) -> None:
    qrels = tmp_path / "qrels.tsv"
    if qrels_text is not None:
        qrels.write_text(qrels_text)
    err = cli_error(
        "eval",
        "--index",
        str(index),
        "--queries",
        str(DATASET / "queries.jsonl"),
        "--qrels",
        str(qrels),
    )
    assert expected.format(path=qrels) in err


def test_queries_that_are_not_jsonl(index: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    queries.write_text("what is a volume?\n")
    err = cli_error(
        "eval",
        "--index",
        str(index),
        "--queries",
        str(queries),
        "--qrels",
        str(DATASET / "qrels" / "test.tsv"),
    )
    assert err.startswith(f"ce-rerank: error: --queries: {queries}:1: not valid JSON")


def test_json_output_folder_must_exist(tmp_path: Path) -> None:
    err = cli_error(
        "eval", "--dataset", str(DATASET), "--json", str(tmp_path / "no" / "x.json")
    )
    assert "--json" in err
    assert "does not exist" in err


# -- index -------------------------------------------------------------------------


def test_index_out_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    err = cli_error("index", str(tmp_path / "a.md"), "--out", str(tmp_path / "a.md"))
    assert "--out" in err
    assert "is a file" in err


def test_index_out_holds_other_files(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    err = cli_error("index", str(tmp_path / "a.md"), "--out", str(tmp_path))
    assert "holds other files but no index" in err


def test_chunk_overlap_larger_than_chunk_size(tmp_path: Path) -> None:
    err = cli_error(
        "index",
        str(tmp_path),
        "--out",
        str(tmp_path / "ix"),
        "--chunk-size",
        "1000",
        "--chunk-overlap",
        "2000",
    )
    assert (
        "--chunk-overlap 2000 must be at least 0 and smaller than --chunk-size" in err
    )


def test_chunk_overlap_larger_than_the_window(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    err = cli_error(
        "index", str(tmp_path), "--out", str(tmp_path / "ix"), "--chunk-overlap", "2000"
    )
    assert err.startswith("ce-rerank: error: --chunk-overlap: ")
    assert "smaller than the chunk size, 254 tokens" in err
    assert err.endswith("or --chunk-size in characters")


def test_missing_input_path(tmp_path: Path) -> None:
    err = cli_error("index", str(tmp_path / "missing"), "--out", str(tmp_path / "ix"))
    assert "PATH" in err
    assert "no such file or folder" in err


def test_empty_corpus_names_what_was_skipped(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.pdf").write_bytes(b"%PDF-1.7\n\x00\x01")
    err = cli_error("index", str(tmp_path / "empty"), "--out", str(tmp_path / "ix"))
    assert "empty corpus" in err
    assert "1 skipped: 1 binary; first: " in err
    assert "notes.pdf: binary" in err
    assert not (tmp_path / "ix").exists()


def test_index_built_with_another_embedding(index: Path, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("text")
    err = cli_error(
        "index", str(tmp_path / "a.md"), "--out", str(index), "--embedding", "acme/x"
    )
    assert "pass --embedding sentence-transformers/all-MiniLM-L6-v2" in err


def test_bad_numbers_are_usage_errors() -> None:
    result = run_cli("query", "ix", "q", "-k", "0")
    assert result.returncode == 2
    assert "must be at least 1" in result.stderr


def test_errors_leave_stdout_clean_for_json(tmp_path: Path) -> None:
    result = run_cli("query", str(tmp_path), "q", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
