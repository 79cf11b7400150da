"""One line from an exception, for the one-line errors edgeopt prints."""

from __future__ import annotations


def error_line(e: BaseException, *, limit: int | None = 200, with_type: bool = True) -> str:
    """First line of an exception message, at most ``limit`` characters.

    Args:
        limit: characters kept of the line (the class name prefix not counted); None
            keeps the whole line (edgeopt's own messages, whose hint is at the end).
        with_type: prefix the exception's class name ("ValueError: ..."), which tells a
            library's own error apart from edgeopt's wording around it.

    Returns:
        the line; the class name alone when the message is empty.
    """
    text = str(e).strip().splitlines()
    if not text:
        return type(e).__name__
    line = text[0][:limit]
    return f"{type(e).__name__}: {line}" if with_type else line
