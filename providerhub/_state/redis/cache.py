"""The response cache's entries in Redis (:mod:`providerhub._cache`): one ``GET`` per
lookup and one ``SET ... PX`` per answer kept, over the link of the hub's
:class:`~providerhub.RedisState`, so on an event loop over its one pipelined connection
per loop, never blocking the loop.

A lookup not answered within the cache's own ``timeout`` (50 ms by default) is a miss,
and its answer, should it come, is dropped; a Redis slower than the link's own timeout
is marked down by the link, as for any command. A Redis that is down is a miss at once
(the link rests between its tries, see
:class:`~providerhub._state.redis.connections.Link`); neither is ever an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..._cache import Entry, ResponseStore
from .connections import Down, Link

__all__ = ["RedisCache"]


class RedisCache(ResponseStore):
    """Entries under ``PREFIX:cache:KEY``, each with its TTL, in the Redis of ``link``."""

    kind = "redis"

    def __init__(self, link: Link, prefix: str, timeout: float) -> None:
        self._link = link
        self._prefix = f"{prefix}:cache:"
        self.timeout = timeout

    async def aget(self, key: str) -> Entry | None:
        value = await self._run("GET", self._prefix + key)
        return Entry.decode(value) if isinstance(value, bytes) else None

    async def aput(self, key: str, entry: Entry, ttl: float) -> None:
        await self._run("SET", self._prefix + key, entry.encode(), "PX", max(1, round(ttl * 1000)))

    async def _run(self, *command: object) -> Any:
        timeout = self.timeout

        async def bounded(commands: Any) -> Any:
            try:
                return await asyncio.wait_for(commands.execute(*command), timeout)
            except asyncio.TimeoutError:
                # Ours, not the link's: a slow answer is a miss, and says nothing of
                # whether Redis can be used for the rest (its own timeout says that).
                return None

        try:
            return await self._link.arun(bounded)
        except Down:
            return None
