"""RESP, Redis's wire format, encoded and parsed with no I/O: what the pipelined connections
of :mod:`.connections` send and read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def encode(args: Sequence[object]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis command argument must be text or a number, not {arg!r}")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse(buffer: bytearray, position: int) -> tuple[Any, int] | None:
    """The RESP2 value at ``position`` of ``buffer`` and the position after it, or None
    while it is not all in. An error reply is given as the exception redis-py raises for
    it (``NoScriptError`` for ``NOSCRIPT``...)."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None
    kind = buffer[position : position + 1]
    line = bytes(buffer[position + 1 : end])
    after = end + 2
    if kind == b":":
        return int(line), after
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return None
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            parsed = parse(buffer, after)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        return items, after
    if kind == b"+":
        return line, after
    if kind == b"_":  # RESP3's null (redis-py 8 speaks RESP3): a GET of no key
        return None, after
    if kind == b"-":
        return reply_error(line.decode(errors="replace")), after
    raise ValueError(f"unknown reply type {kind!r}")


def reply_error(message: str) -> Exception:
    from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

    code = message.split(" ", 1)[0]
    if code == "NOSCRIPT":
        return NoScriptError(message)
    if code == "READONLY":
        return ReadOnlyError(message)
    return ResponseError(message)


def connection_error(message: str) -> Exception:
    from redis.exceptions import ConnectionError

    return ConnectionError(message)


def timeout_error() -> Exception:
    from redis.exceptions import TimeoutError

    return TimeoutError("Redis did not answer in time")
