"""The package's layout keeps its promises: no import cycles between concepts,
and what several modules share is not private."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "langchain_ce_rerank"


def _imports(path: Path) -> set[str]:
    """Every `langchain_ce_rerank` module a file imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("langchain_ce_rerank")}


def _package_imports(folder: str, but: str | None = None) -> set[str]:
    files = [p for p in (PACKAGE / folder).rglob("*.py") if p != PACKAGE / str(but)]
    return set().union(*(_imports(p) for p in files))


@pytest.mark.parametrize(
    ("importer", "imported", "but"),
    [
        # The report draws itself with display's primitives; display knows
        # nothing of reports (but for the deprecated alias of the old path).
        ("display", "langchain_ce_rerank.evaluation", "display/__init__.py"),
        # The server's app uses the request contract, never the reverse.
        ("serving/contract.py", "langchain_ce_rerank.serving.app", None),
        ("serving/jobs.py", "langchain_ce_rerank.serving.app", None),
        # The engine is framework-neutral and below every door.
        ("engine", "langchain_ce_rerank.serving", None),
        ("engine", "langchain_ce_rerank.display", None),
        # The store is below the reranking retriever, ingest and the CLI; its
        # retriever searches the store's read side, never the store class.
        ("store", "langchain_ce_rerank.reranking_retriever", None),
        ("store", "langchain_ce_rerank.ingest", None),
        ("store", "langchain_ce_rerank.cli", None),
        ("store/retriever.py", "langchain_ce_rerank.store.vectorstore", None),
        ("store/retriever.py", "langchain_ce_rerank.store.opening", None),
    ],
)
def test_no_cycle_between_concepts(
    importer: str, imported: str, but: str | None
) -> None:
    path = PACKAGE / importer
    names = _package_imports(importer, but) if path.is_dir() else _imports(path)
    assert not {n for n in names if n.startswith(imported)}


def test_the_report_tables_moved_but_the_old_path_still_works() -> None:
    from langchain_ce_rerank.evaluation.rendering import report_text

    with pytest.warns(DeprecationWarning, match="evaluation.rendering.report_text"):
        from langchain_ce_rerank.display import report_text as old
    assert old is report_text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from langchain_ce_rerank.display import explain  # noqa: F401


def test_the_old_vectorstore_path_works_and_warns() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    from langchain_ce_rerank.vectorstore import FaissVectorStore\n"
        "from langchain_ce_rerank.store import FaissVectorStore as home\n"
        "assert FaissVectorStore is home\n"
        "print([str(w.message) for w in caught if w.category is DeprecationWarning])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "langchain_ce_rerank.vectorstore is deprecated" in out


def test_one_default_cross_encoder() -> None:
    defined = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assign)
        and any(
            isinstance(t, ast.Name) and t.id == "DEFAULT_CROSS_ENCODER"
            for t in node.targets
        )
    ]
    assert defined == ["models/cross_encoder.py"]


def test_what_modules_share_is_not_private() -> None:
    # A name imported by another module is part of the package's inner API:
    # it carries no leading underscore (dunders such as __version__ aside).
    shared = sorted(
        f"{path.relative_to(PACKAGE).as_posix()}: {node.module}.{alias.name}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("langchain_ce_rerank")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    )
    assert shared == []


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _run_time_imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules a file imports when it runs (not `TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def test_no_module_imports_itself_back() -> None:
    # Imports at any depth, lazy ones included: module A importing B while B
    # (directly or through others) imports A is a cycle. A package's
    # `__getattr__` table is not an import, so a package re-exporting its
    # modules is not one.
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: _run_time_imports(p, set(files)) - {m} for m, p in files.items()}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    assert cycles == []


def _names_faiss_vector_store(tree: ast.AST) -> list[int]:
    """Lines that import or name `FaissVectorStore` (docstrings aside)."""
    lines = []
    for node in ast.walk(tree):
        named = (
            (isinstance(node, ast.alias) and node.name == "FaissVectorStore")
            or (isinstance(node, ast.Name) and node.id == "FaissVectorStore")
            or (isinstance(node, ast.Attribute) and node.attr == "FaissVectorStore")
            or (  # a quoted annotation or cast("FaissVectorStore", ...)
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(
                    r"[\w.\[\], |]*FaissVectorStore[\w.\[\], |]*", node.value
                )
                is not None
            )
        )
        if named:
            lines.append(getattr(node, "lineno", 0))
    return lines


def test_faiss_vector_store_is_named_only_inside_the_store() -> None:
    # Everything else holds an IndexStore, opened by store.open_index or made
    # by store.new_index; the package root re-exports the class, and the old
    # import path stays as a deprecated alias.
    allowed = {PACKAGE / "__init__.py", PACKAGE / "vectorstore.py"}
    naming = {
        f"{path.relative_to(PACKAGE).as_posix()}:{line}"
        for path in PACKAGE.rglob("*.py")
        if PACKAGE / "store" not in path.parents and path not in allowed
        for line in _names_faiss_vector_store(ast.parse(path.read_text()))
    }
    assert naming == set()
