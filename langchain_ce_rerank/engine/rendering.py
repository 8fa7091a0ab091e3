"""The text the model reads for a candidate: `content_template`, filled in.

A rendered text remembers where the candidate's own content sits in it
(`RenderedText.content_span`), so that windows and truncation cut only the
content and repeat the template's fixed text (a title, a label) in every
window, as they repeat the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_ce_rerank.engine.tokens import Span

__all__ = ["RenderedText", "content_parts", "render"]

# Never in real text: stands in for the content to find where it lands.
_MARK = "\x00page_content\x00"


class RenderedText(str):
    """A `str` that knows the character span of the content inside it.

    Example:
        ```python
        from langchain_ce_rerank.engine.rendering import render

        text = render("{title}: {page_content}", "Cats purr.", {"title": "Cats"}, "doc")
        print(repr(text), text.content_span)  # 'Cats: Cats purr.' (6, 16)
        ```
    """

    content_span: Span | None

    def __new__(cls, text: str, content_span: Span | None = None) -> RenderedText:
        """A rendered text; `content_span` None when the content cannot be placed."""
        made = super().__new__(cls, text)
        made.content_span = content_span
        return made

    def __getnewargs__(self) -> tuple[str, Span | None]:  # type: ignore[override]
        """Copies keep the span."""
        return (str(self), self.content_span)


def render(
    template: str | None, content: str, metadata: Mapping[str, Any], label: str
) -> str:
    """`content` put into `template` with `metadata`'s fields.

    Args:
        template: A `str.format` template with `{page_content}` and metadata
            fields; None returns `content` as it is.
        content: The candidate's main text.
        metadata: Its metadata.
        label: How to name the candidate in an error.

    Returns:
        A `RenderedText` whose `content_span` locates `content` when it
        appears once and unformatted (plain `{page_content}`).

    Raises:
        ValueError: The template needs a field the metadata lacks.
    """
    if template is None:
        return content
    try:
        text = template.format_map({**metadata, "page_content": content})
        marked = template.format_map({**metadata, "page_content": _MARK})
    except KeyError as err:
        msg = (
            f"content_template {template!r} needs metadata field "
            f"{err.args[0]!r}, which {label} does not have"
        )
        raise ValueError(msg) from err
    span: Span | None = None
    if marked.count(_MARK) == 1:
        before, after = marked.split(_MARK)
        if before + content + after == text:
            span = (len(before), len(before) + len(content))
    return RenderedText(text, span)


def content_parts(text: str) -> tuple[str, str, str]:
    """A scored text as (fixed text before, content, fixed text after)."""
    span = getattr(text, "content_span", None)
    if span is None:
        return "", text, ""
    start, end = span
    return text[:start], text[start:end], text[end:]
