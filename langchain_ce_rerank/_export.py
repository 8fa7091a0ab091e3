"""ONNX exports (and int8 quantizations) of cross-encoders, cached on disk.

sentence-transformers exports a model to ONNX when it is loaded with
`backend="onnx"` and quantizes it with `export_dynamic_quantized_onnx_model`;
both take seconds to minutes. The result is saved once to a cache folder keyed
by the source model's files, and every later load reads it from there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx"]
Quantization = Literal["int8"] | None

_EXTRA = {"onnx": "onnx"}
_QUANTIZED_FILE = "onnx/model_qint8_{config}.onnx"


def default_cache_folder() -> Path:
    """`$LANGCHAIN_CE_RERANK_CACHE`, else `~/.cache/langchain-ce-rerank`."""
    env = os.environ.get("LANGCHAIN_CE_RERANK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "langchain-ce-rerank"


def require_backend(backend: Backend) -> None:
    """Raise an ImportError naming the pip extra when `backend` is missing."""
    if backend == "torch":
        return
    missing = [
        name
        for name in ("onnxruntime", "optimum.onnxruntime")
        if _find_spec(name) is None
    ]
    if missing:
        msg = (
            f"backend={backend!r} needs {' and '.join(missing)}: "
            f'pip install "langchain-ce-rerank[{_EXTRA[backend]}]"'
        )
        raise ImportError(msg)


def _find_spec(name: str) -> object:
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:  # the parent package is missing
        return None


def quantization_config() -> str:
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


def export_folder(
    source: str, backend: Backend, quantization: Quantization, cache: Path
) -> Path:
    """Where the export of `source` for these settings lives in `cache`."""
    name = Path(source.rstrip("/")).name or "model"
    # int8 kernels differ by processor, so a cache shared between machines
    # keeps one quantized export per instruction set.
    precision = f"int8-{quantization_config()}" if quantization else "fp32"
    return cache / "exports" / f"{name}-{backend}-{precision}-{_fingerprint(source)}"


def load_exported(
    source: str,
    backend: Backend,
    quantization: Quantization,
    *,
    cache: Path,
    device: str,
    kwargs: dict[str, Any],
) -> Any:
    """Load `source` with an accelerated backend, exporting it on first use."""
    from sentence_transformers import CrossEncoder

    require_backend(backend)
    target = export_folder(source, backend, quantization, cache)
    config = quantization_config()
    file_name = (
        _QUANTIZED_FILE.format(config=config) if quantization else "onnx/model.onnx"
    )
    if not (target / file_name).is_file():
        logger.info(
            "Exporting %s to %s (%s); this happens once.", source, target, backend
        )
        model = CrossEncoder(source, device=device, backend=backend, **kwargs)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        try:
            model.save_pretrained(str(staging))
            if quantization:
                from sentence_transformers import export_dynamic_quantized_onnx_model

                export_dynamic_quantized_onnx_model(model, config, str(staging))
            if target.exists():  # another process finished first
                shutil.rmtree(staging)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    model_kwargs = {**kwargs.pop("model_kwargs", {}), "file_name": file_name}
    return CrossEncoder(
        str(target), device=device, backend=backend, model_kwargs=model_kwargs, **kwargs
    )
