"""Where a hub keeps what its calls learn: cooldowns (the breaker of :mod:`.health`) and
rate-limit counts (:mod:`.limits`).

:class:`MemoryState`, the default, keeps them in the process. :class:`RedisState`
(:mod:`.redis`, the ``providerhub[redis]`` extra) keeps them in Redis, so that every
process and replica that points at the same Redis sees the same cooldowns and counts.
``PROVIDERHUB_REDIS_URL`` chooses it for every hub of a process; ``Hub(state=...)`` does in
code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Union

from .budgets import Budgets
from .health import Health
from .limits import Limiter, MemoryLimiter

__all__ = ["MemoryState", "State", "StateLike", "StateStatus"]


@dataclass(frozen=True)
class StateStatus:
    """How a hub's state is kept, for ``/readyz``, ``/metrics`` and ``providerhub
    providers``."""

    backend: str
    """``memory`` or ``redis``."""
    shared: bool
    """Whether the state is shared with other processes right now: False for memory, and
    for Redis while it cannot be reached (the process then counts on its own)."""
    location: str = ""
    """Where the shared state is (a Redis URL without its password)."""
    error: str = ""
    """Why Redis cannot be used, while it cannot."""
    down_since: float | None = None
    """Since when (``time.time()``) Redis could not be used, or None."""

    def describe(self) -> str:
        if self.backend == "memory":
            return "in this process's memory"
        if self.shared:
            return f"shared through {self.location}"
        return (
            f"process-local: {self.location} cannot be reached ({self.error}); "
            "shared again when it is back"
        )

    def public(self) -> dict[str, Any]:
        """What anyone who asks the gateway (its unauthenticated ``/readyz``) is shown:
        whether the state is shared, and since when it is not, but neither where it is
        kept nor redis-py's words on why it cannot be reached; the server's log has both,
        from the moment Redis went down."""
        if self.backend == "memory":
            describe = self.describe()
        elif self.shared:
            describe = "shared through Redis"
        else:
            describe = "process-local: Redis cannot be reached; shared again when it is back"
        return {
            "backend": self.backend,
            "shared": self.shared,
            "down_since": self.down_since,
            "describe": describe,
        }


class State:
    """Keeps a hub's cooldowns and rate-limit counts. Subclasses: :class:`MemoryState`,
    :class:`~providerhub.RedisState`."""

    limiter: Limiter
    """The rate-limit counts."""
    fail_closed: bool = False
    """Whether rate-limited calls are refused while the shared store cannot be used."""

    @property
    def clock(self) -> Callable[[], float]:
        """What the state reads the time from, in seconds (the routing strategies that
        learn over time read it too): :func:`time.monotonic`, or a test's clock."""
        return time.monotonic

    def health(self, threshold: int, cooldown: float, max_cooldown: float) -> Health:
        """The breaker of a hub that has these settings (see :class:`~providerhub.Hub`)."""
        raise NotImplementedError

    def status(self) -> StateStatus:
        """How the state is kept, as far as the calls made so far tell."""
        raise NotImplementedError

    def check(self) -> StateStatus:
        """:meth:`status`, after asking the shared store whether it answers (Redis: one
        ``PING``, tried at most once a second while it is down), so that a status page
        sees the store go and come back even while no call reaches it."""
        return self.status()

    async def acheck(self) -> StateStatus:
        """:meth:`check` for a caller on an event loop (``/readyz``, ``/metrics``): the
        loop goes on while the shared store answers, and Redis is asked once a second at
        most, however often this is called, so the answer may be up to a second old."""
        return self.status()

    def budgets(self) -> Budgets:
        """The client keys' spend, counted where this state keeps its counts."""
        return Budgets()

    def close(self) -> None:
        """Release what the state holds (connections); harmless to call again."""

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the running loop's connections to be closed."""
        self.close()


class MemoryState(State):
    """The state of one process, in memory: the default.

    ``clock`` is what the breaker's cooldowns and the rate limits' 60-second windows read
    the time from (seconds, only ever increasing): :func:`time.monotonic` unless a test
    gives a :class:`providerhub.testing.FakeClock`, so that
    ``Hub(state=MemoryState(clock=clock))`` cools down and counts on the test's time.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.limiter = MemoryLimiter(clock)

    def __repr__(self) -> str:
        return "<MemoryState>"

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def health(self, threshold: int, cooldown: float, max_cooldown: float) -> Health:
        return Health(threshold, cooldown, max_cooldown, self._clock)

    def status(self) -> StateStatus:
        return StateStatus("memory", False)


StateLike = Union[State, str, None]
"""What ``Hub(state=...)`` takes: a :class:`State`, a ``redis://`` URL, ``"memory"``, or
None for what ``PROVIDERHUB_REDIS_URL`` says (memory when it is not set)."""
