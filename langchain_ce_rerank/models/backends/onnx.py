"""The onnx backend: onnxruntime through sentence-transformers' ONNX export.

int8 is onnxruntime dynamic quantization (`export_dynamic_quantized_onnx_model`):
weights int8, activations quantized on the fly; its kernels differ by
processor, so int8 exports are kept per instruction set.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from langchain_ce_rerank.models import causal_export
from langchain_ce_rerank.models.backends.base import Backend
from langchain_ce_rerank.models.export import (
    ExportFormat,
    FamilyExport,
    instruction_set,
)

__all__ = ["BACKEND", "EXPORT"]


def _dynamic_int8(model: Any, folder: Path) -> None:
    """Write onnxruntime's dynamic int8 of `model` for this processor."""
    from sentence_transformers import export_dynamic_quantized_onnx_model

    export_dynamic_quantized_onnx_model(model, instruction_set(), str(folder))


EXPORT = ExportFormat(
    backend="onnx",
    files={None: "onnx/model.onnx", "int8": "onnx/model_qint8_{isa}.onnx"},
    quantizers={"int8": _dynamic_int8},
    per_instruction_set=frozenset({"int8"}),
    families={
        "causal-lm": FamilyExport(
            export=partial(causal_export.export_causal_lm, "onnx"),
            model_kwargs=causal_export.load_kwargs,
            variant="causal-lm-no-cache",
        )
    },
)
"""Where the ONNX exports live and how their int8 is made."""

BACKEND = Backend(
    name="onnx",
    extra="onnx",
    modules=("onnxruntime", "optimum.onnxruntime"),
    quantizations={"int8": "dynamic int8"},
    load_cross_encoder=EXPORT.load_cross_encoder,
    load_embeddings=EXPORT.load_embeddings,
    exports=True,
)
"""onnxruntime on CPU (the `[onnx]` extra); exported once and cached."""
