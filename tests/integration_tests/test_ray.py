"""Scaling out on Ray: Ray Serve replicas over HTTP and Ray Data reranking.

Runs on a small local Ray instance started here (2 CPUs, no dashboard) and
shut down at the end; the stand-in cross-encoder is loaded by each replica
and worker, so the scores compared are real model outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason='needs the [ray] extra: pip install ".[ray]"')
httpx = pytest.importorskip("httpx")

from doubles import WordOverlapCrossEncoder  # noqa: E402
from ray import serve  # noqa: E402
from ray_doubles import GatedCrossEncoder  # noqa: E402

from langchain_ce_rerank import build_reranking_retriever, evaluate  # noqa: E402
from langchain_ce_rerank.cli.ray_options import add_ray_options, ray_scorer  # noqa: E402
from langchain_ce_rerank.engine import Reranker  # noqa: E402
from langchain_ce_rerank.evaluation import load_beir  # noqa: E402
from langchain_ce_rerank.ray_data import RayDataScorer, rerank_dataset  # noqa: E402
from langchain_ce_rerank.serving import RemoteCrossEncoder  # noqa: E402
from langchain_ce_rerank.serving.contract import RequestLimits  # noqa: E402
from langchain_ce_rerank.serving.ray_serve import (  # noqa: E402
    CrossEncoderDeployment,
    IngressDeployment,
    RayServeArgs,
    ScoreJob,
    app_builder,
    build_app,
)

pytestmark = pytest.mark.ray

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = TESTS.parent / "examples"
DEADLINE_S = 120.0
METRICS_PORT = 0  # set by ray_cluster: where Ray exports its Prometheus metrics
QUERIES = [
    "How do I move a Docker volume to another host?",
    "Where are container logs?",
    "How do I restore a backup?",
    "List images before a release.",
]
TEXTS = [
    "Tar the Docker volume and copy it to the new host.",
    "docker logs shows a container's output.",
    "Extract the archive into a fresh volume to restore it.",
    "Release checklist: list the Docker images and their tags.",
    "Cats purr when they are content.",
]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until true or the generous deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {DEADLINE_S:.0f} s waiting for {what}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance for this module, small and quiet, then shut down."""
    with pytest.MonkeyPatch.context() as patch:
        # Workers import the test doubles by module name.
        path = os.environ.get("PYTHONPATH", "")
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), path) if p))
        patch.setenv("RAY_DEDUP_LOGS", "0")
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv("RAY_SERVE_LOG_TO_STDERR", "0")
        patch.setenv("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        global METRICS_PORT
        METRICS_PORT = _free_port()
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=200 * 1024 * 1024,
            log_to_driver=False,
            logging_level="ERROR",
            _metrics_export_port=METRICS_PORT,
            # Replicas report their metrics each second, not each 10 s.
            _system_config={"metrics_report_interval_ms": 1000},
        )
        try:
            yield
        finally:
            serve.shutdown()
            ray.shutdown()


@pytest.fixture(scope="module")
def engine(standin_ce_path: Path) -> Reranker:
    """The in-process engine every Ray path must agree with."""
    return Reranker(model=str(standin_ce_path), top_n=None)


@pytest.fixture(scope="module")
def serve_url(ray_cluster: None, standin_ce_path: Path) -> str:
    """Two scoring replicas of the stand-in behind /v2/rerank on 127.0.0.1."""
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    args = RayServeArgs(
        model=str(standin_ce_path), model_name="standin", num_replicas=2, num_cpus=0.25
    )
    serve.run(build_app(args), name="ce-rerank", route_prefix="/")
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False

    _wait_for(ready, "the Serve application to answer /readyz")
    return url


def _replica_actors(app: str, deployment: str) -> list[dict[str, Any]]:
    """The named actors of `deployment`'s replicas (Serve names them so)."""
    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    return [
        actor
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(prefix)
    ]


def test_remote_client_gets_the_in_process_scores(
    serve_url: str, engine: Reranker
) -> None:
    pairs = [(query, text) for query in QUERIES for text in TEXTS]
    with RemoteCrossEncoder(serve_url, api="cohere", model="standin") as client:
        remote = client.score(pairs)
    local = [
        s.score
        for item in engine.score_batch([(q, TEXTS) for q in QUERIES])
        for s in item
    ]
    assert remote == pytest.approx(local, rel=1e-5, abs=1e-6)
    assert all(type(score) is float for score in remote)


