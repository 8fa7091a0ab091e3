"""Which promises of the compressor contract each reranker keeps, from real runs.

Runs `langchain_ce_rerank.testing.CompressorContractTests` on our
`CrossEncoderCompressor` (with the MiniLM stand-in model) and on the anchors in
tests/integration_tests/test_anchor_contracts.py, with `--runxfail` so the
anchors' `known_breaks` do not hide anything, and prints a Markdown table:
one row per promise, one column per reranker, and the failure messages below.

Needs the `[bench]` extra (langchain-community, flashrank, onnx):

    python benchmarks/contract_table.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langchain_ce_rerank.testing import CompressorContractTests

ROOT = Path(__file__).resolve().parent.parent

SUITES = {
    "TestStandinModelContract": (
        "tests/unit_tests/test_compressor_contract.py",
        "ours: `CrossEncoderCompressor`",
    ),
    "TestCrossEncoderRerankerContract": (
        "tests/integration_tests/test_anchor_contracts.py",
        "`CrossEncoderReranker`",
    ),
    "TestFlashrankRerankContract": (
        "tests/integration_tests/test_anchor_contracts.py",
        "`FlashrankRerank`",
    ),
}


@dataclass
class Outcomes:
    """Collects (suite, test) -> (outcome, message) while pytest runs."""

    results: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = (yield).get_result()
        cls = getattr(item, "cls", None)
        name = getattr(item, "originalname", item.name)
        if cls is None or cls.__name__ not in SUITES:
            return
        key = (cls.__name__, name)
        if report.skipped and call.when in {"setup", "call"}:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.results[key] = ("n/a", reason.removeprefix("Skipped: "))
        elif report.failed:
            message = call.excinfo.exconly() if call.excinfo else str(report.longrepr)
            self.results[key] = ("breaks", _first_line(message))
        elif call.when == "call" and report.passed:
            self.results[key] = ("keeps", "")


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0]
    return re.sub(r"^(AssertionError|Failed): ", "", line)


def promises() -> list[tuple[str, str]]:
    """(test name, first docstring line) of each promise, in class order."""
    return [
        (name, (getattr(CompressorContractTests, name).__doc__ or name).splitlines()[0])
        for name in vars(CompressorContractTests)
        if name.startswith("test_")
    ]


def table(outcomes: Outcomes) -> str:
    header = ["promise (test)", *(label for _, label in SUITES.values())]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    notes: list[str] = []
    for name, doc in promises():
        cells = [f"{doc} (`{name.removeprefix('test_')}`)"]
        for suite in SUITES:
            outcome, message = outcomes.results.get((suite, name), ("not run", ""))
            if outcome == "breaks":
                notes.append(
                    f"{suite.removeprefix('Test').removesuffix('Contract')}"
                    f", `{name}`: {message}"
                )
                cells.append(f"**breaks** [{len(notes)}]")
            elif outcome == "n/a":
                cells.append(f"n/a ({message})")
            else:
                cells.append(outcome)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.extend(f"{i}. {note}" for i, note in enumerate(notes, start=1))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    outcomes = Outcomes()
    targets = sorted({f"{path}::{suite}" for suite, (path, _) in SUITES.items()})
    args = ["-q", "-p", "no:cacheprovider", "--runxfail", "-m", "", *targets]
    os.chdir(ROOT)
    with contextlib.redirect_stdout(sys.stderr):
        pytest.main(args, plugins=[outcomes])
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
