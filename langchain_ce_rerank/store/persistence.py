"""Pickle-free, atomic, tamper-evident persistence for `FaissVectorStore`.

A saved folder holds:

- `manifest.json`: format and version, dimension, distance, count, embedding
  model name, the name, size and SHA-256 of each data file, and an `integrity`
  block: a SHA-256 over the manifest's own canonical content (which includes the
  data files' digests) and a short digest per field, to name an edited field;
- `index.<digest>.faiss`: the FAISS index, written by FAISS's own serializer;
- `docstore.<digest>.jsonl`: one JSON object per document;
- `bm25_data`, `bm25_indices`, `bm25_indptr` (`.npy`) and `bm25_vocab`,
  `bm25_params` (`.json`), each `.<digest>`: the keyword index as bm25s writes
  it (`allow_pickle=False`), its rows in docstore order; the manifest's `bm25`
  field holds the `BM25Settings` queries are tokenized with, or `false` for a
  store made with `bm25=False` (then there are no BM25 files). Folders saved
  before BM25 have neither and still load (the index is built on first use);
- `.save.lock`: an empty file that concurrent savers lock in turn.

Data files are content-addressed and written before the manifest, which is
swapped in with one `os.replace`. A crash at any point therefore leaves either
the old manifest (pointing at the old, untouched data files) or the new one.
Loading reads only JSON and FAISS's binary format, so it cannot execute code,
and checks the manifest's digest, sizes and checksums, so a truncated or edited
file is reported by name. Files are created like any ordinary file, with the
process umask applied to mode 0666.

Concurrency: savers into one folder take turns under an exclusive lock on
`.save.lock`. A save keeps the data files of the generation it replaces, so a
reader that read the previous manifest still finds its files; a reader that is
overtaken by two saves sees the manifest change under it and starts over.

Format versions: 2 adds the `integrity` block. Folders of format version 1 (no
digest) still load, with a warning that their manifest is not tamper-evident;
saving them again writes version 2.

The manifest itself (its fields, digests and checks) lives in `manifest.py`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from pydantic import ValidationError

from langchain_ce_rerank.errors import StoreLoadError
from langchain_ce_rerank.store.bm25 import FILES as BM25_FILES
from langchain_ce_rerank.store.bm25 import BM25Index, BM25Settings
from langchain_ce_rerank.store.faiss_index import stored_ids
from langchain_ce_rerank.store.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    load_error,
    parse_manifest,
    read_manifest_bytes,
    with_integrity,
)

logger = logging.getLogger(__name__)

LOCK = ".save.lock"
_DATA_FILE = re.compile(
    r"^(index\.[0-9a-f]{16}\.faiss|docstore\.[0-9a-f]{16}\.jsonl"
    r"|bm25_(data|indices|indptr)\.[0-9a-f]{16}\.npy"
    r"|bm25_(vocab|params)\.[0-9a-f]{16}\.json)$"
)
_SUFFIX = {"index": "faiss", "docstore": "jsonl"} | {
    role: name.rsplit(".", 1)[1] for role, name in BM25_FILES.items()
}
_TMP_PREFIX = ".tmp-"
# A temporary file is only removed once it is this old. Its name carries the pid
# of its writer, but a pid cannot tell a live writer from a dead one when the
# folder is shared across hosts (NFS) or containers (separate pid namespaces),
# and pids are reused. Savers on one folder already take turns under the lock,
# so a temporary file seen while holding it belongs to a saver that crashed, or
# to one that does not lock (an older release); a live writer touches its file
# as it writes and renames it moments after the last byte, so an hour without a
# change means the writer is gone.
STALE_TMP_SECONDS = 3600.0
# Attempts at one load while other processes keep swapping the manifest.
LOAD_ATTEMPTS = 5


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
    # False: the store keeps no keyword index; None: not recorded (a folder
    # saved before BM25), which loads with the default settings.
    bm25_settings: BM25Settings | Literal[False] | None = None
    bm25: BM25Index | None = None  # rows in the order of `records`


def _fsync_dir(folder: Path) -> None:
    # Directory fsync makes the rename durable on POSIX; Windows cannot open dirs.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(folder: Path, name: str, data: bytes) -> None:
    # os.open with 0o666 lets the umask decide the mode, as for any ordinary
    # file (tempfile.mkstemp would force 0600 and hide the index from others).
    tmp = folder / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
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


@contextlib.contextmanager
def _save_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive save lock; released when the file is closed."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if sys.platform == "win32":
            import msvcrt

            while True:  # LK_LOCK gives up after ~10 s; a save may take longer
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def _referenced(folder: Path) -> set[str]:
    """Data file names the manifest now in `folder` points at (none if unreadable)."""
    try:
        files = json.loads((folder / MANIFEST).read_bytes())["files"]
        return {entry["name"] for entry in files.values()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def _remove_garbage(folder: Path, keep: set[str]) -> None:
    """Remove data files not in `keep` and stale temporary files; under the lock."""
    now = time.time()
    for path in folder.iterdir():
        try:
            if _DATA_FILE.match(path.name):
                stale = path.name not in keep
            elif path.name.startswith(_TMP_PREFIX):
                stale = now - path.stat().st_mtime > STALE_TMP_SECONDS
            else:
                continue
            if stale:
                path.unlink()
        except OSError:  # gone already, or open elsewhere on Windows
            continue


def save(folder: str | os.PathLike[str], snapshot: Snapshot) -> None:
    """Write `snapshot` to `folder` atomically (see the module docstring)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    payloads: dict[str, bytes] = {"docstore": _docstore_bytes(snapshot.records)}
    if snapshot.index is not None:
        payloads["index"] = faiss.serialize_index(snapshot.index).tobytes()
    if snapshot.bm25 is not None:
        if snapshot.bm25.ids != tuple(record.id for record in snapshot.records):
            msg = "the BM25 index's rows are not the documents being saved"
            raise RuntimeError(msg)
        payloads |= snapshot.bm25.to_files()
    with _save_lock(target):
        previous = _referenced(target)
        files: dict[str, dict[str, Any]] = {}
        for role, data in payloads.items():
            digest = hashlib.sha256(data).hexdigest()
            name = f"{role}.{digest[:16]}.{_SUFFIX[role]}"
            _write_atomic(target, name, data)
            files[role] = {"name": name, "bytes": len(data), "sha256": digest}
        index = snapshot.index
        manifest = with_integrity(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "library_version": snapshot.library_version,
                "dimension": None if index is None else int(index.d),
                "distance_strategy": snapshot.distance_strategy,
                "index_factory": snapshot.index_factory,
                "search_params": snapshot.search_params or {},
                "count": len(snapshot.records),
                "embedding_model": snapshot.embedding_model,
                "bm25": _bm25_field(snapshot.bm25_settings),
                "files": files,
            }
        )
        text = json.dumps(manifest, indent=2, ensure_ascii=False)
        _write_atomic(target, MANIFEST, text.encode("utf-8"))
        _fsync_dir(target)
        # The replaced generation stays until the next save, for readers that
        # read its manifest just before the swap.
        _remove_garbage(target, {entry["name"] for entry in files.values()} | previous)


