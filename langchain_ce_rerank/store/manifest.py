"""The tamper-evident manifest of a saved store: build, digest, read, verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from langchain_ce_rerank.errors import StoreLoadError

FORMAT = "langchain-ce-rerank/faiss-store"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
INTEGRITY = "integrity"
# The fields that decide how a loaded store searches and scores; all fields are
# covered by the digest, these are the ones an error message asks to check.
BEHAVIOUR_FIELDS = (
    "dimension",
    "distance_strategy",
    "index_factory",
    "search_params",
    "count",
    "embedding_model",
    "bm25",
    "files",
)


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def _field_digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()[:16]


def with_integrity(content: dict[str, Any]) -> dict[str, Any]:
    """`content` plus the digests `_check_integrity` verifies."""
    content = json.loads(json.dumps(content))  # exactly what a reader will parse
    return {
        **content,
        INTEGRITY: {
            "algorithm": "sha256",
            "manifest_sha256": hashlib.sha256(_canonical(content)).hexdigest(),
            "field_sha256": {key: _field_digest(v) for key, v in content.items()},
        },
    }


def load_error(path: Path, problem: str) -> StoreLoadError:
    """The error for a saved file at `path` that cannot be loaded, and why."""
    return StoreLoadError(f"{path}: {problem}")


def read_manifest_bytes(folder: Path) -> bytes:
    """The manifest's bytes, or a `StoreLoadError` saying what the folder lacks."""
    if not folder.is_dir():
        msg = (
            f"no saved index at {str(folder)!r}: the folder does not exist. "
            "Create one with store.save_local(folder)."
        )
        raise FileNotFoundError(msg)
    path = folder / MANIFEST
    try:
        return path.read_bytes()
    except FileNotFoundError:
        msg = (
            f"{path} is missing: {str(folder)!r} is not a folder written by "
            "FaissVectorStore.save_local (or its save never completed)."
        )
        raise FileNotFoundError(msg) from None


def _check_integrity(path: Path, manifest: dict[str, Any]) -> None:
    """Raise unless `manifest` is exactly what `save` wrote, naming edited fields."""
    integrity = manifest.get(INTEGRITY)
    content = {key: value for key, value in manifest.items() if key != INTEGRITY}
    expected = integrity.get("manifest_sha256") if isinstance(integrity, dict) else None
    if expected == hashlib.sha256(_canonical(content)).hexdigest():
        return
    fix = (
        "The manifest decides how the index is searched and scored, so an edited "
        "one is refused rather than loaded with different results. Restore the "
        "saved manifest (undo the edit, or copy the folder from a backup). To "
        "change a setting, build the store with it and write a new manifest with "
        "save_local; to record another embedding model name, "
        "FaissVectorStore.load_local(folder, embedding=...) then save_local."
    )
    if not isinstance(expected, str):
        problem = (
            f"has no {INTEGRITY}.manifest_sha256, which every format_version "
            f"{FORMAT_VERSION} manifest written by save_local carries: it was edited"
        )
        raise load_error(path, f"{problem}. {fix}")
    saved = integrity.get("field_sha256") if isinstance(integrity, dict) else None
    saved = saved if isinstance(saved, dict) else {}
    changed = sorted(
        key
        for key in content.keys() | saved.keys()
        if key not in content or saved.get(key) != _field_digest(content[key])
    )
    if changed:
        fields = ", ".join(repr(key) for key in changed)
        problem = f"edited after save_local wrote it: field(s) {fields} changed"
    else:
        checks = ", ".join(BEHAVIOUR_FIELDS)
        problem = (
            "edited after save_local wrote it: its content no longer matches "
            f"{INTEGRITY}.manifest_sha256 (check the fields {checks})"
        )
    raise load_error(path, f"{problem}. {fix}")


def parse_manifest(folder: Path, raw: bytes) -> dict[str, Any]:
    """The manifest, checked field by field; errors name the field at fault."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise load_error(path, f"not valid JSON ({err}); the file is damaged") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise load_error(path, f"not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise load_error(
            path,
            f"format_version {version!r} is not supported (this release reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}); upgrade langchain-ce-rerank",
        )
    if version >= 2:
        _check_integrity(path, manifest)
    for key, kind in (("count", int), ("files", dict), ("distance_strategy", str)):
        if not isinstance(manifest.get(key), kind):
            raise load_error(path, f"field {key!r} is missing or not a {kind.__name__}")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The verified manifest of `folder` (see `FaissVectorStore.read_manifest`)."""
    return parse_manifest(folder, read_manifest_bytes(folder))
