"""Write the untrained MiniLM-L6 stand-in cross-encoder to a folder.

For machines that cannot download `cross-encoder/ms-marco-MiniLM-L6-v2`: it has
the same architecture and loads through the same code path, but its head is
untrained, so its scores and order are meaningless. It prints the folder.

    python examples/build_standin_reranker.py .cache/standin-cross-encoder
"""

from __future__ import annotations

import sys

from langchain_ce_rerank.testing import build_standin_cross_encoder

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTPUT_FOLDER")
    print(build_standin_cross_encoder(sys.argv[1]))
