"""How long `ce-rerank --help` takes: this checkout, and a git ref before it.

Each run is a fresh process, as when a user types the command; the script
prints the median over `--repeats` runs, timed in interleaved rounds (see
`_timing.interleaved_median_ms`) next to a bare `python -c pass`, the floor no
CLI can go under. With `--baseline REF` the same command is timed for REF,
checked out into a temporary git worktree, and the ratio is printed.

    python benchmarks/cli_startup.py [--baseline e08d296] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _timing import interleaved_median_ms

ROOT = Path(__file__).resolve().parents[1]
"""The checkout this script belongs to (HEAD, with any uncommitted changes)."""


def _command() -> list[str]:
    """`ce-rerank --help`: the installed console script, else the same call."""
    script = Path(sys.executable).with_name("ce-rerank")
    if script.is_file():
        return [sys.executable, str(script), "--help"]
    code = "import sys; from langchain_ce_rerank.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "--help"]


def _env(source: Path) -> dict[str, str]:
    """An environment that imports `langchain_ce_rerank` from `source`."""
    return {**os.environ, "PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1"}


def _check_source(source: Path) -> None:
    """Fail unless the package really is imported from `source`."""
    code = "import langchain_ce_rerank as p; print(p.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(source),
        cwd=source,  # `-c` puts the working folder first on sys.path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(source.resolve()):
        msg = f"langchain_ce_rerank came from {where}, not from {source}"
        raise SystemExit(msg)


def _runner(command: list[str], env: dict[str, str], cwd: Path) -> Callable[[], object]:
    def run() -> None:
        subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)

    return run


@contextmanager
def _checkout(ref: str) -> Iterator[Path]:
    """`ref` checked out into a temporary worktree, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ce-rerank-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), ref],
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _describe(ref: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="a git ref to compare with")
    parser.add_argument("--repeats", type=int, default=15, help="runs per command")
    args = parser.parse_args()

    command = _command()
    _check_source(ROOT)
    print(f"command: {' '.join(Path(c).name for c in command)}")
    print(f"HEAD: {_describe('HEAD')} (+ uncommitted changes, if any)")
    runs: dict[str, Callable[[], object]] = {
        "python -c pass": _runner(
            [sys.executable, "-c", "pass"], dict(os.environ), ROOT
        ),
        "HEAD": _runner(command, _env(ROOT), ROOT),
    }
    with ExitStack() as stack:
        if args.baseline:
            baseline = stack.enter_context(_checkout(args.baseline))
            _check_source(baseline)
            print(f"baseline: {_describe(args.baseline)}")
            runs[args.baseline] = _runner(command, _env(baseline), baseline)
        medians = interleaved_median_ms(runs, args.repeats)
    print(f"\nmedian of {args.repeats} runs each, interleaved")
    print(f"{'':<16} {'ms':>8}")
    for name, ms in medians.items():
        print(f"{name:<16} {ms:8.1f}")
    if args.baseline:
        before, after = medians[args.baseline], medians["HEAD"]
        print(
            f"\n--help: {before:.0f} ms at {args.baseline} -> {after:.0f} ms now, "
            f"{before / after:.1f}x faster"
        )


if __name__ == "__main__":
    main()
