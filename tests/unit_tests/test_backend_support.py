"""The family x backend support table, and its refusals at every door.

The combinations themselves are tried on the stand-ins in
tests/integration_tests/test_family_backends.py (the onnx/openvino
environment). Here a refusal is put in the table (no combination is refused
today), to check that every door refuses it at construction, in its own
words, before any model is loaded or exported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import cli_error

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.models import load_cross_encoder
from langchain_ce_rerank.models.backends import BACKENDS, support
from langchain_ce_rerank.models.backends.support import (
    SUPPORT,
    SUPPORTED_FAMILIES,
    Support,
    check_family,
    combinations,
    family_error,
    support_markdown,
)
from langchain_ce_rerank.models.families import FAMILY_NAMES
from langchain_ce_rerank.testing import STANDIN_FAMILIES

README = Path(__file__).resolve().parents[2] / "README.md"
WHY = "a test refusal"


@pytest.fixture
def refuse_torch_causal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse the causal-LM family on torch fp32, the one backend every
    environment has, so the doors can be checked without the extras."""
    table = {**SUPPORT, "causal-lm": {("torch", None): Support(False, WHY)}}
    monkeypatch.setattr(support, "SUPPORT", table)


def test_the_table_names_known_families_and_offered_combinations() -> None:
    assert set(SUPPORTED_FAMILIES) == set(STANDIN_FAMILIES)
    assert set(SUPPORT) <= set(FAMILY_NAMES)
    offered = set(combinations())
    for family, table in SUPPORT.items():
        assert set(table) <= offered, family
    assert combinations()[0] == ("torch", None)
    assert len(offered) == sum(1 + len(b.quantizations) for b in BACKENDS.values())


def test_every_family_is_tried_on_every_combination_or_refused() -> None:
    # No combination is left unsaid: each reads as works or refused.
    for family in SUPPORTED_FAMILIES:
        for backend, quantization in combinations():
            found = support.support(family, backend, quantization)
            assert found.works or found.note, (family, backend, quantization)


def test_an_unknown_family_is_never_refused() -> None:
    check_family("other", "openvino", "int8")
    check_family("a-family-from-the-future", "onnx", None)


def test_the_readme_shows_the_table() -> None:
    assert support_markdown() in README.read_text(encoding="utf-8")


def test_the_refusal_names_backend_family_reason_and_what_works(
    refuse_torch_causal: None,
) -> None:
    message = family_error("causal-lm", "torch", None, model="my/model")
    assert message.startswith(
        "backend='torch' does not support the causal-lm family (model 'my/model')"
    )
    assert WHY in message
    assert "use backend='openvino' or backend='openvino', quantization='int8'" in (
        message
    )
    cli = family_error("causal-lm", "torch", None, cli=True)
    assert cli.startswith("--backend torch does not support the causal-lm family")
    assert "use --backend openvino or --backend openvino --int8" in cli
    with pytest.raises(ValueError, match="does not support the causal-lm family"):
        check_family("causal-lm", "torch", None)
    check_family("modernbert", "torch", None)  # other families are untouched


def test_every_door_refuses_at_construction(
    refuse_torch_causal: None,
    causal_lm_standin_path: Path,
    modernbert_standin_path: Path,
) -> None:
    folder = str(causal_lm_standin_path)
    wanted = f"backend='torch' does not support the causal-lm family .*{WHY}"
    with pytest.raises(ValueError, match=wanted):
        Reranker(model=folder)
    with pytest.raises(ValueError, match=wanted):
        CrossEncoderCompressor(model=causal_lm_standin_path)
    with pytest.raises(ValueError, match=wanted):
        load_cross_encoder(folder, shared=False)
    # Another family on the same backend is built as before (not loaded yet).
    Reranker(model=modernbert_standin_path)


_REFUSING_CLI = (
    "import sys; from langchain_ce_rerank.models.backends import support\n"
    "support.SUPPORT = {'causal-lm': {('torch', None): support.Support(False, "
    f"{WHY!r})}}}}\n"
    "from langchain_ce_rerank.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_the_cli_refuses_in_its_flags(causal_lm_standin_path: Path) -> None:
    # `ce-rerank serve` (`query` shares `check_backend_support` through
    # `prepare_reranker`, after its index is found).
    err = cli_error(
        "serve",
        "--reranker",
        str(causal_lm_standin_path),
        "--port",
        "0",
        python=_REFUSING_CLI,
    )
    assert "--backend torch does not support the causal-lm family" in err
    assert WHY in err
    assert "backend=" not in err  # the CLI's words, not the library's
