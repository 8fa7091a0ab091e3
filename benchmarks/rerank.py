"""Reranking speed and ranking agreement: our compressor vs. the anchors, one run.

For 20/50/100/200 candidates of real English text (30-400 words) and one
query, with the architecture-identical MiniLM-L6 stand-in cross-encoder, it
times (median of repeats):

- raw `sentence_transformers.CrossEncoder.predict` on the same pairs;
- LangChain's `CrossEncoderReranker` with `HuggingFaceCrossEncoder`
  (langchain-community, benchmark-only);
- `CrossEncoderCompressor` with its defaults and each backend available
  (torch; onnx and onnx int8 with the [onnx] extra; openvino and openvino
  int8 with the [openvino] extra), cache off;
- a repeated query with the score cache on;

in interleaved rounds (see `_timing.interleaved_median_ms`), and prints
milliseconds and ratios to raw predict and to LangChain, then Spearman,
Kendall and top-5 overlap of each backend's scores against torch fp32 at 100
candidates.

With `--family NAME...` (bert, xlm-roberta, modernbert, causal-lm, or all) it
times that family's offline stand-in (`langchain_ce_rerank.testing.
build_standin`) instead, at 20 and 100 candidates, on torch and every backend
and quantization the support table (`models.backends.support`) says works,
side by side in interleaved rounds, then prints each one's Spearman and top-5
overlap against torch fp32 at 100 candidates.

    make bench      # or: python benchmarks/rerank.py --reranker FOLDER
    python benchmarks/rerank.py --family all
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from _texts import QUERY, passages
from _timing import interleaved_median_ms
from langchain_core.documents import Document
from scipy.stats import kendalltau, spearmanr

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.models.backends.support import (
    SUPPORTED_FAMILIES,
    combinations,
    support,
)
from langchain_ce_rerank.testing import build_standin, build_standin_cross_encoder

SIZES = (20, 50, 100, 200)
FAMILY_SIZES = (20, 100)


def _agreement(reference: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Spearman and top-5 overlap (a fraction of 5) of `scores` with `reference`."""
    top5 = set(np.argsort(-reference)[:5])
    overlap = len(top5 & set(np.argsort(-scores)[:5])) / 5
    return float(spearmanr(reference, scores).statistic), overlap


def _compressors(
    folder: str, cache: Path, *, family: str | None = None, prefix: str = ""
) -> dict[str, CrossEncoderCompressor]:
    """Our compressor, loaded, on each backend and quantization installed.

    With `family`, the combinations the support table refuses it are left out.
    """
    ours: dict[str, CrossEncoderCompressor] = {}
    for backend, quant in combinations():
        name = f"{prefix}{backend}{f' {quant}' if quant else ''}"
        if family is not None and not support(family, backend, quant).works:
            print(f"({family} {name} skipped: refused by the support table)")
            continue
        try:
            ours[name] = CrossEncoderCompressor(
                model=folder,
                device="cpu",
                cache_size=0,
                backend=backend,
                quantization=quant,
                export_cache_folder=cache,
            )
        except ImportError as err:
            print(f"({name} skipped: {err})")
            continue
        ours[name].load_model()
    return ours


