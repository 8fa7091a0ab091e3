"""The store's keyword index: BM25 over the same documents and ids as FAISS.

`BM25Settings` says how text becomes terms (language, stopwords, stemming);
`BM25Index` is one immutable build of `bm25s` over a snapshot of the store's
documents. `bm25s` cannot add or delete documents in place, so the store
rebuilds the index on the first keyword search after a write (see
`FaissVectorStore`). `TermCache` keeps each document's terms as integer arrays
between builds, so a rebuild tokenizes only the documents written since the
last one. Scoring and filtering (`weight_mask`) run in `bm25s`'s sparse
arrays and top-k selection in numpy over the documents that score; Python
only walks the hits.

`bm25s` (and numba, which it imports when installed) load on first use, so a
store that never runs a keyword search never pays for them.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from langchain_ce_rerank.optional import require
from langchain_ce_rerank.store.topk import top_k

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["BM25Index", "BM25Settings", "TermCache", "choose_settings"]

# Han ideographs and kana: Chinese and Japanese write no spaces between words,
# so each character is a term (as a unigram CJK analyzer does). Other scripts
# (Latin, Cyrillic, Arabic, Hangul, ...) split on non-word characters into
# terms of two or more characters; emoji and punctuation are not terms.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN_PATTERN = rf"(?u)[{_CJK}]|[^\W{_CJK}]{{2,}}"

# Dict-filter masks one build keeps (4 bytes a document each).
_KEPT_MASKS = 16

# The saved files, by role: bm25s's own file names (its `save` / `load`).
FILES: dict[str, str] = {
    "bm25_data": "data.csc.index.npy",
    "bm25_indices": "indices.csc.index.npy",
    "bm25_indptr": "indptr.csc.index.npy",
    "bm25_vocab": "vocab.index.json",
    "bm25_params": "params.index.json",
}


@functools.cache
def _bm25s() -> ModuleType:
    # A dependency, imported on first use: it loads numba when that is installed.
    module = importlib.import_module("bm25s")
    # bm25s sets its own logger to DEBUG, so an application that logs at
    # WARNING (ce-rerank does) would print its debug lines ("Building index
    # from IDs"); give it the usual NOTSET, so the application's level rules.
    logger = logging.getLogger("bm25s")
    if logger.level == logging.DEBUG:
        logger.setLevel(logging.NOTSET)
    return module


@functools.lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:
    stemmer_module = require(
        "Stemmer", extra="stemming", feature="BM25Settings(stemming=True)"
    )
    if language not in stemmer_module.algorithms():
        msg = (
            f"PyStemmer has no stemmer for language {language!r}; use one of "
            f"{sorted(stemmer_module.algorithms())} or stemming=False"
        )
        raise ValueError(msg)
    return stemmer_module.Stemmer(language)


class BM25Settings(BaseModel):
    """How the store's BM25 index turns text into terms; queries use the same.

    Saved in the manifest by `save_local` and restored by `load_local`, so a
    loaded store tokenizes queries exactly as its documents were tokenized.
    Text is lowercased; Chinese and Japanese characters are one term each;
    other scripts split into words of two or more letters or digits, so
    `--max-queued-pairs` gives `max`, `queued`, `pairs` and `E0425` gives
    `e0425`. Emoji and punctuation are not terms.

    Example:
        ```python
        from langchain_ce_rerank.store import BM25Settings

        settings = BM25Settings(language="german", stopwords=True)
        print(settings.tokenize(["Die Katze schläft"]))
        ```
    """

    language: str = "english"
    """Language of the stopword list and the stemmer: a name bm25s knows for
    stopwords (`english`, `german`, `french`, `spanish`, ... or their codes
    `en`, `de`, ...) and, with stemming, one of `Stemmer.algorithms()`."""

    stopwords: bool | tuple[str, ...] = True
    """True: drop the language's stopwords; False: keep every word; or the
    stopwords themselves, as a list."""

    stemming: bool = False
    """Reduce words to their stem with PyStemmer (`run`, `runs`, `running`
    match each other). Needs `pip install "langchain-ce-rerank[stemming]"`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("language")
    @classmethod
    def _language_given(cls, language: str) -> str:
        if not language.strip():
            msg = "language must be a language name such as 'english', got ''"
            raise ValueError(msg)
        return language.strip().lower()

    @model_validator(mode="after")
    def _language_supported(self) -> BM25Settings:
        # English needs no check, so default settings never import bm25s.
        if self.stopwords is True and self.language not in ("english", "en"):
            try:
                _bm25s().tokenize([""], stopwords=self.language, show_progress=False)
            except ValueError:
                msg = (
                    f"bm25s has no stopword list for language {self.language!r}; "
                    "pass stopwords=False, or your own list: stopwords=[...]"
                )
                raise ValueError(msg) from None
        if self.stemming:
            _stemmer(self.language)
        return self

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """The terms of each text, as the index sees them."""
        stopwords: str | list[str] | None
        if self.stopwords is True:
            stopwords = self.language
        elif self.stopwords is False:
            stopwords = None
        else:
            stopwords = list(self.stopwords)
        stemmer = _stemmer(self.language) if self.stemming else None
        tokens: list[list[str]] = _bm25s().tokenize(
            list(texts),
            token_pattern=TOKEN_PATTERN,
            stopwords=stopwords,
            stemmer=stemmer,
            return_ids=False,
            show_progress=False,
        )
        return tokens


