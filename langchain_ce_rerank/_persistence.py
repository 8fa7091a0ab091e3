"""Pickle-free, atomic persistence for `FaissVectorStore`.

A saved folder holds three files:

- `manifest.json`: format and version, dimension, distance, count, embedding
  model name, and the name, size and SHA-256 of each data file;
- `index.<digest>.faiss`: the FAISS index, written by FAISS's own serializer;
- `docstore.<digest>.jsonl`: one JSON object per document.

Data files are content-addressed and written before the manifest, which is
swapped in with one `os.replace`. A crash at any point therefore leaves either
the old manifest (pointing at the old, untouched data files) or the new one:
the previously saved index is never damaged. Loading reads only JSON and FAISS's
binary format, so it cannot execute code, and checks sizes and checksums so a
truncated or edited file is reported by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from langchain_ce_rerank._faiss_index import stored_ids
from langchain_ce_rerank.errors import StoreLoadError

FORMAT = "langchain-ce-rerank/faiss-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_DATA_FILE = re.compile(r"^(index\.[0-9a-f]{16}\.faiss|docstore\.[0-9a-f]{16}\.jsonl)$")
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Record:
    """One stored document as it is written to the docstore."""

    id: str
    faiss_id: int
    page_content: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """Everything needed to rebuild a store; produced under the store's lock."""

    index: Any  # faiss.Index | None; faiss ships no type stubs
    records: list[Record]
    distance_strategy: str
    embedding_model: str | None
    library_version: str
    index_factory: str = "Flat"
    search_params: dict[str, int | None] | None = None