def family_main(
    family: str, repeats: int, sizes: list[int], root: Path, cache: Path
) -> None:
    """Time one family's stand-in on every working backend, side by side."""
    folder = str(build_standin(family, root / family))
    texts = passages(max(sizes))
    ours = _compressors(folder, cache, family=family)
    print(f"\n{family} stand-in ({folder})")
    header = f"{'candidates':>10} {'backend':<16} {'ms':>9} {'/ torch':>9}"
    print(header)
    print("-" * len(header))
    for size in sizes:
        docs = [Document(page_content=t) for t in texts[:size]]
        fns = {
            name: lambda c=compressor: c.compress_documents(docs, QUERY)
            for name, compressor in ours.items()
        }
        rows = interleaved_median_ms(fns, repeats)
        for name, ms in rows.items():
            print(f"{size:>10} {name:<16} {ms:>9.1f} {ms / rows['torch']:>8.3f}x")
    size = 100 if 100 in sizes else max(sizes)
    reference = np.array(ours["torch"].score(QUERY, texts[:size]))
    print(f"Agreement with torch fp32 at {size} candidates")
    for name, compressor in ours.items():
        rho, overlap = _agreement(
            reference, np.array(compressor.score(QUERY, texts[:size]))
        )
        print(f"  {name:<16} spearman {rho:.4f}  top-5 overlap {overlap:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", help="cross-encoder folder (default: stand-in)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument(
        "--family",
        nargs="+",
        choices=[*SUPPORTED_FAMILIES, "all"],
        help="time these families' stand-ins on every working backend instead",
    )
    parser.add_argument(
        "--standins",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ce-rerank-family-standins",
        help="where --family builds (or finds) the stand-ins",
    )
    parser.add_argument(
        "--export-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ce-rerank-bench-exports",
        help="where onnx/openvino exports are kept between runs",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.family:
        families = SUPPORTED_FAMILIES if "all" in args.family else args.family
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )
        for family in families:
            family_main(
                family,
                args.repeats,
                args.sizes or list(FAMILY_SIZES),
                args.standins,
                args.export_cache,
            )
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
        return
    args.sizes = args.sizes or list(SIZES)
    folder = args.reranker or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "ce-rerank-standin")
    )
    cache = args.export_cache

    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    from sentence_transformers import CrossEncoder

    texts = passages(max(args.sizes))
    raw = CrossEncoder(folder, device="cpu")
    langchain = CrossEncoderReranker(
        model=HuggingFaceCrossEncoder(
            model_name=folder, model_kwargs={"device": "cpu"}
        ),
        top_n=5,
    )
    ours = _compressors(folder, cache, prefix="ours ")
    tokenizer = raw.tokenizer
    lengths = [
        len(tokenizer(QUERY, t, truncation=True, max_length=512)["input_ids"])
        for t in texts
    ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{len(texts)} passages, mean {np.mean([len(t.split()) for t in texts]):.0f} words, "
        f"mean {np.mean(lengths):.0f} tokens a pair"
    )
    header = (
        f"{'candidates':>10} {'method':<30} {'ms':>9} {'/ raw predict':>14}"
        f" {'LangChain / this':>17}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        pairs = [(QUERY, t) for t in texts[:size]]
        docs = [Document(page_content=t) for t in texts[:size]]
        cached = CrossEncoderCompressor(model=folder, device="cpu")
        cached.compress_documents(docs, QUERY)
        fns = {
            "raw CrossEncoder.predict": lambda: raw.predict(pairs),
            "LangChain CrossEncoderReranker": lambda: langchain.compress_documents(
                docs, QUERY
            ),
            **{
                name: lambda c=compressor: c.compress_documents(docs, QUERY)
                for name, compressor in ours.items()
            },
            "ours torch, cached repeat": lambda: cached.compress_documents(docs, QUERY),
        }
        rows = interleaved_median_ms(fns, args.repeats)
        base = rows["raw CrossEncoder.predict"]
        lc = rows["LangChain CrossEncoderReranker"]
        for name, ms in rows.items():
            print(
                f"{size:>10} {name:<30} {ms:>9.1f} {ms / base:>13.3f}x"
                f" {lc / ms:>16.2f}x"
            )
        fastest = min(
            (ms, n)
            for n, ms in rows.items()
            if n.startswith("ours") and "cached" not in n
        )
        print(
            f"{'':>10} fastest ours ({fastest[1]}) is {lc / fastest[0]:.2f}x faster than "
            f"LangChain; cache makes a repeat {rows['ours torch'] / rows['ours torch, cached repeat']:.0f}x faster"
        )
    print()
    size = 100 if 100 in args.sizes else max(args.sizes)
    reference = np.array(ours["ours torch"].score(QUERY, texts[:size]))
    top5 = set(np.argsort(-reference)[:5])
    print(f"Ranking agreement with torch fp32 at {size} candidates")
    for name, compressor in ours.items():
        scores = np.array(compressor.score(QUERY, texts[:size]))
        overlap = len(top5 & set(np.argsort(-scores)[:5])) / 5
        print(
            f"  {name:<20} spearman {spearmanr(reference, scores).statistic:.4f}  "
            f"kendall {kendalltau(reference, scores).statistic:.4f}  top-5 overlap {overlap:.1f}"
        )


if __name__ == "__main__":
    main()
