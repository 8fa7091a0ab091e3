"""Build a long-document retrieval set from this machine's man pages.

Renders section-1 man pages (`/usr/share/man/man1`) to plain text with
`man --nh --nj -l` (no hyphenation, so words stay whole) and `col -bx` (80
columns), one `.txt` file per page, and writes
known-item queries whose answers sit deep inside a page:

- a query is one sentence of an option's description, copied from a page,
  8 to 30 words long, found in no other page, and starting past character
  `--deep` (2,000 by default: beyond the 256 tokens all-MiniLM-L6-v2 reads
  of a whole page, about 1,100 characters of man-page text);
- its answer is that page, and the sentence's characters in it.

About 16,600 of the ~17,800 pages here are `gcloud_*` pages, generated from
one template; the set keeps every other page (~1,200: git, llvm, openssl,
perf, systemd, bash, curl...) and a seeded sample of `--gcloud` of them as
look-alike distractors. Queries come from the other pages only. Pages that
render to the same text (aliases) are kept once.

    python benchmarks/man_pages.py                 # into .cache/man-pages/
    python benchmarks/man_pages.py --gcloud 0 --queries 100 --out /tmp/mp
    python benchmarks/man_pages.py --pages 150 --gcloud 40   # a seeded sample

`--pages N` keeps a seeded sample of N of the non-gcloud pages (all by
default): embedding every chunk of the whole set (about 14,000 chunks of 254
tokens) takes hours on a shared 2-core machine.

Output (the folder is git-ignored): `pages/<name>.txt`, `queries.jsonl`
(`{"id", "query", "page", "start", "end"}`), and `manifest.json` with the
settings and counts (`rendered/` keeps every rendering for the next run).
Deterministic for a given machine and `--seed`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MAN1 = Path("/usr/share/man/man1")
ROOT = Path(__file__).resolve().parents[1]
SENTENCE = re.compile(r"[^.!?]+[.!?]")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def render_cached(page: Path, cache: Path) -> str:
    """`render`, kept in `cache` so a rerun with other settings is quick."""
    kept = cache / (page.name + ".txt")
    if kept.is_file():
        return kept.read_text(encoding="utf-8")
    text = render(page)
    kept.write_text(text, encoding="utf-8")
    return text


def render(page: Path) -> str:
    """The page as plain text, 80 columns, no overstrike or escape sequences."""
    env = {**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    shown = subprocess.run(
        ["man", "--nh", "--nj", "-l", str(page)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    ).stdout
    plain = subprocess.run(
        ["col", "-bx"], input=shown, capture_output=True, timeout=120, check=False
    ).stdout
    return plain.decode("utf-8", errors="replace")


def paragraphs(text: str) -> Iterator[tuple[int, int, str]]:
    """Indented description paragraphs: (start, end, text with one space)."""
    offset = 0
    start: int | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        indented = len(line) - len(line.lstrip(" ")) >= 7 and line.strip()
        if indented:
            if start is None:
                start = offset
            lines.append(line.strip())
        elif start is not None:
            yield start, offset, " ".join(lines)
            start, lines = None, []
        offset += len(line)
    if start is not None:
        yield start, offset, " ".join(lines)


def candidates(text: str, deep: int) -> Iterator[tuple[str, int, int]]:
    """Sentences fit to be queries, with the characters of their paragraph."""
    for start, end, paragraph in paragraphs(text):
        if start < deep:
            continue
        for match in SENTENCE.finditer(paragraph):
            sentence = " ".join(match.group().split())
            words = sentence.split()
            if not words or not words[0][:1].isupper():
                continue  # a piece after an abbreviation ("e.g.", "etc.")
            if not 8 <= len(words) <= 30:
                continue
            letters = sum(len(w) for w in WORD.findall(sentence))
            if letters < 0.6 * len(sentence.replace(" ", "")):
                continue  # mostly flags, paths or numbers
            yield sentence, start, end


def locate(text: str, sentence: str, start: int, end: int) -> tuple[int, int] | None:
    """The sentence's characters in the page (its words may wrap over lines)."""
    words = [re.escape(w) for w in sentence.split()]
    found = re.compile(r"\s+".join(words)).search(text, start, end)
    return None if found is None else found.span()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "man-pages")
    parser.add_argument("--gcloud", type=int, default=500, help="gcloud_* pages kept")
    parser.add_argument(
        "--pages", type=int, default=0, help="non-gcloud pages kept (0: all)"
    )
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--deep", type=int, default=2000)
    parser.add_argument("--min-chars", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    files = sorted(MAN1.glob("*.1*"))
    gcloud = [f for f in files if f.name.startswith("gcloud")]
    others = [f for f in files if not f.name.startswith("gcloud")]
    if args.pages:
        others = sorted(rng.sample(others, min(args.pages, len(others))))
    chosen = others + rng.sample(gcloud, min(args.gcloud, len(gcloud)))
    print(f"rendering {len(chosen)} of {len(files)} pages ({len(others)} non-gcloud)")
    cache = args.out / "rendered"
    cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.workers) as pool:
        texts = list(pool.map(lambda page: render_cached(page, cache), chosen))

    pages_dir = args.out / "pages"
    pages_dir.mkdir(parents=True, exist_ok=True)
    for old in pages_dir.glob("*.txt"):
        old.unlink()
    seen: set[str] = set()
    kept: dict[str, tuple[str, bool]] = {}
    for path, text in zip(chosen, texts, strict=True):
        digest = hashlib.sha256(text.encode()).hexdigest()
        if len(text) < 200 or digest in seen:
            continue
        seen.add(digest)
        name = path.name.split(".gz")[0]
        kept[name] = (text, path.name.startswith("gcloud"))
        (pages_dir / f"{name}.txt").write_text(text, encoding="utf-8")

    # A sentence is a known-item query only if no other page holds it.
    holders: dict[str, set[str]] = {}
    for name, (text, _) in kept.items():
        for _, _, paragraph in paragraphs(text):
            for match in SENTENCE.finditer(paragraph):
                holders.setdefault(" ".join(match.group().split()), set()).add(name)
    pool_: list[dict[str, object]] = []
    for name, (text, is_gcloud) in sorted(kept.items()):
        if is_gcloud or len(text) < args.min_chars:
            continue
        options = [
            (sentence, start, end)
            for sentence, start, end in candidates(text, args.deep)
            if holders.get(sentence) == {name}
        ]
        if not options:
            continue
        sentence, start, end = rng.choice(options)
        span = locate(text, sentence, start, end)
        if span is None:
            continue
        pool_.append(
            {"query": sentence, "page": name, "start": span[0], "end": span[1]}
        )
    rng.shuffle(pool_)
    queries = sorted(pool_[: args.queries], key=lambda q: str(q["page"]))
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for number, query in enumerate(queries):
            handle.write(json.dumps({"id": f"q{number}", **query}) + "\n")
    sizes = sorted(len(text) for text, _ in kept.values())
    manifest = {
        "pages": len(kept),
        "gcloud_pages": sum(g for _, g in kept.values()),
        "queries": len(queries),
        "query_pages_available": len(pool_),
        "median_chars": sizes[len(sizes) // 2],
        "mean_chars": round(sum(sizes) / len(sizes)),
        "settings": {k: str(v) for k, v in vars(args).items()},
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