def choose_settings(
    bm25: object, *, current: BM25Settings | None
) -> BM25Settings | None:
    """The settings a store's `bm25=` argument asks for; None: no keyword index.

    None and True keep `current` when there is one, else the defaults; False
    asks for no keyword index; a `BM25Settings` is taken as it is.
    """
    if bm25 is None or bm25 is True:
        return current if current is not None else BM25Settings()
    if bm25 is False:
        return None
    if isinstance(bm25, BM25Settings):
        return bm25
    msg = (
        f"bm25 must be a BM25Settings, True or False, got {type(bm25).__name__}: "
        f"{bm25!r}; e.g. bm25=BM25Settings(language='german'), or bm25=False "
        "for no keyword index"
    )
    raise TypeError(msg)


@dataclass(frozen=True)
class BM25Index:
    """One build of `bm25s` over the store's documents; never changed after.

    Row `i` of the index is the document with id `ids[i]`. `model` is None when
    no document has a single term (then every keyword search finds nothing).
    """

    settings: BM25Settings
    ids: tuple[str, ...]
    model: Any  # bm25s.BM25 | None; bm25s ships no type stubs
    # Masks of dict filters already seen by this build (its rows and their
    # metadata never change; a write makes a new build). Callers hold a lock.
    _masks: dict[str, npt.NDArray[np.float32]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_ids(
        cls,
        settings: BM25Settings,
        ids: Sequence[str],
        corpus: list[list[int]],
        vocab: dict[str, int],
    ) -> BM25Index:
        """Index documents given as term ids (`vocab` numbers them 0..n-1)."""
        model = None
        if vocab:
            model = _bm25s().BM25()
            model.index((corpus, vocab), create_empty_token=False, show_progress=False)
        return cls(settings=settings, ids=tuple(ids), model=model)

    def terms(self, query: str) -> list[str]:
        """The query's terms that occur in the index (none: nothing to match)."""
        return self.terms_many([query])[0]

    def terms_many(self, queries: Sequence[str]) -> list[list[str]]:
        """`terms` of each query, tokenized in one call."""
        if self.model is None:
            return [[] for _ in queries]
        vocab = self.model.vocab_dict
        return [
            [t for t in tokens if t and t in vocab]
            for tokens in self.settings.tokenize(queries)
        ]

    def search(
        self, terms: list[str], k: int, mask: npt.NDArray[np.float32] | None
    ) -> list[tuple[int, float]]:
        """Up to `k` (row, score) pairs, best first, for documents that hold a term.

        `mask` holds 1 for rows a filter keeps and 0 for the rest (bm25s's
        `weight_mask`): a masked row scores 0, and rows scoring 0 (masked, or
        holding no query term) are never returned. Ties go to the earlier row.
        """
        return self.search_many([terms], k, mask)[0]

    def search_many(
        self,
        terms: Sequence[list[str]],
        k: int,
        mask: npt.NDArray[np.float32] | None,
    ) -> list[list[tuple[int, float]]]:
        """`search` for each query's terms, with one mask for all of them.

        bm25s scores each query (`BM25.get_scores`: its precomputed sparse
        term scores, summed in numpy). The top `k` are chosen here rather than
        by `BM25.retrieve`, which partitions every document's score: most are
        0 (documents without a query term), and that partition over 100,000
        mostly tied scores was two thirds of a search (benchmarks/bm25.py).
        Only positive scores can be returned, so `top_k` runs on those alone,
        with ties going to the earlier row as on the dense side.
        """
        results: list[list[tuple[int, float]]] = []
        for query_terms in terms:
            if self.model is None or not query_terms or not self.ids:
                results.append([])
                continue
            scores = self.model.get_scores(query_terms, weight_mask=mask)
            rows = np.flatnonzero(scores > 0)
            rows = rows[top_k(scores[rows], k)]
            results.append(list(zip(rows.tolist(), scores[rows].tolist(), strict=True)))
        return results

    def mask(
        self, keep: Callable[[int], bool], key: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The `weight_mask` of the rows for which `keep(row)` is true.

        A filter is a Python predicate on each document's metadata, so this
        calls it once per row; with a `key` (a dict filter's canonical form)
        the mask is kept and reused for as long as this build serves.
        """
        if key is not None and key in self._masks:
            return self._masks[key]
        mask = np.fromiter(
            (keep(row) for row in range(len(self.ids))),
            dtype=np.float32,
            count=len(self.ids),
        )
        if key is not None:
            if len(self._masks) >= _KEPT_MASKS:
                self._masks.pop(next(iter(self._masks)))
            self._masks[key] = mask
        return mask

    def to_files(self) -> dict[str, bytes]:
        """The index as bm25s writes it (`allow_pickle=False`), by role."""
        if self.model is None:
            return {}
        with tempfile.TemporaryDirectory() as folder:
            self.model.save(folder, allow_pickle=False, show_progress=False)
            saved = Path(folder)
            return {role: (saved / name).read_bytes() for role, name in FILES.items()}

    @classmethod
    def from_files(
        cls, settings: BM25Settings, ids: Sequence[str], files: dict[str, bytes]
    ) -> BM25Index:
        """Read what `to_files` wrote (already checksummed by the caller).

        Raises:
            ValueError: The files are not a bm25s index of `len(ids)` documents.
        """
        if not files:
            return cls(settings=settings, ids=tuple(ids), model=None)
        with tempfile.TemporaryDirectory() as folder:
            for role, name in FILES.items():
                (Path(folder) / name).write_bytes(files[role])
            model = _bm25s().BM25.load(folder, allow_pickle=False, show_progress=False)
        if int(model.scores["num_docs"]) != len(ids):
            msg = (
                f"it indexes {model.scores['num_docs']} documents but the docstore "
                f"holds {len(ids)}"
            )
            raise ValueError(msg)
        return cls(settings=settings, ids=tuple(ids), model=model)


class TermCache:
    """Each document's terms, as ids into one vocabulary, kept between builds.

    Tokenizing is most of what a BM25 build costs; a document's terms only
    change when it is written, so `build` tokenizes just the documents it has
    not seen (or that `forget` dropped), and renumbers the terms in use with
    numpy before handing them to bm25s. Not thread-safe: the store calls it
    under its lock.
    """

    def __init__(self, settings: BM25Settings) -> None:
        self.settings = settings
        self._vocab: dict[str, int] = {}  # every term seen; ids only grow
        self._terms: dict[str, npt.NDArray[np.int32]] = {}

    def forget(self, ids: Sequence[str]) -> None:
        """Drop the terms of documents that were replaced or deleted."""
        for doc_id in ids:
            self._terms.pop(doc_id, None)

    def build(self, ids: Sequence[str], text: Callable[[str], str]) -> BM25Index:
        """A fresh index of the documents `ids`; `text(id)` gives their text."""
        missing = [doc_id for doc_id in ids if doc_id not in self._terms]
        if missing:
            vocab = self._vocab
            for doc_id, tokens in zip(
                missing, self.settings.tokenize([text(i) for i in missing]), strict=True
            ):
                numbers = [vocab.setdefault(t, len(vocab)) for t in tokens]
                self._terms[doc_id] = np.asarray(numbers, dtype=np.int32)
        arrays = [self._terms[doc_id] for doc_id in ids]
        if not arrays:
            return BM25Index(settings=self.settings, ids=(), model=None)
        # Renumber the terms in use 0..n-1 (terms of deleted documents drop
        # out), in the order of their ids. Ids are below len(vocab), so a
        # lookup table does in one pass what np.unique's sort did (4.3 s of a
        # 15 s rebuild at 100,000 documents, benchmarks/bm25.py).
        every = np.concatenate(arrays)
        present = np.zeros(len(self._vocab), dtype=bool)
        present[every] = True
        used = np.flatnonzero(present)
        compact = (np.cumsum(present) - 1)[every].tolist()
        # bm25s takes each document as a list of ints: slice one flat list
        # rather than converting one small array per document.
        ends = np.cumsum([len(a) for a in arrays]).tolist()
        corpus = [compact[start:end] for start, end in itertools.pairwise([0, *ends])]
        names = list(self._vocab)
        vocab = {names[number]: i for i, number in enumerate(used.tolist())}
        return BM25Index.from_ids(self.settings, ids, corpus, vocab)