def test_cohere_v2_answers_and_errors(serve_url: str, engine: Reranker) -> None:
    body = {"query": QUERIES[0], "documents": TEXTS, "top_n": 2, "model": "standin"}
    answer = httpx.post(f"{serve_url}/v2/rerank", json=body, timeout=60)
    assert answer.status_code == 200
    data = answer.json()
    expected = engine.rank(QUERIES[0], TEXTS, top_n=2)
    assert [r["index"] for r in data["results"]] == [r.index for r in expected]
    assert data["meta"] == {"api_version": {"version": "2"}, "model": "standin"}
    wrong_model = httpx.post(
        f"{serve_url}/v2/rerank", json={**body, "model": "other"}, timeout=60
    )
    assert wrong_model.status_code == 404
    assert "'standin'" in wrong_model.json()["message"]
    blank = httpx.post(
        f"{serve_url}/v2/rerank", json={"query": " ", "documents": ["a"]}, timeout=60
    )
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["field"] == "query"
    # The stand-in reads no instruction: the replica's refusal crosses Ray
    # and is answered as ce-rerank serve answers it.
    instructed = httpx.post(
        f"{serve_url}/v2/rerank", json={**body, "instruction": "x"}, timeout=60
    )
    assert instructed.status_code == 422
    assert instructed.json()["errors"][0]["field"] == "instruction"
    assert "takes no instruction" in instructed.json()["message"]


def test_the_serve_config_s_key_and_limits_guard_the_deployment(
    serve_url: str, standin_ce_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a Serve config builds it: the key from the environment, limits from
    # args (the defaults here: 1,000 documents per request).
    monkeypatch.setenv("CE_RERANK_API_KEY", "s3cret")
    app = app_builder(
        {"model": str(standin_ce_path), "model_name": "guarded", "num_cpus": 0.25}
    )
    serve.run(app, name="guarded", route_prefix="/guarded")
    url = f"{serve_url}/guarded/v2/rerank"
    key = {"Authorization": "Bearer s3cret"}
    body = {"query": QUERIES[0], "documents": TEXTS}
    try:
        no_key = httpx.post(url, json=body, timeout=60)
        wrong_key = httpx.post(
            url, json=body, headers={"Authorization": "Bearer nope"}, timeout=60
        )
        too_many = httpx.post(
            url, json={**body, "documents": ["d"] * 10_000}, headers=key, timeout=60
        )
        malformed = httpx.post(
            url,
            content=b'{"query": ',
            headers={**key, "content-type": "application/json"},
            timeout=60,
        )
        served = httpx.post(url, json=body, headers=key, timeout=60)
        # The same series as ce-rerank serve's /metrics, through Ray's endpoint.
        _ray_metrics_with(
            [
                *(
                    ("ray_ce_rerank_requests_total", f'status="{status}"')
                    for status in ("200", "400", "401", "413")
                ),
                (
                    "ray_ce_rerank_pairs_scored_total",
                    'deployment="CrossEncoderDeployment"',
                ),
                ("ray_ce_rerank_request_seconds_bucket", 'deployment="RerankIngress"'),
            ]
        )
    finally:
        serve.delete("guarded")
    assert no_key.status_code == 401
    assert "CE_RERANK_API_KEY" in no_key.json()["message"]
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    assert wrong_key.status_code == 401
    assert too_many.status_code == 413
    assert too_many.json()["limit"] == 1000
    assert too_many.json()["value"] == 10_000
    assert "args.max_documents" in too_many.json()["message"]
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["message"]
    assert served.status_code == 200
    assert len(served.json()["results"]) == len(TEXTS)


def test_a_calibrated_deployment_adds_probabilities_and_cuts_by_min_probability(
    serve_url: str, standin_ce_path: Path, engine: Reranker, tmp_path: Path
) -> None:
    from langchain_ce_rerank.engine import ScoreCalibration, ScoringIdentity
    from langchain_ce_rerank.engine.probability import PlattMapping

    # As a Serve config gives it: a calibration file in `reranker:`, here the
    # sigmoid of the stand-in's raw score, fitted for the stand-in.
    curve = PlattMapping(slope=1.0, intercept=0.0)
    path = ScoreCalibration(mapping=curve, fitted_for=engine.scoring_identity()).save(
        tmp_path / "calibration.json"
    )
    local = engine.with_settings(calibration=path).rank(QUERIES[0], TEXTS)
    probabilities = [r.probability for r in local]
    assert all(p is not None for p in probabilities)
    # Between the second and third best: the cut keeps exactly two.
    cut = (probabilities[1] + probabilities[2]) / 2  # type: ignore[operator]
    assert probabilities[1] > cut > probabilities[2]  # type: ignore[operator]
    args = {"model": str(standin_ce_path), "model_name": "calibrated"}
    app = app_builder({**args, "num_cpus": 0.25, "reranker": {"calibration": path}})
    serve.run(app, name="calibrated", route_prefix="/calibrated")
    url = f"{serve_url}/calibrated/v2/rerank"
    body = {"query": QUERIES[0], "documents": TEXTS}
    try:
        everything = httpx.post(url, json=body, timeout=60)
        kept = httpx.post(url, json={**body, "min_probability": cut}, timeout=60)
        none = httpx.post(url, json={**body, "min_probability": 1.0}, timeout=60)
    finally:
        serve.delete("calibrated")
    assert everything.status_code == kept.status_code == none.status_code == 200
    # Without min_probability every document comes back (Cohere clients such
    # as RemoteCrossEncoder need every score), each with its probability.
    results = everything.json()["results"]
    assert [r["index"] for r in results] == [r.index for r in local]
    assert [r["relevance_probability"] for r in results] == pytest.approx(
        probabilities, rel=1e-5
    )
    assert [r["index"] for r in kept.json()["results"]] == [r.index for r in local[:2]]
    assert none.json()["results"] == []
    # A calibration fitted for another model is refused where the app is
    # built, saying what differs, not in each replica.
    other = ScoreCalibration(
        mapping=curve, fitted_for=ScoringIdentity(model="cross-encoder/another")
    ).save(tmp_path / "another.json")
    with pytest.raises(ValueError, match="cross-encoder/another"):
        app_builder({**args, "reranker": {"calibration": other}})
    # A relative path is made absolute for replicas in another directory.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        relative = RayServeArgs(
            model=str(standin_ce_path), reranker={"calibration": "calibration.json"}
        )
        settings = relative.engine_settings()
    assert settings["calibration"] == str(Path(path).resolve())


