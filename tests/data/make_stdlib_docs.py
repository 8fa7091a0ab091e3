"""Build tests/data/stdlib-docs: a small BEIR-layout dataset of real English text.

The corpus is the docstrings of Python standard-library functions and classes
(Python Software Foundation License, a permissive licence that lets this
repository carry them). Queries and relevance judgements were written by hand.
Re-running this script rewrites corpus.jsonl from the running Python's
docstrings; queries and qrels below are the hand-made part.

    python tests/data/make_stdlib_docs.py
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

OBJECTS = [
    "json.dumps",
    "json.loads",
    "os.path.join",
    "os.path.splitext",
    "os.makedirs",
    "os.walk",
    "shutil.copytree",
    "shutil.rmtree",
    "shutil.make_archive",
    "shutil.which",
    "tarfile.TarFile.extractall",
    "zipfile.ZipFile",
    "subprocess.run",
    "subprocess.check_output",
    "re.sub",
    "re.findall",
    "re.compile",
    "itertools.groupby",
    "itertools.chain",
    "collections.Counter",
    "collections.defaultdict",
    "collections.deque",
    "heapq.nlargest",
    "heapq.heappush",
    "random.shuffle",
    "random.sample",
    "statistics.median",
    "statistics.stdev",
    "csv.reader",
    "csv.writer",
    "base64.b64encode",
    "gzip.open",
    "textwrap.wrap",
    "textwrap.dedent",
    "functools.lru_cache",
    "functools.partial",
    "bisect.insort",
    "math.isclose",
    "math.gcd",
    "tempfile.mkdtemp",
    "tempfile.NamedTemporaryFile",
    "urllib.parse.urlencode",
    "urllib.parse.urlparse",
    "hashlib.pbkdf2_hmac",
    "difflib.unified_diff",
    "string.capwords",
    "glob.glob",
    "fnmatch.fnmatch",
    "time.sleep",
    "datetime.datetime.strptime",
    "uuid.uuid4",
    "copy.deepcopy",
    "operator.itemgetter",
    "pprint.pprint",
    "secrets.token_hex",
    "zlib.compress",
    "filecmp.cmp",
    "getpass.getpass",
    "platform.system",
    "calendar.monthrange",
]

QUERIES = {
    "q1": ("serialize a python object to a JSON formatted string", {"json.dumps": 2}),
    "q2": ("parse a JSON document into python objects", {"json.loads": 2}),
    "q3": ("delete a directory and everything inside it", {"shutil.rmtree": 2}),
    "q4": ("recursively copy a whole folder to a new location", {"shutil.copytree": 2}),
    "q5": (
        "create a zip or tar archive of a directory",
        {"shutil.make_archive": 2, "zipfile.ZipFile": 1},
    ),
    "q6": (
        "run an external command and capture its output",
        {"subprocess.run": 2, "subprocess.check_output": 2},
    ),
    "q7": ("replace every match of a regular expression in a string", {"re.sub": 2}),
    "q8": ("count how many times each item occurs", {"collections.Counter": 2}),
    "q9": ("get the n largest elements of a list", {"heapq.nlargest": 2}),
    "q10": ("randomly reorder the items of a list in place", {"random.shuffle": 2}),
    "q11": ("middle value of a list of numbers", {"statistics.median": 2}),
    "q12": ("split long text into lines of limited width", {"textwrap.wrap": 2}),
    "q13": ("cache the results of an expensive function", {"functools.lru_cache": 2}),
    "q14": (
        "check whether two floating point numbers are approximately equal",
        {"math.isclose": 2},
    ),
    "q15": ("make a temporary directory", {"tempfile.mkdtemp": 2}),
    "q16": ("derive a key from a password with a salt", {"hashlib.pbkdf2_hmac": 2}),
    "q17": (
        "show the differences between two lists of lines",
        {"difflib.unified_diff": 2},
    ),
    "q18": (
        "find files whose names match a wildcard pattern",
        {"glob.glob": 2, "fnmatch.fnmatch": 1},
    ),
    "q19": ("pause the program for some seconds", {"time.sleep": 2}),
    "q20": (
        "parse a date from a string with a format",
        {"datetime.datetime.strptime": 2},
    ),
    "q21": ("generate a random unique identifier", {"uuid.uuid4": 2}),
    "q22": ("make a full independent copy of a nested object", {"copy.deepcopy": 2}),
    "q23": (
        "generate a secure random token for a password reset link",
        {"secrets.token_hex": 2},
    ),
    "q24": ("walk a directory tree and list every file", {"os.walk": 2}),
    "q25": ("locate the path of an executable program", {"shutil.which": 2}),
}


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def main() -> None:
    root = Path(__file__).parent / "stdlib-docs"
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for dotted in OBJECTS:
            doc = inspect.getdoc(_resolve(dotted)) or ""
            row = {"_id": dotted, "title": dotted, "text": doc}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as out:
        for qid, (text, _) in QUERIES.items():
            out.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (root / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid, (_, judged) in QUERIES.items():
            for doc_id, grade in judged.items():
                assert doc_id in OBJECTS, doc_id
                out.write(f"{qid}\t{doc_id}\t{grade}\n")


if __name__ == "__main__":
    main()
