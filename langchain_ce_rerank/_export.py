"""ONNX and OpenVINO exports (and int8 quantizations) of models, cached on disk.

sentence-transformers exports a cross-encoder or bi-encoder when it is loaded
with `backend="onnx"` or `backend="openvino"`; quantizing takes seconds to
minutes more. The result is saved once to a cache folder keyed by the source
model's files, and every later load reads it from there.

int8 per backend:
- onnx: onnxruntime dynamic quantization (`export_dynamic_quantized_onnx_model`),
  weights int8, activations quantized on the fly; kernels differ by processor.
- openvino: NNCF static post-training quantization, calibrated on
  `models.calibration.calibration_pairs()`. Called directly rather than through
  sentence-transformers' `export_static_quantized_openvino_model`, which only
  calibrates on a Hugging Face Hub dataset and so cannot run offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "openvino"]
Quantization = Literal["int8"] | None

# What each accelerated backend imports; the pip extra is named after it.
_MODULES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime", "optimum.onnxruntime"),
    "openvino": ("openvino", "optimum.intel", "nncf"),
}
_FILES = {
    ("onnx", None): "onnx/model.onnx",
    ("onnx", "int8"): "onnx/model_qint8_{isa}.onnx",
    ("openvino", None): "openvino/openvino_model.xml",
    ("openvino", "int8"): "openvino/openvino_model_qint8_quantized.xml",
}
# OpenVINO runs fp32 models in bf16 on processors with avx512_bf16. On this
# project's 2-core AVX-512 machine (no AMX) that was 1.5x slower than f32 and
# moved scores, so f32 is the default; pass
# model_kwargs={"ov_config": {"INFERENCE_PRECISION_HINT": "bf16"}} to opt in.
_OV_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def default_cache_folder() -> Path:
    """`$LANGCHAIN_CE_RERANK_CACHE`, else `~/.cache/langchain-ce-rerank`."""
    env = os.environ.get("LANGCHAIN_CE_RERANK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "langchain-ce-rerank"


def check_options(backend: Backend, quantization: Quantization) -> None:
    """Raise for settings that cannot work together, or a missing pip extra.

    Raises:
        ValueError: `quantization` with the torch backend.
        ImportError: The backend's extra is not installed; names it.
    """
    if backend == "torch":
        if quantization is not None:
            msg = (
                f"quantization={quantization!r} needs backend='openvino' "
                "(static int8, fastest on CPU) or backend='onnx' (dynamic int8)"
            )
            raise ValueError(msg)
        return
    missing = [name for name in _MODULES[backend] if _find_spec(name) is None]
    if missing:
        msg = (
            f"backend={backend!r} needs {', '.join(missing)}: "
            f'pip install "langchain-ce-rerank[{backend}]"'
        )
        raise ImportError(msg)


def _find_spec(name: str) -> object:
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:  # the parent package is missing
        return None


def instruction_set() -> str:
    """The onnxruntime int8 kernel family for this processor."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        pass
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "arm64"


def _fingerprint(source: str) -> str:
    """Digest of the source model's identity: its files' names, sizes and times."""
    digest = hashlib.sha256(source.encode("utf-8"))
    folder = Path(source)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                )
    return digest.hexdigest()[:16]


def _file_name(backend: Backend, quantization: Quantization) -> str:
    return _FILES[(backend, quantization)].format(isa=instruction_set())


def export_folder(
    source: str, backend: Backend, quantization: Quantization, cache: Path
) -> Path:
    """Where the export of `source` for these settings lives in `cache`."""
    name = Path(source.rstrip("/")).name or "model"
    precision = "fp32"
    if quantization:
        # onnxruntime's int8 kernels differ by processor, so a cache shared
        # between machines keeps one quantized export per instruction set.
        # OpenVINO's int8 IR is portable; the plugin compiles it at load.
        isa = f"-{instruction_set()}" if backend == "onnx" else ""
        precision = f"int8{isa}"
    return cache / "exports" / f"{name}-{backend}-{precision}-{_fingerprint(source)}"


