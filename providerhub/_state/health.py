"""Cooldowns: a circuit breaker per provider, so a provider that keeps failing is left
alone for a while instead of being asked, and failing, on every call.

After ``threshold`` failures in a row a provider *cools down* for ``cooldown`` seconds (at
once for an authentication failure, which will not heal by itself). When the time is up,
one call goes through as a probe (the breaker is *half-open*): if it succeeds the provider
is healthy again; if it fails, the provider cools down again for twice as long, up to
``max_cooldown``. State lives in memory, per hub, behind one lock.

A call asks a provider only with a :class:`Claim` from :meth:`Health.acquire`, and settles
it when it is over. The probe is claimed under the lock, so exactly one call probes; it
is given back however its call ends: a success closes the breaker, a failure re-opens
it, and anything else (the caller closed the stream or dropped it, the task was
cancelled, the request was refused as invalid, a ``KeyboardInterrupt``) releases it,
leaving the breaker open with its time up, so that the next call probes. An asyncio task
cancelled while a worker thread still waits for its provider releases its claim there
and then, on the event loop: the probe is given back at once, and what the worker learns
afterwards, success or failure, is read by nobody and not counted.

A failure is the provider's: it could not be reached, timed out, answered with an error
status or an answer that cannot be read. Not the caller's mistakes: a request refused
before it was sent never reaches the breaker, and one the provider refused as invalid
(HTTP 400, 413, 422: :attr:`ProviderError.request_refused
<providerhub.errors.ProviderError>`) is neither a failure nor a success: the provider
answered, but not the question of its health, so the claim is released and the count of
failures in a row stays as it was. One client sending ``"temperature": 99`` cannot cool a
provider down for everyone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import AuthenticationError, ConfigurationError, ProviderError

__all__ = ["Claim", "Cooldown", "Health", "ProviderHealth", "cooldown_of"]


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
    probe: int = 0
    """The number of the claim probing the provider (half-open), 0 when none is: other
    calls keep away until that claim is settled."""
    last_error: str = ""

    @property
    def probing(self) -> bool:
        """A probe call is under way."""
        return self.probe != 0


def cooldown_of(state: ProviderHealth, now: float) -> Cooldown | None:
    """The cooldown ``state`` is in at ``now`` (see :meth:`Health.cooling`)."""
    if state.open_until == 0.0:
        return None
    if state.open_until > now:
        return Cooldown(state.open_until - now, state.failures, state.last_error)
    if state.probe:
        return Cooldown(0.0, state.failures, state.last_error)
    return None


class Claim:
    """One call's leave to ask one provider, from :meth:`Health.acquire`.

    Report each failed attempt with :meth:`failure` (the call may retry under the same
    claim), and end the claim with :meth:`success` or :meth:`release`; ending it again is
    harmless. ``probe`` says whether the call is the breaker's probe.
    """

    __slots__ = ("_health", "_probe", "name")

    def __init__(self, health: Health, name: str, probe: int) -> None:
        self._health = health
        self.name = name
        self._probe = probe

    @property
    def probe(self) -> bool:
        """The call is (still) the breaker's probe: no failure or success has settled it."""
        return self._probe != 0

    def success(self) -> None:
        """The call got its answer: the provider is healthy."""
        self._health._settle(self, None)

    def failure(self, error: ProviderError) -> None:
        """An attempt failed with ``error``; a probe's failure re-opens the breaker. A
        request the provider refused as invalid is the caller's mistake, not a failure:
        the claim is released instead."""
        if error.request_refused:
            self.release()
            return
        self._health._settle(self, error)

    def release(self) -> None:
        """The call ended neither way: give back the probe, if this claim holds it."""
        if self._probe:  # set once, only ever cleared (under the lock): a 0 is final
            self._health._release(self)

    def __repr__(self) -> str:
        return f"<Claim {self.name!r}{' probe' if self._probe else ''}>"


