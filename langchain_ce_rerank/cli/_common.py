"""What every `ce-rerank` command shares.

One-line errors naming the argument to change, cheap checks run before
anything slow, the reranker and index loaders, and the reranking options.
The names below are shared by the command modules, so they carry no leading
underscore; the module itself stays private to `langchain_ce_rerank.cli`.

Importing it is cheap: the parser is built from these options without
importing torch, numpy, FAISS or LangChain, which only a running command
loads.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_ce_rerank.errors import InstructionNotSupportedError, ModelNotFoundError
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER
from langchain_ce_rerank.models.backends import (
    BACKEND_NAMES,
    DEFAULT_BACKEND,
    get_backend,
    quantization_error,
)
from langchain_ce_rerank.models.families import supported_families
from langchain_ce_rerank.models.precision import DEFAULT_DTYPE, DTYPES, check_dtype

if TYPE_CHECKING:
    from rich.console import Console

    from langchain_ce_rerank.compressor import CrossEncoderCompressor
    from langchain_ce_rerank.store import IndexStore


__all__ = [
    "DEVICE_HELP",
    "LISTED",
    "MANIFEST",
    "PASSAGE_AGGREGATIONS",
    "SNIPPET",
    "CliError",
    "ExitStatus",
    "add_backend_options",
    "add_model_option",
    "add_reranker_options",
    "blame",
    "check_backend_support",
    "check_device",
    "check_dtype_flag",
    "check_index_folder",
    "check_input_file",
    "check_int8",
    "check_passage_aggregation",
    "find_model",
    "instruction_text",
    "load_index",
    "load_reranker",
    "one_line",
    "positive",
    "prepare_reranker",
    "quiet_model_loading",
    "recorded_embedding",
    "reranking",
    "rich_console",
]

logger = logging.getLogger("langchain_ce_rerank.cli")

SNIPPET = 60
"""Characters of a document shown in a table row."""
_CREATE_INDEX = "ce-rerank index PATHS... --out"
MANIFEST = "manifest.json"
"""The file that marks a folder as an index."""
LISTED = 5
"""Skipped files listed one per line without --verbose; the rest are counted."""


class ExitStatus(IntEnum):
    """How `ce-rerank` and the examples exit: one status per kind of outcome."""

    OK = 0
    """The command did what was asked."""
    ERROR = 1
    """It could not, and one line on stderr says what to change: a bad value,
    a missing file, folder or model, a missing extra, a broken index."""
    USAGE = 2
    """The command line itself is malformed (an unknown option, a missing
    argument, a number out of range): argparse's own status, after the usage."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C (128 + SIGINT, as shells report it)."""


class CliError(Exception):
    """A user-facing failure: printed as one line, `ExitStatus.ERROR`."""


def rich_console() -> Console:
    """The console every table is printed on."""
    from rich.console import Console

    # A terminal's own width, or COLUMNS when set; else, when stdout is a pipe,
    # wide enough for the tables (rich would assume 80).
    wide = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=None if wide else 140, highlight=False)


def quiet_model_loading() -> None:
    """Keep Hugging Face's own progress bars and load reports out of the output.

    Cheap: huggingface_hub and transformers read these variables when they are
    first imported, which a command does only once its cheap checks have
    passed, so nothing is imported here. When either is loaded already (a
    second `main()` in one process), transformers is told directly.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules or "huggingface_hub" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def positive(value: str) -> int:
    """An argparse `type`: a whole number, at least 1."""
    number = int(value)
    if number < 1:
        msg = f"must be at least 1, got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _template(value: str) -> str:
    """Read a backslash-n or backslash-t typed in a shell as a newline or a tab."""
    return value.replace("\\n", "\n").replace("\\t", "\t")


# -- errors: one line, naming the argument to change -----------------------------


def instruction_text(value: str) -> str:
    """The `--instruction` flag's type: any text but blank."""
    if not value.strip():
        msg = "is empty; pass the task text, or leave --instruction out"
        raise argparse.ArgumentTypeError(msg)
    return value


