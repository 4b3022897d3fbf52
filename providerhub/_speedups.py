"""The speed tricks that measured worth keeping, each with a plain fallback.

Each trick here leans on something CPython does but does not promise; each checks, once
at import, that it gives what the plain way gives on this Python, and takes the plain way
where it does not. The figures that keep them are in ``docs/benchmarks.md``
("Speed tricks").
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["namedtuple_maker", "scan_json"]

# --- JSON: one value, the C scanner called directly (the codecs' stream events) ---------


def _scanner(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``json.loads`` for one JSON value, with less work per call.

    ``json.loads`` wraps the C scanner in two Python calls and two regular-expression
    matches for surrounding whitespace; an event's data has none, so the scanner is
    called directly, and ``json.loads`` gets the rare text the scanner does not take
    whole (it allows the whitespace, or raises its usual error)."""
    # typeshed types make_scanner's argument as a scanner; it takes the decoder whose
    # options it scans with.
    scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
        decoder  # type: ignore[arg-type]
    )

    def scan(text: str) -> Any:
        try:
            value, end = scan_once(text, 0)
        except StopIteration:
            return json.loads(text)
        if end != len(text):
            return json.loads(text)
        return value

    return scan


def _scans(scan: Callable[[str], Any]) -> bool:
    """Whether ``scan`` reads what ``json.loads`` reads, and refuses what it refuses."""
    try:
        sample = '{"a":[1,2.5,"\\u00e9",null,true],"b":{"c":-1e3}}'
        if scan(sample) != json.loads(sample) or scan(" [1] ") != [1]:
            return False
        scan("{")
    except json.JSONDecodeError:
        return True
    except Exception:
        return False
    return False


def _json_scanner() -> Callable[[str], Any]:
    try:
        scan = _scanner(json.JSONDecoder())
    except Exception:  # no make_scanner on this Python
        return json.loads
    return scan if _scans(scan) else json.loads


scan_json: Callable[[str], Any] = _json_scanner()
"""``json.loads`` for one value: the C scanner called directly, else ``json.loads``."""


# --- NamedTuple instances built by tuple.__new__ (the SSE parser's events) --------------

T = TypeVar("T", bound=tuple[Any, ...])


def plain_new(cls: type[T], fields: tuple[Any, ...]) -> T:
    """``cls(*fields)``: the plain way, and the fallback."""
    return cls(*fields)


def builds(make: object, cls: type[T], fields: tuple[Any, ...]) -> bool:
    """Whether ``make(cls, fields)`` gives what ``cls(*fields)`` does, on this Python."""
    try:
        built = make(cls, fields)  # type: ignore[operator]
    except Exception:  # this Python's tuple.__new__ refuses a NamedTuple
        return False
    return type(built) is cls and built == cls(*fields) and tuple(built) == fields


def namedtuple_maker(cls: type[T], sample: tuple[Any, ...]) -> Callable[[type[T], Any], T]:
    """A function building ``cls`` from a tuple of all its fields, ``make(cls, fields)``:
    ``tuple.__new__``, which builds it in C where the NamedTuple's generated ``__new__``
    runs Python, when it gives what ``cls(*sample)`` gives; else :func:`plain_new`."""
    new: Callable[[type[T], Any], T] = tuple.__new__
    return new if builds(new, cls, sample) else plain_new
