"""The examples run offline and print what the README promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_ce_rerank.cli import ExitStatus

EXAMPLES = Path(__file__).parents[2] / "examples"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_rerank_results_prints_both_orders(standin_ce_path: Path) -> None:
    result = _run("rerank_results.py", "--reranker", str(standin_ce_path))
    assert result.returncode == 0, result.stderr
    initial, final = result.stdout.split("Final reranked order:")
    assert re.findall(r"cosine=(\d\.\d{3})", initial) == [
        "0.740",
        "0.466",
        "0.364",
        "0.272",
    ]
    assert len(re.findall(r"^\d\. score=-?\d+\.\d\d \(was \d\) \| ", final, re.M)) == 4


@pytest.mark.parametrize(
    "script",
    ["rerank_results.py", "chain.py", "agent_tool.py", "llama_index_query_engine.py"],
)
def test_a_missing_reranker_is_one_line_and_the_cli_exit_status(script: str) -> None:
    result = _run(script, "--reranker", "acme/missing-reranker")
    assert result.returncode == ExitStatus.ERROR == 1  # as ce-rerank exits
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{script}: error: model 'acme/missing-reranker'")
    assert "--reranker PATH" in lines[0]
    assert "build_standin_reranker.py" in lines[0]  # the offline way out
    assert result.stdout == ""  # nothing was run before it failed


def test_a_malformed_command_line_exits_as_argparse_does() -> None:
    result = _run("rerank_results.py", "--no-such-option")
    assert result.returncode == ExitStatus.USAGE == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_chain_example(standin_ce_path: Path) -> None:
    result = _run("chain.py", "--reranker", str(standin_ce_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("first stage #") == 2
    assert "Answer: " in result.stdout


def test_agent_tool_example(standin_ce_path: Path) -> None:
    result = _run("agent_tool.py", "--reranker", str(standin_ce_path))
    assert result.returncode == 0, result.stderr
    assert "calls search_ops_docs" in result.stdout
    # At most top_n=3 documents, as many as the 40-token budget holds, counted
    # by the stand-in's own tokenizer on the tool's whole text.
    assert 1 <= result.stdout.count("artifact: retrieval #") <= 3
    (used,) = re.findall(r"tool text: (\d+) tokens of a 40-token budget", result.stdout)
    assert 0 < int(used) <= 40


def test_llama_index_query_engine_example(standin_ce_path: Path) -> None:
    result = _run("llama_index_query_engine.py", "--reranker", str(standin_ce_path))
    assert result.returncode == 0, result.stderr
    lines = re.findall(
        r"^\d\. score=-?\d+\.\d\d \(was (\d), cosine=(\d\.\d{3})\) \| ",
        result.stdout,
        re.M,
    )
    # The first stage is the bundled MiniLM's, as in rerank_results.py.
    assert sorted(cosine for _, cosine in lines) == ["0.272", "0.364", "0.466", "0.740"]
    assert sorted(rank for rank, _ in lines) == ["1", "2", "3", "4"]
