"""Client keys: who may call the server, and how often.

A key is checked by hashing what the client sent and comparing the hash with every stored
one in constant time (``hmac.compare_digest``), so neither the file nor the timing of an
answer tells anything of a key.

A key's ``rpm`` is counted by the hub's rate limiter (:attr:`providerhub.Hub.state`) under
``client:NAME``, over a sliding 60-second window: in the worker's memory by default, and
exactly across every worker and replica when the state is shared through Redis
(``PROVIDERHUB_REDIS_URL``).
"""

from __future__ import annotations

import hashlib
import hmac
import math

from .._state.limits import Limiter, Limits, Refusal
from ._config import ClientKey

__all__ = ["CLIENT_PREFIX", "Keys"]

CLIENT_PREFIX = "client:"
"""What a client key's requests are counted under, before its name (providers' are
``provider:NAME``)."""


class Keys:
    """The keys a server accepts (none means every request is let in), and the limiter
    their ``rpm`` is counted by."""

    def __init__(self, keys: tuple[ClientKey, ...], limiter: Limiter) -> None:
        self._keys = keys
        self._limiter = limiter
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
