"""An incremental parser of Server-Sent Events, fed bytes as they arrive from the network.

It follows the event-stream rules of the HTML standard: lines end with LF, CRLF or CR;
a line starting with ``:`` is a comment; ``data:`` lines of one event are joined with LF;
an empty line ends an event; an event without data is not dispatched; a partial event at
the end of the stream is dropped. Text is decoded only once a whole line is in, so a UTF-8
character split across two network reads arrives whole; bytes that are not UTF-8 decode to
U+FFFD rather than raising.
"""

from __future__ import annotations

from typing import NamedTuple

from .._speedups import namedtuple_maker

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Event", "EventTooLargeError", "SSEParser"]

DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024


class Event(NamedTuple):
    """One dispatched event. ``event`` is ``"message"`` unless the stream named it."""

    data: str
    event: str = "message"
    id: str | None = None


# Built by tuple.__new__ where it gives the same Event (see providerhub._speedups).
_new_event = namedtuple_maker(Event, ("x", "message", None))


class EventTooLargeError(ValueError):
    """One event, or one unfinished line, grew past the parser's ``max_event_bytes``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.events: list[Event] = []
        """The events the same chunk completed before it, in order."""
        super().__init__(f"a server-sent event grew past {limit} bytes")


class SSEParser:
    """Feed it bytes with :meth:`feed`; it returns the events those bytes completed.

    ``max_event_bytes`` bounds the memory one event may take, so a stream that never ends
    its event cannot grow without limit.
    """

    __slots__ = ("_data", "_event", "_id", "_last_id", "_max", "_pending", "_size", "_tail_cr")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._pending = b""  # the unfinished last line
        self._tail_cr = False  # the previous chunk ended in CR: a LF starting this one pairs
        self._data: list[bytes] = []
        self._size = 0
        self._event = ""
        self._id: str | None = None
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes, in order (possibly none); an event or line past
        ``max_event_bytes`` raises :class:`EventTooLargeError`, which holds the events
        completed before it."""
        if not chunk:
            return []
        data = self.lone_data(chunk)
        if data is not None:
            return [_new_event(Event, (data, "message", self._last_id))]
        events: list[Event] = []
        try:
            for line in self._complete_lines(chunk):
                if line[:5] == b"data:":
                    # Nearly every line of a completion stream: checked first, and added
                    # here rather than through _add_data, whose call costs 4% (sixteen
                    # events a chunk).
                    value = line[6:] if line[5:6] == b" " else line[5:]
                    self._size += len(value) + 1
                    if self._size > self._max:
                        raise EventTooLargeError(self._max)
                    self._data.append(value)
                elif not line:
                    if self._data:
                        events.append(self._dispatch())
                    else:
                        self._event = ""
                elif line[0] != 58:  # b":" starts a comment, kept-alive pings among them
                    self._field(line)
            if len(self._pending) > self._max:
                raise EventTooLargeError(self._max)
        except EventTooLargeError as exc:
            exc.events = events  # what came before it is not lost with it
            raise
        return events

    def at_rest(self) -> bool:
        """Whether nothing is pending: the next chunk starts a line and an event."""
        return not (self._pending or self._data or self._tail_cr or self._event)

    def lone_data(self, chunk: bytes) -> str | None:
        """The data of ``chunk`` when it is one whole ``data: ...`` event, with nothing
        pending around it, the shape of nearly every chunk of a completion stream from
        servers that flush each token: the event :meth:`feed` would give (a ``message``
        with the last id), taken without building it. None for any other chunk, which
        goes to :meth:`feed`."""
        if (
            chunk[:6] == b"data: "
            and chunk[-2:] == b"\n\n"
            and not self._pending
            and not self._data
            and not self._tail_cr
            and not self._event
            and chunk.count(b"\n") == 2
            and b"\r" not in chunk
            and len(chunk) <= self._max
        ):
            return chunk[6:-2].decode("utf-8", "replace")
        return None

    def _complete_lines(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes, without their line ends; the unfinished last one
        is kept for the next chunk."""
        if self._tail_cr:
            self._tail_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._pending + chunk if self._pending else chunk
        if b"\r" in buf:
            if buf[-1:] == b"\r":
                self._tail_cr = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._pending = lines.pop()  # its length is checked once the lines are taken
        return lines

    def _field(self, line: bytes) -> None:
        """Take a ``name: value`` line other than ``data:``."""
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._add_data(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")
        # "retry" and unknown fields carry nothing a completion needs.

    def _add_data(self, value: bytes) -> None:
        self._size += len(value) + 1
        if self._size > self._max:
            raise EventTooLargeError(self._max)
        self._data.append(value)

    def _dispatch(self) -> Event:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        if self._id is not None:
            self._last_id = self._id
        event = _new_event(
            Event, (data.decode("utf-8", "replace"), self._event or "message", self._last_id)
        )
        self._data = []
        self._size = 0
        self._event = ""
        self._id = None
        return event
