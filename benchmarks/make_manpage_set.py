"""Build a BEIR-layout set of man-page option look-ups from this machine's pages.

The corpus is one passage per command-line option, cut from the section 1
man pages installed here (rendered by `man`, one paragraph a line): the
command, the option's tag and its description, e.g.

    grep: -c, --count
    Suppress normal output; instead print a count of matching lines ...

Queries look an option up the three ways people ask (a third each, seeded,
at most one query a page):

- by name: the query names the command and the option, e.g. "what does
  --count do in grep", "tar --listed-incremental", "explain ls -S";
- by description: the query names the command and says what the option does,
  in words taken from the first sentence of its description, e.g. "how do I
  suppress normal output with grep" or "ls option: sort by file size";
- by option alone: a long option that at most two pages list, as one seen in
  a script or a log, e.g. "what does --alt-odb do", "meaning of --retry".

Each query's relevant passages are the target and any other passage that
lists the same option (by name) or has the same description (by description)
in that page; an option-alone query counts every page listing it. Description
queries reuse the documentation's own words, and every query names a thing,
so this set measures look-ups of named things and quoted docs, the text where
keyword search is expected to beat dense search; `make_docstring_set.py`
builds the opposite kind.

The pages of the Google Cloud CLI (`gcloud_*`, about 16,600 of the 17,800
here) are left out: their flags repeat across hundreds of pages (`--project`,
`--format`), which would make most look-ups ambiguous. Pages whose options
are the same as an earlier page's (`llvm-ar-14` and `llvm-ar`, `nm` and
`x86_64-linux-gnu-nm`) are kept once, under the shorter name.

Deterministic for a given set of installed pages and seed:

    python benchmarks/make_manpage_set.py          # -> benchmarks/data/manpages
    python benchmarks/make_manpage_set.py --queries 800 --seed 1 --out DIR
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MAN1 = Path("/usr/share/man/man1")
OUT = Path(__file__).parent / "data" / "manpages"
# Longest description kept in a passage: all-MiniLM-L6-v2 reads 256 tokens.
MAX_WORDS = 120
SKIP_SECTIONS = {"NAME", "SYNOPSIS"}
_SECTION = re.compile(r"^[A-Z][A-Z0-9 /&,()-]*$")
_WORD = re.compile(r"[A-Za-z]{2,}")
# An option name inside a tag: -x, --long-name, -long (openssl, find).
_OPTION = re.compile(r"(?<![\w-])(--?(?:\[no-\])?[A-Za-z0-9][\w.-]*)")
# Third-person verbs turned back to the imperative ("Prints" -> "print").
_NOT_VERBS = {
    "this",
    "is",
    "as",
    "was",
    "has",
    "does",
    "unless",
    "its",
    "always",
    "process",
    "access",
    "address",
    "bytes",
    "options",
    "lines",
    "files",
    "names",
    "dies",
    "less",
    "status",
    "alias",
    "aliases",
    "class",
    "bias",
    "canvas",
    "news",
    "series",
    "analysis",
    "axis",
    "basis",
    "thus",
    "plus",
    "minus",
    "previous",
    "various",
    "focus",
}
_BY_NAME = (
    "what does {opt} do in {cmd}",
    "{cmd} {opt}",
    "{cmd} {opt} option meaning",
    "what is the {opt} flag of {cmd} for",
    "explain {cmd} {opt}",
)
_IMPERATIVE = (
    "how do I {desc} with {cmd}",
    "{cmd}: how to {desc}",
    "make {cmd} {desc}",
    "{cmd} {desc}",
)
# Named without the command: a flag seen in a script or a log.
_BY_OPTION = (
    "what does {opt} do",
    "{opt} option",
    "which command has a {opt} flag",
    "meaning of {opt}",
)
KINDS = ("name", "description", "option")
_NEGATED = (
    "how do I make {cmd} not {desc}",
    "{cmd} option to not {desc}",
)
_OTHER = (
    "{cmd} option: {desc}",
    "which {cmd} option is for: {desc}",
    "{cmd} {desc}",
)


@dataclass(frozen=True)
class Passage:
    """One option of one page."""

    id: str
    command: str
    tag: str
    description: str

    @property
    def text(self) -> str:
        return f"{self.command}: {self.tag}\n{self.description}"


def render(path: Path) -> str:
    """The page as plain text, one paragraph a line (`man` at width 1000)."""
    env = os.environ | {
        "MANWIDTH": "1000",
        "LANG": "C.UTF-8",
        "MAN_KEEP_FORMATTING": "",
    }
    manned = subprocess.run(
        ["man", "-E", "UTF-8", "-l", str(path)],
        capture_output=True,
        env=env,
        check=False,
    )
    plain = subprocess.run(
        ["col", "-bx"], input=manned.stdout, capture_output=True, check=False
    )
    return plain.stdout.decode("utf-8", "replace")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split(line: str, indent: int, column: int, deeper: bool) -> tuple[str, str] | None:
    """(tag, description) of a tag line whose description starts at `column`.

    A tag that fills the indent but one space (`--help Output a usage
    message`) only counts when no deeper body follows: with one, the line is
    a tag with a value (`-in filename`).
    """
    if len(line) <= column or line[column - 1] != " " or line[column] == " ":
        return None
    tag = line[indent:column]
    if not tag.strip() or (deeper and not tag.endswith("  ")):
        return None
    return tag.strip(), line[column:].strip()


def options(text: str) -> list[tuple[str, str]]:
    """(tag, description) for each option a rendered page lists.

    A tag is an indented line starting with `-` whose description is indented
    deeper below it, or starts on the same line at that deeper column (groff
    puts a tag narrower than the indent and its description on one line).
    Stacked tags (`-a` on one line, `--all` on the next) make one tag.
    """
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if line and not line[0].isspace():
            section = stripped if _SECTION.match(stripped) else section
            i += 1
            continue
        if section in SKIP_SECTIONS or not re.match(r"--?[\w\[]", stripped):
            i += 1
            continue
        indent = _indent(line)
        j = i + 1
        while (
            j < len(lines)
            and _indent(lines[j]) == indent
            and lines[j].strip().startswith("-")
        ):
            j += 1
        tags = [t.strip() for t in lines[i:j]]
        k = j
        while k < len(lines) and not lines[k].strip():
            k += 1
        deeper = k < len(lines) and _indent(lines[k]) > indent
        column = _indent(lines[k]) if deeper else indent + 7
        description: list[str] = []
        split = _split(lines[j - 1], indent, column, deeper)
        if split is not None:
            tags[-1] = split[0]
            description.append(split[1])
        elif not deeper:
            # A one-line "tag  description" at a custom indent, or no option.
            match = re.match(r"(\S+(?:,? \S+)*?)\s{2,}(\S.*)", tags[-1])
            if match is None:
                i = j
                continue
            tags[-1] = match.group(1)
            description.append(match.group(2))
        i = j
        # The body: every line indented deeper than the tag, blank lines between.
        while i < len(lines):
            current = lines[i]
            if current.strip() and _indent(current) <= indent:
                break
            if not current.strip():
                ahead = i
                while ahead < len(lines) and not lines[ahead].strip():
                    ahead += 1
                if ahead == len(lines) or _indent(lines[ahead]) <= indent:
                    break
            description.append(current.strip())
            i += 1
        words = " ".join(description).split()
        if len(words) >= 3:
            found.append((" ".join(tags), " ".join(words[:MAX_WORDS])))
    return found


def _pages(man1: Path) -> list[Path]:
    pages = [
        path
        for path in man1.iterdir()
        if path.name.endswith(".gz")
        and not path.name.startswith("gcloud")
        and not path.is_symlink()
    ]
    # Shorter names first, so a page's plain name wins over its aliases.
    return sorted(pages, key=lambda p: (len(p.name), p.name))


def _is_redirect(path: Path) -> bool:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        return handle.read(200).lstrip().startswith(".so ")


def corpus(man1: Path) -> list[Passage]:
    pages = [p for p in _pages(man1) if not _is_redirect(p)]
    with ThreadPoolExecutor(2) as pool:
        rendered = list(pool.map(render, pages))
    passages: list[Passage] = []
    seen: set[str] = set()
    for path, text in zip(pages, rendered, strict=True):
        # "python3.11.1.gz" -> "python3.11", "CA.pl.1ssl.gz" -> "CA.pl".
        command = path.name.removesuffix(".gz").rsplit(".", 1)[0]
        found = options(text)
        if not found:
            continue
        digest = hashlib.sha256(json.dumps(found).encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        for number, (tag, description) in enumerate(found, start=1):
            passages.append(Passage(f"{command}#{number}", command, tag, description))
    return passages


def _names(tag: str) -> list[str]:
    """Option names of a tag, without values: `-e PATTERNS, --regexp=P` -> both."""
    names = []
    for name in _OPTION.findall(tag):
        name = name.replace("[no-]", "").rstrip(".,")
        if len(name) >= 2 and name not in names:
            names.append(name)
    return names


_TRAILING = {"the", "a", "an", "of", "to", "and", "or", "with", "for", "in", "on", "by"}


def _first_clause(description: str, rng: random.Random) -> str | None:
    """What the option does, as a user would say it.

    The description's first clause (or first 8-14 words), its leading verb
    made imperative ("Prints the ..." -> "print the ...") and "This option"
    dropped.
    """
    sentence = re.split(r"(?<=[.;:])\s", description, maxsplit=1)[0]
    sentence = re.sub(r"\([^)]*\)", "", sentence).rstrip(".;: ")
    sentence = re.sub(
        r"^(?:this|the) (?:option|flag|switch) |^this ", "", sentence, flags=re.I
    )
    clause = re.split(r"[,;:]\s", sentence, maxsplit=1)[0]
    words = (clause if len(clause.split()) >= 4 else sentence).split()
    words = words[: rng.randint(8, 14)]
    while words and words[-1].lower() in _TRAILING:
        words.pop()
    if len(words) < 3 or not _WORD.search(" ".join(words)):
        return None
    first = words[0].lower()
    if first.endswith("s") and first.isalpha() and first not in _NOT_VERBS:
        if first.endswith("ies"):
            first = first[:-3] + "y"
        elif first.endswith(("sses", "ches", "shes", "xes")):
            first = first[:-2]
        elif not first.endswith("ss"):
            first = first[:-1]
    return " ".join([first, *words[1:]])


_IMPERATIVE_START = re.compile(
    r"^(?:use|print|show|display|set|write|read|list|output|include|"
    r"exclude|enable|disable|allow|make|sort|ignore|suppress|specify|force|"
    r"add|remove|delete|create|treat|run|keep|skip|limit|select|send|save|"
    r"load|generate|produce|report|check|search|match|append|prepend|omit|"
    r"override|change|turn|give|dump|stop|start|wait|follow|try|compress|"
    r"decompress|verify|interpret|assume|prefer|return|emit|preserve|"
    r"recurse|copy|move|replace|print|be|only|never|always|also|when)\b"
)


def queries(
    passages: list[Passage], count: int, seed: int
) -> tuple[dict[str, str], dict[str, dict[str, int]], dict[str, str]]:
    """Up to one query per page, a third of each kind, in turn."""
    rng = random.Random(seed)
    by_command: dict[str, list[Passage]] = {}
    pages_of: dict[str, set[str]] = {}
    for passage in passages:
        by_command.setdefault(passage.command, []).append(passage)
        for name in _names(passage.tag):
            pages_of.setdefault(name, set()).add(passage.command)
    commands = sorted(by_command)
    rng.shuffle(commands)
    texts: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    kinds: dict[str, str] = {}
    for command in commands:
        if len(texts) >= count:
            break
        candidates = [p for p in by_command[command] if _names(p.tag)]
        kind = KINDS[len(texts) % len(KINDS)]
        if kind == "option":
            # A long option few pages have, so the option alone says which.
            candidates = [
                p for p in candidates if any(_rare(n, pages_of) for n in _names(p.tag))
            ]
        if not candidates:
            continue
        target = rng.choice(candidates)
        names = _names(target.tag)
        qid = f"q{len(texts) + 1}"
        if kind == "name":
            longs = [n for n in names if n.startswith("--")]
            name = longs[0] if longs and rng.random() < 0.75 else names[0]
            text = rng.choice(_BY_NAME).format(opt=name, cmd=command)
            relevant = [p for p in by_command[command] if name in _names(p.tag)]
        elif kind == "option":
            name = next(n for n in names if _rare(n, pages_of))
            text = rng.choice(_BY_OPTION).format(opt=name)
            relevant = [p for p in passages if name in _names(p.tag)]
        else:
            desc = _first_clause(target.description, rng)
            if desc is None:
                continue
            negated = re.match(r"(?:do not|don't) (.*)", desc)
            if negated:
                templates, desc = _NEGATED, negated.group(1)
            elif _IMPERATIVE_START.match(desc):
                templates = _IMPERATIVE
            else:
                templates = _OTHER
            text = rng.choice(templates).format(desc=desc, cmd=command)
            relevant = [
                p for p in by_command[command] if p.description == target.description
            ]
        texts[qid] = text
        qrels[qid] = {p.id: 1 for p in relevant}
        kinds[qid] = kind
    return texts, qrels, kinds


def _rare(name: str, pages_of: dict[str, set[str]]) -> bool:
    """A long option (`--listed-incremental`) that at most two pages list."""
    return name.startswith("--") and len(name) >= 6 and len(pages_of[name]) <= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--man1", type=Path, default=MAN1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    passages = corpus(args.man1)
    texts, qrels, kinds = queries(passages, args.queries, args.seed)
    root: Path = args.out
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for p in passages:
            row = {"_id": p.id, "title": p.command, "text": p.text}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as out:
        for qid, text in texts.items():
            row = {"_id": qid, "text": text, "metadata": {"kind": kinds[qid]}}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (root / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid, judged in qrels.items():
            for doc_id, grade in judged.items():
                out.write(f"{qid}\t{doc_id}\t{grade}\n")
    pages = len({p.command for p in passages})
    counts = ", ".join(
        f"{sum(k == kind for k in kinds.values())} by {kind}" for kind in KINDS
    )
    print(
        f"{root}: {len(passages):,} passages from {pages:,} pages, "
        f"{len(texts)} queries ({counts})"
    )


if __name__ == "__main__":
    main()
