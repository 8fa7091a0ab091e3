"""The text the stand-ins' tokenizers are trained on: found on any Python machine.

No real tokenizer of each family is available offline, so the stand-ins train
their own with the `tokenizers` library. The text is the docstrings of a fixed
list of standard-library modules, read in a fixed order, so the same Python
version always gives the same text (and the same vocabulary); a different
Python version may give slightly different docstrings, hence different but
equally valid tokenizers. A few accented and non-Latin sentences are added so a
multilingual (XLM-RoBERTa-like) tokenizer has seen more than ASCII.
"""

from __future__ import annotations

import importlib
import warnings
from functools import cache

__all__ = ["STANDIN_TEXT_CHARS", "tokenizer_training_text"]

STANDIN_TEXT_CHARS = 100_000
"""How much docstring text (in characters) trains a stand-in tokenizer: enough
for a 2,000-token vocabulary of real sub-words, small enough to train in about
a second."""

_MODULES = (
    "argparse",
    "collections",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "functools",
    "gzip",
    "heapq",
    "inspect",
    "itertools",
    "json",
    "logging",
    "os",
    "pathlib",
    "random",
    "re",
    "shutil",
    "socket",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "unittest",
    "urllib.parse",
    "zipfile",
)

_MULTILINGUAL = (
    "Berlin hatte 2019 eine Bevölkerung von 3.520.031 Einwohnern.",
    "Déplacez le volume Docker vers un autre hôte avant la mise à jour.",
    "¿Cuántas personas viven en Madrid? Más de tres millones.",
    "Москва является столицей России.",
    "東京は日本の首都です。",
    "북한산은 서울에 있는 산입니다.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",  # noqa: RUF001 - Greek on purpose
)


@cache
def tokenizer_training_text() -> tuple[str, ...]:
    """Lines of text to train a stand-in tokenizer on, the same on every call.

    Returns:
        Non-empty lines: standard-library docstrings (at most
        `STANDIN_TEXT_CHARS` characters of them), then a few sentences in other
        scripts.

    Example:
        ```python
        from langchain_ce_rerank.testing.standin_text import tokenizer_training_text

        lines = tokenizer_training_text()
        print(len(lines), lines[0][:40])
        ```
    """
    lines: list[str] = []
    size = 0
    with warnings.catch_warnings():
        # Some modules deprecate attributes on access (e.g. typing.io).
        warnings.simplefilter("ignore")
        for name in _MODULES:
            module = importlib.import_module(name)
            objects = [module, *(getattr(module, a) for a in sorted(vars(module)))]
            for obj in objects:
                doc = getattr(obj, "__doc__", None)
                if not isinstance(doc, str):
                    continue
                for line in doc.splitlines():
                    text = line.strip()
                    if text and size < STANDIN_TEXT_CHARS:
                        lines.append(text)
                        size += len(text) + 1
    return (*lines, *_MULTILINGUAL)
