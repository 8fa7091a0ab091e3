"""Exports (and quantizations) of models for the exporting backends, cached on disk.

sentence-transformers exports a cross-encoder or bi-encoder when it is loaded
with `backend="onnx"` or `backend="openvino"`; quantizing takes seconds to
minutes more. The result is saved once to a cache folder keyed by the source
model's files, and every later load reads it from there.

This module is the mechanism, shared by every backend that exports; what
differs between them (file names, how each quantization is made, default
settings) is an `ExportFormat` that the backend's own module declares
(`models/backends/onnx.py`, `models/backends/openvino.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import CrossEncoder

__all__ = [
    "ExportFormat",
    "FamilyExport",
    "Quantizer",
    "SentenceTransformersBackend",
    "default_cache_folder",
    "instruction_set",
]

logger = logging.getLogger(__name__)

SentenceTransformersBackend = Literal["torch", "onnx", "openvino"]
"""sentence-transformers' own `backend=` values (its vocabulary, not ours)."""

Quantizer = Callable[[Any, Path], None]
"""Writes a quantized copy of a loaded model into the folder where its fp32
export was just saved (the model is a sentence-transformers `CrossEncoder` or
`SentenceTransformer` loaded with the backend)."""


def default_cache_folder() -> Path:
    """`$LANGCHAIN_CE_RERANK_CACHE`, else `~/.cache/langchain-ce-rerank`."""
    env = os.environ.get("LANGCHAIN_CE_RERANK_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "langchain-ce-rerank"


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


Exporter = Callable[[str, Path], None]
"""Writes the full-precision export of a source model (folder or Hub id) into
an empty folder, as a folder sentence-transformers loads with the backend."""


@dataclass(frozen=True)
class FamilyExport:
    """How one model family is exported where sentence-transformers' own export fails.

    Example:
        ```python
        from langchain_ce_rerank.models.backends import openvino

        causal = openvino.EXPORT.families["causal-lm"]
        print(causal.variant, dict(causal.model_kwargs))
        ```
    """

    export: Exporter
    """Writes the full-precision export (quantizers then work on it as usual)."""

    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """sentence-transformers `model_kwargs` every load of these exports needs."""

    variant: str = ""
    """Part of the cache key, so exports made another way are never reused."""


def _fingerprint(source: str, variant: str = "") -> str:
    """Digest of the source model's identity: its files' names, sizes and times."""
    digest = hashlib.sha256(source.encode("utf-8"))
    if variant:
        digest.update(f"\0{variant}".encode())
    folder = Path(source)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(
                    f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                )
    return digest.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class ExportFormat:
    """How one exporting backend lays out, makes and loads its exports.

    Example:
        ```python
        from pathlib import Path

        from langchain_ce_rerank.models.backends import onnx

        folder = onnx.EXPORT.folder("my-model", None, Path("cache"))
        print(folder.name.startswith("my-model-onnx-fp32-"))  # True
        ```
    """

    backend: SentenceTransformersBackend
    """sentence-transformers' `backend=` value, also part of each folder name."""

    files: Mapping[str | None, str]
    """The model file inside an export folder, by quantization (None: fp32);
    `{isa}` stands for `instruction_set()`."""

    quantizers: Mapping[str, Quantizer] = field(default_factory=dict)
    """How each quantization is made from the loaded model."""

    per_instruction_set: frozenset[str] = frozenset()
    """Quantizations whose kernels differ by processor, so a cache shared
    between machines keeps one export per instruction set."""

    model_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Defaults for sentence-transformers' `model_kwargs`, merged key by key
    under the user's own (e.g. OpenVINO's `ov_config`)."""

    families: Mapping[str, FamilyExport] = field(default_factory=dict)
    """Model families (`models.families`) exported by their own exporter
    instead of sentence-transformers' (see `models.causal_export`)."""

    def file_name(self, quantization: str | None) -> str:
        """The model file, relative to the export folder, for `quantization`."""
        return self.files[quantization].format(isa=instruction_set())

    def folder(
        self, source: str, quantization: str | None, cache: Path, variant: str = ""
    ) -> Path:
        """Where the export of `source` for `quantization` lives in `cache`.

        `variant` tells apart exports of the same source made another way
        (a `FamilyExport.variant`).
        """
        name = Path(source.rstrip("/")).name or "model"
        precision = "fp32"
        if quantization:
            isa = (
                f"-{instruction_set()}"
                if quantization in self.per_instruction_set
                else ""
            )
            precision = f"{quantization}{isa}"
        return (
            cache / "exports" / f"{name}-{self.backend}-{precision}-"
            f"{_fingerprint(source, variant)}"
        )

    def merged_model_kwargs(
        self, model_kwargs: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`model_kwargs` for sentence-transformers, with this format's defaults."""
        merged = dict(model_kwargs or {})
        for key, defaults in self.model_kwargs.items():
            merged[key] = {**defaults, **merged.get(key, {})}
        return merged

    def ensure(
        self,
        source: str,
        quantization: str | None,
        *,
        cache: Path,
        load: Callable[..., Any],
        family: FamilyExport | None = None,
    ) -> tuple[Path, str]:
        """The folder and file name of `source`'s export, making it on first use.

        Args:
            source: The resolved model folder (or hub id).
            quantization: None or one of `quantizers`.
            cache: The cache folder.
            load: Loads a model from a path with this backend (exporting it), a
                sentence-transformers `CrossEncoder` or `SentenceTransformer`;
                called with the path, and for a family's export also with
                `{"file_name": ...}` (sentence-transformers `model_kwargs`).
            family: The model family's own exporter, used instead of
                exporting through `load`; `load` then reads its export.

        Returns:
            `(folder, file_name)`; pass `model_kwargs={"file_name": file_name}`
            when loading `folder` with the same backend.
        """
        variant = family.variant if family else ""
        target = self.folder(source, quantization, cache, variant)
        file_name = self.file_name(quantization)
        if (target / file_name).is_file():
            return target, file_name
        logger.info(
            "Exporting %s to %s (%s); this happens once.", source, target, self.backend
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
        # The exporters print progress bars to stdout; keep stdout for the
        # caller's own output (e.g. `ce-rerank query --json`).
        redirect = contextlib.redirect_stdout(sys.stderr)
        try:
            with redirect:
                if family is None:
                    model = load(source)
                    model.save_pretrained(str(staging))
                else:
                    family.export(source, staging)
                if quantization:
                    if family is not None:  # the quantizers read a loaded export
                        model = load(str(staging), {"file_name": self.file_name(None)})
                    self.quantizers[quantization](model, staging)
            if target.exists():  # another process finished first
                shutil.rmtree(staging)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target, file_name

    def load_cross_encoder(
        self,
        path: str,
        *,
        device: str,
        quantization: str | None,
        cache: Path,
        kwargs: dict[str, Any],
    ) -> CrossEncoder:
        """Load cross-encoder `path` from its export, exporting it once."""
        from sentence_transformers import CrossEncoder

        from langchain_ce_rerank.models.families import family_of

        family = self.families.get(family_of(path).name)
        kwargs = dict(kwargs)
        model_kwargs = self.merged_model_kwargs(kwargs.pop("model_kwargs", None))
        if family is not None:
            model_kwargs = {**family.model_kwargs, **model_kwargs}

        def load(folder: str, extra: dict[str, Any] | None = None) -> CrossEncoder:
            model = CrossEncoder(
                folder,
                device=device,
                backend=self.backend,
                model_kwargs={**model_kwargs, **(extra or {})},
                **kwargs,
            )
            return cast("CrossEncoder", model)

        target, file_name = self.ensure(
            path, quantization, cache=cache, load=load, family=family
        )
        return load(str(target), {"file_name": file_name})

    def load_embeddings(
        self,
        path: str,
        *,
        device: str,
        quantization: str | None,
        cache: Path,
        encode_kwargs: dict[str, Any],
    ) -> HuggingFaceEmbeddings:
        """Load bi-encoder `path` from its export as LangChain embeddings."""
        from langchain_huggingface import HuggingFaceEmbeddings
        from sentence_transformers import SentenceTransformer

        model_kwargs = self.merged_model_kwargs()
        target, file_name = self.ensure(
            path,
            quantization,
            cache=cache,
            load=lambda source: SentenceTransformer(
                source, device=device, backend=self.backend, model_kwargs=model_kwargs
            ),
        )
        return HuggingFaceEmbeddings(
            model_name=str(target),
            model_kwargs={
                "device": device,
                "backend": self.backend,
                "model_kwargs": {**model_kwargs, "file_name": file_name},
            },
            encode_kwargs=encode_kwargs,
        )
