"""Exporting causal-LM rerankers (Qwen3-Reranker style) for onnx and openvino.

sentence-transformers scores a causal LM with one forward pass per pair and
reads the logits of "yes" and "no" at the last position (`LogitScore`). Its
onnx and openvino loaders export such a model the way optimum exports it for
text generation, which fails or misfires for a reranker:

- onnx: optimum's `ORTModelForCausalLM` export does not say which library the
  model comes from, so optimum guesses "sentence_transformers" from the
  folder's `modules.json` and stops with `KeyError: Unknown task:
  text-generation` (the same guess as huggingface/optimum#2327).
- openvino: the export is stateful (the generation cache lives inside the
  compiled model); static int8 of it failed at the first scoring call inside
  OpenVINO's CPU plugin (`ScaledDotProductAttentionWithKVCache ... B ==
  B_state`), and a reranker never uses the cache anyway.

So these exports call optimum's exporters directly, for plain text generation
without the cache (`library_name="transformers"`, `task="text-generation"`,
openvino `stateful=False`), beside the sentence-transformers files of the
model (modules, tokenizer, chat template, `LogitScore`) so that
sentence-transformers loads the result like any export. OpenVINO also traces
the model with `logits_to_keep=1`, so the graph computes logits for the last
position only, as the torch path does; optimum's onnx exporter forces
`logits_to_keep=0` and keeps every position's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

__all__ = ["export_causal_lm", "load_kwargs"]

load_kwargs: dict[str, Any] = {"use_cache": False}
"""What loading one of these exports needs: optimum refuses a cache-less
export loaded with its default `use_cache=True`."""

_WEIGHTS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin")


def export_causal_lm(
    backend: Literal["onnx", "openvino"], source: str, folder: Path
) -> None:
    """Write `source` to `folder` as a cache-less `backend` export.

    Args:
        backend: `"onnx"` (writes `onnx/model.onnx`) or `"openvino"` (writes
            `openvino/openvino_model.xml`, full precision).
        source: The causal-LM reranker's folder or Hub id.
        folder: An empty folder to write to.
    """
    from sentence_transformers import CrossEncoder

    # The sentence-transformers files, as the model itself saves them; its
    # torch weights are then dropped, since the export replaces them.
    CrossEncoder(source, device="cpu").save_pretrained(str(folder))
    for pattern in _WEIGHTS:
        for path in folder.glob(pattern):
            path.unlink()
    if backend == "onnx":
        from optimum.exporters.onnx import main_export

        main_export(
            source,
            output=folder / "onnx",
            task="text-generation",
            library_name="transformers",
            do_validation=False,
        )
    else:
        from optimum.exporters.openvino import main_export as ov_export
        from optimum.intel import OVConfig

        ov_export(
            source,
            output=folder / "openvino",
            task="text-generation",
            library_name="transformers",
            stateful=False,
            # Explicit fp32: left to itself optimum compresses the weights of
            # models over 1e9 parameters to int8.
            ov_config=OVConfig(dtype="fp32"),
            model_kwargs={"logits_to_keep": 1},
        )
