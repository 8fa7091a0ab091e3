"""How much of a long document no window lets the model read: words vs tokens.

A scorer without a tokenizer (a `RemoteCrossEncoder`, a custom `score()`
object) used to get its `max_passage` windows counted in whitespace-separated
words. The model behind it reads tokens, and cuts each (query, window) pair to
its window: the tail of a word-counted window goes unread. This measures, on
the man-page set of `man_pages.py` (run it first), the share of each page's
tokens that fall in no window the model reads, with windows counted in words
(no tokenizer named) and in the tokens of a named tokenizer
(`RemoteCrossEncoder(..., tokenizer=...)`), at pairs of 512 and 256 tokens,
64 tokens of overlap.

The model's reading is simulated exactly with the named tokenizer (the
stand-in's, the WordPiece tokenizer of `cross-encoder/ms-marco-MiniLM-L6-v2`):
a pair keeps `[CLS] query [SEP] window [SEP]` up to the pair size, cutting the
window (sentence-transformers' `longest_first` for a window longer than the
query). Each page is paired with one of the set's queries, in rotation.

    python benchmarks/man_pages.py --gcloud 0
    python benchmarks/window_coverage.py
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from langchain_ce_rerank.engine.tokens import load_tokenizer, tokenizer_spans
from langchain_ce_rerank.engine.windows import passage_windows
from langchain_ce_rerank.testing import build_standin_cross_encoder

ROOT = Path(__file__).resolve().parents[1]


class Scorer:
    """A `score()` scorer, naming `tokenizer` or none (never called here)."""

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer

    def score(self, text_pairs: Any) -> list[float]:
        return [0.0 for _ in text_pairs]


def unread_share(
    text: str, query: str, scorer: Scorer, tokenizer: Any, pair: int, overlap: int
) -> tuple[float, int]:
    """Share of the page's tokens the model reads in no window; window count."""
    spans = tokenizer_spans(tokenizer)
    page = spans(text)
    reserved = len(spans(query)) + tokenizer.num_special_tokens_to_add(pair=True)
    room = pair - reserved  # document tokens the model reads per pair
    read: list[tuple[int, int]] = []
    found = passage_windows(
        scorer, query, text, passage_tokens=pair, passage_overlap=overlap
    )
    for start, end in found:
        tokens = spans(text[start:end])
        last = tokens[min(room, len(tokens)) - 1][1] if tokens else 0
        read.append((start, start + last))
    unread = sum(not any(a <= s and e <= b for a, b in read) for s, e in page)
    return unread / max(len(page), 1), len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "man-pages")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=ROOT / ".cache" / "standin-cross-encoder",
        help="folder of the named tokenizer (the stand-in is built there)",
    )
    parser.add_argument("--overlap", type=int, default=64)
    args = parser.parse_args()
    folder = build_standin_cross_encoder(args.tokenizer)
    tokenizer = load_tokenizer(str(folder))
    queries = [
        json.loads(line)["query"]
        for line in (args.data / "queries.jsonl").read_text().splitlines()
    ]
    pages = sorted((args.data / "pages").glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in pages]
    tokens = [len(tokenizer_spans(tokenizer)(t)) for t in texts]
    print(
        f"{len(pages)} pages, {sum(tokens):,} tokens "
        f"(median {statistics.median(tokens):,.0f} a page)"
    )
    rows: dict[str, Any] = {}
    for pair in (512, 256):
        for label, scorer in (
            ("words (no tokenizer)", Scorer()),
            ("named tokenizer", Scorer(tokenizer)),
        ):
            shares, counts, unread_tokens = [], [], 0.0
            for i, text in enumerate(texts):
                share, count = unread_share(
                    text,
                    queries[i % len(queries)],
                    scorer,
                    tokenizer,
                    pair,
                    args.overlap,
                )
                shares.append(share)
                counts.append(count)
                unread_tokens += share * tokens[i]
            row = {
                "unread_share_of_tokens": round(unread_tokens / sum(tokens), 4),
                "mean_unread_share_per_page": round(statistics.mean(shares), 4),
                "pages_with_unread_text": sum(s > 0 for s in shares),
                "windows": sum(counts),
            }
            rows[f"{pair} {label}"] = row
            print(f"pair {pair:>3}  {label:<22} {json.dumps(row)}")
    (args.data / "window_coverage.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
