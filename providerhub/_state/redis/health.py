"""The breaker shared through Redis: a provider's failures, cooldown and probe in a Redis
hash, read through a per-process mirror.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from ...errors import AuthenticationError, ProviderError
from ..health import Claim, Cooldown, Health, ProviderHealth, cooldown_of
from .connections import Down, Link, running_loop
from .scripts import ACQUIRE, FAILURE, READ, RELEASE, Script, hash_tag

logger = logging.getLogger("providerhub.state")


@dataclass(frozen=True)
class _Seen:
    """A provider's breaker state as last read from Redis, on this process's clock."""

    at: float
    failures: int
    open_until: float  # monotonic; 0.0 when the breaker is closed
    probing: bool
    last_error: str

    def health(self) -> ProviderHealth:
        """The same, as the in-memory breaker keeps it."""
        return ProviderHealth(
            failures=self.failures,
            open_until=self.open_until,
            probe=1 if self.probing else 0,
            last_error=self.last_error,
        )

    @classmethod
    def of(cls, answer: list[Any], now: float) -> _Seen:
        failures, is_open, left_ms, probing, last_error = answer
        return cls(
            now,
            int(failures),
            now + int(left_ms) / 1000 if int(is_open) else 0.0,
            bool(int(probing)),
            last_error.decode() if isinstance(last_error, bytes) else str(last_error),
        )


class RedisHealth(Health):
    """The breaker of :mod:`._health`, kept in Redis; its own (in-memory) state serves
    while Redis cannot be reached."""

    def __init__(
        self,
        link: Link,
        prefix: str,
        threshold: int,
        cooldown: float,
        max_cooldown: float,
        *,
        refresh: float,
        probe_ttl: float,
    ) -> None:
        super().__init__(threshold, cooldown, max_cooldown)
        self._link = link
        self._prefix = prefix
        self._refresh = refresh
        self._probe_ttl_ms = str(int(probe_ttl * 1000))
        # A breaker hash outlives the longest cooldown, so its doubling is remembered, then
        # goes: a provider unheard of for that long starts afresh.
        self._ttl_ms = str(int(max_cooldown * 2000))
        # With the pid, makes this process's probe tokens unique, a forked child's too.
        self._owner = uuid.uuid4().hex[:12]
        self._seen: dict[str, _Seen] = {}
        self._keys: dict[str, tuple[str, str]] = {}
        self._read = Script(READ)
        self._acquire = Script(ACQUIRE)
        self._failure = Script(FAILURE)
        self._release_script = Script(RELEASE)
        self._rereading: set[str] = set()  # mirrors a task re-reads now (on a loop)
        self._tasks: set[asyncio.Task[None]] = set()  # held until they are done

    def keys(self, name: str) -> tuple[str, str]:
        """The breaker hash and the probe key of provider ``name``."""
        keys = self._keys.get(name)
        if keys is None:
            tag = hash_tag("p", name)
            keys = self._keys[name] = (
                f"{self._prefix}:{tag}:breaker",
                f"{self._prefix}:{tag}:probe",
            )
        return keys

    def _token(self, number: int) -> str:
        return f"{self._owner}:{os.getpid()}:{number}"

    def _recent(self, name: str) -> _Seen | None:
        """The mirror of ``name`` if it was read less than ``refresh`` ago and Redis is
        usable, else None."""
        seen = self._seen.get(name)
        if seen is not None and time.monotonic() - seen.at < self._refresh and self._link.up:
            return seen
        return None

    def _fresh(self, name: str) -> _Seen | None:
        """The mirror of ``name``, re-read when older than ``refresh``; None when Redis
        cannot be used (the caller then goes by the in-memory state)."""
        seen = self._recent(name)
        if seen is not None:
            return seen
        try:
            answer = self._link.run(lambda r: self._read(keys=self.keys(name), client=r))
        except Down:
            return None
        seen = self._seen[name] = _Seen.of(answer, time.monotonic())
        return seen

    def _unwaited(self, name: str, loop: asyncio.AbstractEventLoop) -> _Seen | None:
        """The mirror of ``name`` as it is, for a caller on ``loop``, which must not wait:
        one older than ``refresh`` (or none yet) is re-read by a task of its own, and
        serves meanwhile. None while Redis cannot be used, or before the first read."""
        seen = self._seen.get(name)
        link = self._link
        if (
            (seen is None or time.monotonic() - seen.at >= self._refresh or not link.up)
            and name not in self._rereading
            and not link.resting
        ):
            self._rereading.add(name)
            self._background(loop, self._reread(name))
        return seen if link.up else None

    async def _reread(self, name: str) -> None:
        try:
            answer = await self._link.arun(
                lambda r: self._read.acall(keys=self.keys(name), client=r)
            )
        except Down:
            return
        finally:
            self._rereading.discard(name)
        self._seen[name] = _Seen.of(answer, time.monotonic())

    def _background(self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on ``loop`` without waiting for it (the task is held until done)."""
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cooling(self, name: str) -> Cooldown | None:
        loop = running_loop()
        seen = self._fresh(name) if loop is None else self._unwaited(name, loop)
        if seen is None:
            return super().cooling(name)
        return cooldown_of(seen.health(), time.monotonic())

    def acquire(self, name: str, *, early: bool = False) -> Claim | None:
        seen = self._recent(name)
        if seen is not None and seen.open_until == 0.0:
            return Claim(self, name, 0)  # healthy a moment ago: no command on this path
        number = self._number()
        try:
            answer = self._link.run(
                lambda r: self._acquire(
                    keys=self.keys(name), args=self._acquire_args(number, early), client=r
                )
            )
        except Down:
            return super().acquire(name, early=early)
        return self._claimed(name, number, answer)

    async def aacquire(self, name: str, *, early: bool = False) -> Claim | None:
        # Healthy when last read: no command, even when the mirror is older than refresh,
        # as a task re-reads it then (see _unwaited), so a cooldown opened elsewhere is
        # honoured here within refresh and a round trip, as on the synchronous path, where
        # the call that finds the mirror old waits for that round trip.
        seen = self._unwaited(name, asyncio.get_running_loop())
        if seen is not None and seen.open_until == 0.0:
            return Claim(self, name, 0)
        number = self._number()
        try:
            answer = await self._link.arun(
                lambda r: self._acquire.acall(
                    keys=self.keys(name), args=self._acquire_args(number, early), client=r
                )
            )
        except Down:
            return super().acquire(name, early=early)
        return self._claimed(name, number, answer)

    def _number(self) -> int:
        with self._lock:
            self._claims += 1
            return self._claims

    def _acquire_args(self, number: int, early: bool) -> list[object]:
        return [self._token(number), "1" if early else "0", self._probe_ttl_ms]

    def _claimed(self, name: str, number: int, answer: list[Any]) -> Claim | None:
        self._seen[name] = _Seen.of(answer[1:], time.monotonic())
        kind = int(answer[0])
        if kind == 0:
            return None
        return Claim(self, name, number if kind == 2 else 0)

    def _settle(self, claim: Claim, error: ProviderError | None) -> None:
        name = claim.name
        number = claim._probe
        claim._probe = 0
        if error is None:
            seen = self._seen.get(name)
            if not (number or seen is None or seen.failures or seen.open_until or seen.probing):
                return  # healthy, as far as this process saw: nothing to tell Redis
        loop = running_loop()
        if loop is not None:
            if error is not None:
                self._seen.pop(name, None)  # the next claim asks Redis, after the failure
            self._background(loop, self._asettle(claim, number, error))
            return
        try:
            if error is None:
                self._link.run(lambda r: r.delete(*self.keys(name)))
                self._seen[name] = _Seen(time.monotonic(), 0, 0.0, False, "")
                return
            answer = self._link.run(
                lambda r: self._failure(
                    keys=self.keys(name), args=self._failure_args(number, error), client=r
                )
            )
            self._seen[name] = _Seen.of(answer, time.monotonic())
        except Down:
            claim._probe = number
            super()._settle(claim, error)

    async def _asettle(self, claim: Claim, number: int, error: ProviderError | None) -> None:
        """:meth:`_settle`'s command, sent from a task of its own."""
        name = claim.name
        try:
            if error is None:
                await self._link.arun(lambda r: r.delete(*self.keys(name)))
                self._seen[name] = _Seen(time.monotonic(), 0, 0.0, False, "")
                return
            answer = await self._link.arun(
                lambda r: self._failure.acall(
                    keys=self.keys(name), args=self._failure_args(number, error), client=r
                )
            )
            self._seen[name] = _Seen.of(answer, time.monotonic())
        except Down:
            claim._probe = number
            super()._settle(claim, error)

    def _failure_args(self, number: int, error: ProviderError) -> list[object]:
        return [
            self._token(number) if number else "",
            type(error).__name__,
            "1" if isinstance(error, AuthenticationError) else "0",
            self.threshold,
            int(self.cooldown * 1000),
            int(self.max_cooldown * 1000),
            self._ttl_ms,
        ]

    def _release(self, claim: Claim) -> None:
        number = claim._probe
        if not number:
            return
        loop = running_loop()
        if loop is not None:
            self._seen.pop(claim.name, None)
            super()._release(claim)
            self._background(loop, self._arelease(claim.name, number))
            return
        try:
            self._link.run(
                lambda r: self._release_script(
                    keys=[self.keys(claim.name)[1]], args=[self._token(number)], client=r
                )
            )
        except Down:
            # The probe key expires after probe_ttl; meanwhile no other process probes.
            logger.debug("probe of %s left to expire in Redis", claim.name)
        self._seen.pop(claim.name, None)  # re-read: the next call may probe now
        super()._release(claim)  # the claim may hold the local probe, made while Redis was down

    async def _arelease(self, name: str, number: int) -> None:
        """:meth:`_release`'s command, sent from a task of its own."""
        try:
            await self._link.arun(
                lambda r: self._release_script.acall(
                    keys=[self.keys(name)[1]], args=[self._token(number)], client=r
                )
            )
        except Down:
            logger.debug("probe of %s left to expire in Redis", name)
        self._seen.pop(name, None)

    def reset(self, name: str | None = None) -> None:
        for n in list(self._keys) if name is None else [name]:
            keys = self.keys(n)  # one DEL per provider: its keys share one slot
            try:
                self._link.run(lambda r: r.delete(*keys))  # noqa: B023  (run at once)
            except Down:
                logger.debug("cooldown of %s left to expire in Redis", n)
            self._seen.pop(n, None)
        super().reset(name)

    def snapshot(self) -> dict[str, ProviderHealth]:
        if not self._link.up:
            return super().snapshot()
        found = {}
        for name in list(self._keys):
            seen = self._fresh(name)
            if seen is None:
                return super().snapshot()
            if seen.failures or seen.open_until:
                found[name] = seen.health()
        return found
