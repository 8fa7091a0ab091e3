"""Half precision against float32: speed and score agreement, on one device.

Loads the cross-encoder (the MiniLM-L6 stand-in by default) once per dtype
with plain `sentence_transformers.CrossEncoder(model_kwargs={"dtype": ...})`,
so it measures what the library would do and nothing of ours, then for each
candidate count times `predict` (median of interleaved rounds, see
`_timing.interleaved_median_ms`) and compares each dtype's scores with
float32's: the largest absolute difference, Spearman and top-5 overlap.

This is the measurement behind the library's CPU rule
(`langchain_ce_rerank.models.precision`): which dtypes it refuses on CPU.
`gpu.py` reuses `measure` on CUDA.

    cd benchmarks && python dtype.py                 # CPU, 20 and 100 candidates
    cd benchmarks && python dtype.py --device cuda --sizes 100 1000
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _texts import QUERY, passages
from _timing import interleaved_median_ms

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class Row:
    """One dtype at one candidate count."""

    size: int
    dtype: str
    ms: float
    max_abs_diff: float
    relative_diff: float
    spearman: float
    top5: float
    finite: bool


def cpu_flags() -> str:
    """The processor's half-precision features, from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "unknown"
    wanted = ("avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16")
    return " ".join(f for f in wanted if f in flags) or "none of avx512/amx"


def load_models(
    folder: str, *, device: str, dtypes: tuple[str, ...] = DTYPES
) -> dict[str, Any]:
    """The cross-encoder loaded once per dtype, float32 first (the reference)."""
    import torch
    from sentence_transformers import CrossEncoder

    names = ("float32", *(d for d in dtypes if d != "float32"))
    return {
        name: CrossEncoder(
            folder, device=device, model_kwargs={"dtype": getattr(torch, name)}
        )
        for name in names
    }


def measure(
    models: dict[str, Any],
    pairs: list[tuple[str, str]],
    *,
    repeats: int,
    batch_size: int,
) -> list[Row]:
    """Time `predict` of each model on `pairs`; compare scores with float32's.

    Args:
        models: From `load_models`.
        pairs: The (query, passage) pairs of one call.
        repeats: Timed rounds.
        batch_size: Pairs per forward pass.

    Returns:
        One row per dtype.
    """
    import torch
    from scipy.stats import spearmanr

    scores: dict[str, np.ndarray] = {}

    def run(name: str, model: Any) -> None:
        # The last timed call's scores are the ones compared.
        scores[name] = np.asarray(
            model.predict(
                pairs,
                batch_size=batch_size,
                activation_fn=torch.nn.Identity(),
                show_progress_bar=False,
            ),
            dtype=np.float64,
        )

    fns = {name: lambda n=name, m=model: run(n, m) for name, model in models.items()}
    times = interleaved_median_ms(fns, repeats)
    reference = scores["float32"]
    spread = float(reference.max() - reference.min()) or 1.0
    k = min(5, len(pairs))
    top = set(np.argsort(-reference)[:k])
    rows = []
    for name, got in scores.items():
        finite = bool(np.isfinite(got).all())
        rows.append(
            Row(
                size=len(pairs),
                dtype=name,
                ms=times[name],
                max_abs_diff=float(np.max(np.abs(got - reference)))
                if finite
                else float("nan"),
                relative_diff=float(np.max(np.abs(got - reference))) / spread
                if finite
                else float("nan"),
                spearman=float(spearmanr(reference, got).statistic)
                if finite
                else float("nan"),
                top5=len(top & set(np.argsort(-got)[:k])) / k,
                finite=finite,
            )
        )
    return rows


HEADER = (
    f"{'candidates':>10} {'dtype':<9} {'ms':>9} {'fp32 / this':>12}"
    f" {'max |diff|':>11} {'/ fp32 range':>13} {'spearman':>9} {'top-5':>6}"
)


def print_header() -> None:
    print(HEADER)
    print("-" * len(HEADER), flush=True)


def print_rows(rows: list[Row]) -> None:
    """Table rows: ms, float32's ms over this one's, agreement with float32."""
    base = {r.size: r.ms for r in rows if r.dtype == "float32"}
    for r in rows:
        print(
            f"{r.size:>10} {r.dtype:<9} {r.ms:>9.1f} {base[r.size] / r.ms:>11.2f}x"
            f" {r.max_abs_diff:>11.4f} {r.relative_diff:>13.4f} {r.spearman:>9.4f}"
            f" {r.top5:>6.1f}" + ("" if r.finite else "  NON-FINITE SCORES"),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="cross-encoder folder or id (default: stand-in)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from langchain_ce_rerank.testing import build_standin_cross_encoder

    folder = args.model or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "ce-rerank-standin")
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}; CPU flags: {cpu_flags()}; "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}"
    )
    models = load_models(folder, device=args.device, dtypes=tuple(args.dtypes))
    texts = passages(max(args.sizes))
    batch = args.batch_size or (4 if args.device == "cpu" else 32)
    print_header()
    for size in args.sizes:
        pairs = [(QUERY, t) for t in texts[:size]]
        print_rows(measure(models, pairs, repeats=args.repeats, batch_size=batch))


if __name__ == "__main__":
    main()
