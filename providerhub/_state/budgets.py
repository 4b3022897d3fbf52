"""What each client key has spent in its budget's period, in picodollars (10^-12 USD):
the gateway's budgets (:mod:`providerhub.server._keys`) count on it.

:class:`Budgets` counts in this process's memory; the Redis state's
(:class:`~providerhub._state.redis.budgets.RedisBudgets`) counts across every process and
replica sharing one Redis, exactly, with whole numbers (``INCRBY``).
"""

from __future__ import annotations

__all__ = ["Budgets"]


class Budgets:
    """Spend per client key and period, in this process's memory. A period is a label
    (``2026-12`` for a month, ``2026-12-08`` for a day): a key's count of an earlier
    period is dropped when its next one begins."""

    def __init__(self) -> None:
        self._spent: dict[str, tuple[str, int]] = {}

    @property
    def shared(self) -> bool:
        """Whether the counts are shared with other processes now."""
        return False

    async def aspent(self, name: str, period: str) -> int | None:
        """What the key ``name`` has spent in ``period``, in picodollars; None when it
        cannot be known (a shared store that is down, and fails closed)."""
        return self.spent(name, period)

    async def aadd(self, name: str, period: str, picodollars: int, ttl: int) -> int:
        """Count ``picodollars`` more for ``name`` in ``period`` (kept ``ttl`` seconds
        at least); the new total."""
        return self.add(name, period, picodollars)

    def spent(self, name: str, period: str) -> int:
        kept = self._spent.get(name)
        return kept[1] if kept is not None and kept[0] == period else 0

    def add(self, name: str, period: str, picodollars: int) -> int:
        total = self.spent(name, period) + picodollars
        self._spent[name] = (period, total)
        return total
