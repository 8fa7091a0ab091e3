"""`ce-rerank serve`: the reranker as an HTTP service (Cohere Rerank API v2).

`add_serve_parser(subparsers)` adds the command to a parser and
`run_serve(args)` runs it; nothing heavy is imported until it runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from langchain_ce_rerank.cli._common import (
    CliError,
    add_backend_options,
    add_model_option,
    blame,
    check_backend_support,
    check_dtype_flag,
    check_input_file,
    check_int8,
    find_model,
    instruction_text,
    positive,
)

__all__ = ["API_KEY_ENV", "add_serve_parser", "run_serve"]

API_KEY_ENV = "CE_RERANK_API_KEY"
"""Read when `--api-key` is not given."""

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        msg = f"must be 0 or more, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        msg = f"must be a TCP port from 0 to 65535 (0 picks a free one), got {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def add_serve_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the `serve` command to a `ce-rerank` parser's subcommands.

    Args:
        subparsers: What `parser.add_subparsers()` returned.

    Returns:
        The `serve` parser (its `func` default is `run_serve`).
    """
    parser = subparsers.add_parser(
        "serve",
        help="serve the reranker over HTTP (Cohere Rerank API v2)",
        description=(
            "Serve a cross-encoder over HTTP with Cohere's Rerank API v2:\n"
            "  POST /v2/rerank {model?, query, documents, top_n?,\n"
            "                   max_tokens_per_doc?, groups?, max_per_group?,\n"
            "                   diversity?, min_probability?}\n"
            "  (groups, max_per_group, diversity and min_probability, and\n"
            "  relevance_probability in the results, are our extension;\n"
            "  min_probability needs --calibration FILE)\n"
            "  GET /healthz, GET /readyz (503 until the model has loaded),\n"
            "  GET /metrics (Prometheus).\n"
            "Concurrent requests share model calls (dynamic batching). SIGTERM or\n"
            "Ctrl-C drains: requests in flight finish, new ones get 503."
        ),
        epilog=(
            "example:\n"
            "  ce-rerank serve --reranker cross-encoder/ms-marco-MiniLM-L6-v2 "
            "--port 8080\n"
            "  curl -s localhost:8080/v2/rerank -H 'Content-Type: application/json' "
            '\\\n    -d \'{"query": "capital of France", "documents": '
            '["Paris is in France.", "Cats purr."]}\''
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_argument_group("model")
    add_model_option(model)
    model.add_argument(
        "--model-name",
        metavar="NAME",
        help=(
            "the name clients send as 'model'; another name gets 404, none is "
            "accepted (default: the --reranker value)"
        ),
    )
    add_backend_options(model)
    model.add_argument(
        "--max-length",
        metavar="TOKENS",
        type=positive,
        help="token window per (query, document) pair (default: the model's own)",
    )
    model.add_argument(
        "--activation",
        choices=("none", "sigmoid"),
        default="none",
        help=(
            "none: raw logits as relevance_score; sigmoid: 0..1 scores "
            "(default: %(default)s)"
        ),
    )
    model.add_argument(
        "--instruction",
        metavar="TEXT",
        type=instruction_text,
        help=(
            "the default task an instruction-following reranker scores for; "
            "a request's instruction field overrides it. A reranker that "
            "reads none stops the server at start (default: the model's own)"
        ),
    )
    model.add_argument(
        "--calibration",
        metavar="FILE",
        help=(
            "a calibration fitted for --reranker by 'ce-rerank eval --calibrate "
            "FILE': each result also carries relevance_probability, and requests "
            "may send min_probability (both our extension of Cohere's API) "
            "(default: none)"
        ),
    )
    model.add_argument(
        "--batch-size",
        metavar="N",
        type=positive,
        help="pairs per forward pass (default: 4 on CPU, 32 on a GPU)",
    )
    model.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="score every pair with the model, never from the score cache",
    )

    network = parser.add_argument_group("network")
    network.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 exposes it (default: %(default)s)",
    )
    network.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    network.add_argument(
        "--api-key",
        metavar="KEY",
        default=os.environ.get(API_KEY_ENV),
        help=(
            "require 'Authorization: Bearer KEY' on /v2/rerank and /metrics "
            f"(default: ${API_KEY_ENV}, else no key; the environment variable "
            "keeps the key out of the process list)"
        ),
    )

    batching = parser.add_argument_group("batching")
    batching.add_argument(
        "--max-batch-wait-ms",
        metavar="MS",
        type=_non_negative,
        default=5.0,
        help="how long a request waits for others to share its model call "
        "(default: %(default)s)",
    )
    batching.add_argument(
        "--max-batch-pairs",
        metavar="N",
        type=int,
        default=256,
        help="most (query, document) pairs per model call; 0 scores one request "
        "at a time (default: %(default)s)",
    )
    batching.add_argument(
        "--max-queued-pairs",
        metavar="N",
        type=int,
        default=10_000,
        help="most pairs waiting for the model; past it a request gets 503 with "
        "Retry-After, so an overloaded server sheds load instead of queueing "
        "without end; 0 means no limit (default: %(default)s)",
    )
    batching.add_argument(
        "--no-batching",
        action="store_true",
        help="score one request at a time (same as --max-batch-wait-ms 0 "
        "--max-batch-pairs 0)",
    )

    limits = parser.add_argument_group("limits (over a limit: HTTP 413)")
    limits.add_argument(
        "--max-documents",
        metavar="N",
        type=positive,
        default=1000,
        help="documents per request (default: %(default)s)",
    )
    limits.add_argument(
        "--max-document-chars",
        metavar="N",
        type=positive,
        default=100_000,
        help="characters per document (default: %(default)s)",
    )
    limits.add_argument(
        "--max-body-bytes",
        metavar="N",
        type=positive,
        default=10 * 1024 * 1024,
        help="bytes per request body (default: %(default)s)",
    )

    process = parser.add_argument_group("process")
    process.add_argument(
        "--graceful-timeout",
        metavar="SECONDS",
        type=_non_negative,
        default=30.0,
        help="at shutdown, how long to wait for requests in flight "
        "(default: %(default)s)",
    )
    process.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default="info",
        help="(default: %(default)s)",
    )
    parser.set_defaults(func=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """Run `ce-rerank serve` with parsed arguments; returns the exit status.

    Args:
        args: From the parser `add_serve_parser` made.

    Returns:
        0 after a graceful shutdown.

    Raises:
        CliError: A bad option, a model that cannot be found or loaded, or an
            address that cannot be bound (`main` prints it as one line and
            exits with status 1).
    """
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    check_int8(args)
    for flag in ("max_batch_pairs", "max_queued_pairs"):
        if getattr(args, flag) < 0:
            option = "--" + flag.replace("_", "-")
            msg = f"{option} must be 0 or more, got {getattr(args, flag)}"
            raise CliError(msg)
    check_dtype_flag(args)
    try:
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.serving.app import ServeSettings, create_app
        from langchain_ce_rerank.serving.server import bind_socket, serve
    except ImportError as err:
        raise CliError(str(err)) from err
    if args.calibration is not None:
        check_input_file("--calibration", args.calibration)
    # Found before the server starts (it loads the model in the background),
    # with the same message as every other command.
    find_model("--reranker", args.reranker, cross_encoder=True)
    check_backend_support(args)
    try:
        engine = Reranker(
            model=args.reranker,
            top_n=None,
            device=args.device,
            dtype=args.dtype,
            max_length=args.max_length,
            activation=args.activation,
            batch_size=args.batch_size,
            backend=args.backend,
            quantization="int8" if args.int8 else None,
            instruction=args.instruction,
        )
        settings = ServeSettings(
            model_name=args.model_name or args.reranker,
            api_key=args.api_key or None,
            max_documents=args.max_documents,
            max_document_chars=args.max_document_chars,
            max_body_bytes=args.max_body_bytes,
            max_batch_wait_ms=0 if args.no_batching else args.max_batch_wait_ms,
            max_batch_pairs=0 if args.no_batching else args.max_batch_pairs,
            max_queued_pairs=args.max_queued_pairs,
            use_cache=args.cache,
        )
    except (ImportError, ValueError) as err:
        raise CliError(str(err)) from err
    if args.calibration is not None:
        with blame(f"--calibration {args.calibration}"):
            engine = engine.with_settings(calibration=args.calibration)
    try:
        app = create_app(engine, settings)
    except (ImportError, ValueError) as err:
        raise CliError(str(err)) from err
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as err:
        msg = f"--host {args.host} --port {args.port}: {err.strerror or err}"
        raise CliError(msg) from err
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    print(
        f"ce-rerank serve: {settings.model_name} on http://{shown_host}:{port} "
        f"(POST /v2/rerank; the model loads in the background, GET /readyz)",
        file=sys.stderr,
        flush=True,
    )
    try:
        return serve(
            app, sock, log_level=args.log_level, graceful_timeout=args.graceful_timeout
        )
    except ImportError as err:
        raise CliError(str(err)) from err
