"""JSON bodies, the same for every dialect: a request's encoded, what JSON cannot carry
refused before sending as the caller's mistake; an answer's read with orjson where it is
installed (``providerhub[fast]``), the standard library reading what orjson refuses, so
that both accept the same answers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from .._redaction import excerpt, one_line
from .._speedups import scan_json
from ..errors import InvalidRequestError, ProviderResponseError

__all__ = [
    "REFUSED",
    "document_loads",
    "dumps",
    "encode",
    "json_loads",
    "json_or_refused",
    "standard_json",
]

# allow_nan=False: NaN and Infinity are not JSON, and a server would refuse the request
# they went out in; they are refused before sending instead, as the caller's mistake.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON; ``ValueError`` for NaN or an infinity."""
    return _ENCODER.encode(body).encode("utf-8")


def encode(provider: str, body: dict[str, Any]) -> bytes:
    """``body`` as JSON, or :class:`InvalidRequestError` naming the field JSON cannot
    carry (a ``set``, an arbitrary object): the caller's mistake, found before sending."""
    try:
        return dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:
        # RecursionError: nested past what the encoder can follow (the hub refuses
        # anything nested past MAX_DEPTH before this; a direct call may not).
        reason = one_line(exc, typed=False)
        field = next((key for key, value in body.items() if not _encodable(value)), None)
        what = "the messages" if field == "messages" else f"the parameter {field!r}"
        raise InvalidRequestError(
            f"{what if field else 'the request'} for {provider} cannot be sent as JSON: {reason}",
            param=field,
        ) from None


def _encodable(value: Any) -> bool:
    try:
        dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def standard_json(provider: str, data: str, url: str, secrets: list[str | None]) -> Any:
    """An event's data that the fast parser refused, as the standard library reads it, so
    that ``providerhub[fast]`` never changes what is accepted (orjson refuses ``NaN`` and
    integers past 64 bits, which ``json`` reads); an error when neither reads it."""
    try:
        return scan_json(data)
    except ValueError:
        raise ProviderResponseError(
            provider,
            "sent an event that is not JSON",
            url=url,
            body=excerpt(data, secrets),
        ) from None


REFUSED = object()
"""What :func:`json_or_refused` gives for a body that is not JSON."""


def json_or_refused(raw: bytes) -> Any:
    """A body the fast parser refused, as the standard library reads it (see
    :func:`standard_json`), or :data:`REFUSED` when neither reads it."""
    try:
        return json.loads(raw)
    except ValueError:
        return REFUSED


@functools.cache
def json_loads() -> Callable[[str], Any]:
    """orjson's ``loads`` when it is installed (``providerhub[fast]``), else the standard
    library's (:func:`providerhub._speedups.scan_json`): stream events are parsed once
    each, so this is the hot path. What orjson refuses goes to the standard library
    (:func:`standard_json`), so both read the same events."""
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return scan_json
    loads: Callable[[str], Any] = orjson.loads
    return loads


@functools.cache
def document_loads() -> Callable[[bytes], Any]:
    """:func:`json_loads` for a whole body: orjson's ``loads``, else ``json.loads``. What
    orjson refuses goes to ``json.loads`` (:func:`json_or_refused`), so both read the
    same answers."""
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return json.loads
    loads: Callable[[bytes], Any] = orjson.loads
    return loads