def _ray_metrics_with(expected: list[tuple[str, str]]) -> list[str]:
    """Ray's exported `ray_ce_rerank` lines, once each (name, marker) shows.

    Replicas report their metrics every second (`ray_cluster` sets it), each
    process on its own, so the test polls until every series has arrived.
    """
    lines: list[str] = []

    def exported() -> bool:
        nonlocal lines
        try:
            text = httpx.get(
                f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10
            ).text
        except httpx.TransportError:
            return False
        lines = [line for line in text.splitlines() if line.startswith("ray_ce_rerank")]
        return all(
            any(line.startswith(name) and marker in line for line in lines)
            for name, marker in expected
        )

    _wait_for(exported, f"Ray to export {expected}")
    return lines


def test_concurrent_requests_share_one_model_call(ray_cluster: None) -> None:
    # One replica that waits (up to a minute) until 4 requests are queued:
    # they must reach the model as one batch.
    scorer = CrossEncoderDeployment.options(
        num_replicas=1, max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.25}
    ).bind(
        {"model": WordOverlapCrossEncoder()},
        max_batch_size=4,
        batch_wait_timeout_s=60.0,
    )
    handle = serve.run(scorer, name="batched", route_prefix=None)
    try:
        jobs = [ScoreJob(query, TEXTS) for query in QUERIES]
        responses = [handle.score.remote(job) for job in jobs]
        scores = [response.result(timeout_s=DEADLINE_S) for response in responses]
        stats = handle.stats.remote().result(timeout_s=DEADLINE_S)
    finally:
        serve.delete("batched")
    local = Reranker(model=WordOverlapCrossEncoder())
    assert scores == [local.score(query, TEXTS) for query in QUERIES]
    assert stats["batches"] == [4]


