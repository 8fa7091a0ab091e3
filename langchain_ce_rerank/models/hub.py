"""The Hugging Face side of model loading: offline mode, reachability, quiet.

- `hub_offline()`: which variable, if any, forbids downloads.
- `hub_unreachable()`: one short HEAD request to the Hub's endpoint before any
  download, so a machine without Hub access fails in seconds instead of
  spending a minute in Hugging Face's retry loops (or hanging on a host that
  accepts connections and never answers).
- `quiet_loading()`: progress bars and load reports of huggingface_hub,
  transformers and sentence-transformers are silenced around our own loads
  only; the user's settings are restored afterwards.
- `import_tqdm_quietly()`: imports `tqdm.auto` without the "IProgress not
  found" `TqdmWarning` that a notebook without ipywidgets otherwise shows.
"""

from __future__ import annotations

import importlib
import os
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "HUB_CHECK_TIMEOUT_S",
    "hub_endpoint",
    "hub_offline",
    "hub_unreachable",
    "import_tqdm_quietly",
    "quiet_loading",
]

HUB_CHECK_TIMEOUT_S = 3.0
"""Seconds the Hub has to answer the connectivity check (DNS included)."""

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline() -> str | None:
    """`"HF_HUB_OFFLINE=1"` (or the transformers spelling) when set, else None."""
    for variable in _OFFLINE_VARIABLES:
        value = os.environ.get(variable, "")
        if value.strip().lower() in {"1", "true", "yes", "on"}:
            return f"{variable}={value.strip()}"
    return None


def hub_endpoint() -> str:
    """The Hub address huggingface_hub would download from (`HF_ENDPOINT`)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def hub_unreachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> str | None:
    """Why the Hub cannot be reached, or None when it answers.

    Any HTTP answer, an error status included, means reachable: the request
    only asks whether a download could start. The whole check, name lookup
    included, is bounded by `timeout` (plus a moment).

    Args:
        timeout: Seconds to wait for an answer.

    Returns:
        A short reason such as `"no answer within 3 s"`, or None.
    """
    endpoint = hub_endpoint()
    outcome: list[str | None] = []

    def probe() -> None:
        request = urllib.request.Request(endpoint + "/", method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # it answered; the status does not matter here
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                outcome.append(f"no answer within {timeout:g} s")
            else:
                outcome.append(str(reason) or type(reason).__name__)

    # A thread bounds name resolution too, which socket timeouts do not.
    thread = threading.Thread(target=probe, name="hf-hub-check", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def import_tqdm_quietly() -> None:
    """Import `tqdm.auto` once, hiding its notebook-without-ipywidgets warning.

    huggingface_hub, transformers and sentence-transformers import `tqdm.auto`
    when they are first imported; inside Jupyter without ipywidgets that import
    warns "IProgress not found" and falls back to text bars. Importing it here
    first, under a filter, keeps that warning out of the user's first cell.
    """
    import sys

    if "tqdm.auto" in sys.modules:
        return
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="IProgress not found", category=TqdmWarning
        )
        import tqdm.auto  # noqa: F401


_quiet_guard = threading.Lock()
_quiet_depth = 0
_saved: dict[str, Any] = {}


def _hub_bars() -> Any:
    # The module, not the `tqdm` class that `huggingface_hub.utils` re-exports.
    return importlib.import_module("huggingface_hub.utils.tqdm")


def _silence() -> None:
    hub_tqdm = _hub_bars()

    _saved["hub_bars"] = dict(hub_tqdm.progress_bar_states)
    if hub_tqdm.HF_HUB_DISABLE_PROGRESS_BARS is not False:  # env var has priority
        hub_tqdm.disable_progress_bars()
    try:
        from transformers.utils import logging as hf_logging
    except (
        ImportError
    ):  # pragma: no cover - transformers comes with sentence-transformers
        return
    _saved["transformers_bars"] = hf_logging.is_progress_bar_enabled()
    _saved["transformers_verbosity"] = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # load reports


def _restore() -> None:
    hub_tqdm = _hub_bars()

    if "transformers_verbosity" in _saved:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(_saved.pop("transformers_verbosity"))
        if _saved.pop("transformers_bars"):
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    # transformers' switch also flips the hub's; put the hub's back exactly.
    states = _saved.pop("hub_bars", {})
    hub_tqdm.progress_bar_states.clear()
    hub_tqdm.progress_bar_states.update(states)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence Hugging Face progress bars and load reports inside the block.

    Re-entrant and thread-safe: the first block to enter saves the user's
    settings and the last to leave restores them. Logging through the
    `sentence_transformers` logger is untouched (INFO lines stay available).
    """
    global _quiet_depth
    import_tqdm_quietly()
    with _quiet_guard:
        if _quiet_depth == 0:
            _silence()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_guard:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                _restore()