class Health:
    """The breaker state of every provider of one hub.

    ``clock`` gives the time the cooldowns are measured on, in seconds:
    :func:`time.monotonic`, or a test's :class:`providerhub.testing.FakeClock`.
    """

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown <= 0 or max_cooldown < cooldown:
            raise ConfigurationError("need threshold >= 1 and 0 < cooldown <= max_cooldown")
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, ProviderHealth] = {}
        self._claims = 0  # numbers the probe claims, so a stale one cannot end a newer probe

    def cooling(self, name: str) -> Cooldown | None:
        """The cooldown ``name`` is in, or None when a call may go to it now (it is
        healthy, or its cooldown is over and no probe is under way).

        An answer for display and planning only: :meth:`acquire` decides, under the lock.
        """
        # The healthy case is answered without the lock, and that is safe: it is one dict
        # lookup and one read of a float, each atomic, so the answer is the state of a
        # moment ago, which is all a lock could give too (the state may change as soon
        # as it is released); no decision rests on it, since acquire() checks again.
        state = self._state.get(name)
        if state is None or state.open_until == 0.0:
            return None
        with self._lock:
            state = self._state.get(name)
            if state is None:
                return None
            return cooldown_of(state, self._clock())

    def acquire(self, name: str, *, early: bool = False) -> Claim | None:
        """Leave for a call to ask ``name`` now, or None when it must not: it is cooling
        down, or another call is probing it.

        When the cooldown is over and no probe is under way, the claim is the probe, and
        only this call gets it. ``early`` lets the call ask a provider still cooling down
        (not as the probe): the router does so, once, when every candidate is cooling down
        and the hub says ``when_all_cooling="try-soonest"``.
        """
        with self._lock:
            state = self._state.get(name)
            if state is None or state.open_until == 0.0:
                return Claim(self, name, 0)
            if state.probe:
                return None
            if state.open_until > self._clock():
                return Claim(self, name, 0) if early else None
            self._claims += 1
            state.probe = self._claims
            return Claim(self, name, state.probe)

    async def aacquire(self, name: str, *, early: bool = False) -> Claim | None:
        """:meth:`acquire` for a caller on an event loop, which goes on while a shared
        store answers; in memory, :meth:`acquire` itself."""
        return self.acquire(name, early=early)

    def success(self, name: str) -> None:
        """A call to ``name`` succeeded: close its breaker."""
        self._settle(Claim(self, name, 0), None)

    def failure(self, name: str, error: ProviderError) -> None:
        """A call to ``name``, not its probe, failed with ``error`` (not counted when it
        is a request the provider refused as invalid, see :meth:`Claim.failure`)."""
        Claim(self, name, 0).failure(error)

    def _settle(self, claim: Claim, error: ProviderError | None) -> None:
        with self._lock:
            if error is None:
                claim._probe = 0
                state = self._state.get(claim.name)
                if state is not None:
                    state.failures = 0
                    state.open_until = 0.0
                    state.period = 0.0
                    state.probe = 0
                    state.last_error = ""
                return
            state = self._state.setdefault(claim.name, ProviderHealth())
            state.failures += 1
            state.last_error = type(error).__name__
            # After a reset() or a success of another call, the claim no longer holds the
            # probe: its failure is then an ordinary one.
            was_probe = claim._probe != 0 and state.probe == claim._probe
            claim._probe = 0
            if was_probe:
                state.probe = 0
            if (
                was_probe
                or state.failures >= self.threshold
                or isinstance(error, AuthenticationError)
            ):
                state.period = (
                    min(state.period * 2, self.max_cooldown) if state.period else self.cooldown
                )
                state.open_until = self._clock() + state.period

    def _release(self, claim: Claim) -> None:
        with self._lock:
            state = self._state.get(claim.name)
            if state is not None and state.probe == claim._probe:
                state.probe = 0
            claim._probe = 0

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
