"""The onnx and openvino backends on the stand-in cross-encoder.

They need the `[onnx]` and `[openvino]` extras, which pin an older transformers
than the main environment uses, so `make test` runs them in their own
environment (`.venv-accel`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor, load_embeddings

BACKENDS = [
    pytest.param("onnx", marks=pytest.mark.onnx),
    pytest.param("openvino", marks=pytest.mark.openvino),
]

QUERY = "How do I restore a Docker volume backup on another host?"
TEXTS = [
    "Create a tar archive from a Docker volume and extract it on the new host.",
    "Inspect container logs with docker logs when a service exits.",
    "List Docker images and tags before promoting a release.",
    "Upload a finished build directory to Amazon S3 with aws s3 sync.",
    "Use docker compose pull and docker compose up -d after an image update.",
    "Ünïcödé and emoji 🐳 are scored too.",
    "",
    "docker volume backup " * 300,
]


def _scores(compressor: CrossEncoderCompressor) -> np.ndarray:
    return np.array(compressor.score(QUERY, TEXTS))


def _accelerated(
    model: Path, backend: str, cache: Path, **options: object
) -> CrossEncoderCompressor:
    return CrossEncoderCompressor(
        model=model,
        backend=backend,
        export_cache_folder=cache,
        device="cpu",
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def torch_scores(standin_ce_path: Path) -> np.ndarray:
    return _scores(CrossEncoderCompressor(model=standin_ce_path, device="cpu"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scores_match_torch_and_the_export_is_reused(
    backend: str,
    standin_ce_path: Path,
    torch_scores: np.ndarray,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ce_rerank.models.export")
    first = _accelerated(standin_ce_path, backend, tmp_path)
    scores = _scores(first)
    np.testing.assert_allclose(scores, torch_scores, atol=1e-4)
    assert "Exporting" in caplog.text
    exports = list((tmp_path / "exports").iterdir())
    assert len(exports) == 1
    caplog.clear()
    second = _accelerated(standin_ce_path, backend, tmp_path)
    np.testing.assert_allclose(_scores(second), scores, atol=1e-6)
    assert "Exporting" not in caplog.text  # loaded from the cache, not exported again
    assert list((tmp_path / "exports").iterdir()) == exports


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_keeps_the_ranking(
    backend: str,
    standin_ce_path: Path,
    torch_scores: np.ndarray,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ce_rerank.models.export")
    int8 = _accelerated(
        standin_ce_path, backend, tmp_path, quantization="int8", top_n=None
    )
    scores = _scores(int8)
    # The stand-in's untrained head spreads scores over ~0.03, so near-ties
    # may swap; what int8 must keep is the scores' shape and size. Ranking
    # agreement on real text is measured in benchmarks/rerank.py.
    assert np.corrcoef(scores, torch_scores)[0, 1] > 0.9
    assert np.abs(scores - torch_scores).max() < 0.05
    docs = int8.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert len(docs) == len(TEXTS)
    (export,) = (tmp_path / "exports").iterdir()  # one folder, no staging left
    assert export.name.startswith(f"{standin_ce_path.name}-{backend}-int8")
    # A second compressor loads the quantized export instead of redoing it.
    caplog.clear()
    again = _accelerated(standin_ce_path, backend, tmp_path, quantization="int8")
    np.testing.assert_allclose(_scores(again), scores, atol=1e-5)
    assert "Exporting" not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_embeddings_agree_with_torch_and_the_export_is_reused(
    backend: str,
    quantization: str | None,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ce_rerank.models.export")
    texts = [t for t in TEXTS if t]
    reference = np.array(load_embeddings(device="cpu").embed_documents(texts))
    options = {
        "device": "cpu",
        "backend": backend,
        "quantization": quantization,
        "cache_folder": tmp_path,
    }
    vectors = np.array(load_embeddings(**options).embed_documents(texts))  # type: ignore[arg-type]
    assert "Exporting" in caplog.text
    # Normalized vectors: the row-wise dot product is the cosine similarity.
    cosine = (reference * vectors).sum(axis=1)
    if quantization is None:
        assert cosine.min() > 0.9999
    else:
        # int8 moves vectors a little; onnxruntime's dynamic int8 measured
        # 0.96 on the long repetitive text, 0.99 on the rest.
        assert cosine.min() > 0.95
        assert cosine.mean() > 0.98
    caplog.clear()
    again = np.array(load_embeddings(**options).embed_documents(texts))  # type: ignore[arg-type]
    np.testing.assert_allclose(again, vectors, atol=1e-5)
    assert "Exporting" not in caplog.text


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_export_is_described_as_float32_when_its_scores_are_not_finite(
    backend: str, standin_ce_path: Path, tmp_path: Path
) -> None:
    import math

    from langchain_ce_rerank import NonFiniteScoreError
    from langchain_ce_rerank.engine.finite import require_finite

    model = _accelerated(standin_ce_path, backend, tmp_path).load_model()
    with pytest.raises(
        NonFiniteScoreError, match=rf"\({backend} backend, float32 on cpu\)"
    ) as caught:
        require_finite([1.0, math.nan], model)
    assert caught.value.dtype == "float32"
    assert "check the model files" in str(caught.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_is_refused_with_an_export_backend(
    backend: str, standin_ce_path: Path
) -> None:
    with pytest.raises(ValueError, match=f"backend={backend!r} runs its export in"):
        CrossEncoderCompressor(model=standin_ce_path, backend=backend, dtype="bfloat16")
