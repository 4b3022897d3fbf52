"""Rate limits: how many requests (``rpm``) and tokens (``tpm``) a provider, or a gateway
client key, may use in any 60 seconds.

A :class:`Limiter` counts them. :meth:`Limiter.take` admits a request (and counts it) or
says how long to wait (:meth:`Limiter.atake` on an event loop); :meth:`Limiter.spend`
counts the tokens an answer reported.

Requests are counted exactly over a sliding window: a log of the times requests were let
in, so that ``rpm = 5`` lets in five requests in any 60 seconds, never ten across the turn
of a minute. Tokens are known only once an answer reports its usage, so ``tpm`` admits a
request while fewer than ``tpm`` tokens were reported in the window; they are kept in
one-second buckets. The limiter of this module keeps its counts in memory, per process;
:mod:`providerhub._state.redis` keeps the same counts in Redis, shared by every process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["WINDOW", "Limiter", "Limits", "MemoryLimiter", "Refusal", "share_left"]

WINDOW = 60.0
"""The window rates are counted over, in seconds: ``rpm`` and ``tpm`` are per minute."""


@dataclass(frozen=True)
class Limits:
    """A provider's or a client key's limits: requests and tokens per minute, None for no
    limit."""

    rpm: int | None = None
    tpm: int | None = None

    def __post_init__(self) -> None:
        for field, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and (
                type(value) is not int or value < 1  # bool is an int: refused too
            ):
                raise ValueError(f"{field} must be a whole number of at least 1, not {value!r}")

    def __bool__(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def describe(self) -> str:
        """``rpm=5, tpm=1000``: the limits set."""
        return ", ".join(
            f"{field}={value}" for field, value in (("rpm", self.rpm), ("tpm", self.tpm)) if value
        )

    @classmethod
    def of(cls, obj: Any) -> Limits:
        """The limits a provider module or object declares with its optional ``rpm`` and
        ``tpm`` attributes; ``ValueError`` when one is not a whole number of at least 1."""
        return cls(getattr(obj, "rpm", None), getattr(obj, "tpm", None))


class Refusal(float):
    """A wait that is not a limit's: the limits could not be counted (a shared state that
    fails closed, while its store is down). ``reason`` says so, for the caller's error."""

    reason: str

    def __new__(cls, seconds: float, reason: str) -> Refusal:
        self = super().__new__(cls, seconds)
        self.reason = reason
        return self


class Limiter:
    """Counts requests and tokens per key (``provider:NAME``, ``client:NAME``)."""

    def take(self, key: str, limits: Limits) -> float:
        """0.0 when a request under ``key`` may go now, which is then counted; else the
        seconds until one may."""
        raise NotImplementedError

    async def atake(self, key: str, limits: Limits) -> float:
        """:meth:`take` for a caller on an event loop, which goes on while a shared store
        answers; in memory, :meth:`take` itself."""
        return self.take(key, limits)

    def spend(self, key: str, tokens: int, limits: Limits) -> None:
        """Count ``tokens`` that an answer under ``key`` reported (only where ``limits``
        has a ``tpm``)."""
        raise NotImplementedError

    def headroom(self, key: str, limits: Limits) -> float:
        """The share of ``limits`` left under ``key`` now, from 0.0 (at a limit) to 1.0
        (nothing used, or no limit), the tighter of ``rpm`` and ``tpm``: what the
        ``usage-aware`` routing strategy reads, from what the process knows, never
        asking a shared store."""
        return 1.0


class _Window:
    __slots__ = ("admitted", "spent", "used")

    def __init__(self) -> None:
        self.admitted: deque[float] = deque()  # when each request counted was let in
        self.spent: deque[tuple[float, int]] = deque()  # (when, tokens) reported
        self.used = 0  # the sum of ``spent``


class MemoryLimiter(Limiter):
    """The counts of one process, behind one lock; ``clock`` gives the time the windows
    are measured on, in seconds (:func:`time.monotonic`, or a test's
    :class:`providerhub.testing.FakeClock`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def take(self, key: str, limits: Limits) -> float:
        with self._lock:
            window, now = self._window(key)
            if limits.tpm is not None and window.used >= limits.tpm:
                used = window.used
                for at, tokens in window.spent:  # oldest first: until enough have aged out
                    used -= tokens
                    if used < limits.tpm:
                        return at + WINDOW - now
            if limits.rpm is not None:
                admitted = window.admitted
                if len(admitted) >= limits.rpm:
                    # The request that must leave the window before another may come in.
                    return max(admitted[len(admitted) - limits.rpm] + WINDOW - now, 1e-3)
                admitted.append(now)
            return 0.0

    def spend(self, key: str, tokens: int, limits: Limits) -> None:
        if limits.tpm is None or tokens <= 0:
            return
        with self._lock:
            window, now = self._window(key)
            window.spent.append((now, tokens))
            window.used += tokens

    def headroom(self, key: str, limits: Limits) -> float:
        if not limits:
            return 1.0
        with self._lock:
            window, _ = self._window(key)
            return share_left(limits, len(window.admitted), window.used)

    def _window(self, key: str) -> tuple[_Window, float]:
        """``key``'s window, rid of what left it, and the time now (under the lock)."""
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        now = self._clock()
        horizon = now - WINDOW
        admitted = window.admitted
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        spent = window.spent
        while spent and spent[0][0] <= horizon:
            window.used -= spent.popleft()[1]
        return window, now


def share_left(limits: Limits, admitted: int, used: int) -> float:
    """The share of ``limits`` left after ``admitted`` requests and ``used`` tokens (a
    negative count: not known, so not counted)."""
    left = 1.0
    if limits.rpm is not None and admitted >= 0:
        left = min(left, 1.0 - admitted / limits.rpm)
    if limits.tpm is not None and used >= 0:
        left = min(left, 1.0 - used / limits.tpm)
    return max(left, 0.0)
