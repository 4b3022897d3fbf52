"""A clock that a test moves by hand, for the breaker's cooldowns and the rate limits."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds that pass only when the test says so: give it where a clock is taken
    (``MemoryState(clock=...)``) and move it with :meth:`advance`.

    ::

        clock = FakeClock()
        with Hub(state=MemoryState(clock=clock), cooldown=30) as hub:
            ...  # three failures: the provider cools down for 30 s
            clock.advance(30)  # the cooldown is over, at once; the next call probes

    Calling it reads the time, as calling :func:`time.monotonic` does. ``start`` is an
    arbitrary origin, as :func:`time.monotonic`'s is, so that nothing can rely on the
    time beginning at 0.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()  # advance() from several threads adds up

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time ``seconds`` on; a monotonic clock never goes back, so a negative
        ``seconds`` is a ``ValueError``."""
        if seconds < 0:
            raise ValueError(f"a clock only goes forward: cannot advance by {seconds!r} s")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"<FakeClock at {self._now:g} s>"
