"""Client keys' spend counted exactly across processes through Redis: one integer key per
client key and period, in picodollars, added to with ``INCRBY`` (``INCRBYFLOAT`` would
round), with an expiry past the period's end."""

from __future__ import annotations

from ..budgets import Budgets
from .connections import Down, Link
from .scripts import Script, hash_tag

__all__ = ["RedisBudgets"]

# The counts go in and out as strings: Lua's numbers are doubles, exact only to 2^53
# picodollars (about 9000 USD). INCRBY itself counts in 64-bit integers.
ADD = """
redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])
"""
READ = "return redis.call('GET', KEYS[1]) or '0'"


class RedisBudgets(Budgets):
    """:class:`~providerhub._state.budgets.Budgets` in Redis. While Redis cannot be
    reached, spend is counted in the process (and added to Redis's count no more: what
    was spent meanwhile is not shared); with ``fail_closed``, what a key spent is then
    unknown, and its requests are refused."""

    def __init__(self, link: Link, prefix: str, *, fail_closed: bool = False) -> None:
        super().__init__()
        self.fail_closed = fail_closed
        self._link = link
        self._prefix = prefix
        self._add = Script(ADD)
        self._read = Script(READ)

    @property
    def shared(self) -> bool:
        return self._link.up

    def key(self, name: str, period: str) -> str:
        return f"{self._prefix}:{hash_tag('b', name)}:spend:{period}"

    async def aspent(self, name: str, period: str) -> int | None:
        keys = [self.key(name, period)]
        try:
            found = await self._link.arun(lambda r: self._read.acall(keys=keys, client=r))
        except Down:
            return None if self.fail_closed else self.spent(name, period)
        return int(found)

    async def aadd(self, name: str, period: str, picodollars: int, ttl: int) -> int:
        keys = [self.key(name, period)]
        args = [picodollars, ttl]
        try:
            found = await self._link.arun(lambda r: self._add.acall(keys=keys, args=args, client=r))
        except Down:
            return self.add(name, period, picodollars)
        return int(found)
