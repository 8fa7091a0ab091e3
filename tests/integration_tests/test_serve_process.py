"""`ce-rerank serve` as a real process: uvicorn on 127.0.0.1, the stand-in model.

The server picks a free port itself (`--port 0`) and names it on stderr; the
tests wait for log lines, never for fixed times.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.windows import tokenizer_spans
from langchain_ce_rerank.serving import RemoteCrossEncoder

pytestmark = pytest.mark.serve

SERVE = [sys.executable, "-m", "langchain_ce_rerank.cli", "serve"]
QUERY = "how do I restore a docker volume backup"
TEXTS = [
    "Create a tar archive from a Docker volume and copy it to the new host.",
    "Inspect container logs with docker logs when a service exits.",
    "List Docker images and tags before promoting a release.",
    "Cats purr when they are content.",
]


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)
    listening: threading.Event = field(default_factory=threading.Event)
    loaded: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.changed:
                self.lines.append(line)
                found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
                if found and not self.url:
                    self.url = found.group(1)
                    self.listening.set()
                if "Model loaded" in line:
                    self.loaded.set()
                self.changed.notify_all()
        self.listening.set()  # the process ended: stop waiting
        self.loaded.set()

    def wait_for_line(self, text: str, timeout: float = 60) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: (
                    any(text in line for line in self.lines)
                    or self.process.poll() is not None
                ),
                timeout,
            ) and any(text in line for line in self.lines)

    @property
    def log(self) -> str:
        return "".join(self.lines)


@contextmanager
def serve(
    model: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    process = subprocess.Popen(
        [*SERVE, "--reranker", str(model), "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    server = Server(process)
    reader = threading.Thread(target=server.read_stderr, daemon=True)
    reader.start()
    try:
        assert server.listening.wait(120), server.log
        assert server.url, server.log
        assert server.loaded.wait(300), server.log
        assert process.poll() is None, server.log
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)


def test_the_remote_client_gets_the_in_process_scores(standin_ce_path: Path) -> None:
    engine = Reranker(model=standin_ce_path)
    expected = engine.score(QUERY, TEXTS)
    expected_other = engine.score("cats", TEXTS[:2])
    # max_tokens_per_doc cuts with the model's own tokenizer: the first 3 tokens.
    spans = tokenizer_spans(engine.load_model().tokenizer)
    cut = [text[: spans(text)[2][1]] for text in TEXTS]
    expected_cut = engine.score(QUERY, cut)
    with serve(
        standin_ce_path, "--model-name", "standin", env={"CE_RERANK_API_KEY": "k3y"}
    ) as server:
        with RemoteCrossEncoder(
            server.url, api="cohere", model="standin", api_key="k3y"
        ) as client:
            pairs = [(QUERY, t) for t in TEXTS] + [("cats", t) for t in TEXTS[:2]]
            scores = client.score(pairs)
            ranked = client.rank(QUERY, TEXTS)
        truncated = httpx.post(
            f"{server.url}/v2/rerank",
            json={"query": QUERY, "documents": TEXTS, "max_tokens_per_doc": 3},
            headers={"Authorization": "Bearer k3y"},
        ).json()["results"]
        unauthorized = httpx.post(
            f"{server.url}/v2/rerank", json={"query": "q", "documents": ["a"]}
        )
        metrics = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": "Bearer k3y"}
        ).text
    assert all(type(score) is float for score in scores)
    assert scores == pytest.approx(expected + expected_other, rel=1e-4, abs=1e-4)
    in_process = sorted(range(len(TEXTS)), key=lambda i: -expected[i])
    assert [index for index, _ in ranked] == in_process
    by_index = {r["index"]: r["relevance_score"] for r in truncated}
    assert [by_index[i] for i in range(len(TEXTS))] == pytest.approx(
        expected_cut, rel=1e-4, abs=1e-4
    )
    assert expected_cut != pytest.approx(expected, rel=1e-3)
    assert unauthorized.status_code == 401
    assert 'ce_rerank_requests_total{status="200"}' in metrics


def test_sigterm_lets_the_request_in_flight_finish(standin_ce_path: Path) -> None:
    # A batch window of 10 minutes: the request can only be answered because
    # the shutdown stops the batcher waiting for company.
    with serve(standin_ce_path, "--max-batch-wait-ms", "600000") as server:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(
                httpx.post,
                f"{server.url}/v2/rerank",
                json={"query": QUERY, "documents": TEXTS},
                timeout=120,
            )
            queued = False
            # Poll until the server counts the request in flight; the wait
            # between polls ends early if the request is answered instead.
            while not queued and not wait([in_flight], timeout=0.05).done:
                metrics = httpx.get(f"{server.url}/metrics").text
                queued = "ce_rerank_requests_in_flight 1.0" in metrics
            assert queued, "the request was answered before the shutdown"
            server.process.send_signal(signal.SIGTERM)
            assert server.wait_for_line("Shutting down"), server.log
            try:
                late = httpx.post(
                    f"{server.url}/v2/rerank",
                    json={"query": QUERY, "documents": TEXTS},
                    timeout=60,
                )
                # Reached the app before uvicorn closed its socket: refused.
                assert late.status_code == 503
                assert "shutting down" in late.json()["message"]
            except httpx.ConnectError:
                pass  # uvicorn had already closed the listening socket
            answer = in_flight.result(timeout=120)
        assert server.process.wait(60) == 0, server.log
    assert answer.status_code == 200
    assert sorted(r["index"] for r in answer.json()["results"]) == [0, 1, 2, 3]
    assert "Finished server process" in server.log


def _metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def _poll(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_client_that_hangs_up_while_queued_is_not_scored(
    standin_ce_path: Path,
) -> None:
    # Hundreds of distinct pairs keep the model busy for a few seconds while
    # a second request waits behind them; its client then closes the socket.
    busy = [f"{text} (copy {i})" for i in range(100) for text in TEXTS]
    with serve(standin_ce_path, "--no-batching", "--no-cache") as server:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx.post,
                f"{server.url}/v2/rerank",
                json={"query": QUERY, "documents": busy},
                timeout=300,
            )
            assert _poll(
                lambda: (
                    _metric(server.url, "ce_rerank_requests_in_flight") == 1.0
                    and _metric(server.url, "ce_rerank_queued_pairs") == 0.0
                )
            ), "the first request never reached the model"
            payload = json.dumps({"query": "left", "documents": ["a", "b", "c"]})
            host, port = server.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as leaving:
                leaving.sendall(
                    (
                        "POST /v2/rerank HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/json\r\n"
                        f"Content-Length: {len(payload)}\r\n\r\n{payload}"
                    ).encode()
                )
                assert _poll(
                    lambda: _metric(server.url, "ce_rerank_queued_pairs") == 3.0
                ), "the second request never reached the queue"
            # The socket is closed: the server drops the queued request.
            assert _poll(
                lambda: _metric(server.url, "ce_rerank_requests_abandoned_total") == 1.0
            ), server.log
            assert not first.done(), "the first request ended too soon to tell"
            assert first.result(timeout=300).status_code == 200
        assert _metric(server.url, "ce_rerank_pairs_scored_total") == len(busy)
        assert _metric(server.url, "ce_rerank_queued_pairs") == 0.0


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )


def test_help_lists_every_option() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for option in (
        "--reranker", "--model-name", "--backend", "--int8", "--device",
        "--max-length", "--activation", "--batch-size", "--no-cache", "--host",
        "--port", "--api-key", "--max-batch-wait-ms", "--max-batch-pairs",
        "--no-batching", "--max-documents", "--max-document-chars",
        "--max-body-bytes", "--graceful-timeout", "--log-level",
    ):  # fmt: skip
        assert option in result.stdout, option
    assert "CE_RERANK_API_KEY" in result.stdout
    assert "127.0.0.1" in result.stdout


def test_a_missing_model_fails_at_once_naming_the_flag(tmp_path: Path) -> None:
    result = _run("--reranker", str(tmp_path / "nowhere"), "--port", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("ce-rerank: error: model ")
    assert "nowhere" in result.stderr
    assert "--reranker PATH" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_int8_needs_a_backend() -> None:
    result = _run("--int8")
    assert result.returncode == 1
    assert "--int8 needs --backend openvino" in result.stderr


def test_a_busy_port_is_named(standin_ce_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _run("--reranker", str(standin_ce_path), "--port", str(port))
    assert result.returncode == 1
    assert f"--host 127.0.0.1 --port {port}" in result.stderr
