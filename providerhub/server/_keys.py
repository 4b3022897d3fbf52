"""Client keys: who may call the server, and how often.

A key is checked by hashing what the client sent and comparing the hash with every stored
one in constant time (``hmac.compare_digest``), so neither the file nor the timing of an
answer tells anything of a key.

A key's ``rpm`` is counted by the hub's rate limiter (:attr:`providerhub.Hub.state`) under
``client:NAME``, over a sliding 60-second window: in the worker's memory by default, and
exactly across every worker and replica when the state is shared through Redis
(``PROVIDERHUB_REDIS_URL``).

A key's ``budget_usd`` is counted the same way (:class:`~providerhub._state.budgets.Budgets`),
in picodollars per key and period (a UTC month or day): in memory, or exactly across
replicas in Redis. A key whose spend in the current period has reached its budget is
refused before any provider is asked, until the next period begins; answers under way
when it is reached finish, and are counted.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from .._state.budgets import Budgets
from .._state.limits import Limiter, Limits, Refusal
from ._config import ClientKey

__all__ = ["CLIENT_PREFIX", "KEPT_AFTER", "Keys", "OverBudget", "period_of"]

CLIENT_PREFIX = "client:"
"""What a client key's requests are counted under, before its name (providers' are
``provider:NAME``)."""


KEPT_AFTER = 86400
"""Seconds a period's count is kept after the period ends (its Redis key's expiry)."""


def period_of(kind: str, now: float) -> tuple[str, float]:
    """The label of the budget period (``"month"`` or ``"day"``, UTC) that ``now`` (a Unix
    time) falls in, ``2026-12`` or ``2026-12-08``, and when it ends (a Unix time)."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    if kind == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start.strftime("%Y-%m"), end.timestamp()


class OverBudget(NamedTuple):
    """A key that has spent its budget: its ``name``, ``budget`` and what it ``spent``
    (picodollars), the ``period`` (``"month"`` or ``"day"``), when it ``resets`` (a Unix
    time) and the whole seconds until then (``retry_after``)."""

    name: str
    budget: int
    spent: int
    period: str
    resets: float
    retry_after: int


class Keys:
    """The keys a server accepts (none means every request is let in), the limiter
    their ``rpm`` is counted by, and where their spend is counted (``budgets``; in
    memory by default). ``clock`` is the Unix time budgets' periods are read from."""

    def __init__(
        self,
        keys: tuple[ClientKey, ...],
        limiter: Limiter,
        budgets: Budgets | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._limiter = limiter
        self.budgets = Budgets() if budgets is None else budgets
        self._clock = clock
        self._limits = {
            k.name: (CLIENT_PREFIX + k.name, Limits(rpm=k.rpm)) for k in keys if k.rpm is not None
        }

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def find(self, authorization: bytes | None) -> ClientKey | None:
        """The key an ``Authorization: Bearer KEY`` header holds, or None when it holds
        none of them (or there is no header)."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip()).digest()
        found = None
        for key in self._keys:  # every one, with no early exit: the time tells nothing
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    async def take(self, key: ClientKey) -> float:
        """0 when ``key`` may make a request now (which is counted), else the whole seconds
        until it may (for ``Retry-After``): a :class:`~providerhub._state.limits.Refusal` when
        its rpm cannot be counted (the shared state fails closed, and is down), which
        says nothing of the key's own requests. Awaited: with the count in Redis, the
        event loop serves other requests meanwhile."""
        limit = self._limits.get(key.name)
        if limit is None:
            return 0
        wait = await self._limiter.atake(*limit)
        if not wait:
            return 0
        seconds = max(1, math.ceil(wait))
        return Refusal(seconds, wait.reason) if isinstance(wait, Refusal) else seconds

    async def over_budget(self, key: ClientKey) -> OverBudget | Refusal | None:
        """None when ``key`` has no budget or is within it, else what it spent (one Redis
        round trip with a shared state); a :class:`~providerhub._state.limits.Refusal`
        when that cannot be known (the shared state fails closed, and is down)."""
        if key.budget is None:
            return None
        now = self._clock()
        label, ends = period_of(key.budget_period, now)
        spent = await self.budgets.aspent(key.name, label)
        if spent is None:
            return Refusal(1, "its budget cannot be counted")
        if spent < key.budget:
            return None
        retry = max(1, math.ceil(ends - now))
        return OverBudget(key.name, key.budget, spent, key.budget_period, ends, retry)

    async def spend(self, key: ClientKey, picodollars: int) -> None:
        """Count ``picodollars`` against ``key``'s budget in the current period."""
        now = self._clock()
        label, ends = period_of(key.budget_period, now)
        ttl = math.ceil(ends - now) + KEPT_AFTER
        await self.budgets.aadd(key.name, label, picodollars, ttl)
