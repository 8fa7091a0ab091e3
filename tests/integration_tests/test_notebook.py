"""examples/notebook.ipynb runs offline and shows its results as tables.

The notebook is executed with nbclient in a kernel of this test's own Python
(a kernel spec written to a temporary JUPYTER_PATH, so a system-wide "python3"
kernel can never be picked instead), with the Hub offline: the reranker is the
untrained stand-in the notebook builds itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).parents[2] / "examples"
NOTEBOOK = EXAMPLES / "notebook.ipynb"
KERNEL = "ce-rerank-test"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec = jupyter_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "langchain-ce-rerank tests",
                "language": "python",
                # conftest.py forces these in this process; the kernel gets them too.
                "env": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            }
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            notebook,
            kernel_name=KERNEL,
            timeout=600,
            resources={"metadata": {"path": str(EXAMPLES)}},
        )
        client.execute()
    return notebook


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    ]


def _html(notebook: Any) -> list[str]:
    return [
        output["data"]["text/html"]
        for output in _outputs(notebook)
        if "text/html" in output.get("data", {})
    ]


def test_the_committed_notebook_has_no_outputs() -> None:
    # Outputs hold timings and a temporary path: they would change every run.
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_the_notebook_runs_without_errors(executed: Any) -> None:
    errors = [o for o in _outputs(executed) if o["output_type"] == "error"]
    assert errors == []


def test_the_notebook_writes_nothing_to_stderr(executed: Any) -> None:
    noise = [
        o["text"]
        for o in _outputs(executed)
        if o["output_type"] == "stream" and o["name"] == "stderr"
    ]
    assert noise == [], "".join(noise)[:2000]


def test_the_notebook_shows_the_store_the_movement_and_the_report(
    executed: Any,
) -> None:
    html = _html(executed)
    store = [h for h in html if "<b>FaissVectorStore</b>" in h]
    assert len(store) == 1
    assert ">384<" in store[0]
    assert ">sentence-transformers/all-MiniLM-L6-v2<" in store[0]

    explanations = [h for h in html if 'class="ce-rerank-explanation"' in h]
    assert len(explanations) == 2
    table = explanations[0]
    assert "Not returned" not in table  # top_n=None: all four come back
    assert "How do I restore a Docker volume backup on another host?" in table
    assert "rerank (logit)" in table
    assert table.count(" &rarr; ") == 4 + 1  # four rows and the legend
    assert "Create a tar archive from a Docker volume" in table

    reports = [h for h in html if 'class="ce-rerank-report"' in h]
    assert len(reports) == 1
    for stage in ("dense", "bm25", "hybrid"):
        for name in (stage, f"{stage} + rerank", f"{stage} + rerank, RRF"):
            assert f">{name}</td>" in reports[0]
    assert "12 queries, k=4, top_n=3" in reports[0]

    plots = [o for o in _outputs(executed) if "image/png" in o.get("data", {})]
    assert len(plots) == 2  # the report's bars and the reliability diagram
    dataframes = [h for h in html if "dataframe" in h]
    assert len(dataframes) == 1
    assert "nDCG@10" in dataframes[0]


def test_the_notebook_says_why_each_candidate_was_not_returned(executed: Any) -> None:
    # explain(..., top_n=3, max_context_tokens=40): any three of the four
    # candidates hold more than 40 tokens, so the budget drops at least one,
    # and top_n the fourth; the reasons sit under the movement table.
    shaped = [h for h in _html(executed) if 'class="ce-rerank-explanation"' in h][1]
    movement, dropped = shaped.split('class="ce-rerank-dropped"')
    kept = movement.count("<tr>") - 1  # less the header row
    assert 1 <= kept <= 2
    assert f"Not returned ({4 - kept})" in movement
    assert "ranked past top_n" in dropped
    assert "max_context_tokens was full" in dropped
    assert dropped.count("<tr>") == 1 + 4 - kept


def test_the_notebook_fits_and_uses_a_relevance_calibration(executed: Any) -> None:
    reports = [h for h in _html(executed) if 'class="ce-rerank-calibration"' in h]
    assert len(reports) == 1
    assert "platt calibration of" in reports[0]
    assert "Reliability" in reports[0]
    assert "Brier" in reports[0]
    last = [c for c in executed.cells if c.cell_type == "code"][-1]
    [result] = [o for o in last.outputs if o["output_type"] == "execute_result"]
    shown = result["data"]["text/plain"]
    assert shown.startswith("[('doc-")
    assert shown.count("('doc-") == 4


def test_the_notebook_says_when_it_uses_the_stand_in(executed: Any) -> None:
    printed = "".join(
        o["text"]
        for o in _outputs(executed)
        if o["output_type"] == "stream" and o["name"] == "stdout"
    )
    assert "using the untrained stand-in" in printed
    assert "meaningless" in printed
