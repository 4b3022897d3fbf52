"""The speed tricks that measured worth keeping, each with a plain fallback.

Each trick here reaches past a public API for a gain a benchmark shows, and falls back to
the plain way where what it relies on is not there. The figures that keep them are in
``docs/benchmarks.md`` ("Speed tricks", from ``bench/micro.py``); a trick whose gain the
benchmark stops showing goes, leaving its plain way.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["environment_getter", "environment_reader", "getenv"]

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
