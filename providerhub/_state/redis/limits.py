"""Rate limits counted exactly across processes through Redis: requests admitted and tokens
reported, over a sliding 60-second window.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import uuid
from typing import Any

from ... import _settings as settings
from ..limits import WINDOW, Limiter, Limits, MemoryLimiter, Refusal, share_left
from .connections import Down, Link
from .scripts import SPEND, TAKE, Script, hash_tag

logger = logging.getLogger("providerhub.state")

WINDOW_MS = int(WINDOW * 1000)


SPEND_BATCH = 0.05
"""Seconds of reported tokens sent to Redis together (see :meth:`RedisLimiter.spend`)."""


class RedisLimiter(Limiter):
    """Rate-limit counts in Redis, exact across processes; counted in the process
    (``fail_closed=False``) or refused while Redis cannot be reached."""

    def __init__(self, link: Link, prefix: str, *, fail_closed: bool) -> None:
        self._link = link
        self._prefix = prefix
        self.fail_closed = fail_closed
        self._local = MemoryLimiter()
        self._take = Script(TAKE)
        self._spend = Script(SPEND)
        self._members = itertools.count()
        self._spent: queue.SimpleQueue[tuple[str, int, Limits] | None] = queue.SimpleQueue()
        self._spender: threading.Thread | None = None
        self._spender_lock = threading.Lock()
        self._owner = uuid.uuid4().hex[:12]
        self._keys: dict[str, tuple[str, str]] = {}
        # key -> (when, requests, tokens) in the window, as the last TAKE of the key from
        # this process saw them: the mirror headroom() reads, with no round trip.
        self._seen: dict[str, tuple[float, int, int]] = {}

    def keys(self, key: str) -> tuple[str, str]:
        """The sorted set of admissions and the hash of tokens of ``key``."""
        keys = self._keys.get(key)
        if keys is None:
            kind, _, name = key.partition(":")
            tag = hash_tag(kind[:1] or "x", name)
            keys = self._keys[key] = (f"{self._prefix}:{tag}:rpm", f"{self._prefix}:{tag}:tpm")
        return keys

    def take(self, key: str, limits: Limits) -> float:
        args = self._take_args(limits)
        try:
            answer = self._link.run(lambda r: self._take(keys=self.keys(key), args=args, client=r))
        except Down:
            return self._unshared(key, limits)
        return self._mirror(key, answer)

    async def atake(self, key: str, limits: Limits) -> float:
        args = self._take_args(limits)
        try:
            answer = await self._link.arun(
                lambda r: self._take.acall(keys=self.keys(key), args=args, client=r)
            )
        except Down:
            return self._unshared(key, limits)
        return self._mirror(key, answer)

    def _mirror(self, key: str, answer: Any) -> float:
        """The seconds to wait that TAKE's ``answer`` says, keeping the counts it gives."""
        wait_ms, admitted, used = (int(v) for v in answer)
        self._seen[key] = (time.monotonic(), admitted, used)
        return wait_ms / 1000

    def headroom(self, key: str, limits: Limits) -> float:
        """The share of ``limits`` left, as the last request under ``key`` from this
        process saw the shared counts (Redis is not asked: a routing decision costs no
        round trip); counts a window old are forgotten. While Redis cannot be reached,
        the process's own counts."""
        if not limits:
            return 1.0
        if not self._link.up:
            return self._local.headroom(key, limits)
        seen = self._seen.get(key)
        if seen is None or time.monotonic() - seen[0] >= WINDOW:
            return 1.0
        return share_left(limits, seen[1], seen[2])

    def _take_args(self, limits: Limits) -> list[object]:
        # The pid too: a forked child counts on from its parent's number, and the same
        # member would be one entry of the window for two requests.
        member = f"{self._owner}:{os.getpid()}:{next(self._members)}"
        return [
            -1 if limits.rpm is None else limits.rpm,
            -1 if limits.tpm is None else limits.tpm,
            WINDOW_MS,
            member,
        ]

    def _unshared(self, key: str, limits: Limits) -> float:
        """:meth:`take` while Redis cannot be used: counted here, or refused."""
        if self.fail_closed:
            # No address: this reason reaches the gateway's clients; the log has it
            # (once, as Redis went down).
            return Refusal(
                self._link.retry_interval,
                "its rate limit cannot be counted: the shared state (Redis) cannot be "
                f"reached, and {settings.REDIS_FAIL_VARIABLE}=closed refuses such calls "
                "until it can",
            )
        return self._local.take(key, limits)

    def spend(self, key: str, tokens: int, limits: Limits) -> None:
        """Count ``tokens`` in Redis from a thread of the limiter's own, which sends what
        each key spent in :data:`SPEND_BATCH` seconds as one script: an answer does not
        wait a round trip for its usage to be counted, and Redis gets one command per key
        and batch rather than one per answer. Other processes see the tokens that much
        later; ``tpm`` is counted after the fact anyway."""
        if limits.tpm is None or tokens <= 0:
            return
        with self._spender_lock:
            if self._spender is None:
                # A queue per thread: one that close() stopped takes nothing of the next.
                self._spent = queue.SimpleQueue()
                self._spender = threading.Thread(
                    target=self._count_spent,
                    args=(self._spent,),
                    name="providerhub-tokens",
                    daemon=True,
                )
                self._spender.start()
            self._spent.put((key, tokens, limits))

    def _count_spent(self, spent: queue.SimpleQueue[tuple[str, int, Limits] | None]) -> None:
        while True:
            item = spent.get()
            # Sleep through the batch rather than wake at each answer's tokens: a thread
            # switch per answer would cost the answering threads as much as a round trip.
            if item is not None:
                time.sleep(SPEND_BATCH)
            batch: dict[str, list[Any]] = {}
            while item is not None:
                key, tokens, limits = item
                entry = batch.setdefault(key, [0, limits])
                entry[0] += tokens
                try:
                    item = spent.get_nowait()
                except queue.Empty:
                    break
            for key, (tokens, limits) in batch.items():
                self._send_spent(key, tokens, limits)
            if item is None:  # close(): this batch was the last
                return

    def _send_spent(self, key: str, tokens: int, limits: Limits) -> None:
        keys = [self.keys(key)[1]]
        try:
            self._link.run(lambda r: self._spend(keys=keys, args=[tokens, WINDOW_MS], client=r))
        except Down:
            self._local.spend(key, tokens, limits)
        except Exception:  # a bug must not end the thread, and lose every count after it
            logger.exception("counting %d tokens of %s failed", tokens, key)

    def close(self) -> None:
        """Count what is left to count, and stop the thread that counts it."""
        with self._spender_lock:
            spender, self._spender = self._spender, None
            if spender is None:
                return
            self._spent.put(None)
        spender.join(5.0)
