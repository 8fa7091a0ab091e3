from __future__ import annotations

import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.models import load_cross_encoder, load_embeddings
from langchain_ce_rerank.models.backends import base, onnx, openvino
from langchain_ce_rerank.models.export import instruction_set


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(base, "_find_spec", lambda name: None)
    extra = rf'pip install "langchain-ce-rerank\[{backend}\]"'
    with pytest.raises(ImportError, match=extra):
        CrossEncoderCompressor(backend=backend)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=extra):
        load_cross_encoder("some/model", backend=backend)  # type: ignore[arg-type]


def test_only_the_missing_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        base, "_find_spec", lambda name: None if name == "nncf" else object()
    )
    with pytest.raises(ImportError, match=r"needs nncf: pip install") as info:
        CrossEncoderCompressor(backend="openvino")
    assert "openvino," not in str(info.value)


def test_int8_needs_an_accelerated_backend() -> None:
    with pytest.raises(ValidationError, match="needs backend='openvino'"):
        CrossEncoderCompressor(quantization="int8")
    with pytest.raises(ValueError, match="or backend='onnx'"):
        load_cross_encoder("some/model", quantization="int8")


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValidationError, match="backend"):
        CrossEncoderCompressor(backend="tensorrt")  # type: ignore[arg-type]


def test_backend_is_a_loading_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_find_spec", lambda name: object())
    with pytest.raises(ValidationError, match="backend configure loading"):
        CrossEncoderCompressor(model=TableCrossEncoder(), backend="onnx")


def test_scores_of_different_backends_never_share_cache_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "_find_spec", lambda name: object())
    torch_key = CrossEncoderCompressor(model="m")._model_key()
    onnx_key = CrossEncoderCompressor(model="m", backend="onnx")._model_key()
    int8_key = CrossEncoderCompressor(
        model="m", backend="onnx", quantization="int8"
    )._model_key()
    openvino_key = CrossEncoderCompressor(model="m", backend="openvino")._model_key()
    openvino_int8_key = CrossEncoderCompressor(
        model="m", backend="openvino", quantization="int8"
    )._model_key()
    keys = {torch_key, onnx_key, int8_key, openvino_key, openvino_int8_key}
    assert len(keys) == 5


def test_export_folder_depends_on_the_source_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    first = onnx.EXPORT.folder(str(source), None, tmp_path / "cache")
    assert first == onnx.EXPORT.folder(str(source), None, tmp_path / "cache")
    assert first != onnx.EXPORT.folder(str(source), "int8", tmp_path / "cache")
    assert first != openvino.EXPORT.folder(str(source), None, tmp_path / "cache")
    (source / "config.json").write_text('{"changed": true}')
    assert first != onnx.EXPORT.folder(str(source), None, tmp_path / "cache")


def test_only_onnx_int8_exports_are_kept_per_instruction_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    isa = instruction_set()
    onnx_int8 = onnx.EXPORT.folder("m", "int8", tmp_path)
    openvino_int8 = openvino.EXPORT.folder("m", "int8", tmp_path)
    assert f"int8-{isa}" in onnx_int8.name
    assert isa not in openvino_int8.name


def test_embeddings_check_backend_options_before_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="needs backend='openvino'"):
        load_embeddings("no/such-model", quantization="int8")
    monkeypatch.setattr(base, "_find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"langchain-ce-rerank\[openvino\]"):
        load_embeddings("no/such-model", backend="openvino")