def test_ray_data_reranking_equals_in_process(
    ray_cluster: None, engine: Reranker
) -> None:
    rows = [
        {"id": i, "query": query, "candidates": TEXTS[i % 2 :]}
        for i, query in enumerate(QUERIES * 2)
    ]
    dataset = ray.data.from_items(rows)
    reranked = rerank_dataset(
        dataset, engine, concurrency=2, batch_size=2, num_cpus=0.25
    )
    out = sorted(reranked.take_all(), key=lambda row: row["id"])
    assert [row["id"] for row in out] == list(range(len(rows)))
    for row, source in zip(out, rows, strict=True):
        expected = engine.rank(source["query"], source["candidates"])
        assert list(row["scores"]) == pytest.approx(
            engine.score(source["query"], source["candidates"]), rel=1e-5, abs=1e-6
        )
        assert list(row["order"]) == [r.index for r in expected]
        assert [int(row["ranks"][r.index]) for r in expected] == [
            r.rank for r in expected
        ]


def test_evaluate_on_ray_equals_in_process(
    ray_cluster: None, standin_ce_path: Path, minilm_embeddings: Any
) -> None:
    data = load_beir(TESTS / "data" / "stdlib-docs")
    pipeline = build_reranking_retriever(
        data.corpus, embedding=minilm_embeddings, reranker=str(standin_ce_path), k=8
    )
    local = evaluate(pipeline, data.queries, data.qrels)
    on_ray = evaluate(
        pipeline,
        data.queries,
        data.qrels,
        scorer=RayDataScorer(concurrency=2, batch_size=4, num_cpus=0.25),
    )
    assert [c.name for c in on_ray.configurations] == [
        c.name for c in local.configurations
    ]
    for mine, theirs in zip(on_ray.configurations, local.configurations, strict=True):
        assert mine.run == theirs.run  # same documents in the same order
        assert mine.metrics == pytest.approx(theirs.metrics)


def _run_gated_app(
    folder: Path, name: str, scorer_name: str, batch: int, **options: Any
) -> None:
    """Ingress plus `GatedCrossEncoder` replicas (gate in `folder`) at /`name`."""
    settings = {"model": GatedCrossEncoder(str(folder))}
    scorer = CrossEncoderDeployment.options(
        name=scorer_name, ray_actor_options={"num_cpus": 0.25}, **options
    ).bind(settings, max_batch_size=batch)
    app = IngressDeployment.options(ray_actor_options={"num_cpus": 0}).bind(
        scorer, settings, RequestLimits(), name
    )
    serve.run(app, name=name, route_prefix=f"/{name}")


def test_losing_a_replica_under_load_loses_no_request(
    serve_url: str, tmp_path: Path
) -> None:
    # Two gated replicas hold 8 concurrent requests until the test opens the
    # gate; one replica is killed while both hold requests. Every request
    # must still be answered exactly once, with its own scores, although the
    # client (plain httpx) never retries.
    _run_gated_app(
        tmp_path, "gated", "GatedScorer", 2, num_replicas=2, max_ongoing_requests=8
    )
    requests = [(f"{QUERIES[i % 4]} #{i}", TEXTS) for i in range(8)]
    expected = [
        WordOverlapCrossEncoder().score([(query, t) for t in texts])
        for query, texts in requests
    ]
    answers: dict[int, tuple[int, str]] = {}
    lock = threading.Lock()

    def send(number: int) -> None:
        query, texts = requests[number]
        reply = httpx.post(
            f"{serve_url}/gated/v2/rerank",
            json={"query": query, "documents": texts},
            timeout=DEADLINE_S,
        )
        with lock:
            answers[number] = (reply.status_code, reply.text)

    try:
        replicas = _replica_actors("gated", "GatedScorer")
        assert len(replicas) == 2
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [pool.submit(send, number) for number in range(len(requests))]
            _wait_for(
                lambda: len(list(tmp_path.glob("started-*"))) == 2,
                "both replicas to hold a request",
            )
            victim = replicas[0]
            ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]))
            (tmp_path / "open").touch()
            for future in futures:
                future.result(timeout=DEADLINE_S)
    finally:
        (tmp_path / "open").touch()
        serve.delete("gated")

    assert sorted(answers) == list(range(len(requests)))
    statuses = {n: answers[n] for n in sorted(answers) if answers[n][0] != 200}
    assert statuses == {}
    bodies = {number: json.loads(text) for number, (_, text) in answers.items()}
    assert len({body["id"] for body in bodies.values()}) == len(requests)
    for number, body in bodies.items():
        got = {r["index"]: r["relevance_score"] for r in body["results"]}
        assert [got[i] for i in range(len(TEXTS))] == expected[number]