def _calibration_inputs(model: Any, names: set[str]) -> list[dict[str, Any]]:
    """Tokenized calibration samples: pairs for a cross-encoder, else passages."""
    from sentence_transformers import CrossEncoder

    from langchain_ce_rerank.models.calibration import calibration_pairs

    pairs = calibration_pairs()
    pair_model = isinstance(model, CrossEncoder)
    samples = []
    for query, passage in pairs:
        texts = (query, passage) if pair_model else (passage,)
        encoded = model.tokenizer(
            *texts,
            truncation=True,
            max_length=model.max_seq_length,
            return_tensors="np",
        )
        samples.append({k: v for k, v in encoded.items() if k in names})
    return samples


def _quantize_openvino(model: Any, folder: Path) -> None:
    """Write NNCF static int8 of the exported IR in `folder`, calibrated offline."""
    import nncf
    import openvino

    ir = openvino.Core().read_model(str(folder / _FILES[("openvino", None)]))
    samples = _calibration_inputs(model, {port.get_any_name() for port in ir.inputs})
    quantized = nncf.quantize(
        ir,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
    )
    # compress_to_fp16 would also round the layers left in fp32.
    openvino.save_model(
        quantized,
        str(folder / _FILES[("openvino", "int8")]),
        compress_to_fp16=False,
    )


def backend_model_kwargs(
    backend: Backend, model_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`model_kwargs` for sentence-transformers, with this backend's defaults."""
    merged = dict(model_kwargs or {})
    if backend == "openvino":
        merged["ov_config"] = {**_OV_CONFIG, **merged.get("ov_config", {})}
    return merged


def ensure_export(
    source: str,
    backend: Backend,
    quantization: Quantization,
    *,
    cache: Path,
    load: Callable[[str], Any],
) -> tuple[Path, str]:
    """The folder and file name of `source`'s export, making it on first use.

    Args:
        source: The resolved model folder (or hub id).
        backend: `"onnx"` or `"openvino"`.
        quantization: None or `"int8"`.
        cache: The cache folder.
        load: Loads a model from a path with `backend` (exporting it), a
            sentence-transformers `CrossEncoder` or `SentenceTransformer`.

    Returns:
        `(folder, file_name)`; pass `model_kwargs={"file_name": file_name}`
        when loading `folder` with the same backend.
    """
    check_options(backend, quantization)
    target = export_folder(source, backend, quantization, cache)
    file_name = _file_name(backend, quantization)
    if (target / file_name).is_file():
        return target, file_name
    logger.info("Exporting %s to %s (%s); this happens once.", source, target, backend)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    # The exporters print progress bars to stdout; keep stdout for the caller's
    # own output (e.g. `ce-rerank query --json`).
    redirect = contextlib.redirect_stdout(sys.stderr)
    try:
        with redirect:
            model = load(source)
            model.save_pretrained(str(staging))
            if quantization and backend == "onnx":
                from sentence_transformers import export_dynamic_quantized_onnx_model

                export_dynamic_quantized_onnx_model(
                    model, instruction_set(), str(staging)
                )
            elif quantization:
                _quantize_openvino(model, staging)
        if target.exists():  # another process finished first
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, file_name


def load_exported(
    source: str,
    backend: Backend,
    quantization: Quantization,
    *,
    cache: Path,
    device: str,
    kwargs: dict[str, Any],
) -> Any:
    """Load cross-encoder `source` with an accelerated backend (export once)."""
    from sentence_transformers import CrossEncoder

    model_kwargs = backend_model_kwargs(backend, kwargs.pop("model_kwargs", None))

    def load(path: str, extra: dict[str, Any] | None = None) -> Any:
        return CrossEncoder(
            path,
            device=device,
            backend=backend,
            model_kwargs={**model_kwargs, **(extra or {})},
            **kwargs,
        )

    target, file_name = ensure_export(
        source, backend, quantization, cache=cache, load=load
    )
    return load(str(target), {"file_name": file_name})
