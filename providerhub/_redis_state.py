"""Cooldowns, probes and rate-limit counts shared through Redis, so that every process
and replica pointing at one Redis agrees on them (the ``providerhub[redis]`` extra).

What each call costs, in Redis commands, and why:

- Breaker state is read through a *mirror*: each process re-reads a provider's state at
  most every ``refresh`` seconds (0.25 by default), so a healthy provider costs no Redis
  command per call, and a cooldown opened anywhere is honoured everywhere within
  ``refresh`` plus one round trip. A failure (one script), a success after failures (one
  ``DEL``), claiming the probe and giving it back (one script each) go to Redis at once.
- The half-open probe is a key set with ``SET NX PX`` inside the claiming script: one
  process, one call, probes; the key expires after ``probe_ttl`` should that process die.
- A provider's or client key's rate limit is one script per request that admits and
  counts it atomically (a sorted set of the times requests were let in, and one-second
  buckets of the tokens reported), so two replicas under ``rpm = 5`` let exactly five
  through in any 60 seconds. The tokens answers reported are counted by one more script
  per provider every 50 ms at most, sent from a thread of the limiter's own so that no
  answer waits for it. The script touches the keys it needs: a look at a provider's token
  total costs two hash fields, not the 60 buckets of the window.
- The scripts go straight to connections of redis-py's ``Connection`` class, not through
  its client and pool, whose layers cost twice the round trip (:class:`_Connections`).
- Every script computes with Redis's own clock (``TIME``), so replicas need not agree on
  theirs. Every key carries a hash tag (``{p:NAME}``, ``{c:NAME}``): each script touches
  keys of one slot, as Redis Cluster wants. Every key has a TTL.

When Redis cannot be reached, is too slow (``timeout``) or answers with an error, the hub
goes on with process-local state (the classes this module extends) and says so once in the
log; it tries Redis again at most once a second (``retry_interval``), and shares again as
soon as Redis answers. A Redis fault is never raised to the caller, nor counted against a
provider. While Redis is down, rate limits are counted per process (``fail_closed=False``,
the default) or refuse every rate-limited call (``fail_closed=True``).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from . import _settings as settings
from ._health import Claim, Cooldown, Health, ProviderHealth, cooldown_of
from ._limits import WINDOW, Limiter, Limits, MemoryLimiter, Refusal
from ._state import State, StateStatus
from .errors import AuthenticationError, InvalidRequestError, ProviderError

if TYPE_CHECKING:
    import redis

__all__ = ["RedisState"]

logger = logging.getLogger("providerhub.state")

T = TypeVar("T")
WINDOW_MS = int(WINDOW * 1000)
SPEND_BATCH = 0.05
"""Seconds of reported tokens sent to Redis together (see :meth:`RedisLimiter.spend`)."""

# -- the scripts ------------------------------------------------------------------------
# KEYS[1] is a provider's breaker hash (failures, open_until, period in ms, last_error),
# KEYS[2] its probe key (the token of the claim probing it). ``state`` gives what the
# mirror keeps: failures, open (0/1), ms left of the cooldown, probing (0/1), last error.

_STATE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(now)
  local h = redis.call('HMGET', KEYS[1], 'failures', 'open_until', 'last_error')
  local open_until = tonumber(h[2] or '0')
  local open = 0
  local left = 0
  if open_until > 0 then
    open = 1
    left = open_until - now
  end
  return {tonumber(h[1] or '0'), open, left, redis.call('EXISTS', KEYS[2]), h[3] or ''}
end
"""

_READ = _STATE + "return state(now_ms())"

# ARGV: token, early (0/1), probe_ttl ms. Returns {kind, state...}: kind 0 refused,
# 1 an ordinary claim, 2 the probe.
_ACQUIRE = (
    _STATE
    + """
local now = now_ms()
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local kind = 1
if open_until > 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    kind = 0
  elseif open_until > now then
    if ARGV[2] == '1' then kind = 1 else kind = 0 end
  elseif redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3], 'NX') then
    kind = 2
  else
    kind = 0
  end
end
local s = state(now)
return {kind, s[1], s[2], s[3], s[4], s[5]}
"""
)