def test_a_full_replica_queue_is_503_with_retry_after(
    serve_url: str, tmp_path: Path
) -> None:
    # One gated replica takes one request at a time and one more may wait
    # for it; while the gate is closed every further request must be shed
    # at once, and the two held ones answered once it opens.
    _run_gated_app(
        tmp_path,
        "narrow",
        "NarrowScorer",
        1,
        num_replicas=1,
        max_ongoing_requests=1,
        max_queued_requests=1,
    )

    def send(number: int) -> httpx.Response:
        return httpx.post(
            f"{serve_url}/narrow/v2/rerank",
            json={"query": f"{QUERIES[0]} #{number}", "documents": TEXTS},
            timeout=DEADLINE_S,
        )

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            held = pool.submit(send, 0)
            _wait_for(lambda: any(tmp_path.glob("started-*")), "the replica")
            others = [pool.submit(send, number) for number in range(1, 6)]
            # At most one of the five can wait for the replica: the other
            # four must be answered while the gate is still closed.
            _wait_for(
                lambda: sum(future.done() for future in others) >= 4,
                "the requests over the queue limit to be refused",
            )
            refused = [future.result() for future in others if future.done()]
            (tmp_path / "open").touch()
            answered = [held.result(timeout=DEADLINE_S)] + [
                future.result(timeout=DEADLINE_S)
                for future in others
                if future.result(timeout=DEADLINE_S) not in refused
            ]
    finally:
        (tmp_path / "open").touch()
        serve.delete("narrow")

    assert [r.status_code for r in refused] == [503] * len(refused)
    assert len(refused) == 4
    for response in refused:
        assert int(response.headers["retry-after"]) >= 1
        assert "max_queued_requests" in response.json()["message"]
    assert [r.status_code for r in answered] == [200, 200]


def test_serve_config_example_builds_the_application() -> None:
    import yaml
    from pydantic import ValidationError
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load((EXAMPLES / "ray_serve_config.yaml").read_text())
    ServeDeploySchema.model_validate(config)
    (spec,) = config["applications"]
    assert spec["import_path"] == "langchain_ce_rerank.serving.ray_serve:app_builder"
    assert isinstance(app_builder(spec["args"]), Application)
    with pytest.raises(ValidationError, match="num_replica"):
        app_builder({**spec["args"], "num_replica": 2})
    with pytest.raises(ValueError, match="'batch_sise'"):
        app_builder({**spec["args"], "reranker": {"batch_sise": 8}})


def test_cli_ray_options() -> None:
    parser = argparse.ArgumentParser(prog="ce-rerank eval")
    add_ray_options(parser)
    args = parser.parse_args(["--ray", "--ray-workers", "3"])
    assert (args.ray, args.ray_workers, args.ray_address) == (True, 3, None)
    assert ray_scorer(parser.parse_args([])) is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--ray-workers", "0"])


def test_ce_rerank_eval_with_ray_reports_the_in_process_numbers(
    ray_cluster: None, standin_ce_path: Path
) -> None:
    from cli_runner import run_cli

    serve.shutdown()  # free the CPUs the Serve replicas held for the Data workers
    address = ray.get_runtime_context().gcs_address
    common = (
        "eval",
        "--dataset",
        str(TESTS / "data" / "stdlib-docs"),
        "-k",
        "5",
        "--top-n",
        "3",
        "--reranker",
        str(standin_ce_path),
        "--json",
        "-",
    )
    local = run_cli(*common)
    assert local.returncode == 0, local.stderr
    on_ray = run_cli(*common, "--ray", "--ray-address", address, "--ray-workers", "1")
    assert on_ray.returncode == 0, on_ray.stderr
    mine, theirs = json.loads(on_ray.stdout), json.loads(local.stdout)
    for a, b in zip(mine["configurations"], theirs["configurations"], strict=True):
        assert a["name"] == b["name"]
        assert a["metrics"] == pytest.approx(b["metrics"])
