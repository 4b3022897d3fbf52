"""Client keys: who may call the server, and how often.

A key is checked by hashing what the client sent and comparing the hash with every stored
one in constant time (``hmac.compare_digest``), so neither the file nor the timing of an
answer tells anything of a key. A key's ``rpm`` is a token bucket kept per worker.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from ._config import ClientKey

__all__ = ["Keys"]


class _Bucket:
    """``rpm`` requests a minute, refilled continuously, a burst of at most ``rpm``."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rpm: int) -> None:
        self.capacity = float(rpm)
        self.rate = rpm / 60.0
        self.tokens = float(rpm)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a request may go now (and counts it), else the seconds to wait."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Keys:
    """The keys a server accepts; none means every request is let in."""

    def __init__(self, keys: tuple[ClientKey, ...]) -> None:
        self._keys = keys
        self._buckets = {k.name: _Bucket(k.rpm) for k in keys if k.rpm is not None}

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

    def wait(self, key: ClientKey) -> int:
        """0 when ``key`` may make a request now (which is counted), else the whole seconds
        until it may (for ``Retry-After``)."""
        bucket = self._buckets.get(key.name)
        if bucket is None:
            return 0
        wait = bucket.take()
        return 0 if wait == 0.0 else max(1, math.ceil(wait))
