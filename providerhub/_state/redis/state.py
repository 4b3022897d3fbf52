"""The :class:`RedisState`: the breaker and the limits of this package over one Redis link."""

from __future__ import annotations

import asyncio
import time

from ... import _settings as settings
from ...errors import ConfigurationError
from ..health import Health
from ..store import State, StateStatus
from .budgets import RedisBudgets
from .cache import RedisCache
from .connections import Down, Link, cluster_option, one_line, redact_url
from .health import RedisHealth
from .limits import RedisLimiter

CHECK_INTERVAL = 1.0
"""How old the answer of :meth:`RedisState.acheck` may be, in seconds: ``/readyz`` and
``/metrics`` send Redis one ``PING`` a second at most, however often they are asked."""


class RedisState(State):
    """Cooldowns, probes and rate-limit counts kept in Redis at ``url``
    (``redis://[:password@]host:port/db``, ``rediss://`` for TLS, or ``unix://``).

    ``?cluster=true`` at the end of the URL (``redis://host:port?cluster=true``) says that
    ``host:port`` is a node of a Redis Cluster, or a managed cluster's configuration
    endpoint: the client learns the other nodes from it and sends each script to the node
    that holds its keys' slot (database 0 only, as Redis Cluster has no other).

    ``timeout`` bounds each Redis command (``PROVIDERHUB_REDIS_TIMEOUT``, 0.1 s by default);
    ``fail_closed`` refuses rate-limited calls while Redis is down
    (``PROVIDERHUB_REDIS_FAIL=closed``) instead of counting them in the process.
    ``refresh`` is how stale a process's view of a provider's cooldown may be; ``probe_ttl``
    how long a probe claim lasts should its process die; ``prefix`` starts every key, so
    that several deployments can share one Redis.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None = None,
        fail_closed: bool | None = None,
        refresh: float = 0.25,
        probe_ttl: float = 60.0,
        retry_interval: float = 1.0,
        prefix: str = "providerhub",
    ) -> None:
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                f"{settings.REDIS_URL_VARIABLE} (or Hub(state=...)) must be a redis://, "
                f"rediss:// or unix:// URL, not {redact_url(url) if scheme else 'that value'!r}"
            )
        if not 0 < refresh <= 1.0:
            raise ConfigurationError("refresh must be more than 0 and at most 1 second")
        url, cluster = cluster_option(url)
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                f"shared state through Redis ({settings.REDIS_URL_VARIABLE}) needs the redis "
                "package: pip install 'providerhub[redis]'"
            ) from None
        self.timeout = settings.redis_timeout() if timeout is None else timeout
        self.fail_closed = settings.redis_fail_closed() if fail_closed is None else fail_closed
        self.refresh = refresh
        self.probe_ttl = probe_ttl
        self.prefix = prefix
        try:
            self._link = Link(url, self.timeout, retry_interval, cluster=cluster)
        except ValueError as exc:  # redis-py's own check of the URL
            raise ConfigurationError(
                f"{settings.REDIS_URL_VARIABLE}: {redact_url(url)!r} is not a usable Redis URL "
                f"({one_line(exc)})"
            ) from None
        self.limiter: RedisLimiter = RedisLimiter(self._link, prefix, fail_closed=self.fail_closed)
        self._checked = -CHECK_INTERVAL  # when acheck last sent its PING (monotonic)
        self._checking: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RedisState {self._link.location}>"

    @property
    def location(self) -> str:
        """The Redis URL, without its password."""
        return self._link.location

    def health(self, threshold: int, cooldown: float, max_cooldown: float) -> Health:
        return RedisHealth(
            self._link,
            self.prefix,
            threshold,
            cooldown,
            max_cooldown,
            refresh=self.refresh,
            probe_ttl=self.probe_ttl,
        )

    def budgets(self) -> RedisBudgets:
        """The client keys' spend, counted in Redis exactly across every process."""
        return RedisBudgets(self._link, self.prefix, fail_closed=self.fail_closed)

    def response_cache(self, timeout: float) -> RedisCache:
        """The response cache's store in this Redis (see :mod:`providerhub._cache`), each
        command bounded by ``timeout`` seconds."""
        return RedisCache(self._link, self.prefix, timeout)

    def ping(self) -> bool:
        """Whether Redis answers now (and, if it was down, the state is shared again)."""
        try:
            return bool(self._link.run(lambda r: r.ping()))
        except Down:
            return False

    def check(self) -> StateStatus:
        self.ping()
        return self.status()

    async def acheck(self) -> StateStatus:
        """:meth:`status`, after a ``PING`` awaited on the loop when the last one is
        :data:`CHECK_INTERVAL` old or more: however many callers ask at once or how often,
        Redis gets one ``PING`` a second at most, and the answer is that old at most."""
        loop = asyncio.get_running_loop()
        task = self._checking
        if task is None or task.get_loop() is not loop or task.done():
            if time.monotonic() - self._checked < CHECK_INTERVAL:
                return self.status()
            self._checked = time.monotonic()
            task = self._checking = loop.create_task(self._aping())
        # Shielded: a caller that goes away leaves the PING to the others.
        await asyncio.shield(task)
        return self.status()

    async def _aping(self) -> None:
        try:
            await self._link.arun(lambda r: r.ping())
        except Down:
            pass  # the link noted it: status() says so

    def status(self) -> StateStatus:
        link = self._link
        return StateStatus("redis", link.up, link.location, link.error, link.down_since)

    def close(self) -> None:
        self.limiter.close()
        self._link.close()

    async def aclose(self) -> None:
        await self._link.aclose()
        self.limiter.close()
