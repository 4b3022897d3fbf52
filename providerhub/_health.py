"""Cooldowns: a circuit breaker per provider, so a provider that keeps failing is left
alone for a while instead of being asked, and failing, on every call.

After ``threshold`` failures in a row a provider *cools down* for ``cooldown`` seconds (at
once for an authentication failure, which will not heal by itself). When the time is up,
one call goes through as a probe (the breaker is *half-open*): if it succeeds the provider
is healthy again; if it fails, the provider cools down again for twice as long, up to
``max_cooldown``. State lives in memory, per hub, behind one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from .errors import AuthenticationError, ProviderError

__all__ = ["Cooldown", "Health", "ProviderHealth"]


@dataclass(frozen=True)
class Cooldown:
    """A cooldown in force: ``remaining`` seconds, after ``failures`` failures in a row,
    the last being ``last_error``."""

    remaining: float
    failures: int
    last_error: str

    def describe(self) -> str:
        if self.remaining <= 0:
            return (
                f"cooling down: a probe call is under way after {self.failures} "
                f"failure{'s' if self.failures != 1 else ''} in a row (last: {self.last_error})"
            )
        return (
            f"cooling down for {self.remaining:.0f} s more after {self.failures} "
            f"failure{'s' if self.failures != 1 else ''} in a row (last: {self.last_error})"
        )


@dataclass
class ProviderHealth:
    """What the breaker knows of one provider."""

    failures: int = 0
    """Failures in a row; a success resets it."""
    open_until: float = 0.0
    """While the clock is before this, the provider is cooling down."""
    period: float = 0.0
    """The length of the last cooldown; the next one is twice as long."""
    probing: bool = False
    """A probe call is under way (half-open): other calls keep away until it ends."""
    last_error: str = ""


class Health:
    """The breaker state of every provider of one hub."""

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown <= 0 or max_cooldown < cooldown:
            raise ValueError("need threshold >= 1 and 0 < cooldown <= max_cooldown")
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, ProviderHealth] = {}

    def cooling(self, name: str) -> Cooldown | None:
        """The cooldown ``name`` is in, or None when a call may go to it now."""
        state = self._state.get(name)
        if state is None or (state.open_until == 0.0 and not state.probing):
            return None  # the common case, answered without the lock
        with self._lock:
            now = self._clock()
            if state.open_until > now:
                return Cooldown(state.open_until - now, state.failures, state.last_error)
            if state.probing:
                return Cooldown(0.0, state.failures, state.last_error)
            return None

    def begin(self, name: str) -> None:
        """A call to ``name`` starts. After a cooldown, it is the probe."""
        state = self._state.get(name)
        if state is None or state.open_until == 0.0:
            return
        with self._lock:
            if 0.0 < state.open_until <= self._clock():
                state.probing = True

    def success(self, name: str) -> None:
        state = self._state.get(name)
        if state is None or (state.failures == 0 and not state.probing):
            return
        with self._lock:
            state.failures = 0
            state.open_until = 0.0
            state.period = 0.0
            state.probing = False
            state.last_error = ""

    def failure(self, name: str, error: ProviderError) -> None:
        with self._lock:
            state = self._state.setdefault(name, ProviderHealth())
            state.failures += 1
            state.last_error = type(error).__name__
            was_probe = state.probing
            state.probing = False
            if (
                was_probe
                or state.failures >= self.threshold
                or isinstance(error, AuthenticationError)
            ):
                state.period = (
                    min(state.period * 2, self.max_cooldown) if state.period else self.cooldown
                )
                state.open_until = self._clock() + state.period

    def reset(self, name: str | None = None) -> None:
        """Forget the state of ``name``, or of every provider."""
        with self._lock:
            if name is None:
                self._state.clear()
            else:
                self._state.pop(name, None)

    def snapshot(self) -> dict[str, ProviderHealth]:
        """A copy of the state, for display."""
        with self._lock:
            return {name: ProviderHealth(**vars(s)) for name, s in self._state.items()}
