"""The speed tricks that measured worth keeping, each with a plain fallback.

Each trick here reaches past a public API, or leans on something CPython does but does not
promise, for a gain a benchmark shows; each falls back to the plain way where what it relies
on is not there or does not give what the plain way gives. The figures that keep them are in
``docs/benchmarks.md`` ("Speed tricks", from ``bench/micro.py`` and ``bench/speedups.py``); a
trick whose gain the benchmark stops showing goes, leaving its plain way.
"""

from __future__ import annotations

import functools
import json
import json.scanner
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = [
    "environment_getter",
    "environment_reader",
    "getenv",
    "namedtuple_maker",
    "scan_json",
]

# --- The environment: os.environ's own dict (a provider's url and credential, each call) --
#
# A provider's url and credential are read from the environment on every call, so that a
# change shows at once. ``os.environ.get`` encodes the name, looks it up, decodes the
# value, and for an unset name (the usual case) raises and catches a ``KeyError`` on the
# way. ``os.environ`` keeps its encoded pairs in a plain dict, its private ``_data``:
# environment_getter and environment_reader look names up there, encoded once each. Where
# ``_data`` and the encoding functions are not there (another Python, a mapping other than
# ``os.environ``), they read the mapping the plain way.


def _internals(environ: Mapping[str, str]) -> tuple[dict[Any, Any], Any, Any] | None:
    """``environ``'s dict of encoded pairs and its functions to encode a name and decode a
    value, or None where it has no such parts (the plain way, then)."""
    data = getattr(environ, "_data", None)
    encodekey = getattr(environ, "encodekey", None)
    decodevalue = getattr(environ, "decodevalue", None)
    if isinstance(data, dict) and callable(encodekey) and callable(decodevalue):
        return data, encodekey, decodevalue
    return None


def environment_getter(environ: Mapping[str, str] = os.environ) -> Callable[[str], str | None]:
    """A function giving the value of a variable of ``environ`` (None when unset), as
    ``environ.get`` does, reading ``environ`` as it is at each call."""
    internals = _internals(environ)
    if internals is None:
        return environ.get
    data, encodekey, decodevalue = internals
    # The few names a program reads (two or three per provider), each encoded once.
    key_of = functools.lru_cache(maxsize=4096)(encodekey)

    def get(name: str) -> str | None:
        value = data.get(key_of(name))
        return None if value is None else str(decodevalue(value))

    return get


def environment_reader(
    names: Iterable[str], environ: Mapping[str, str] = os.environ
) -> Callable[[], tuple[object, ...]]:
    """A function giving the values of ``names`` in ``environ``, None for an unset one, in
    one pass: a key for a cache of what depends on them (the values may be left encoded,
    so compare them only with each other)."""
    names = tuple(names)
    internals = _internals(environ)
    if internals is None:
        return lambda: tuple(environ.get(name) for name in names)
    data, encodekey, _ = internals
    keys = [encodekey(name) for name in names]
    return lambda: tuple(map(data.get, keys))


getenv = environment_getter()
"""``os.environ.get``, through :func:`environment_getter`."""


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
