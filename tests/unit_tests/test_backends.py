from __future__ import annotations

import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor, _export
from langchain_ce_rerank.models import load_cross_encoder


def test_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_export, "_find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "langchain-ce-rerank\[onnx\]"'):
        CrossEncoderCompressor(backend="onnx")
    with pytest.raises(ImportError, match=r"langchain-ce-rerank\[onnx\]"):
        load_cross_encoder("some/model", backend="onnx")


def test_int8_needs_the_onnx_backend() -> None:
    with pytest.raises(ValidationError, match="needs backend='onnx'"):
        CrossEncoderCompressor(quantization="int8")
    with pytest.raises(ValueError, match="needs backend='onnx'"):
        load_cross_encoder("some/model", quantization="int8")


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValidationError, match="backend"):
        CrossEncoderCompressor(backend="tensorrt")  # type: ignore[arg-type]


def test_backend_is_a_loading_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_export, "_find_spec", lambda name: object())
    with pytest.raises(ValidationError, match="backend configure loading"):
        CrossEncoderCompressor(model=TableCrossEncoder(), backend="onnx")


def test_scores_of_different_backends_never_share_cache_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_export, "_find_spec", lambda name: object())
    torch_key = CrossEncoderCompressor(model="m")._model_key()
    onnx_key = CrossEncoderCompressor(model="m", backend="onnx")._model_key()
    int8_key = CrossEncoderCompressor(
        model="m", backend="onnx", quantization="int8"
    )._model_key()
    assert len({torch_key, onnx_key, int8_key}) == 3


def test_export_folder_depends_on_the_source_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    first = _export.export_folder(str(source), "onnx", None, tmp_path / "cache")
    assert first == _export.export_folder(str(source), "onnx", None, tmp_path / "cache")
    assert first != _export.export_folder(
        str(source), "onnx", "int8", tmp_path / "cache"
    )
    (source / "config.json").write_text('{"changed": true}')
    assert first != _export.export_folder(str(source), "onnx", None, tmp_path / "cache")
