"""Run the real `ce-rerank` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, cwd: Path | None = None, python: str = ""
) -> subprocess.CompletedProcess[str]:
    """`ce-rerank ARGS...` offline; `python` runs code before the CLI instead."""
    command = (
        [sys.executable, "-c", python, *args]
        if python
        else [sys.executable, "-m", "langchain_ce_rerank.cli", *args]
    )
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"},
        timeout=600,
    )


def cli_error(*args: str, cwd: Path | None = None, python: str = "") -> str:
    """Run a failing command; check it failed as promised and return its line."""
    result = run_cli(*args, cwd=cwd, python=python)
    err = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, err)
    assert "Traceback" not in err, err
    assert "\n" not in err, err  # one line
    assert err.startswith("ce-rerank: error: "), err
    return err