# ARGV: token ('' for none), error name, auth (0/1), threshold, cooldown ms, max ms, ttl ms.
_FAILURE = (
    _STATE
    + """
local now = now_ms()
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[2])
local was_probe = false
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  was_probe = true
end
if was_probe or failures >= tonumber(ARGV[4]) or ARGV[3] == '1' then
  local period = tonumber(redis.call('HGET', KEYS[1], 'period') or '0')
  if period > 0 then
    period = math.min(period * 2, tonumber(ARGV[6]))
  else
    period = tonumber(ARGV[5])
  end
  redis.call('HSET', KEYS[1], 'period', period, 'open_until', now + period)
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return state(now)
"""
)

# KEYS[1] the probe key; ARGV[1] the token: give the probe back only if this claim holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] the sorted set of admissions, KEYS[2] the hash of tokens per second (a field per
# second, in ms, plus 't', their total, and 'o', the oldest second).
# ARGV: rpm (-1: none), tpm (-1: none), window ms, a unique member. Returns 0 when the
# request is admitted (and counted), else the ms to wait.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
if tpm >= 0 then
  -- 't' is the total of the buckets, 'o' the oldest bucket: a look at two fields, unless
  -- a bucket has left the window (once a second at most), when the buckets are recounted.
  local h = redis.call('HMGET', KEYS[2], 't', 'o')
  local used = tonumber(h[1] or '0')
  local oldest = tonumber(h[2] or '-1')
  if oldest >= 0 and oldest + 1000 <= now - window then
    local buckets = redis.call('HGETALL', KEYS[2])
    used = 0
    oldest = -1
    for i = 1, #buckets, 2 do
      local f = buckets[i]
      if f ~= 't' and f ~= 'o' then
        local at = tonumber(f)
        if at + 1000 <= now - window then
          redis.call('HDEL', KEYS[2], f)
        else
          used = used + tonumber(buckets[i + 1])
          if oldest < 0 or at < oldest then oldest = at end
        end
      end
    end
    if oldest < 0 then
      redis.call('HDEL', KEYS[2], 't', 'o')
    else
      redis.call('HSET', KEYS[2], 't', used, 'o', oldest)
    end
  end
  if used >= tpm then
    local buckets = redis.call('HGETALL', KEYS[2])
    local live = {}
    for i = 1, #buckets, 2 do
      if buckets[i] ~= 't' and buckets[i] ~= 'o' then
        table.insert(live, {tonumber(buckets[i]), tonumber(buckets[i + 1])})
      end
    end
    table.sort(live, function(a, b) return a[1] < b[1] end)
    for _, e in ipairs(live) do
      used = used - e[2]
      if used < tpm then return math.max(1, e[1] + 1000 + window - now) end
    end
    return window
  end
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local edge = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return math.max(1, tonumber(edge[2]) + window - now)
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
end
return 0
"""

# KEYS[1] the hash of tokens per second; ARGV: tokens, window ms.
_SPEND = """
local t = redis.call('TIME')
local second = tonumber(t[1]) * 1000
redis.call('HINCRBY', KEYS[1], second, ARGV[1])
redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
redis.call('HSETNX', KEYS[1], 'o', second)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 0
"""


def _tag(kind: str, name: str) -> str:
    """A hash tag for one provider's or client key's keys: they share one Cluster slot.
    A name that could close the tag early is written by its hash instead."""
    if "{" in name or "}" in name or not name.isprintable():
        import hashlib

        name = "sha1-" + hashlib.sha1(name.encode()).hexdigest()
    return "{" + kind + ":" + name + "}"


def _redact(url: str) -> str:
    """The URL without its password (``redis://:secret@host`` → ``redis://host``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # host and port, whatever the user info holds
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _cluster_option(url: str) -> tuple[str, bool]:
    """``url`` without its ``cluster`` query parameter (redis-py would take it for a
    connection option), and whether it says ``true``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    said = [value.strip().lower() for name, value in query if name == "cluster"]
    if not said:
        return url, False
    if said[-1] not in ("true", "false", "yes", "no", "1", "0"):
        raise InvalidRequestError(
            f"{settings.REDIS_URL_VARIABLE}: the URL's cluster= takes true or false, "
            f"not {said[-1]!r}"
        )
    cluster = said[-1] in ("true", "yes", "1")
    if cluster and parts.scheme.lower() == "unix":
        raise InvalidRequestError(
            f"{settings.REDIS_URL_VARIABLE}: a Redis Cluster is reached over TCP "
            "(redis:// or rediss://), not a unix:// socket"
        )
    if cluster and parts.path.strip("/") not in ("", "0"):
        raise InvalidRequestError(
            f"{settings.REDIS_URL_VARIABLE}: a Redis Cluster has database 0 only, not "
            f"{parts.path.strip('/')!r}; drop the path or write /0"
        )
    rest = urlencode([(name, value) for name, value in query if name != "cluster"])
    return urlunsplit(parts._replace(query=rest)), cluster


class _Script:
    """A Lua script, run by its SHA1 and loaded into Redis at the first ``NOSCRIPT`` (on a
    cluster, into every primary): redis-py's ``Script`` without the client it wants when
    made, as a cluster's client is made only at the first command (see :class:`_Link`)."""

    def __init__(self, text: str) -> None:
        import hashlib

        from redis.exceptions import NoScriptError

        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self._missing = NoScriptError

    def __call__(self, *, keys: Sequence[str], args: Sequence[object] = (), client: Any) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except self._missing:
            client.script_load(self.text)
            return client.evalsha(self.sha, len(keys), *keys, *args)


class _Down(Exception):
    """Redis cannot be used now: the caller goes on with process-local state."""


class _Connections:
    """The commands this module sends to one (non-cluster) Redis, each on a connection of
    its own while it runs, taken from a list of idle ones.

    redis-py's client and pool cost as much again as the round trip itself (their
    per-command layers: about 100 µs a command here, against 40 µs for the round trip),
    and a rate-limited call pays one command; so the few commands of this module go
    straight to a ``redis.Connection``, which still does the protocol, the handshake
    (password, database, client name) and the timeouts. A connection that fails is
    dropped; one that answered, even with an error reply, goes back to the list.
    """

    def __init__(self, client: redis.Redis) -> None:
        from redis.exceptions import ReadOnlyError, ResponseError

        self._make = client.connection_pool.make_connection
        self._reply_error = ResponseError
        self._read_only = ReadOnlyError
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def execute(self, *args: object) -> Any:
        if os.getpid() != self._pid:
            # A forked child: the idle connections are its parent's sockets. Left to the
            # parent (redis-py's disconnect shuts a socket down only in its own process).
            self._idle, self._pid = [], os.getpid()
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._make()  # it connects at its first command
        try:
            connection.send_command(*args)
            answer = connection.read_response()
        except self._reply_error as exc:
            if isinstance(exc, self._read_only):
                # A failover made this server a replica: connect anew, by the URL's name,
                # which a failover endpoint moves to the new primary.
                connection.disconnect()
                self.close()
            else:
                self._put_back(connection)  # an error reply (NOSCRIPT): the connection is fine
            raise
        except BaseException:
            connection.disconnect()  # a timeout or a reset leaves it in an unknown state
            # The idle ones talked to the same server: after a restart they are all dead,
            # and the retry (see _Link.run) should get a fresh one, not the next corpse.
            self.close()
            raise
        self._put_back(connection)
        return answer

    def _put_back(self, connection: Any) -> None:
        with self._lock:
            self._idle.append(connection)

    def evalsha(self, sha: str, numkeys: int, *args: object) -> Any:
        return self.execute("EVALSHA", sha, numkeys, *args)

    def script_load(self, text: str) -> Any:
        return self.execute("SCRIPT", "LOAD", text)

    def delete(self, *keys: str) -> Any:
        return self.execute("DEL", *keys)

    def ping(self) -> bool:
        return bool(self.execute("PING"))

    def close(self) -> None:
        """Close the idle connections (one still in use is closed when it is dropped)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.disconnect()


class _Link:
    """The connection to Redis, and whether it is usable: one place decides, logs each
    transition once, and paces the tries while Redis is down.

    ``cluster`` makes the client a ``RedisCluster``, which learns the cluster's nodes from
    the one in ``url`` and sends each command to the node of its keys' slot. It connects
    as it is made, so it is made at the first command: a cluster that is down when the
    hub starts is then a Redis fault like any other, not an error of the constructor.
    """

    def __init__(self, url: str, timeout: float, retry_interval: float, *, cluster: bool) -> None:
        import redis as redis_module
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisClusterException
        from redis.retry import Retry

        self.url = url
        self.location = _redact(url) + ("?cluster=true" if cluster else "")
        self.retry_interval = retry_interval
        # No retries or backoff inside redis-py: a command either answers within
        # ``timeout`` or the call goes on without Redis, once.
        options: dict[str, Any] = dict(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            client_name="providerhub",
        )
        self._client: redis.Redis | redis.RedisCluster | None = None
        self._direct: _Connections | None = None
        self._cluster = cluster
        if cluster:
            from redis.cluster import RedisCluster
            from redis.connection import parse_url

            # A ValueError now for a malformed URL, as redis.Redis.from_url gives.
            parse_url(url)  # type: ignore[no-untyped-call]
            self._connect: Callable[[], redis.Redis | redis.RedisCluster] = lambda: (
                RedisCluster.from_url(url, **options)
            )
        else:
            client = redis_module.Redis.from_url(url, **options)
            self._client = client
            self._connect = lambda: client
            self._direct = _Connections(client)
        self._errors: tuple[type[BaseException], ...] = (
            redis_module.RedisError,
            RedisClusterException,  # not a RedisError: a cluster none of whose nodes answer
            OSError,
        )
        self._connection_errors: tuple[type[BaseException], ...] = (redis_module.ConnectionError,)
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.error = ""
        self._next_try = 0.0

    @property
    def client(self) -> redis.Redis | redis.RedisCluster:
        """The client, made at the first call (see the class)."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = self._connect()
        return client

    @property
    def up(self) -> bool:
        return self.down_since is None

    def run(self, command: Callable[[Any], T]) -> T:
        """``command``'s answer, or :class:`_Down` when Redis cannot give it now.
        ``command`` is given what sends the commands: :class:`_Connections`, or a
        cluster's client (each has ``evalsha``, ``script_load``, ``delete`` and ``ping``)."""
        if self.down_since is not None and time.monotonic() < self._next_try:
            raise _Down
        try:
            commands = self._direct or self.client
            try:
                answer = command(commands)
            except self._connection_errors:  # redis-py's TimeoutError is not one of them
                # A pooled connection that Redis closed (a restart, an idle timeout) fails
                # once; a fresh one may well answer.
                answer = command(commands)
        except self._errors as exc:
            self._went_down(exc)
            raise _Down from None
        if self.down_since is not None:
            self._came_back()
        return answer

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_interval
            self.error = f"{type(exc).__name__}: {_one_line(exc)}"
            if self.down_since is not None:
                return
            self.down_since = time.time()
        logger.warning(
            "Redis at %s cannot be used (%s): cooldowns and rate limits are kept in this "
            "process until Redis is back",
            self.location,
            self.error,
        )

    def _came_back(self) -> None:
        with self._lock:
            if self.down_since is None:
                return
            away = time.time() - self.down_since
            self.down_since = None
            self.error = ""
        logger.warning(
            "Redis at %s answers again after %.1f s: cooldowns and rate limits are shared again",
            self.location,
            away,
        )

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        client = self._client
        if client is None:
            return
        if self._cluster:
            # RedisCluster.close() leaves each node's pool, and its sockets, open.
            client.disconnect_connection_pools()  # type: ignore[union-attr]
        client.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


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
        link: _Link,
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
        self._read = _Script(_READ)
        self._acquire = _Script(_ACQUIRE)
        self._failure = _Script(_FAILURE)
        self._release_script = _Script(_RELEASE)

    def keys(self, name: str) -> tuple[str, str]:
        """The breaker hash and the probe key of provider ``name``."""
        keys = self._keys.get(name)
        if keys is None:
            tag = _tag("p", name)
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
        except _Down:
            return None
        seen = self._seen[name] = _Seen.of(answer, time.monotonic())
        return seen

    def cooling(self, name: str) -> Cooldown | None:
        seen = self._fresh(name)
        if seen is None:
            return super().cooling(name)
        return cooldown_of(seen.health(), time.monotonic())

    def acquire(self, name: str, *, early: bool = False) -> Claim | None:
        seen = self._recent(name)
        if seen is not None and seen.open_until == 0.0:
            return Claim(self, name, 0)  # healthy a moment ago: no command on this path
        with self._lock:
            self._claims += 1
            number = self._claims
        try:
            answer = self._link.run(
                lambda r: self._acquire(
                    keys=self.keys(name),
                    args=[self._token(number), "1" if early else "0", self._probe_ttl_ms],
                    client=r,
                )
            )
        except _Down:
            return super().acquire(name, early=early)
        self._seen[name] = _Seen.of(answer[1:], time.monotonic())
        kind = int(answer[0])
        if kind == 0:
            return None
        return Claim(self, name, number if kind == 2 else 0)

    def _settle(self, claim: Claim, error: ProviderError | None) -> None:
        if claim._void:  # abandoned (see Claim.abandon): its outcome does not count
            return
        name = claim.name
        number = claim._probe
        claim._probe = 0
        try:
            if error is None:
                seen = self._seen.get(name)
                if number or seen is None or seen.failures or seen.open_until or seen.probing:
                    self._link.run(lambda r: r.delete(*self.keys(name)))
                    self._seen[name] = _Seen(time.monotonic(), 0, 0.0, False, "")
                return
            answer = self._link.run(
                lambda r: self._failure(
                    keys=self.keys(name),
                    args=[
                        self._token(number) if number else "",
                        type(error).__name__,
                        "1" if isinstance(error, AuthenticationError) else "0",
                        self.threshold,
                        int(self.cooldown * 1000),
                        int(self.max_cooldown * 1000),
                        self._ttl_ms,
                    ],
                    client=r,
                )
            )
            self._seen[name] = _Seen.of(answer, time.monotonic())
        except _Down:
            claim._probe = number
            super()._settle(claim, error)

    def _release(self, claim: Claim) -> None:
        number = claim._probe
        if not number:
            return
        try:
            self._link.run(
                lambda r: self._release_script(
                    keys=[self.keys(claim.name)[1]], args=[self._token(number)], client=r
                )
            )
        except _Down:
            # The probe key expires after probe_ttl; meanwhile no other process probes.
            logger.debug("probe of %s left to expire in Redis", claim.name)
        self._seen.pop(claim.name, None)  # re-read: the next call may probe now
        super()._release(claim)  # the claim may hold the local probe, made while Redis was down

    def reset(self, name: str | None = None) -> None:
        for n in list(self._keys) if name is None else [name]:
            keys = self.keys(n)  # one DEL per provider: its keys share one slot
            try:
                self._link.run(lambda r: r.delete(*keys))  # noqa: B023  (run at once)
            except _Down:
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


class RedisLimiter(Limiter):
    """Rate-limit counts in Redis, exact across processes; counted in the process
    (``fail_closed=False``) or refused while Redis cannot be reached."""

    def __init__(self, link: _Link, prefix: str, *, fail_closed: bool) -> None:
        self._link = link
        self._prefix = prefix
        self.fail_closed = fail_closed
        self._local = MemoryLimiter()
        self._take = _Script(_TAKE)
        self._spend = _Script(_SPEND)
        self._members = itertools.count()
        self._spent: queue.SimpleQueue[tuple[str, int, Limits] | None] = queue.SimpleQueue()
        self._spender: threading.Thread | None = None
        self._spender_lock = threading.Lock()
        self._owner = uuid.uuid4().hex[:12]
        self._keys: dict[str, tuple[str, str]] = {}

    def keys(self, key: str) -> tuple[str, str]:
        """The sorted set of admissions and the hash of tokens of ``key``."""
        keys = self._keys.get(key)
        if keys is None:
            kind, _, name = key.partition(":")
            tag = _tag(kind[:1] or "x", name)
            keys = self._keys[key] = (f"{self._prefix}:{tag}:rpm", f"{self._prefix}:{tag}:tpm")
        return keys

    def take(self, key: str, limits: Limits) -> float:
        # The pid too: a forked child counts on from its parent's number, and the same
        # member would be one entry of the window for two requests.
        member = f"{self._owner}:{os.getpid()}:{next(self._members)}"
        try:
            wait_ms = self._link.run(
                lambda r: self._take(
                    keys=self.keys(key),
                    args=[
                        -1 if limits.rpm is None else limits.rpm,
                        -1 if limits.tpm is None else limits.tpm,
                        WINDOW_MS,
                        member,
                    ],
                    client=r,
                )
            )
        except _Down:
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
        return int(wait_ms) / 1000

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
        except _Down:
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
            raise InvalidRequestError(
                f"{settings.REDIS_URL_VARIABLE} (or Hub(state=...)) must be a redis://, "
                f"rediss:// or unix:// URL, not {_redact(url) if scheme else 'that value'!r}"
            )
        if not 0 < refresh <= 1.0:
            raise InvalidRequestError("refresh must be more than 0 and at most 1 second")
        url, cluster = _cluster_option(url)
        try:
            import redis  # noqa: F401
        except ImportError:
            raise InvalidRequestError(
                f"shared state through Redis ({settings.REDIS_URL_VARIABLE}) needs the redis "
                "package: pip install 'providerhub[redis]'"
            ) from None
        self.timeout = settings.redis_timeout() if timeout is None else timeout
        self.fail_closed = settings.redis_fail_closed() if fail_closed is None else fail_closed
        self.refresh = refresh
        self.probe_ttl = probe_ttl
        self.prefix = prefix
        try:
            self._link = _Link(url, self.timeout, retry_interval, cluster=cluster)
        except ValueError as exc:  # redis-py's own check of the URL
            raise InvalidRequestError(
                f"{settings.REDIS_URL_VARIABLE}: {_redact(url)!r} is not a usable Redis URL "
                f"({_one_line(exc)})"
            ) from None
        self.limiter: RedisLimiter = RedisLimiter(self._link, prefix, fail_closed=self.fail_closed)

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

    def ping(self) -> bool:
        """Whether Redis answers now (and, if it was down, the state is shared again)."""
        try:
            return bool(self._link.run(lambda r: r.ping()))
        except _Down:
            return False

    def check(self) -> StateStatus:
        self.ping()
        return self.status()

    def status(self) -> StateStatus:
        link = self._link
        return StateStatus("redis", link.up, link.location, link.error, link.down_since)

    def close(self) -> None:
        self.limiter.close()
        self._link.close()
