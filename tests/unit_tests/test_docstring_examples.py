"""The examples in public docstrings run (those that need no Hub download)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import langchain_ce_rerank

# These two show the default ms-marco cross-encoder, which only the Hub serves;
# the same calls run against the stand-in in tests/integration_tests.
NEEDS_HUB = {"CrossEncoderCompressor", "build_reranking_retriever"}
RUNNABLE = sorted(
    name
    for name in langchain_ce_rerank.__all__
    if name != "__version__" and name not in NEEDS_HUB
)


@pytest.mark.parametrize("name", RUNNABLE)
def test_docstring_example_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = getattr(langchain_ce_rerank, name).__doc__ or ""
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks, f"{name} has no example"
    monkeypatch.chdir(tmp_path)
    code = "\n".join(textwrap.dedent(block) for block in blocks)
    exec(compile(code, f"<{name} docstring>", "exec"), {})