def _bm25_field(settings: BM25Settings | Literal[False] | None) -> Any:
    """The manifest's `bm25` field: the settings as JSON, or false for none."""
    if settings is False:
        return False
    return (settings or BM25Settings()).model_dump(mode="json")


def _read_data_file(folder: Path, manifest: dict[str, Any], role: str) -> bytes:
    entry = manifest["files"].get(role)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise load_error(folder / MANIFEST, f"no valid entry for the {role} file")
    name = entry["name"]
    if not _DATA_FILE.match(name):
        raise load_error(folder / MANIFEST, f"unexpected {role} file name {name!r}")
    path = folder / name
    try:
        data: bytes = path.read_bytes()
    except FileNotFoundError:
        raise load_error(
            path, f"the {role} file named in {MANIFEST} is missing"
        ) from None
    if len(data) != entry.get("bytes"):
        raise load_error(
            path, f"truncated or altered: {len(data)} bytes, expected {entry['bytes']}"
        )
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise load_error(path, "modified since it was saved (SHA-256 does not match)")
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
            raise load_error(path, f"line {number} is not a valid document") from err
        if not (
            isinstance(record.id, str)
            and isinstance(record.faiss_id, int)
            and isinstance(record.page_content, str)
            and isinstance(record.metadata, dict)
        ):
            raise load_error(path, f"line {number} has fields of the wrong type")
        records.append(record)
    return records


