"""`python -m langchain_ce_rerank.cli`: the `ce-rerank` command."""

import sys

from langchain_ce_rerank.cli import main

sys.exit(main())
