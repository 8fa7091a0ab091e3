"""Which model family runs on which backend: the one support table.

Every combination of a model family (`models.families`) and a backend with
each of its quantizations either works, meaning its scores agree with torch
fp32 on the family's offline stand-in
(tests/integration_tests/test_family_backends.py), or is refused when the
reranker is constructed, with the reason and what works instead. `SUPPORT`
below is that table; the checks, the error messages, the README's table
(`support_markdown()`) and the tests all read it.

A family outside the table (`"other"`: an architecture we have not tried) is
never refused: it runs as sentence-transformers runs it.

Like the rest of the registry, importing this module imports no model library.

Example:
    ```python
    from langchain_ce_rerank.models.backends.support import check_family, support

    print(support("causal-lm", "openvino", "int8").works)  # True
    check_family("modernbert", "onnx", "int8")  # fine; a refused one raises
    ```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "SUPPORT",
    "SUPPORTED_FAMILIES",
    "Combination",
    "Support",
    "check_family",
    "check_model",
    "combinations",
    "family_error",
    "support",
    "support_markdown",
]

Combination = tuple[str, str | None]
"""`(backend, quantization)`, quantization None for full precision."""


@dataclass(frozen=True)
class Support:
    """Whether one family runs on one backend and quantization, and what was seen.

    Example:
        ```python
        from langchain_ce_rerank.models.backends.support import support

        found = support("causal-lm", "onnx", None)
        print(found.works, found.note)
        ```
    """

    works: bool
    """True: scores agree with torch fp32 on the family's stand-in. False:
    refused when a reranker is constructed."""

    note: str = ""
    """What was seen: for a refusal, why; for a working combination, how it
    is made to work or what to know (one sentence, shown in the README)."""


SUPPORTED_FAMILIES: tuple[str, ...] = ("bert", "xlm-roberta", "modernbert", "causal-lm")
"""The families tried on every backend, in the order tables list them (the
families `langchain_ce_rerank.testing.build_standin` builds)."""

_WORKS = Support(works=True)

# Causal-LM rerankers (Qwen3-Reranker, mxbai-rerank-v2) are exported by
# `models.causal_export`, not by sentence-transformers' loaders: see there.
_CAUSAL_ONNX = (
    "exported without the generation cache (optimum's own causal-LM export "
    "fails on a sentence-transformers folder); the graph returns every "
    "position's logits, about batch x tokens x vocabulary x 4 bytes"
)
_CAUSAL_OPENVINO = (
    "exported stateless, without the generation cache, keeping only the last "
    "position's logits (the default stateful export failed int8 scoring)"
)

SUPPORT: Mapping[str, Mapping[Combination, Support]] = MappingProxyType(
    {
        "bert": {},
        "xlm-roberta": {},
        "modernbert": {},
        "causal-lm": {
            ("onnx", None): Support(works=True, note=_CAUSAL_ONNX),
            ("onnx", "int8"): Support(
                works=False,
                note="onnxruntime's dynamic int8 also quantizes the output "
                "layer, and the score is the difference of two of its logits "
                "(yes - no): on the stand-in its ranking agreed with torch fp32 "
                "at Spearman 0.64 over 20 texts, where openvino int8 (static, "
                "calibrated) kept 0.99",
            ),
            ("openvino", None): Support(works=True, note=_CAUSAL_OPENVINO),
            ("openvino", "int8"): Support(
                works=True,
                note="the openvino export above, quantized by NNCF calibrated on "
                "chat-template inputs, as the model reads them",
            ),
        },
    }
)
"""Family -> the combinations that need saying something, refused or not; a
combination a family does not list simply works (its scores agree with torch
fp32 on the stand-in). Edit this table, and the checks, messages, README table
and tests follow."""


def combinations() -> list[Combination]:
    """Every backend with each of its quantizations, in the registry's order."""
    from langchain_ce_rerank.models.backends import BACKENDS

    return [
        (name, quantization)
        for name, backend in BACKENDS.items()
        for quantization in (None, *backend.quantizations)
    ]


