"""What the decoders of event-stream dialects share (:class:`EventStreamDecoder`): bytes
fed to an :class:`~providerhub._codecs.sse.SSEParser`, each event's JSON read, an error
met after pieces held until :meth:`~EventStreamDecoder.end`, an event past
``max_event_bytes`` raised after the events before it. A dialect writes what its events
mean (``_event``) and how its stream ends (``_ended``).
"""

from __future__ import annotations

from typing import Any

from .._redaction import safe_url
from ..errors import ProviderError, ProviderResponseError, StreamInterruptedError
from ..types import Piece
from .base import Request
from .jsonbody import json_loads, standard_json
from .sse import EventTooLargeError, SSEParser

__all__ = ["EventStreamDecoder"]


class EventStreamDecoder:
    """The part of a :class:`~providerhub._codecs.base.StreamDecoder` every event-stream
    dialect has; a subclass adds its state, ``_event`` and ``_ended``."""

    __slots__ = (
        "_error",
        "_loads",
        "_parser",
        "_provider",
        "_secrets",
        "_structured",
        "_url",
        "done",
    )

    def __init__(self, request: Request, url: str, *, structured: bool | None = None) -> None:
        """The decoder of the answer to ``request`` from ``url``, with the call's
        options (``structured``, when given, in place of the call's)."""
        call = request.call
        self._provider = call.provider
        self._url = safe_url(url)
        self._secrets = request.secrets
        self._structured = call.structured if structured is None else structured
        self._parser = SSEParser(call.max_event_bytes)
        self._loads = json_loads()
        self._error: BaseException | None = None  # met after pieces; end() raises it
        self.done = False

    def feed(self, data: bytes) -> list[Piece]:
        """The pieces of the events ``data`` completes, until the stream's end marker:
        see
        :meth:`~providerhub._codecs.base.StreamDecoder.feed`."""
        if self.done:
            return []
        pieces: list[Piece] = []
        too_large = None
        try:
            try:
                events = self._parser.feed(data)
            except EventTooLargeError as exc:
                events = exc.events  # those before it first
                too_large = ProviderResponseError(
                    self._provider,
                    f"sent an event larger than {exc.limit} bytes",
                    url=self._url,
                    hint="raise max_event_bytes if such events are expected",
                )
            for event in events:
                if self._event(event.data, event.event, pieces):
                    self.done = True
                    break  # the answer is whole: what follows is not read
            if too_large is not None and not self.done:
                raise too_large
        except ProviderError as met:
            if not pieces:
                raise
            self._error = met  # after the pieces before it: end() raises it
            self.done = True
        return pieces

    def end(self) -> list[Piece]:
        """The last pieces (``_ended``), or the error met after pieces."""
        if self._error is not None:
            met, self._error = self._error, None
            raise met
        return self._ended()

    def _event(self, data: str, name: str, pieces: list[Piece]) -> bool:
        """Add the pieces of the event named ``name`` with ``data`` to ``pieces``, or
        raise the error it is; true for the stream's end marker."""
        raise NotImplementedError

    def _ended(self) -> list[Piece]:
        """The last pieces of a stream whose body ended (or :attr:`done`), or the
        :class:`StreamInterruptedError` (:meth:`_interrupted`) of one that ended short."""
        raise NotImplementedError

    def _json(self, data: str) -> Any:
        """An event's data read as JSON (orjson where installed, the standard library
        reading what it refuses), or the error for data that is not JSON."""
        try:
            return self._loads(data)
        except ValueError:
            return standard_json(self._provider, data, self._url, self._secrets)

    def _interrupted(self, what: str, body: str | None = None) -> StreamInterruptedError:
        """The error of a stream that ``what`` (``ended before message_stop``, ...),
        showing ``body`` (redacted already)."""
        return StreamInterruptedError(
            self._provider,
            f"the stream from {self._url} {what}",
            url=self._url,
            body=body,
            hint="the answer is incomplete: try again",
        )
