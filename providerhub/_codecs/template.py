"""The text events of one stream read by their template: what a server sends for each
piece of text is, nearly always, the same bytes around a different string.

An OpenAI-compatible server sends one event per token, and every text event of a stream
repeats the same id, time, model and empty fields around its ``"content":"..."``.
:class:`TextTemplate` learns those bytes from one event that the decoder parsed in full,
checks that they hold nothing but the text (the same bytes around another string parse
to the same event with that string as its content), and then reads a chunk that is those
bytes around a plain JSON string by slicing out the string, with no JSON parse and no
dictionary. Anything else (another shape, an escape the pattern does not cover, an event
split over two reads) is parsed in full, as before: the template decides nothing that
the full parse would decide differently (``tests/test_codecs.py`` feeds streams both
ways).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

__all__ = ["TextTemplate", "learn"]

_CONTENT = b'"content":'
_PROBE = "providerhub probe"
_PROBE_LITERAL = b'"providerhub probe"'

_plain = re.compile(rb'"[^"\\\x00-\x1f]*"').fullmatch
"""A JSON string without escapes or control characters: its text is its bytes."""

_escaped = re.compile(rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"').fullmatch
"""Any JSON string; read by the stream's JSON parser."""


class TextTemplate:
    """The bytes of a stream's text event around its content (``head``, which starts with
    ``data: ``, and ``tail``, which ends the event with ``\\n\\n``)."""

    __slots__ = ("_head", "_loads", "_tail")

    def __init__(self, head: bytes, tail: bytes, loads: Callable[[str], Any]) -> None:
        self._head = head
        self._tail = tail
        self._loads = loads

    def take(self, data: bytes, pieces: list[Any], limit: int) -> int:
        """Append to ``pieces`` the text of each whole event of this template at the
        start of ``data`` (no piece for an empty one), up to the first that is not one
        or is longer than ``limit`` bytes; the bytes taken. The caller checks that no
        partial event is pending before ``data``."""
        head, tail = self._head, self._tail
        start = 0
        while data.startswith(head, start):
            left = start + len(head)
            close = data.find(b'"', left + 1)
            if close > 0 and data.startswith(tail, close + 1) and data[left] == 34:  # "
                # The template's bytes end with the event's only line end: a plain JSON
                # string between them (no escape, no control character) is its text.
                end = close + 1 + len(tail)
                raw = data[left + 1 : close]
                if end - start <= limit and b"\\" not in raw:
                    # As the full parse reads it: bytes that are not UTF-8 become U+FFFD.
                    text = raw.decode("utf-8", "replace")
                    if text.isprintable():  # else maybe a control character: below
                        if text:
                            pieces.append(text)
                        start = end
                        continue
            end = self._escaped(data, start, pieces, limit)
            if end == start:
                break
            start = end
        return start

    def _escaped(self, data: bytes, start: int, pieces: list[Any], limit: int) -> int:
        """:meth:`take` for one event whose string has escapes or characters that are
        not printable: the end of the event taken, or ``start``."""
        end = data.find(b"\n\n", start) + 2
        if end < 2 or end - start > limit or not data.endswith(self._tail, start, end):
            return start
        left = start + len(self._head)
        right = end - len(self._tail)
        if right - left < 2:
            return start
        if _plain(data, left, right):
            text = data[left + 1 : right - 1].decode("utf-8", "replace")
        elif _escaped(data, left, right):
            try:
                text = self._loads(data[left:right].decode("utf-8", "replace"))
            except ValueError:  # a lone surrogate orjson refuses: the full parse decides
                return start
            if type(text) is not str:
                return start
        else:
            return start
        if text:
            pieces.append(text)
        return end


def learn(
    chunk: bytes, text: str, doc: dict[str, Any], loads: Callable[[str], Any]
) -> TextTemplate | None:
    """The template of ``chunk``, one whole ``data:`` event with no line end inside,
    whose parsed document ``doc`` gave ``text`` and nothing else (the content of its first
    choice, index 0, with no finish reason, tool call or usage); None for any other event,
    or when its content cannot be told from the bytes around it.

    The content must appear once, as a JSON string after ``"content":``, and the same
    bytes around another string must parse to ``doc`` with that string as its content:
    so no other field can be taken for it. (``doc`` is changed for that comparison, and
    changed back.)"""
    try:
        choice = doc["choices"][0]
        delta = choice["delta"]
        if (
            choice.get("index", 0)
            or choice.get("finish_reason")
            or delta.get("content") != text
            or "tool_calls" in delta
            or "function_call" in delta
            or doc.get("usage")  # each such event counts tokens: parsed in full
            or not text
        ):
            return None
    except (TypeError, LookupError, AttributeError):
        return None
    if b"\r" in chunk or chunk.find(b"\n") != len(chunk) - 2 or not chunk.endswith(b"\n\n"):
        return None  # the event's lines would not be the template's
    literal = _CONTENT + encode_basestring(text).encode()  # as json.dumps writes it
    at = chunk.find(literal)
    if at < 0 or chunk.find(literal, at + 1) >= 0:
        return None
    head = chunk[: at + len(_CONTENT)]
    tail = chunk[at + len(literal) :]
    probe = head[6:] + _PROBE_LITERAL + tail[:-2]
    delta["content"] = _PROBE  # doc as the probe should parse, then as it was
    try:
        same = loads(probe.decode("utf-8", "replace")) == doc
    except ValueError:
        same = False
    finally:
        delta["content"] = text
    # Not the same: another field holds the text, or a NaN (which equals nothing).
    return TextTemplate(head, tail, loads) if same else None
