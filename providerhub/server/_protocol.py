"""``providerhub serve``'s HTTP/1.1 protocol: uvicorn's httptools protocol with the limits
it lacks, so that a client cannot make a worker hold what it sends or what it will not
read.

- The request line and headers may take ``max_header_bytes``: past it the answer is 431
  (414 when the URL alone is that long) and nothing more is buffered. httptools keeps a
  header's value whole until its end, and uvicorn the URL, so without a cap one header
  could take the worker's memory.
- They must be in within ``header_timeout`` of the connection, or of the first byte of the
  next request on a kept-alive one: past it, 408.
- An answer that stays blocked on a client that does not read (the transport's buffer
  full, so uvicorn's ``send`` waits) for ``write_timeout`` ends the connection: the app sees
  the client gone, cancels the request (aborting its upstream call) and frees its slot.

The body's timeout and the concurrency slot are the app's (``_app.py``), which hold under
any ASGI server. The checks cost nothing per chunk once the headers are in: the head is
counted only while it arrives. The header timer is armed once per connection and, when it
fires, re-armed for what is left of the head under way (or for a whole ``header_timeout``
when none is), so the next request on a kept-alive connection costs one clock reading;
the write timer is armed only when the transport's buffer fills.

An answer's writes are gathered (:class:`_Gathered`): what the app sends in one turn of
the event loop (the status line and headers with a whole body, or the events of a stream
that came in together) goes out in one write, so one ``send`` system call, at the end of
that turn or as the answer ends. On loopback each ``send`` also wakes the reader, and
costs more than the Python around it (benchmarks: docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import _errors as errors
from . import _metrics
from ._app import DISCONNECT_EXTENSION
from ._config import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_WRITE_TIMEOUT,
    ServerSettings,
)

__all__ = ["LINGER", "PROTOCOL", "GatewayProtocol", "configure"]

PROTOCOL = "providerhub.server._protocol:GatewayProtocol"
"""The protocol's import string, for ``uvicorn.run(http=...)``."""

LINGER = 2.0
"""Seconds a refused connection stays open after its answer, reading and dropping what
the client still sends: closing at once with unread bytes would reset the connection,
and the client might lose the answer."""

_URL_SLACK = 16
"""Bytes of a request line before its URL: the longest method and a space."""


def configure(settings: ServerSettings) -> None:
    """Apply ``settings``' limits to the connections this process serves from now on."""
    GatewayProtocol.max_header_bytes = settings.max_header_bytes
    GatewayProtocol.header_timeout = settings.header_timeout
    GatewayProtocol.write_timeout = settings.write_timeout


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` with a size and a timeout for the request's head and
    a timeout for writes a client does not read."""

    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout = DEFAULT_HEADER_TIMEOUT
    write_timeout = DEFAULT_WRITE_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = 0
        """Bytes of the request's head received so far; -1 once the head is in."""
        self._head_since = 0.0
        """When the head under way began to arrive (the loop's clock)."""
        self._begun = False
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._gathered: _Gathered | None = None
        self._on_lost: list[Callable[[], None]] = []
        """What the request under way asked to be called if the client goes away."""

    # -- the head: counted and timed while it arrives -----------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_late)

    def data_received(self, data: bytes) -> None:
        if self._head < 0:  # the head is in: uvicorn's own path, nothing added
            super().data_received(data)
            return
        if self._refused:
            return  # answered: what the client still sends is dropped
        room = self.max_header_bytes - self._head
        if len(data) <= room:
            self._head += len(data)
            super().data_received(data)
            return
        # Parse up to the limit only: if the head ends within it, the rest is the body.
        self._head = self.max_header_bytes
        super().data_received(data[:room])
        if self.transport.is_closing() or self._refused:
            return
        if self._head < 0:
            super().data_received(data[room:])
            return
        # Before the first header, all but the method is URL: the URL is what is too long.
        in_url = self._head - len(getattr(self, "url", b"")) <= _URL_SLACK
        self._refuse(
            errors.head_too_large(self.max_header_bytes, in_url),
            "url_too_long" if in_url else "headers_too_large",
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._head < 0:  # the next request on a kept-alive connection
            self._head = 0
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._head = -1
        self._begun = False
        extensions = self.scope.setdefault("extensions", {})
        extensions[DISCONNECT_EXTENSION] = self._on_lost.append
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            # Duck-typed: the cycle writes, closes and asks is_closing(), nothing else.
            self._gathered = _Gathered(self.transport, self.loop)
            cycle.transport = self._gathered  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        # The answer's last write goes out now, before the next request's can.
        if self._gathered is not None:
            self._gathered.flush()
            self._gathered = None
        self._on_lost.clear()  # a pipelined request's app starts after this
        super().on_response_complete()

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        left = self._head_since + self.header_timeout - self.loop.time()
        if (
            self._head < 0
            or left > 0
            or (
                # A request pipelined behind an answer under way: its turn has not come.
                self.cycle is not None and not self.cycle.response_complete
            )
        ):
            wait = left if self._head >= 0 and left > 0 else self.header_timeout
            self._head_timer = self.loop.call_later(wait, self._head_late)
            return
        if not self._begun:  # connected and sent nothing: nobody to answer
            _metrics.closed("header_timeout")
            self.transport.close()
            return
        self._refuse(errors.timed_out("headers", self.header_timeout), "header_timeout")

    def send_400_response(self, msg: str) -> None:
        # httptools could not parse the request (uvicorn answers in plain text).
        self._refuse(errors.malformed("the request is not valid HTTP/1.1"), "bad_request")

    def _refuse(self, failure: errors.Failure, reason: str) -> None:
        """Answer ``failure`` and close the connection, without reading more of the
        request."""
        if self._refused:
            return
        self._refused = True
        _metrics.closed(reason)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        transport = self.transport
        if self.cycle is not None and not self.cycle.response_complete:
            transport.close()  # an answer is under way on it: no room for another
            return
        self._head = max(self._head, 0)  # what still comes is dropped, never parsed
        transport.write(_answer(failure, self.server_state.default_headers))
        if transport.can_write_eof():
            transport.write_eof()  # the client reads the answer, then the end
        self.loop.call_later(LINGER, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None
        super().connection_lost(exc)
        on_lost, self._on_lost = self._on_lost, []
        for callback in on_lost:
            callback()

    # -- writes a client does not read ----------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_late(self) -> None:
        self._write_timer = None
        _metrics.closed("write_timeout")
        # Its buffer will not be read: dropped, and the app told the client is gone.
        self.transport.abort()


class _Gathered:
    """The transport a request's answer is written to: the writes of one turn of the
    event loop are joined and handed to the real transport as one, at the end of the turn
    (or at :meth:`flush`, :meth:`close`)."""

    __slots__ = ("_loop", "_parts", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(data)

    def flush(self) -> None:
        parts = self._parts
        if not parts:
            return
        self._parts = []
        if not self._transport.is_closing():
            self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


def _answer(failure: errors.Failure, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole HTTP/1.1 answer for ``failure``, closing the connection."""
    body = json.dumps(failure.body(), separators=(",", ":")).encode()
    status = http.HTTPStatus(failure.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
