"""The `--ray` options of `ce-rerank eval`.

(Serving on Ray goes through Ray Serve's own command and config file:
`serve run examples/ray_serve_config.yaml`; see `serving/ray_serve/`.)

Importing this module does not import Ray: the parser is built without the
`[ray]` extra, and only a command run with `--ray` needs it.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.optional import install_hint

if TYPE_CHECKING:
    from langchain_ce_rerank.evaluation import DocumentScorer

__all__ = ["add_ray_options", "connect", "ray_scorer"]

logger = logging.getLogger(__name__)


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        msg = f"must be a whole number of workers, at least 1, got {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return count


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """Add `--ray`, `--ray-address` and `--ray-workers` to a command's parser.

    Args:
        parser: The `eval` subcommand's parser.
    """
    group = parser.add_argument_group(
        "Ray", "scale out on a Ray cluster (needs the [ray] extra)"
    )
    group.add_argument(
        "--ray",
        action="store_true",
        help="score the candidate lists with Ray Data workers (the same "
        "results as without --ray)",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the cluster to join (auto, or ray://HOST:10001); default: "
        "$RAY_ADDRESS, else a local Ray instance on this machine",
    )
    group.add_argument(
        "--ray-workers",
        type=_workers,
        default=2,
        metavar="N",
        help="Ray Data workers, each loading the model once (default: 2)",
    )


def _require_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        msg = f"--ray needs Ray, which is not installed; {install_hint('ray')}"
        raise ImportError(msg) from err
    return ray


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` ($RAY_ADDRESS or a local one if None).

    Raises:
        ImportError: Ray is not installed.
        ConnectionError: No cluster answers at `address`.
    """
    ray = _require_ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    except ConnectionError as err:
        msg = (
            f"--ray-address {address!r}: no Ray cluster answers there ({err}); "
            "start one with `ray start --head`, or leave --ray-address out to "
            "start a local Ray instance"
        )
        raise ConnectionError(msg) from err


def ray_scorer(args: argparse.Namespace) -> DocumentScorer | None:
    """For `ce-rerank eval`: the scorer to pass to `evaluate`, or None without --ray.

    Args:
        args: The parsed options (`ray`, `ray_address`, `ray_workers`).

    Returns:
        A `RayDataScorer` on the joined cluster, or None (score in-process).
    """
    if not args.ray:
        return None
    connect(args.ray_address)
    from langchain_ce_rerank.ray_data import RayDataScorer

    return RayDataScorer(concurrency=args.ray_workers)