def one_line(err: BaseException) -> str:
    """An error as one line of text, without pydantic's "Value error, " prefix."""
    # A ValidationError exists only once pydantic is imported; an error from a
    # cheap check must not import it.
    validation_error = (
        sys.modules["pydantic"].ValidationError if "pydantic" in sys.modules else None
    )
    if validation_error is not None and isinstance(err, validation_error):
        text = "; ".join(
            str(e["msg"]).removeprefix("Value error, ") for e in err.errors()
        )
    elif isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror.lower()}"
    else:
        text = str(err) or type(err).__name__
    # Line breaks go, spaces within a line stay: a blank QUESTION of three
    # spaces is shown as '   ', as typed.
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _model_error(err: ModelNotFoundError, flag: str) -> CliError:
    """The library's not-found message, with the CLI's remedy in it."""
    return CliError(one_line(err.with_remedy(f"{flag} PATH")))


@contextmanager
def blame(flag: str, remedy: str = "") -> Iterator[None]:
    """Report a library error raised in this block as a fault of `flag`."""
    try:
        yield
    except CliError:
        raise
    except ModelNotFoundError as err:
        raise _model_error(err, flag) from err
    except (ImportError, OSError, ValueError) as err:
        tail = f"; {remedy}" if remedy else ""
        raise CliError(f"{flag}: {one_line(err)}{tail}") from err


@contextmanager
def reranking() -> Iterator[None]:
    """A missing metadata field surfaces only when documents are scored."""
    try:
        yield
    except InstructionNotSupportedError as err:
        raise _instruction_error(err) from err
    except ValueError as err:
        if "content_template" not in str(err):
            raise
        raise CliError(f"--content-template: {one_line(err)}") from err


def _instruction_error(err: InstructionNotSupportedError) -> CliError:
    """The library's refusal of an instruction, in the CLI's words."""
    return CliError(one_line(err.with_parameter("--instruction")))


# -- cheap checks, run before anything slow --------------------------------------


def check_index_folder(flag: str, folder: str) -> None:
    """Fail unless `folder` (given as `flag`) holds an index's manifest."""
    path = Path(folder)
    if path.is_file():
        msg = (
            f"{flag} {folder!r} is a file, not an index folder; pass the folder "
            f"written by: {_CREATE_INDEX} DIR"
        )
        raise CliError(msg)
    if not path.is_dir():
        msg = (
            f"{flag} {folder!r} does not exist; "
            f"create one with: {_CREATE_INDEX} {folder}"
        )
        raise CliError(msg)
    if not (path / MANIFEST).is_file():
        msg = (
            f"{flag} {folder!r} is not an index folder (it has no {MANIFEST}); "
            f"create one with: {_CREATE_INDEX} {folder}"
        )
        raise CliError(msg)


def check_input_file(flag: str, path: str) -> None:
    """Fail unless `path` (given as `flag`) is an existing file."""
    if Path(path).is_dir():
        msg = f"{flag} {path!r} is a folder; pass the file itself"
        raise CliError(msg)
    if not Path(path).is_file():
        msg = f"{flag} {path!r} does not exist"
        raise CliError(msg)


def check_device(device: str | None) -> None:
    """Fail unless `--device` names a torch device that is available here."""
    if device is None:
        return
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        msg = f"--device {device!r} is not a torch device; use cpu, cuda, cuda:1 or mps"
        raise CliError(msg) from err
    if kind == "cuda" and not torch.cuda.is_available():
        msg = (
            f"--device {device!r}: no CUDA GPU is available here; "
            "use --device cpu or leave it out"
        )
        raise CliError(msg)
    if kind == "mps" and not torch.backends.mps.is_available():
        msg = (
            f"--device {device!r}: MPS is not available here; "
            "use --device cpu or leave it out"
        )
        raise CliError(msg)


def check_int8(args: argparse.Namespace) -> None:
    """Fail when `--int8` is asked of a backend that has no int8 (torch)."""
    if args.int8 and "int8" not in get_backend(args.backend).quantizations:
        raise CliError(quantization_error("int8", cli=True))


def check_backend_support(args: argparse.Namespace) -> None:
    """Fail when `--reranker`'s model family is refused on `--backend`/`--int8`.

    Reads the model's `config.json` only, and only for a combination some
    family is refused on (`models.backends.support`).
    """
    from langchain_ce_rerank.models.backends.support import check_model

    try:
        check_model(
            args.reranker, args.backend, "int8" if args.int8 else None, cli=True
        )
    except ValueError as err:
        raise CliError(str(err)) from err