def load(folder: str | os.PathLike[str]) -> Snapshot:
    """Read and verify a folder written by `save`.

    A load that finds a data file gone or different because another process
    swapped the manifest meanwhile starts over with the new manifest.

    Raises:
        FileNotFoundError: The folder or its manifest does not exist.
        StoreLoadError: The manifest was edited, a file is missing, truncated,
            modified or inconsistent, or saves kept replacing the folder.
    """
    root = Path(folder)
    raw = read_manifest_bytes(root)
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        manifest = parse_manifest(root, raw)
        try:
            snapshot = _load_generation(root, manifest)
        except StoreLoadError as err:
            current = read_manifest_bytes(root)
            if current == raw:
                raise  # the folder is stable: the fault is real
            if attempt == LOAD_ATTEMPTS:
                msg = (
                    f"{root}: another process saved into this folder "
                    f"{LOAD_ATTEMPTS} times while it was being loaded; load it "
                    "again when the saves stop"
                )
                raise StoreLoadError(msg) from err
            logger.debug("%s changed while loading (%s); loading again", root, err)
            raw = current
            continue
        if manifest["format_version"] < FORMAT_VERSION:
            logger.warning(
                "%s was saved by an older release (format_version %s): its "
                "manifest carries no digest, so edits to it cannot be detected. "
                "Save it again with FaissVectorStore.save_local to upgrade it.",
                root / MANIFEST,
                manifest["format_version"],
            )
        return snapshot
    raise AssertionError("unreachable")  # pragma: no cover


def _load_generation(root: Path, manifest: dict[str, Any]) -> Snapshot:
    docstore_path = root / str(manifest["files"].get("docstore", {}).get("name"))
    records = _parse_records(docstore_path, _read_data_file(root, manifest, "docstore"))
    count = manifest["count"]
    if len(records) != count:
        raise load_error(
            docstore_path, f"holds {len(records)} documents, expected {count}"
        )
    if len({record.id for record in records}) != count:
        raise load_error(docstore_path, "holds duplicate document ids")
    index = None
    dimension = manifest.get("dimension")
    if dimension is not None:
        data = _read_data_file(root, manifest, "index")
        index_path = root / manifest["files"]["index"]["name"]
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as err:
            raise load_error(index_path, f"FAISS cannot read it ({err})") from err
        if index.d != dimension or index.ntotal != count:
            raise load_error(
                index_path,
                f"holds {index.ntotal} vectors of dimension {index.d}, the "
                f"manifest says {count} of dimension {dimension}",
            )
        if stored_ids(index) != {record.faiss_id for record in records}:
            raise load_error(index_path, "its vector ids do not match the docstore")
    elif count:
        raise load_error(root / MANIFEST, f"count is {count} but there is no index")
    settings, bm25 = _load_bm25(root, manifest, [record.id for record in records])
    return Snapshot(
        index=index,
        records=records,
        distance_strategy=manifest["distance_strategy"],
        embedding_model=manifest.get("embedding_model"),
        library_version=str(manifest.get("library_version", "")),
        index_factory=str(manifest.get("index_factory") or "Flat"),
        search_params=dict(manifest.get("search_params") or {}),
        bm25_settings=settings,
        bm25=bm25,
    )


def _load_bm25(
    root: Path, manifest: dict[str, Any], ids: list[str]
) -> tuple[BM25Settings | Literal[False] | None, BM25Index | None]:
    """The saved BM25 settings and index; (None, None) for older folders.

    (False, None) for a store saved with `bm25=False`.
    """
    if "bm25" not in manifest:
        return None, None
    roles = [role for role in BM25_FILES if role in manifest["files"]]
    if manifest["bm25"] is False:
        if roles:
            raise load_error(
                root / MANIFEST, "bm25 is false, yet it lists BM25 index files"
            )
        return False, None
    try:
        settings = BM25Settings.model_validate(manifest["bm25"])
    except ValidationError as err:
        raise load_error(root / MANIFEST, f"invalid bm25 settings: {err}") from err
    if not roles:
        return settings, None
    files = {role: _read_data_file(root, manifest, role) for role in BM25_FILES}
    path = root / manifest["files"]["bm25_params"]["name"]
    try:
        return settings, BM25Index.from_files(settings, ids, files)
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise load_error(path, f"bm25s cannot read the BM25 index ({err})") from err
