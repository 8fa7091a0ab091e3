"""The openvino backend: OpenVINO through sentence-transformers' IR export.

int8 is NNCF static post-training quantization, calibrated on
`models.calibration.calibration_pairs()`. It is called directly rather than
through sentence-transformers' `export_static_quantized_openvino_model`,
which only calibrates on a Hugging Face Hub dataset and so cannot run
offline. OpenVINO's int8 IR is portable; the plugin compiles it at load.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from langchain_ce_rerank.models import causal_export
from langchain_ce_rerank.models.backends.base import Backend
from langchain_ce_rerank.models.export import ExportFormat, FamilyExport

__all__ = ["BACKEND", "EXPORT"]

_FP32 = "openvino/openvino_model.xml"
_INT8 = "openvino/openvino_model_qint8_quantized.xml"

# OpenVINO runs fp32 models in bf16 on processors with avx512_bf16. On this
# project's 2-core AVX-512 machine (no AMX) that was 1.5x slower than f32 and
# moved scores, so f32 is the default; pass
# model_kwargs={"ov_config": {"INFERENCE_PRECISION_HINT": "bf16"}} to opt in.
_OV_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def _static_int8(model: Any, folder: Path) -> None:
    """Write NNCF static int8 of the IR exported in `folder`, calibrated offline."""
    import nncf
    import openvino

    from langchain_ce_rerank.models.calibration import calibration_inputs

    ir = openvino.Core().read_model(str(folder / _FP32))
    samples = calibration_inputs(model, {port.get_any_name() for port in ir.inputs})
    quantized = nncf.quantize(
        ir,
        nncf.Dataset(samples),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
    )
    # compress_to_fp16 would also round the layers left in fp32.
    openvino.save_model(quantized, str(folder / _INT8), compress_to_fp16=False)


EXPORT = ExportFormat(
    backend="openvino",
    files={None: _FP32, "int8": _INT8},
    quantizers={"int8": _static_int8},
    model_kwargs={"ov_config": _OV_CONFIG},
    families={
        "causal-lm": FamilyExport(
            export=partial(causal_export.export_causal_lm, "openvino"),
            model_kwargs=causal_export.load_kwargs,
            variant="causal-lm-no-cache",
        )
    },
)
"""Where the OpenVINO exports live, how their int8 is made, and f32 by default."""

BACKEND = Backend(
    name="openvino",
    extra="openvino",
    modules=("openvino", "optimum.intel", "nncf"),
    quantizations={"int8": "static int8, fastest on CPU"},
    load_cross_encoder=EXPORT.load_cross_encoder,
    load_embeddings=EXPORT.load_embeddings,
    exports=True,
)
"""OpenVINO on CPU (the `[openvino]` extra); exported once and cached."""