def support(family: str, backend: str, quantization: str | None) -> Support:
    """How `family` fares on `backend` with `quantization`.

    Args:
        family: A family name (`models.families.FAMILY_NAMES`).
        backend: A backend name.
        quantization: None or one of the backend's quantizations.

    Returns:
        The table's entry; a family or combination it does not list works.
    """
    return SUPPORT.get(family, {}).get((backend, quantization), _WORKS)


def _says(backend: str, quantization: str | None, *, cli: bool) -> str:
    if cli:
        return f"--backend {backend}" + (f" --{quantization}" if quantization else "")
    return f"backend={backend!r}" + (
        f", quantization={quantization!r}" if quantization else ""
    )


def family_error(
    family: str,
    backend: str,
    quantization: str | None,
    *,
    model: str | None = None,
    cli: bool = False,
) -> str:
    """Why `family` is refused on `backend`/`quantization`, and what works.

    Args:
        family: The model's family.
        backend: The backend asked for.
        quantization: The quantization asked for (None: full precision).
        model: The model as the user gave it, to name it.
        cli: Say it in `ce-rerank`'s flags instead of Python parameters.

    Returns:
        The message: the combination, the family, the reason seen and every
        combination that works for this family.
    """
    found = support(family, backend, quantization)
    able = [
        _says(b, q, cli=cli) for b, q in combinations() if support(family, b, q).works
    ]
    named = f" (model {model!r})" if model else ""
    return (
        f"{_says(backend, quantization, cli=cli)} does not support the {family} "
        f"family{named}: {found.note}; use {' or '.join(able)} instead"
    )


def check_family(
    family: str,
    backend: str,
    quantization: str | None,
    *,
    model: str | None = None,
) -> None:
    """Raise unless `family` runs on `backend` with `quantization`.

    Cheap: a table lookup.

    Args:
        family: The model's family.
        backend: A backend name.
        quantization: None or one of the backend's quantizations.
        model: The model as the user gave it, named in the error.

    Raises:
        ValueError: The combination is refused; names the backend, the
            family, why, and what to use instead.
    """
    if not support(family, backend, quantization).works:
        raise ValueError(family_error(family, backend, quantization, model=model))


def refuses_any(backend: str, quantization: str | None) -> bool:
    """Whether some family is refused on `backend` with `quantization`."""
    return any(
        not found.works
        for table in SUPPORT.values()
        for combination, found in table.items()
        if combination == (backend, quantization)
    )


def check_model(
    model: str | os.PathLike[str],
    backend: str,
    quantization: str | None,
    *,
    cli: bool = False,
) -> None:
    """Raise unless the model with this id or folder runs on `backend`.

    Free when no family is refused on this combination (the torch backend);
    otherwise reads the model's `config.json` (`models.families.family_of`),
    no weights.

    Args:
        model: A model id or folder, as the user gave it.
        backend: A backend name.
        quantization: None or one of the backend's quantizations.
        cli: Word the error in `ce-rerank`'s flags.

    Raises:
        ValueError: The model's family is refused on this combination; names
            the backend, the family, why, and what to use instead.
    """
    if not refuses_any(backend, quantization):
        return
    from langchain_ce_rerank.models.families import family_of

    family = family_of(model).name
    if not support(family, backend, quantization).works:
        raise ValueError(
            family_error(family, backend, quantization, model=os.fspath(model), cli=cli)
        )


def support_markdown() -> str:
    """The support table as Markdown: one row per family, one column per backend.

    The README embeds this text verbatim (a test keeps them equal).
    """
    columns = combinations()
    heads = [f"{b} {q}" if q else b for b, q in columns]
    lines = [
        "| family | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(columns),
    ]
    notes: dict[str, int] = {}
    for family in SUPPORTED_FAMILIES:
        cells = []
        for backend, quantization in columns:
            found = support(family, backend, quantization)
            cell = "yes" if found.works else "**refused**"
            if found.note:
                number = notes.setdefault(found.note, len(notes) + 1)
                cell += f" ({number})"
            cells.append(cell)
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines.extend(f"({number}) {note}." for note, number in notes.items())
    return "\n".join(lines) + "\n"
