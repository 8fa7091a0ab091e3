"""`ce-rerank` answers help, argument errors and missing files without heavy imports.

Each case runs the real command in a subprocess under `python -X importtime`,
which lists on stderr every module the process imported; the command's own
output is the rest of stderr and stdout. None of the libraries that make a
start slow (torch, transformers, sentence-transformers, FAISS, numpy,
LangChain) may be among them: they load only once a command has work to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "sentence_transformers", "faiss", "numpy")
"""Top-level packages that must not be imported (nor any `langchain*` but ours)."""


def _heavy(module: str) -> bool:
    top = module.split(".")[0]
    if top == "langchain_ce_rerank":
        return False
    return top in HEAVY or top.startswith("langchain")


def _run(*args: str) -> tuple[subprocess.CompletedProcess[str], str, set[str]]:
    """Run `ce-rerank ARGS...`; return the result, its own stderr, its imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "langchain_ce_rerank.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"},
        timeout=120,
        check=False,
    )
    imported: set[str] = set()
    own: list[str] = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[-1].strip())
        else:
            own.append(line)
    assert "langchain_ce_rerank.cli" in imported  # -X importtime did report
    return result, "\n".join(own).strip(), imported


def _assert_light(imported: set[str]) -> None:
    heavy = sorted(m for m in imported if _heavy(m))
    assert heavy == [], f"imported before it was needed: {heavy}"


def test_top_level_help_lists_the_commands_and_imports_nothing_heavy() -> None:
    result, err, imported = _run("--help")
    assert (result.returncode, err) == (0, "")
    assert result.stdout.startswith("usage: ce-rerank")
    for command in ("index", "query", "eval", "serve"):
        assert command in result.stdout
    _assert_light(imported)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("query", "--top-n"),
        ("index", "--chunk-size"),
        ("eval", "--ray-workers"),
        ("serve", "--max-documents"),
    ],
)
def test_command_help_imports_nothing_heavy(command: str, option: str) -> None:
    result, err, imported = _run(command, "--help")
    assert (result.returncode, err) == (0, "")
    assert result.stdout.startswith(f"usage: ce-rerank {command}")
    assert option in result.stdout
    _assert_light(imported)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "ix", "q", "--top-n", "0"), "argument --top-n: must be at least 1"),
        (("query", "ix"), "the following arguments are required: QUESTION"),
        (("query", "ix", "q", "--alpha", "1.5"), "argument --alpha: must be from 0"),
        (("bogus",), "argument COMMAND: invalid choice: 'bogus'"),
        (("serve", "--port", "70000"), "must be a TCP port from 0 to 65535"),
    ],
)
def test_an_argument_error_imports_nothing_heavy(
    args: tuple[str, ...], message: str
) -> None:
    result, err, imported = _run(*args)
    assert result.returncode == 2
    assert message in err
    _assert_light(imported)


def test_a_missing_index_folder_imports_nothing_heavy(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result, err, imported = _run("query", str(missing), "how do I back up?")
    assert result.returncode == 1
    assert err == (
        f"ce-rerank: error: INDEX_DIR {str(missing)!r} does not exist; create one "
        f"with: ce-rerank index PATHS... --out {missing}"
    )
    assert result.stdout == ""
    _assert_light(imported)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "{tmp}/nowhere", "--out", "{tmp}/ix"), "PATH: {tmp}/nowhere: no "),
        (("eval", "--dataset", "{tmp}/nowhere"), "--dataset '{tmp}/nowhere' does not"),
        (
            ("eval", "--index", "{tmp}/ix", "--queries", "q", "--qrels", "r"),
            "--index '{tmp}/ix' does not exist",
        ),
        (("serve", "--int8"), "--int8 needs --backend openvino"),
    ],
)
def test_other_early_failures_import_nothing_heavy(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result, err, imported = _run(*(a.format(tmp=tmp_path) for a in args))
    assert result.returncode == 1
    assert err.startswith("ce-rerank: error: ")
    assert "\n" not in err
    assert message.format(tmp=tmp_path) in err
    _assert_light(imported)
