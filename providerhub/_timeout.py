"""How long a call may take."""

from __future__ import annotations

import math
import threading
from typing import Union

from .errors import InvalidRequestError

__all__ = ["DEFAULT_TIMEOUT", "MAX_SECONDS", "Timeout", "TimeoutLike", "to_timeout"]

MAX_SECONDS = threading.TIMEOUT_MAX
"""The longest timeout there is, about 292 years: the most a thread or a socket can be
told to wait; a longer one would fail on the way rather than wait."""


class Timeout(tuple[float, float]):
    """Seconds to wait: ``connect`` for the connection, ``read`` between two pieces of the
    answer, and ``total`` (or None) for the whole call.

    It is a ``(connect, read)`` tuple, so a provider can hand it to ``requests`` as it is.
    """

    total: float | None

    def __new__(
        cls, connect: float = 10.0, read: float = 60.0, total: float | None = None
    ) -> Timeout:
        for label, value in (("connect", connect), ("read", read), ("total", total)):
            if value is None and label == "total":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
                or value > MAX_SECONDS
            ):
                raise InvalidRequestError(
                    f"timeout {label} must be a positive number of seconds, at most "
                    f"{MAX_SECONDS:.0f}, not {value!r}"
                )
        self = super().__new__(cls, (float(connect), float(read)))
        self.total = None if total is None else float(total)
        return self

    @property
    def connect(self) -> float:
        return self[0]

    @property
    def read(self) -> float:
        return self[1]

    def __repr__(self) -> str:
        return f"Timeout(connect={self[0]}, read={self[1]}, total={self.total})"

    # Equality takes ``total`` in: two limits that bound the whole call differently are
    # different limits, though their (connect, read) pairs match. A plain tuple has no
    # total, so it equals only a Timeout without one; the hash follows, so that equal
    # values (a Timeout and its plain pair among them) hash alike.

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Timeout):
            return tuple.__eq__(self, other) and self.total == other.total
        if isinstance(other, tuple):
            return self.total is None and tuple.__eq__(self, other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        if self.total is None:
            return tuple.__hash__(self)
        return hash((self[0], self[1], self.total))


DEFAULT_TIMEOUT = Timeout(connect=10.0, read=60.0)
"""Connect within 10 s; then no more than 60 s of silence between two pieces."""

TimeoutLike = Union[Timeout, float, int, None]


def to_timeout(value: TimeoutLike) -> Timeout:
    """``None`` gives the default; a number of seconds bounds connect, each read and the
    whole call."""
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, Timeout):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Timeout(connect=value, read=value, total=value)
    raise InvalidRequestError(
        f"timeout must be a number of seconds or a providerhub.Timeout, not {type(value).__name__}"
    )