def check_dtype_flag(args: argparse.Namespace) -> None:
    """Fail when `--dtype` does not suit `--backend` or the device it runs on.

    The backend rule is checked first, without torch; then the device: the
    `--device` given, else the one the model would load on (cuda, mps, cpu),
    so `--dtype float16` on a machine without a GPU fails now, in flag words,
    not at load.
    """
    if args.dtype == DEFAULT_DTYPE:
        return
    try:
        check_dtype(args.dtype, device=None, backend=args.backend, cli=True)
        device = args.device
        if device is None:
            from langchain_ce_rerank.models.loading import pick_device

            device = pick_device()
        check_dtype(args.dtype, device=device, backend=args.backend, cli=True)
    except ValueError as err:
        raise CliError(one_line(err)) from err


def check_passage_aggregation(args: argparse.Namespace) -> None:
    """Fail when `--passage-aggregation` is given without max_passage windows."""
    if args.passage_aggregation is None or args.long_documents == "max_passage":
        return
    msg = (
        f"--passage-aggregation {args.passage_aggregation} combines the scores of "
        "a document's windows, which only --long-documents max_passage scores "
        f"(not --long-documents {args.long_documents}); add --long-documents "
        "max_passage, or leave --passage-aggregation out"
    )
    raise CliError(msg)


def prepare_reranker(
    args: argparse.Namespace, **settings: object
) -> CrossEncoderCompressor:
    """Check the reranking options and find the model; loading comes later.

    `settings` are further compressor settings a command adds (or overrides).
    """
    check_int8(args)
    check_passage_aggregation(args)
    check_dtype_flag(args)
    check_device(args.device)
    check_backend_support(args)
    from langchain_ce_rerank.compressor import CrossEncoderCompressor

    with blame(f"--backend {args.backend}"):
        try:
            compressor = CrossEncoderCompressor(
                **{
                    "model": args.reranker,
                    "top_n": args.top_n,
                    "device": args.device,
                    "long_documents": args.long_documents,
                    "passage_aggregation": args.passage_aggregation or "max",
                    "dtype": args.dtype,
                    "fusion": args.fusion,
                    "content_template": args.content_template,
                    "backend": args.backend,
                    "quantization": "int8" if args.int8 else None,
                    "instruction": args.instruction,
                    **settings,
                }
            )
        except ValueError as err:
            if "content_template" in str(err):
                raise CliError(f"--content-template: {one_line(err)}") from err
            raise
    find_model("--reranker", args.reranker, cross_encoder=True)
    return compressor


def find_model(flag: str, model: str, *, cross_encoder: bool = False) -> None:
    """Fail now unless `model` (given as `flag`) can be found; nothing is loaded.

    Every command looks for its models before any slow work (reading a
    corpus, embedding, loading an index), so a missing one fails in seconds.
    """
    from langchain_ce_rerank.models import resolve_model

    with blame(flag):
        resolve_model(model, cross_encoder=cross_encoder)


def load_reranker(compressor: CrossEncoderCompressor) -> None:
    """Load the cross-encoder now, blaming `--reranker` for a failure."""
    with blame("--reranker"):
        compressor.load_model()
    if compressor.instruction is not None:
        # Refused now, before any first-stage work, not at the first score.
        try:
            compressor.engine.instruction_for_call()
        except InstructionNotSupportedError as err:
            raise _instruction_error(err) from err


def load_index(flag: str, args: argparse.Namespace) -> IndexStore:
    """Load the index named by `flag`, with the bi-encoder it was built with."""
    from langchain_ce_rerank.models import load_embeddings
    from langchain_ce_rerank.store import open_index

    folder = args.index
    rebuild = f"rebuild it with: {_CREATE_INDEX} {folder}"
    check_index_folder(flag, folder)
    with blame(flag, rebuild):
        recorded = recorded_embedding(folder)
    model = args.embedding or recorded
    if not model:
        msg = (
            f"{flag} {folder!r} does not record its embedding model; pass the one "
            "it was built with: --embedding MODEL_OR_PATH"
        )
        raise CliError(msg)
    with blame("--embedding"):
        embeddings = load_embeddings(model, device=args.device)
    with blame(flag, rebuild):
        return open_index(folder, embeddings)


