"""BEIR-layout datasets in, TREC run files out: the formats evaluation speaks."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

__all__ = [
    "BeirDataset",
    "Qrels",
    "Run",
    "load_beir",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "write_trec_run",
]

Qrels = Mapping[str, Mapping[str, int]]
Run = dict[str, dict[str, float]]


@dataclass
class BeirDataset:
    """A BEIR-layout dataset: corpus Documents, queries and relevance judgements."""

    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    msg = f"{path}:{number}: not valid JSON ({err.msg})"
                    raise ValueError(msg) from err
    return rows


def read_corpus(path: str | os.PathLike[str]) -> list[Document]:
    """Read a BEIR `corpus.jsonl` (`_id`, `text`, optional `title`) as Documents.

    Each Document has `id` and `metadata["doc_id"]` set to `_id` and the title
    (if any) in `metadata["title"]`.
    """
    return [
        Document(
            id=str(row["_id"]),
            page_content=row["text"],
            metadata={"doc_id": str(row["_id"]), "title": row.get("title", "")},
        )
        for row in _read_jsonl(Path(path))
    ]


def read_queries(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read BEIR `queries.jsonl` (`_id`, `text`) into {query id: text}."""
    source = Path(path)
    queries = {}
    for row in _read_jsonl(source):
        if "_id" not in row or not isinstance(row.get("text"), str):
            msg = f"{source}: every row needs '_id' and 'text', got {row!r}"
            raise ValueError(msg)
        queries[str(row["_id"])] = row["text"]
    return queries


def read_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (`query-id corpus-id score`, with a header line)."""
    source = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    lines = source.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if number == 1 and parts[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            msg = f"{source}:{number}: expected 3 tab-separated fields, got {line!r}"
            raise ValueError(msg)
        try:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        except ValueError as err:
            msg = f"{source}:{number}: relevance must be an integer, got {parts[2]!r}"
            raise ValueError(msg) from err
    return qrels


def load_beir(folder: str | os.PathLike[str], split: str = "test") -> BeirDataset:
    r"""Load `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` from `folder`.

    Corpus rows become Documents as `read_corpus` makes them.

    Raises:
        FileNotFoundError: A file of the layout is missing.

    Example:
        ```python
        from pathlib import Path
        from langchain_ce_rerank import load_beir

        Path("ds/qrels").mkdir(parents=True, exist_ok=True)
        Path("ds/corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "cats"}')
        Path("ds/queries.jsonl").write_text('{"_id": "q1", "text": "cat"}')
        Path("ds/qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
        data = load_beir("ds")
        print(len(data.corpus), data.queries, data.qrels)
        ```
    """
    root = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / name).is_file():
            msg = f"{root / name} is missing: {root} is not a BEIR-layout dataset"
            raise FileNotFoundError(msg)
    return BeirDataset(
        corpus=read_corpus(root / "corpus.jsonl"),
        queries=read_queries(root / "queries.jsonl"),
        qrels=read_qrels(root / "qrels" / f"{split}.tsv"),
    )


def write_trec_run(run: Run, path: str | os.PathLike[str], tag: str) -> None:
    """Write `run` as a TREC run file: `qid Q0 docid rank score tag` per line."""
    lines = []
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda item: -item[1])
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            lines.append(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}")
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
