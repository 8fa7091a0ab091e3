"""benchmarks/gpu.py: on a machine without CUDA it says so and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=False,
    )


def test_without_cuda_it_says_so_and_exits_0() -> None:
    # No GPU visible, whatever this machine has.
    done = run(CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no CUDA GPU on this machine")
    assert "--device cpu --quick" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_bad_flag_is_a_usage_error() -> None:
    done = run("--levels", "many", CUDA_VISIBLE_DEVICES="")
    assert done.returncode == 2
    assert "--levels: invalid int value: 'many'" in done.stderr
