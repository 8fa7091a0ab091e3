"""Real English passages for benchmarks, from docstrings that installed packages ship.

Deterministic: the same packages give the same passages. Lengths are drawn
uniformly from 30 to 400 words, as retrieved passages of mixed length are.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import random
from collections.abc import Iterator

_MODULES = (
    "numpy",
    "scipy.stats",
    "scipy.linalg",
    "scipy.optimize",
    "json",
    "collections",
    "argparse",
    "email",
)
QUERY = "how do I compute the standard deviation of an array along an axis"


def _docstrings() -> list[str]:
    docs = []
    for name in _MODULES:
        module = importlib.import_module(name)
        for attribute in sorted(dir(module)):
            if attribute.startswith("_"):
                continue
            doc = inspect.getdoc(getattr(module, attribute, None)) or ""
            text = _prose(doc)
            if len(text.split()) >= 30:
                docs.append(text)
    return docs


def _is_prose(line: str) -> bool:
    """False for blank lines, doctest code, rules and numeric example output.

    Example output goes too because some packages (scipy.stats) fill their
    docstring examples with random numbers at import, which made the passages
    differ from run to run.
    """
    stripped = line.strip()
    if not stripped or stripped.startswith((">>>", "...", "-----", "array(")):
        return False
    tokens = stripped.split()
    numeric = sum(any(c.isdigit() for c in token) for token in tokens)
    return numeric * 2 <= len(tokens)


def _prose(doc: str) -> str:
    """The prose lines of a docstring, joined into one line of words."""
    return " ".join(" ".join(filter(_is_prose, doc.splitlines())).split())


def _cut(pool: list[str], rng: random.Random, longest: int) -> Iterator[str]:
    """Passages of 30 to `longest` words, cut in order from each text of `pool`."""
    for doc in pool:
        words = doc.split()
        while len(words) >= 30:
            length = min(len(words), rng.randint(30, longest))
            yield " ".join(words[:length])
            words = words[length:]


def passages(count: int, seed: int = 0) -> list[str]:
    """`count` passages of 30-400 words (long docstrings give several)."""
    rng = random.Random(seed)
    pool = _docstrings()
    rng.shuffle(pool)
    result = list(itertools.islice(_cut(pool, rng, 400), count))
    if len(result) < count:
        msg = f"only {len(result)} passages available, {count} asked for"
        raise RuntimeError(msg)
    return result


# A wider pool for recall on real embeddings (thousands of passages); kept
# apart from `passages` so the rerank and indexing texts stay as they were.
_WIDE_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "sympy",
    "torch",
    "transformers",
    "email",
    "asyncio",
    "xml",
    "http",
    "unittest",
)


def _wide_docstrings() -> list[str]:
    import pkgutil
    import warnings

    docs: set[str] = set()
    for package in _WIDE_PACKAGES:
        try:
            root = importlib.import_module(package)
        except ImportError:
            continue
        names = [package] + [
            m.name
            for m in pkgutil.walk_packages(getattr(root, "__path__", []), package + ".")
            if "test" not in m.name and "._" not in m.name
        ]
        for name in names[:400]:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    module = importlib.import_module(name)
            except Exception:  # optional dependencies missing: skip the module
                continue
            for attribute in sorted(dir(module)):
                if attribute.startswith("_"):
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        doc = inspect.getdoc(getattr(module, attribute, None)) or ""
                except Exception:  # lazy attributes whose imports fail
                    continue
                text = _prose(doc)
                if len(text.split()) >= 30:
                    docs.add(text)
    return sorted(docs)


def wide_passages(count: int, seed: int = 0) -> list[str]:
    """Up to `count` distinct passages of 30-200 words from many packages.

    Not guaranteed identical from run to run: across this many modules some
    docstrings are still generated at import. Used for recall, which only
    needs real text, not the same text.
    """
    rng = random.Random(seed)
    pool = _wide_docstrings()
    rng.shuffle(pool)
    return list(itertools.islice(_cut(pool, rng, 200), count))
