"""Model doubles for Ray workers, which import them by module name (tests/ is on
their PYTHONPATH); each process holds its own copy, so they signal via files."""

from __future__ import annotations

import os
import time
from pathlib import Path

from langchain_core.cross_encoders import BaseCrossEncoder


class GatedCrossEncoder(BaseCrossEncoder):
    """Word-overlap scores, held back until the file `folder/open` exists.

    On entering `score` it creates `folder/started-<pid>`, so a test knows
    which replica processes hold a request; it gives up after `timeout` s.
    """

    def __init__(self, folder: str, timeout: float = 120.0) -> None:
        self.folder = folder
        self.timeout = timeout

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        folder = Path(self.folder)
        (folder / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + self.timeout
        while not (folder / "open").exists():
            if time.monotonic() > deadline:
                msg = f"the gate {folder / 'open'} never opened"
                raise RuntimeError(msg)
            time.sleep(0.02)
        return [
            float(sum(word in text.lower().split() for word in query.lower().split()))
            for query, text in text_pairs
        ]
