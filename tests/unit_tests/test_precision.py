"""`dtype=`: passed to sentence-transformers, refused where it is slower or meaningless."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from doubles import WordOverlapCrossEncoder

from langchain_ce_rerank import CrossEncoderCompressor, Reranker
from langchain_ce_rerank.engine.identity import scoring_identity
from langchain_ce_rerank.models import load_cross_encoder
from langchain_ce_rerank.models.backends import BACKENDS
from langchain_ce_rerank.models.precision import (
    CPU_MEASURED,
    DTYPES,
    check_dtype,
    cpu_flags,
    with_dtype,
)

NATIVE_BF16 = frozenset({"avx512f", "avx512_bf16"})
NO_BF16 = frozenset({"avx512f", "avx2"})


@pytest.mark.parametrize(
    ("dtype", "flags"),
    [("float16", NATIVE_BF16), ("float16", NO_BF16), ("bfloat16", NO_BF16)],
)
@pytest.mark.parametrize("device", ["cpu", "CPU", "cpu:0"])
def test_half_precision_on_cpu_is_refused_naming_dtype_device_and_remedy(
    dtype: str, flags: frozenset[str], device: str
) -> None:
    with pytest.raises(ValueError, match="refused") as caught:
        check_dtype(dtype, device=device, backend="torch", flags=flags)
    message = str(caught.value)
    assert f"dtype={dtype!r} on device={device!r} is refused: " in message
    assert CPU_MEASURED[dtype] in message
    assert "Use dtype='float32' on CPU" in message
    assert "backend='openvino' with quantization='int8'" in message
    assert f"dtype={dtype!r} on a GPU (device='cuda')" in message


@pytest.mark.parametrize("flags", [frozenset({"avx512_bf16"}), frozenset({"amx_bf16"})])
def test_bfloat16_on_a_cpu_with_bfloat16_instructions_is_allowed(
    flags: frozenset[str],
) -> None:
    check_dtype("bfloat16", device="cpu", backend="torch", flags=flags)


def test_cpu_flags_are_read_from_proc_cpuinfo() -> None:
    flags = cpu_flags()
    assert isinstance(flags, frozenset)
    if Path("/proc/cpuinfo").is_file():  # Linux: every x86 or ARM CPU lists some
        assert flags


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps", None])
def test_every_dtype_is_allowed_on_an_accelerator_or_before_the_device_is_picked(
    dtype: str, device: str | None
) -> None:
    check_dtype(dtype, device=device, backend="torch")


def test_float32_is_allowed_everywhere() -> None:
    for backend in BACKENDS:
        check_dtype("float32", device="cpu", backend=backend)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_with_an_exporting_backend_is_refused(
    backend: str, dtype: str
) -> None:
    with pytest.raises(ValueError, match="needs backend='torch'") as caught:
        check_dtype(dtype, device="cuda", backend=backend)
    assert str(caught.value) == (
        f"dtype={dtype!r} needs backend='torch': backend={backend!r} runs its "
        "export in float32, and its speed-up on CPU is int8 "
        f"(quantization='int8'); leave dtype at 'float32' with backend={backend!r}"
    )


def test_the_cli_wording_names_flags() -> None:
    with pytest.raises(ValueError, match="refused") as caught:
        check_dtype("float16", device="cpu", backend="torch", cli=True)
    assert "--dtype float16 on --device cpu is refused" in str(caught.value)
    assert "--backend openvino with --int8" in str(caught.value)
    with pytest.raises(ValueError, match="--dtype bfloat16 needs --backend torch"):
        check_dtype("bfloat16", device=None, backend="onnx", cli=True)


def test_an_unknown_dtype_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="'float64' is unknown; choose one of "):
        check_dtype("float64", device="cuda", backend="torch")


def test_only_the_torch_backend_offers_half_precision() -> None:
    assert {name: b.dtypes for name, b in BACKENDS.items()} == {
        "torch": ("float32", "bfloat16", "float16"),
        "openvino": ("float32",),
        "onnx": ("float32",),
    }


def test_the_dtype_reaches_sentence_transformers_as_model_kwargs_dtype() -> None:
    import torch

    given = {"revision": "main", "model_kwargs": {"attn_implementation": "eager"}}
    assert with_dtype("bfloat16", given) == {
        "revision": "main",
        "model_kwargs": {"attn_implementation": "eager", "dtype": torch.bfloat16},
    }
    assert given["model_kwargs"] == {"attn_implementation": "eager"}  # not mutated
    for name in ("dtype", "torch_dtype"):
        with pytest.raises(ValueError, match=f"'{name}': ...}}}} sets the precision"):
            with_dtype("float32", {"model_kwargs": {name: torch.float16}})
        with pytest.raises(ValueError, match=f"model_kwargs={{'{name}': ...}} sets"):
            with_dtype("float32", {name: torch.float16})


# -- the settings ---------------------------------------------------------------


@pytest.mark.parametrize("door", [Reranker, CrossEncoderCompressor])
def test_half_precision_on_cpu_is_refused_at_construction(door: Any) -> None:
    with pytest.raises(ValueError, match="dtype='float16' on device='cpu' is refused"):
        door(model="some/model", device="cpu", dtype="float16")
    with pytest.raises(ValueError, match="dtype='bfloat16' needs backend='torch'"):
        door(model="some/model", dtype="bfloat16", backend="onnx")
    with pytest.raises(ValueError, match="dtype"):
        door(model="some/model", dtype="half")


def test_dtype_is_for_loading_not_for_a_loaded_model() -> None:
    with pytest.raises(ValueError, match="dtype configure loading a model by id"):
        Reranker(model=WordOverlapCrossEncoder(), dtype="bfloat16")


def test_the_loader_gets_the_dtype() -> None:
    seen: dict[str, Any] = {}

    def loader(model: Any, **kwargs: Any) -> WordOverlapCrossEncoder:
        seen.update(kwargs)
        return WordOverlapCrossEncoder()

    engine = Reranker(
        model="some/model", device="cuda", dtype="bfloat16", loader=loader
    )
    engine.rank("red", ["red apple"])
    assert (seen["dtype"], seen["device"]) == ("bfloat16", "cuda")
    assert Reranker(model="some/model", loader=loader).dtype == "float32"


def test_dtype_is_part_of_the_scoring_identity(standin_ce_path: Path) -> None:
    fp32 = scoring_identity(Reranker(model=standin_ce_path))
    bf16 = scoring_identity(
        Reranker(model=standin_ce_path, device="cuda", dtype="bfloat16")
    )
    assert (fp32.dtype, bf16.dtype) == ("float32", "bfloat16")
    assert fp32.differences(bf16) == ["dtype: fitted with 'float32', here 'bfloat16'"]


def test_a_model_whose_device_is_picked_at_load_is_checked_there(
    standin_ce_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    # The same on a machine with a GPU: the device picked is the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    engine = Reranker(model=standin_ce_path, dtype="float16")  # device None
    with pytest.raises(ValueError, match="dtype='float16' on device='cpu'"):
        engine.load_model()


# -- what sentence-transformers loads --------------------------------------------


def test_float32_is_loaded_even_for_a_model_saved_in_bfloat16(
    standin_ce_path: Path, tmp_path: Path
) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    saved = CrossEncoder(str(standin_ce_path), device="cpu")
    saved.model.to(torch.bfloat16)
    saved.save_pretrained(str(tmp_path / "bf16"))
    # sentence-transformers alone keeps the saved precision (transformers'
    # dtype="auto"), which on CPU is the slow path measured in benchmarks.
    assert CrossEncoder(str(tmp_path / "bf16"), device="cpu").dtype == torch.bfloat16
    ours = load_cross_encoder(tmp_path / "bf16", device="cpu", shared=False)
    assert ours.dtype == torch.float32


def test_bfloat16_on_a_bfloat16_cpu_loads_and_ranks_like_float32(
    standin_ce_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from langchain_ce_rerank.models import precision

    # As on a processor with bfloat16 instructions, whatever this one has.
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    texts = ["red apple pie", "a green pear", "blue plums in a bowl", "apples"]
    engines = {
        dtype: Reranker(model=standin_ce_path, device="cpu", dtype=dtype, top_n=None)
        for dtype in ("float32", "bfloat16")
    }
    assert engines["bfloat16"].load_model().dtype == torch.bfloat16  # type: ignore[union-attr]
    scores = {d: e.score("apple", texts) for d, e in engines.items()}
    assert all(type(s) is float for s in scores["bfloat16"])
    spread = max(scores["float32"]) - min(scores["float32"])
    assert (
        max(
            abs(a - b)
            for a, b in zip(scores["float32"], scores["bfloat16"], strict=True)
        )
        < 0.1 * spread
    )
