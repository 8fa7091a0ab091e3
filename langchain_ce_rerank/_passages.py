"""Former home of the passage windows, now `langchain_ce_rerank.engine.windows`.

Kept so existing imports of this private path keep working.
"""

from langchain_ce_rerank.engine.windows import Span, TokenSpans, windows, word_spans

__all__ = ["Span", "TokenSpans", "windows", "word_spans"]
