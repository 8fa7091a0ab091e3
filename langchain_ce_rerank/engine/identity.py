"""`ScoringIdentity`: what makes one reranker's raw scores mean what they mean.

A score calibration (`engine/probability.py`) maps a model's raw scores to
probabilities; it is only right for scores computed the same way. Two
rerankers compute the same raw score for the same (query, text) when they
have the same weights (a content fingerprint of the model folder), run them
the same way (backend, quantization and dtype: int8 and half precision
shift scores), read the same text (`max_length` truncation, `long_documents`
windows, `content_template`) under the same `instruction`.
`activation` is not part of it: a calibration maps the score *before*
activation, which activation does not change. Batch size, device and the
score cache do not change a score either.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from langchain_ce_rerank.models import resolve_model

if TYPE_CHECKING:
    from langchain_ce_rerank.engine.settings import ScoringSettings

__all__ = ["ScoringIdentity", "model_fingerprint", "scoring_identity"]

_FINGERPRINTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_FINGERPRINTS_LOCK = threading.Lock()


class ScoringIdentity(BaseModel):
    """Everything about a reranker that changes the raw score of a pair.

    Example:
        ```python
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.engine.identity import scoring_identity


        class Overlap:
            def score(self, pairs):
                return [float(len(set(q.split()) & set(t.split()))) for q, t in pairs]


        print(scoring_identity(Reranker(model=Overlap())).model)  # ...Overlap
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    """The model as given: a Hugging Face id or a folder; for a scorer
    object, its class (`module.QualifiedName`, plus `:name` when it has a
    string `model` or `model_name` attribute, as `RemoteCrossEncoder` does)."""

    fingerprint: str | None = None
    """`sha256:<hex>` over the model folder's files (see `model_fingerprint`);
    None when there is no local folder (a scorer object, a model still to be
    downloaded)."""

    backend: str = "torch"
    """The inference backend (`"torch"`, `"openvino"`, `"onnx"`)."""

    quantization: str | None = None
    """`"int8"` or None (full precision)."""

    dtype: str = "float32"
    """The precision the weights ran in (`"float32"`, `"bfloat16"`,
    `"float16"`); calibrations written before it existed were float32."""

    max_length: int | None = None
    """Token window per pair; None is the model's own."""

    long_documents: str = "truncate"
    """`"truncate"` or `"max_passage"` (a document scores as its best window)."""

    passage_tokens: int | None = None
    """With `"max_passage"`: tokens per window (None: `max_length`)."""

    passage_overlap: int | None = None
    """With `"max_passage"`: tokens shared by neighbouring windows."""

    passage_aggregation: str | None = None
    """With `"max_passage"`: how window scores make a document's score
    (None: `"max"`, the best window)."""

    content_template: str | None = None
    """What the model reads of each document; None is its text alone."""

    instruction: str | None = None
    """The instruction the model scores under; None is the model's default."""

    def differences(self, other: ScoringIdentity) -> list[str]:
        """How `other` computes scores differently, one phrase per difference.

        Models are compared by fingerprint when both sides have one (the same
        weights under another name or folder are the same model), else by
        name.

        Args:
            other: The reranker's identity, compared with this one (the one a
                calibration was fitted for).

        Returns:
            Phrases such as `"backend: fitted with 'torch', here 'openvino'"`;
            empty when the scores are computed the same way.
        """
        found = []
        both_known = self.fingerprint is not None and other.fingerprint is not None
        same_model = (
            self.fingerprint == other.fingerprint
            if both_known
            else self.model == other.model
        )
        if not same_model:
            found.append(
                f"model: fitted for {_shown_model(self)}, here {_shown_model(other)}"
            )
        for name in type(self).model_fields:
            if name in ("model", "fingerprint"):
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                found.append(f"{name}: fitted with {mine!r}, here {theirs!r}")
        return found


def _shown_model(identity: ScoringIdentity) -> str:
    if identity.fingerprint is None:
        return repr(identity.model)
    return f"{identity.model!r} ({identity.fingerprint[:19]}…)"


_READ_FILES = frozenset(
    {
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
    }
)
"""Files besides the weights that change a score: the architecture and the
tokenizer (and `*.model`, a SentencePiece tokenizer)."""


def _scoring_files(root: Path) -> list[Path]:
    """The files a torch load reads: config, tokenizer, and one set of weights.

    safetensors weights when there are any (what transformers loads first),
    else `pytorch_model*.bin`; other formats' weights (TensorFlow, Flax,
    ONNX exports) and model cards are left out, so the same model fetched
    two ways has one fingerprint. A folder with neither counts every file.
    """
    files = [
        path
        for path in root.iterdir()
        if path.is_file() and not path.name.startswith(".")
    ]
    weights = [
        p for p in files if p.name.endswith((".safetensors", ".safetensors.index.json"))
    ]
    if not weights:
        weights = [
            p
            for p in files
            if p.name.startswith("pytorch_model") and p.suffix in (".bin", ".json")
        ]
    if not weights:
        return sorted(p for p in files if p.suffix.lower() != ".md")
    read = [p for p in files if p.name in _READ_FILES or p.suffix == ".model"]
    return sorted({*weights, *read})


def model_fingerprint(folder: str | os.PathLike[str]) -> str:
    """A content fingerprint of a model folder: `sha256:<hex>`.

    Covers what makes the model's scores: its config, tokenizer files and
    weights (safetensors, else PyTorch `.bin`), by
    name and SHA-256 of the content. A copy of the folder elsewhere, or the
    same model downloaded with more formats or another model card, has the
    same fingerprint. Remembered per folder while the files' sizes and times
    stay the same, so a process hashes each model once.

    Args:
        folder: A model folder.

    Returns:
        `"sha256:"` and the hex digest of the files' names and digests.

    Example:
        ```python
        from pathlib import Path
        from langchain_ce_rerank.engine.identity import model_fingerprint

        Path("tiny-model").mkdir(exist_ok=True)
        Path("tiny-model/config.json").write_text("{}")
        print(model_fingerprint("tiny-model"))
        ```
    """
    root = Path(folder).resolve()
    files = _scoring_files(root)
    stamps = tuple(
        (path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files
    )
    key = (str(root), stamps)
    with _FINGERPRINTS_LOCK:
        known = _FINGERPRINTS.get(key)
    if known is not None:
        return known
    total = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        total.update(f"{path.name}\0{digest}\n".encode())
    fingerprint = f"sha256:{total.hexdigest()}"
    with _FINGERPRINTS_LOCK:
        _FINGERPRINTS[key] = fingerprint
    return fingerprint


def _object_identity(model: object) -> tuple[str, str | None]:
    """(name, fingerprint) of a scorer or loaded model given as an object."""
    kind = type(model)
    name = f"{kind.__module__}.{kind.__qualname__}"
    # A loaded sentence-transformers CrossEncoder knows its folder.
    source = getattr(getattr(model, "transformers_model", None), "name_or_path", None)
    if isinstance(source, str) and source and Path(source).is_dir():
        return source, model_fingerprint(source)
    for attribute in ("model_name", "model"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return f"{name}:{value}", None
    return name, None


def scoring_identity(settings: ScoringSettings) -> ScoringIdentity:
    """The identity of the scores a reranker with these settings computes.

    Finds a model id or folder (as `resolve_model` does, without loading
    it) and fingerprints the folder; a model that would still be downloaded
    has no fingerprint yet.

    Args:
        settings: A `Reranker`'s (or any `ScoringSettings`).

    Raises:
        ModelNotFoundError: The model id or folder cannot be found.
    """
    model = settings.model
    if isinstance(model, str | Path):
        name = str(model)
        found = Path(resolve_model(model, cross_encoder=True))
        fingerprint = model_fingerprint(found) if found.is_dir() else None
    else:
        name, fingerprint = _object_identity(model)
    windows = settings.long_documents == "max_passage"
    return ScoringIdentity(
        model=name,
        fingerprint=fingerprint,
        backend=settings.backend,
        quantization=settings.quantization,
        dtype=settings.dtype,
        max_length=settings.max_length,
        long_documents=settings.long_documents,
        passage_tokens=settings.passage_tokens if windows else None,
        passage_overlap=settings.passage_overlap if windows else None,
        # None is "max", so calibrations saved before the setting existed match.
        passage_aggregation=settings.passage_aggregation
        if windows and settings.passage_aggregation != "max"
        else None,
        content_template=settings.content_template,
        # A scorer may carry its own (RemoteCrossEncoder's instruction=).
        instruction=settings.instruction
        if settings.instruction is not None or isinstance(model, str | Path)
        else _own_instruction(model),
    )


def _own_instruction(model: object) -> str | None:
    """The instruction a scorer object sends by itself, if it has one."""
    value = getattr(model, "instruction", None)
    return value if isinstance(value, str) else None