def _fsync_dir(folder: Path) -> None:
    # Directory fsync makes the rename durable on POSIX; Windows cannot open dirs.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(folder: Path, name: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _docstore_bytes(records: list[Record]) -> bytes:
    lines = []
    for record in records:
        try:
            line = json.dumps(
                {
                    "id": record.id,
                    "faiss_id": record.faiss_id,
                    "page_content": record.page_content,
                    "metadata": record.metadata,
                },
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as err:
            msg = (
                f"cannot save document {record.id!r}: its metadata is not "
                f"JSON-serializable ({err}); store only str, int, float, bool, "
                "None, lists and dicts in metadata"
            )
            raise TypeError(msg) from err
        if json.loads(line)["metadata"] != record.metadata:
            msg = (
                f"cannot save document {record.id!r}: its metadata would change "
                "in JSON (tuples become lists, non-str keys become strings); "
                "convert it to plain lists and str-keyed dicts before saving"
            )
            raise TypeError(msg)
        lines.append(line)
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def save(folder: str | os.PathLike[str], snapshot: Snapshot) -> None:
    """Write `snapshot` to `folder` atomically (see the module docstring)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    payloads: dict[str, bytes] = {"docstore": _docstore_bytes(snapshot.records)}
    if snapshot.index is not None:
        payloads["index"] = faiss.serialize_index(snapshot.index).tobytes()
    for role, data in payloads.items():
        digest = hashlib.sha256(data).hexdigest()
        suffix = "faiss" if role == "index" else "jsonl"
        name = f"{role}.{digest[:16]}.{suffix}"
        _write_atomic(target, name, data)
        files[role] = {"name": name, "bytes": len(data), "sha256": digest}
    index = snapshot.index
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": snapshot.library_version,
        "dimension": None if index is None else int(index.d),
        "distance_strategy": snapshot.distance_strategy,
        "index_factory": snapshot.index_factory,
        "search_params": snapshot.search_params or {},
        "count": len(snapshot.records),
        "embedding_model": snapshot.embedding_model,
        "files": files,
    }
    _write_atomic(target, MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    _fsync_dir(target)
    keep = {entry["name"] for entry in files.values()}
    for path in target.iterdir():
        stale = _DATA_FILE.match(path.name) and path.name not in keep
        if stale or path.name.startswith(_TMP_PREFIX):
            with contextlib.suppress(OSError):
                path.unlink()


def _bad(path: Path, problem: str) -> StoreLoadError:
    return StoreLoadError(f"{path}: {problem}")


def read_manifest(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        msg = (
            f"no saved index at {str(folder)!r}: the folder does not exist. "
            "Create one with store.save_local(folder)."
        )
        raise FileNotFoundError(msg)
    path = folder / MANIFEST
    if not path.is_file():
        msg = (
            f"{path} is missing: {str(folder)!r} is not a folder written by "
            "FaissVectorStore.save_local (or its save never completed)."
        )
        raise FileNotFoundError(msg)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(path, f"not valid JSON ({err}); the file is damaged") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(path, f"not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _bad(
            path,
            f"format_version {version!r} is not supported (this release reads "
            f"{FORMAT_VERSION}); upgrade langchain-ce-rerank",
        )
    for key, kind in (("count", int), ("files", dict), ("distance_strategy", str)):
        if not isinstance(manifest.get(key), kind):
            raise _bad(path, f"field {key!r} is missing or not a {kind.__name__}")
    return manifest


def _read_data_file(folder: Path, manifest: dict[str, Any], role: str) -> bytes:
    entry = manifest["files"].get(role)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise _bad(folder / MANIFEST, f"no valid entry for the {role} file")
    name = entry["name"]
    if not _DATA_FILE.match(name):
        raise _bad(folder / MANIFEST, f"unexpected {role} file name {name!r}")
    path = folder / name
    if not path.is_file():
        raise _bad(path, f"the {role} file named in {MANIFEST} is missing")
    data: bytes = path.read_bytes()
    if len(data) != entry.get("bytes"):
        raise _bad(
            path, f"truncated or altered: {len(data)} bytes, expected {entry['bytes']}"
        )
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise _bad(path, "modified since it was saved (SHA-256 does not match)")
    return data


def _parse_records(path: Path, data: bytes) -> list[Record]:
    records: list[Record] = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
            record = Record(
                id=row["id"],
                faiss_id=row["faiss_id"],
                page_content=row["page_content"],
                metadata=row["metadata"],
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise _bad(path, f"line {number} is not a valid document") from err
        if not (
            isinstance(record.id, str)
            and isinstance(record.faiss_id, int)
            and isinstance(record.page_content, str)
            and isinstance(record.metadata, dict)
        ):
            raise _bad(path, f"line {number} has fields of the wrong type")
        records.append(record)
    return records


def load(folder: str | os.PathLike[str]) -> Snapshot:
    """Read and verify a folder written by `save`.

    Raises:
        FileNotFoundError: The folder or its manifest does not exist.
        StoreLoadError: A file is missing, truncated, modified or inconsistent.
    """
    root = Path(folder)
    manifest = read_manifest(root)
    docstore_path = root / str(manifest["files"].get("docstore", {}).get("name"))
    records = _parse_records(docstore_path, _read_data_file(root, manifest, "docstore"))
    count = manifest["count"]
    if len(records) != count:
        raise _bad(docstore_path, f"holds {len(records)} documents, expected {count}")
    if len({record.id for record in records}) != count:
        raise _bad(docstore_path, "holds duplicate document ids")
    index = None
    dimension = manifest.get("dimension")
    if dimension is not None:
        data = _read_data_file(root, manifest, "index")
        index_path = root / manifest["files"]["index"]["name"]
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as err:
            raise _bad(index_path, f"FAISS cannot read it ({err})") from err
        if index.d != dimension or index.ntotal != count:
            raise _bad(
                index_path,
                f"holds {index.ntotal} vectors of dimension {index.d}, the "
                f"manifest says {count} of dimension {dimension}",
            )
        if stored_ids(index) != {record.faiss_id for record in records}:
            raise _bad(index_path, "its vector ids do not match the docstore")
    elif count:
        raise _bad(root / MANIFEST, f"count is {count} but there is no index")
    return Snapshot(
        index=index,
        records=records,
        distance_strategy=manifest["distance_strategy"],
        embedding_model=manifest.get("embedding_model"),
        library_version=str(manifest.get("library_version", "")),
        index_factory=str(manifest.get("index_factory") or "Flat"),
        search_params=dict(manifest.get("search_params") or {}),
    )