def recorded_embedding(folder: str | os.PathLike[str]) -> str | None:
    """The embedding model an index folder's manifest records, if any."""
    from langchain_ce_rerank.store import read_index_manifest

    recorded = read_index_manifest(folder).get("embedding_model")
    return recorded if isinstance(recorded, str) and recorded else None


PASSAGE_AGGREGATIONS = ("max", "mean_top2", "max_debiased")
"""`--passage-aggregation` choices: `engine.aggregation.PASSAGE_AGGREGATIONS`,
spelt out because importing the engine here would import pydantic on every
`--help` (a test keeps the two equal)."""

DEVICE_HELP = "torch device: cpu, cuda, cuda:1, mps (default: cuda, then mps, then cpu)"


def add_reranker_options(parser: argparse.ArgumentParser) -> None:
    """Add the first-stage and reranking options of `query` and `eval`."""
    group = parser.add_argument_group("reranking")
    group.add_argument(
        "-k",
        metavar="N",
        type=positive,
        default=20,
        help="first-stage candidates passed to the reranker (default: %(default)s)",
    )
    group.add_argument(
        "--top-n",
        metavar="N",
        type=positive,
        default=5,
        help="results kept after reranking (default: %(default)s)",
    )
    add_model_option(group)
    group.add_argument(
        "--long-documents",
        choices=("truncate", "max_passage"),
        default="truncate",
        help=(
            "truncate: score the start of each document that fits the model's "
            "window; max_passage: score every window and keep the best "
            "(default: %(default)s)"
        ),
    )
    group.add_argument(
        "--passage-aggregation",
        choices=PASSAGE_AGGREGATIONS,
        help=(
            "with --long-documents max_passage, a document's score from its "
            "windows' scores: max, its best window; mean_top2, the mean of its "
            "two best (a single lucky window no longer carries a long "
            "document); max_debiased, its best less what chance adds to the "
            "best of that many windows (default: max)"
        ),
    )
    group.add_argument(
        "--fusion",
        choices=("none", "rrf"),
        default="none",
        help=(
            "rrf: order by Reciprocal Rank Fusion of the cross-encoder and "
            "first-stage ranks (default: %(default)s)"
        ),
    )
    group.add_argument(
        "--instruction",
        metavar="TEXT",
        type=instruction_text,
        help=(
            "the task an instruction-following reranker (e.g. Qwen3-Reranker) "
            'judges relevance for, e.g. "Given a legal question, retrieve the '
            'statute that answers it"; a reranker that reads none refuses it '
            "(default: the model's own)"
        ),
    )
    group.add_argument(
        "--content-template",
        metavar="TEMPLATE",
        type=_template,
        help=(
            "what the reranker reads: {page_content} and metadata fields, e.g. "
            '"{title}\\n{page_content}" (\\n and \\t are read as newline and '
            "tab; default: the text alone)"
        ),
    )
    add_backend_options(group)


def add_model_option(group: argparse._ArgumentGroup) -> None:
    """Add `--reranker`, the cross-encoder every command but `index` uses."""
    group.add_argument(
        "--reranker",
        default=DEFAULT_CROSS_ENCODER,
        metavar="MODEL_OR_PATH",
        help=(
            "cross-encoder: a Hugging Face id (from the local cache when "
            "HF_HUB_OFFLINE=1) or a local folder (default: %(default)s). "
            f"Supported families: {supported_families()}"
        ),
    )


def add_backend_options(group: argparse._ArgumentGroup) -> None:
    """Add `--backend`, `--int8` and `--device`: how the cross-encoder runs."""
    group.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        default=DEFAULT_BACKEND,
        help=(
            "cross-encoder inference backend; openvino and onnx need the "
            "[openvino] / [onnx] extra (default: %(default)s)"
        ),
    )
    group.add_argument(
        "--int8",
        action="store_true",
        help=(
            "int8 cross-encoder, with --backend openvino or onnx; fastest on "
            "CPU: --backend openvino --int8 (default: off)"
        ),
    )
    group.add_argument("--device", help=DEVICE_HELP)
    group.add_argument(
        "--dtype",
        choices=DTYPES,
        default=DEFAULT_DTYPE,
        help=(
            "precision the cross-encoder runs in, with --backend torch; "
            "bfloat16 and float16 are for GPUs: float16 is refused on CPU "
            "(slower there), bfloat16 allowed only on CPUs with bfloat16 "
            "instructions (default: %(default)s)"
        ),
    )
