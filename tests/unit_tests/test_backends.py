from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from doubles import TableCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.engine import RerankerSettings
from langchain_ce_rerank.models import backends, load_cross_encoder, load_embeddings
from langchain_ce_rerank.models.backends import (
    BACKEND_NAMES,
    BACKENDS,
    DEFAULT_BACKEND,
    QUANTIZATIONS,
    Backend,
    base,
    onnx,
    openvino,
    quantization_error,
)
from langchain_ce_rerank.models.export import ExportFormat, instruction_set
from langchain_ce_rerank.optional import install_hint


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(base, "_find_spec", lambda name: None)
    extra = re.escape(install_hint(backend))
    with pytest.raises(ImportError, match=extra):
        CrossEncoderCompressor(backend=backend)
    with pytest.raises(ImportError, match=extra):
        load_cross_encoder("some/model", backend=backend)


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
        CrossEncoderCompressor(backend="tensorrt")


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
    with pytest.raises(ImportError, match=re.escape(install_hint("openvino"))):
        load_embeddings("no/such-model", backend="openvino")


# -- the registry: one source for every list of backends --------------------


@pytest.mark.parametrize("command", ["query", "eval", "serve"])
def test_cli_backend_choices_are_the_registry(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_ce_rerank.cli import main

    with pytest.raises(SystemExit):
        main([command, "--backend", "no-such-backend"])
    err = capsys.readouterr().err
    listed = re.search(r"choose from ([^)]*)\)", err)
    assert listed is not None, err
    choices = [name.strip(" '") for name in listed.group(1).split(",")]
    assert choices == list(BACKEND_NAMES)


def test_settings_accept_exactly_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_find_spec", lambda name: object())
    for name in BACKEND_NAMES:
        assert RerankerSettings(backend=name).backend == name
        for quantization in BACKENDS[name].quantizations:
            RerankerSettings(backend=name, quantization=quantization)
    assert RerankerSettings().backend == DEFAULT_BACKEND
    assert set(QUANTIZATIONS) == {
        q for backend in BACKENDS.values() for q in backend.quantizations
    }


def test_an_unknown_backend_lists_the_registry() -> None:
    names = ", ".join(repr(name) for name in BACKEND_NAMES)
    with pytest.raises(ValidationError) as info:
        RerankerSettings(backend="tensorrt")
    assert f"backend='tensorrt' is unknown; choose one of {names}" in str(info.value)
    with pytest.raises(ValueError, match=re.escape(names)):
        load_cross_encoder("some/model", backend="tensorrt")
    with pytest.raises(ValueError, match=re.escape(names)):
        load_embeddings("some/model", backend="tensorrt")


def test_an_unknown_quantization_lists_the_known_ones() -> None:
    with pytest.raises(
        ValidationError, match=r"quantization='int3' is unknown.*'int8'"
    ):
        RerankerSettings(backend="onnx", quantization="int3")


def test_the_int8_message_names_every_backend_that_offers_it() -> None:
    # The library's words and the CLI's (`ce-rerank ... --int8` pins the latter).
    assert quantization_error("int8") == (
        "quantization='int8' needs backend='openvino' (static int8, fastest on "
        "CPU) or backend='onnx' (dynamic int8)"
    )
    assert quantization_error("int8", cli=True) == (
        "--int8 needs --backend openvino (static int8, fastest on CPU) or "
        "--backend onnx (dynamic int8)"
    )


def test_every_extra_named_by_a_backend_exists() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for backend in BACKENDS.values():
        if backend.extra is not None:
            assert backend.extra in extras, backend.name
            assert backend.modules, backend.name
            assert f"[{backend.extra}]" in backend.install


def test_exporting_backends_make_every_quantization_they_offer() -> None:
    for module in (onnx, openvino):
        assert module.BACKEND.exports
        assert set(module.EXPORT.quantizers) == set(module.BACKEND.quantizations)
        assert set(module.EXPORT.files) == {None, *module.BACKEND.quantizations}


def test_a_registered_backend_is_reached_by_every_layer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Adding a backend is one record and one registry entry; the settings,
    # the loader's dispatch and its options all follow.
    calls: list[dict[str, object]] = []

    def load(path: str, **options: object) -> TableCrossEncoder:
        calls.append({"path": path, **options})
        return TableCrossEncoder()

    fake = Backend(
        name="fake",
        extra=None,
        modules=(),
        quantizations={"int4": "a test quantization"},
        load_cross_encoder=load,  # type: ignore[arg-type]
        load_embeddings=load,  # type: ignore[arg-type]
    )
    monkeypatch.setattr(backends, "BACKENDS", {**BACKENDS, "fake": fake})
    RerankerSettings(model=str(tmp_path), backend="fake", quantization="int4")
    with pytest.raises(ValidationError, match="backend='fake'"):
        RerankerSettings(backend="torch", quantization="int4")
    model = load_cross_encoder(
        tmp_path,
        backend="fake",
        quantization="int4",
        device="cpu",
        max_length=7,
        shared=False,
    )
    assert isinstance(model, TableCrossEncoder)
    assert calls == [
        {
            "path": str(tmp_path),
            "device": "cpu",
            "quantization": "int4",
            "cache": calls[0]["cache"],
            "kwargs": {"max_length": 7},
        }
    ]


def test_the_registry_imports_no_model_library() -> None:
    code = (
        "import sys; import langchain_ce_rerank.models.backends; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ("
        "'torch', 'transformers', 'sentence_transformers', 'numpy', 'faiss', "
        "'langchain', 'langchain_core', 'langchain_huggingface')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# -- the export cache every exporting backend shares ------------------------


class _Recorded:
    """Stands in for sentence-transformers' models: records how it was built."""

    def __init__(self, made: list[dict[str, object]], export_file: str) -> None:
        self.made = made
        self.export_file = export_file

    def __call__(self, path: str, **options: object) -> _Recorded:
        self.made.append({"path": path, **options})
        return self

    def save_pretrained(self, folder: str) -> None:
        target = Path(folder) / self.export_file
        target.parent.mkdir(parents=True)
        target.write_text("exported")


def test_an_export_is_made_once_then_loaded_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sentence_transformers

    made: list[dict[str, object]] = []
    fake = _Recorded(made, openvino.EXPORT.file_name(None))
    monkeypatch.setattr(sentence_transformers, "CrossEncoder", fake)
    source = tmp_path / "model"
    source.mkdir()
    (source / "config.json").write_text("{}")
    cache = tmp_path / "cache"
    options = {"max_length": 9, "model_kwargs": {"ov_config": {"NUM_STREAMS": "1"}}}

    def load() -> object:
        return openvino.EXPORT.load_cross_encoder(
            str(source), device="cpu", quantization=None, cache=cache, kwargs=options
        )

    assert load() is fake
    target = openvino.EXPORT.folder(str(source), None, cache)
    ov_config = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1"}
    assert made == [
        # exported from the source with the backend's defaults under the user's...
        {
            "path": str(source),
            "device": "cpu",
            "backend": "openvino",
            "model_kwargs": {"ov_config": ov_config},
            "max_length": 9,
        },
        # ... then loaded from the export, naming its file.
        {
            "path": str(target),
            "device": "cpu",
            "backend": "openvino",
            "model_kwargs": {
                "ov_config": ov_config,
                "file_name": openvino.EXPORT.file_name(None),
            },
            "max_length": 9,
        },
    ]
    assert options["model_kwargs"] == {"ov_config": {"NUM_STREAMS": "1"}}  # a copy
    made.clear()
    load()
    assert [m["path"] for m in made] == [str(target)]  # no second export
    assert [p.name for p in (cache / "exports").iterdir()] == [target.name]


def test_a_failed_quantization_leaves_no_export_behind(tmp_path: Path) -> None:
    def fail(model: object, folder: Path) -> None:
        raise RuntimeError("quantizer broke")

    broken = ExportFormat(
        backend="onnx",
        files={None: "onnx/model.onnx", "int8": "onnx/model_int8.onnx"},
        quantizers={"int8": fail},
    )
    model = _Recorded([], "onnx/model.onnx")
    with pytest.raises(RuntimeError, match="quantizer broke"):
        broken.ensure("m", "int8", cache=tmp_path, load=model)
    assert list((tmp_path / "exports").iterdir()) == []


@pytest.mark.parametrize(
    "documented",
    [backends, Backend, ExportFormat],
    ids=["registry", "Backend", "ExportFormat"],
)
def test_docstring_examples_run(
    documented: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", documented.__doc__ or "", re.S)
    assert blocks
    for block in blocks:
        exec(textwrap.dedent(block), {})
