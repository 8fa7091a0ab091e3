"""The onnxruntime backend on the stand-in cross-encoder (needs the [onnx] extra).

Run by `make test` in its own environment (`.venv-onnx`), since the extra pins
older transformers than the main environment uses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor

pytestmark = pytest.mark.onnx

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


@pytest.fixture(scope="module")
def torch_scores(standin_ce_path: Path) -> np.ndarray:
    return _scores(CrossEncoderCompressor(model=standin_ce_path, device="cpu"))


def test_onnx_scores_match_torch_and_the_export_is_reused(
    standin_ce_path: Path,
    torch_scores: np.ndarray,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_ce_rerank._export")
    first = CrossEncoderCompressor(
        model=standin_ce_path,
        backend="onnx",
        export_cache_folder=tmp_path,
        device="cpu",
    )
    scores = _scores(first)
    np.testing.assert_allclose(scores, torch_scores, atol=1e-4)
    assert "Exporting" in caplog.text
    exports = list((tmp_path / "exports").iterdir())
    assert len(exports) == 1
    caplog.clear()
    second = CrossEncoderCompressor(
        model=standin_ce_path,
        backend="onnx",
        export_cache_folder=tmp_path,
        device="cpu",
    )
    np.testing.assert_allclose(_scores(second), scores, atol=1e-6)
    assert "Exporting" not in caplog.text  # loaded from the cache, not exported again
    assert list((tmp_path / "exports").iterdir()) == exports


def test_int8_keeps_the_ranking(
    standin_ce_path: Path, torch_scores: np.ndarray, tmp_path: Path
) -> None:
    int8 = CrossEncoderCompressor(
        model=standin_ce_path,
        backend="onnx",
        quantization="int8",
        export_cache_folder=tmp_path,
        device="cpu",
        top_n=None,
    )
    scores = _scores(int8)
    # The stand-in's untrained head spreads scores over ~0.03, so near-ties
    # may swap; what int8 must keep is the scores' shape and size. Ranking
    # agreement on real text is measured in benchmarks/rerank.py.
    assert np.corrcoef(scores, torch_scores)[0, 1] > 0.9
    assert np.abs(scores - torch_scores).max() < 0.05
    docs = int8.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert len(docs) == len(TEXTS)
    assert any(
        p.name.startswith("model-onnx-int8") or "int8" in p.name
        for p in (tmp_path / "exports").iterdir()
    )
