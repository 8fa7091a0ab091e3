"""Every family's stand-in on every backend: it agrees with torch fp32, or is refused.

Parametrized over `SUPPORTED_FAMILIES` x the registry's combinations (from
`models.backends.support`, the one table): a combination the table says works
must score the family's stand-in like torch fp32 does; one it refuses must fail
at construction with the table's error. Exports are made once per session, in
one cache folder. Runs in the onnx/openvino environment (`make test-accel`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.models.backends.support import (
    SUPPORTED_FAMILIES,
    combinations,
    support,
)

QUERY = "How do I restore a Docker volume backup on another host?"
# 20 texts from one word to past every stand-in's window, so batches pad (on
# the left for the causal LM) and truncate.
TEXTS = [
    "Create a tar archive from a Docker volume and extract it on the new host.",
    "Inspect container logs with docker logs when a service exits.",
    "List Docker images and tags before promoting a release.",
    "Upload a finished build directory to Amazon S3 with aws s3 sync.",
    "Use docker compose pull and docker compose up -d after an image update.",
    "volume",
    "yes",
    "Restore",
    "Copy the backup to the other machine, then run a container that mounts "
    "the empty volume and unpacks the archive into it.",
    "The garden needs water twice a week in summer.",
    "Ünïcödé and emoji 🐳 are scored too.",
    "A volume outlives the container that created it; back it up with tar.",
    "Prune unused images to free disk space on a build server.",
    "Kubernetes persistent volume claims bind to persistent volumes.",
    "Schedule nightly backups with cron and keep seven of them.",
    "SSH into the new host and check that Docker is installed.",
    "The quarterly report is due on Friday.",
    "docker run --rm -v data:/data -v $(pwd):/backup alpine tar xzf "
    "/backup/data.tgz -C /data",
    "Network bridges connect containers on one host.",
    "docker volume backup " * 300,
]

# int8 on the stand-ins (random weights, or BERT's random head), measured
# 2026-12-02: these tests pass; over another 20 passages Spearman ran from
# 0.88 (onnx, modernbert) to 0.99 (openvino, causal-lm), top-5 overlap 3/5 to
# 5/5, and at 100 candidates the lowest was 0.79 (onnx, modernbert; see
# benchmarks/README.md). onnx int8 of the causal LM measured 0.64 on these
# texts and is refused (the support table). A broken int8 export scores in an
# order unrelated to torch's: for 20 texts a Spearman over 0.7 happens by
# chance with p < 0.001. fp32 exports agree to float rounding (max
# |difference| 6e-6 measured, on scores spread over ~2).
INT8_MIN_SPEARMAN = 0.7
INT8_MIN_TOP5 = 3
FP32_ATOL = 1e-4

CASES = [
    pytest.param(
        family,
        backend,
        quantization,
        marks=getattr(pytest.mark, backend),
        id=f"{family}-{backend}-{quantization or 'fp32'}",
    )
    for family in SUPPORTED_FAMILIES
    for backend, quantization in combinations()
    if backend != "torch"
]


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the session: each export is made once."""
    return tmp_path_factory.mktemp("family-exports")


@pytest.fixture(scope="session")
def torch_scores(standin_paths: Callable[[str], Path]) -> Callable[[str], np.ndarray]:
    """`torch_scores(family)`: torch fp32 scores of the texts, computed once."""
    found: dict[str, np.ndarray] = {}

    def scores(family: str) -> np.ndarray:
        if family not in found:
            engine = Reranker(model=standin_paths(family), device="cpu", cache_size=0)
            found[family] = np.array(engine.score(QUERY, TEXTS))
        return found[family]

    return scores


def _top5(scores: np.ndarray) -> set[int]:
    return {int(i) for i in np.argsort(-scores, kind="stable")[:5]}


@pytest.mark.parametrize(("family", "backend", "quantization"), CASES)
def test_agrees_with_torch_or_is_refused_at_construction(
    family: str,
    backend: str,
    quantization: str | None,
    standin_paths: Callable[[str], Path],
    torch_scores: Callable[[str], np.ndarray],
    export_cache: Path,
) -> None:
    folder = standin_paths(family)

    def engine() -> Reranker:
        return Reranker(
            model=folder,
            device="cpu",
            cache_size=0,
            backend=backend,
            quantization=quantization,
            export_cache_folder=export_cache,
        )

    expected = support(family, backend, quantization)
    if not expected.works:
        with pytest.raises(ValueError, match=f"the {family} family") as refused:
            engine()
        assert f"backend={backend!r}" in str(refused.value)
        assert expected.note in str(refused.value)
        return
    scores = np.array(engine().score(QUERY, TEXTS))
    reference = torch_scores(family)
    assert np.isfinite(scores).all()
    if quantization is None:
        np.testing.assert_allclose(scores, reference, atol=FP32_ATOL)
        return
    rho = spearmanr(reference, scores).statistic
    overlap = len(_top5(reference) & _top5(scores))
    assert rho > INT8_MIN_SPEARMAN, (rho, overlap)
    assert overlap >= INT8_MIN_TOP5, (rho, overlap)


@pytest.mark.openvino
def test_the_openvino_causal_lm_export_is_stateless_and_keeps_one_position(
    standin_paths: Callable[[str], Path], export_cache: Path
) -> None:
    import openvino

    engine = Reranker(
        model=standin_paths("causal-lm"),
        device="cpu",
        backend="openvino",
        export_cache_folder=export_cache,
    )
    engine.score(QUERY, TEXTS[:2])
    (xml,) = [
        path
        for path in (export_cache / "exports").glob("*openvino-fp32*/openvino/*.xml")
        if "causal-lm" in path.parts[-3]
    ]
    ir = openvino.Core().read_model(str(xml))
    assert {port.get_any_name() for port in ir.inputs} == {
        "input_ids",
        "attention_mask",
        "position_ids",
    }  # no beam_idx: no generation cache inside the model
    (logits,) = ir.outputs
    # The last position only: the sequence dimension is at most 1.
    assert logits.get_partial_shape()[1].get_max_length() == 1
