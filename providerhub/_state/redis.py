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
- On an event loop (``acreate()``, the gateway) no command blocks the loop: the limiter's
  script and the breaker's claim are awaited over one pipelined connection of the loop's
  own (:class:`_AsyncConnections`); a cooldown is read from the mirror as it is, and a
  mirror older than ``refresh`` is re-read by a task of its own; a failure, a success after
  failures and a probe given back are sent by tasks of their own, which the call does not
  wait for. A thread per command cost five times the CPU of an awaited connection (175
  against 35 µs a command, 32 at once on loopback): see docs/deploy.md.
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

import asyncio
import collections
import itertools
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .. import _settings as settings
from ..errors import AuthenticationError, InvalidRequestError, ProviderError
from .health import Claim, Cooldown, Health, ProviderHealth, cooldown_of
from .limits import WINDOW, Limiter, Limits, MemoryLimiter, Refusal
from .store import State, StateStatus

if TYPE_CHECKING:
    import redis

__all__ = ["RedisState"]

logger = logging.getLogger("providerhub.state")

T = TypeVar("T")
WINDOW_MS = int(WINDOW * 1000)
SPEND_BATCH = 0.05
"""Seconds of reported tokens sent to Redis together (see :meth:`RedisLimiter.spend`)."""
CHECK_INTERVAL = 1.0
"""How old the answer of :meth:`RedisState.acheck` may be, in seconds: ``/readyz`` and
``/metrics`` send Redis one ``PING`` a second at most, however often they are asked."""

_running_loop = asyncio._get_running_loop
"""The event loop running on this thread, or None: a command asked for on a loop must not
block it (see the module)."""

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

    async def acall(self, *, keys: Sequence[str], args: Sequence[object] = (), client: Any) -> Any:
        """The same, awaited: ``client`` is an :class:`_AsyncConnections` (or
        :class:`_InThreads`)."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except self._missing:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


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


class _Pipeline(asyncio.Protocol):
    """One connection to Redis on one event loop, shared by every command sent on that
    loop: each command is written as it is asked for, and its answer is matched to it in
    order, as Redis answers a connection's commands in the order they came (RESP2's
    pipelining).

    So 32 calls in flight cost one socket, and the answers that came together one read,
    rather than a connection and a read each: what keeps a distant Redis from costing the
    loop more work per call. The connection is opened, and the handshake
    (password, database, client name; TLS or a unix socket) done, by a ``redis.asyncio``
    connection, whose transport the pipeline then takes over.

    A command not answered within ``timeout`` fails, with every other one waiting, and
    the connection is closed: its answers can no longer be trusted to come in time.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def take_over(self, writer: asyncio.StreamWriter) -> None:
        """Take the connection of ``writer`` (its stream reader gets nothing more)."""
        # The writer is kept: once collected, it would close the transport (Python 3.11+).
        self._writer = writer
        transport: Any = writer.transport
        self._transport = transport
        transport.set_protocol(self)

    def send(self, *args: object) -> asyncio.Future[Any]:
        """The future answer of the command ``args``."""
        transport = self._transport
        if self.closed or transport is None:
            raise _connection_error("the connection to Redis was closed")
        future = self._loop.create_future()
        deadline = self._loop.time() + self._timeout
        self._waiting.append((future, deadline))
        # Written at once: held for the rest of the loop's turn to share one write with
        # others, a command waited longer than the write saved (measured, bench/state.py).
        transport.write(_encode(args))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)
        return future

    def _expire(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        oldest = self._waiting[0][1]
        if oldest <= self._loop.time():
            self.close(_timeout_error())
        else:
            self._timer = self._loop.call_at(oldest, self._expire)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        position = 0
        try:
            while self._waiting:
                parsed = _parse(buffer, position)
                if parsed is None:
                    break
                answer, position = parsed
                future, _ = self._waiting.popleft()
                if future.done():
                    continue  # its caller was cancelled: the answer is dropped
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
        except ValueError as exc:  # not RESP: nothing after it can be trusted
            self.close(_connection_error(f"Redis sent what is not RESP ({exc})"))
            return
        del buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(_connection_error("Redis closed the connection"))

    def close(self, error: BaseException | None = None) -> None:
        """Close the connection; every command still waiting fails with ``error``."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, collections.deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error or _connection_error("closed"))
        if self._transport is not None:
            self._transport.close()


def _encode(args: Sequence[object]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"a Redis command argument must be text or a number, not {arg!r}")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def _parse(buffer: bytearray, position: int) -> tuple[Any, int] | None:
    """The RESP2 value at ``position`` of ``buffer`` and the position after it, or None
    while it is not all in. An error reply is given as the exception redis-py raises for
    it (``NoScriptError`` for ``NOSCRIPT``...)."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None
    kind = buffer[position : position + 1]
    line = bytes(buffer[position + 1 : end])
    after = end + 2
    if kind == b":":
        return int(line), after
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return None
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            parsed = _parse(buffer, after)
            if parsed is None:
                return None
            item, after = parsed
            items.append(item)
        return items, after
    if kind == b"+":
        return line, after
    if kind == b"-":
        return _reply_error(line.decode(errors="replace")), after
    raise ValueError(f"unknown reply type {kind!r}")


def _reply_error(message: str) -> Exception:
    from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

    code = message.split(" ", 1)[0]
    if code == "NOSCRIPT":
        return NoScriptError(message)
    if code == "READONLY":
        return ReadOnlyError(message)
    return ResponseError(message)


def _connection_error(message: str) -> Exception:
    from redis.exceptions import ConnectionError

    return ConnectionError(message)


def _timeout_error() -> Exception:
    from redis.exceptions import TimeoutError

    return TimeoutError("Redis did not answer in time")


class _AsyncConnections:
    """:class:`_Connections` for event loops: the same commands, awaited, over one
    :class:`_Pipeline` per loop (a connection belongs to the loop it was opened on).

    A loop's connection is closed when the loop ends (``asyncio.run``, or anything that
    calls ``loop.shutdown_asyncgens()``), by :meth:`aclose` on it, and by :meth:`close`.
    """

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ReadOnlyError

        client = aredis.Redis.from_url(url, **{**options, "retry": Retry(NoBackoff(), 0)})
        self._make: Callable[[], Any] = client.connection_pool.make_connection
        self._timeout = float(options["socket_timeout"])
        self._read_only = ReadOnlyError
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # The loop's pipeline, or the future of the one being opened.
        self._by_loop: dict[asyncio.AbstractEventLoop, asyncio.Future[_Pipeline]] = {}
        # One suspended async generator per loop, whose end closes the loop's connection:
        # the loop closes every async generator still open when it shuts down.
        self._keepers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}

    async def _pipeline(self) -> _Pipeline:
        if os.getpid() != self._pid:
            # A forked child: the connections are its parent's (see _Connections.execute).
            with self._lock:
                self._by_loop, self._keepers, self._pid = {}, {}, os.getpid()
        loop = asyncio.get_running_loop()
        opening = self._by_loop.get(loop)
        if opening is not None and opening.done():
            if not opening.cancelled() and opening.exception() is None:
                pipeline = opening.result()
                if not pipeline.closed:
                    return pipeline
            opening = None  # closed, or it could not be opened: open anew
        if opening is None:
            with self._lock:
                keeper = None if loop in self._keepers else self._keep(loop)
                if keeper is not None:
                    self._keepers[loop] = keeper
            if keeper is not None:
                await keeper.__anext__()  # runs to its yield without suspending
            # A task of its own: a caller cancelled while it waits does not cancel the
            # opening that the others wait for too.
            opening = loop.create_task(self._open())
            with self._lock:
                self._by_loop[loop] = opening
        return await asyncio.shield(opening)

    async def _open(self) -> _Pipeline:
        connection = self._make()
        await connection.connect()  # TCP, TLS or a unix socket, and the handshake
        pipeline = _Pipeline(self._timeout)
        pipeline.take_over(connection._writer)
        # The transport is the pipeline's now: the connection object must not close it
        # when it is collected (redis-py's __del__ closes a writer it still holds).
        connection._reader = connection._writer = None
        return pipeline

    async def _keep(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                opening = self._by_loop.pop(loop, None)
                self._keepers.pop(loop, None)
            _close_opened(opening)

    async def execute(self, *args: object) -> Any:
        pipeline = await self._pipeline()
        try:
            return await pipeline.send(*args)
        except self._read_only:
            # A failover made this server a replica: connect anew, by the URL's name,
            # which a failover endpoint moves to the new primary.
            pipeline.close(_connection_error("the server became a replica"))
            raise

    async def evalsha(self, sha: str, numkeys: int, *args: object) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *args)

    async def script_load(self, text: str) -> Any:
        return await self.execute("SCRIPT", "LOAD", text)

    async def delete(self, *keys: str) -> Any:
        return await self.execute("DEL", *keys)

    async def ping(self) -> bool:
        return bool(await self.execute("PING"))

    async def aclose(self) -> None:
        """:meth:`close`, and a turn of the running loop, in which the closed socket of
        this loop's connection is let go."""
        self.close()
        await asyncio.sleep(0)

    def close(self) -> None:
        """Close every loop's connection (a command still waiting fails)."""
        with self._lock:
            opened = list(self._by_loop.values())
            self._by_loop.clear()
        for opening in opened:
            _close_opened(opening)


def _close_opened(opening: asyncio.Future[_Pipeline] | None) -> None:
    """Close the pipeline ``opening`` gives, now, or once it is open."""
    if opening is None:
        return
    loop = opening.get_loop()
    if loop.is_closed():
        return  # its socket went with the loop
    if loop.is_running() and _running_loop() is not loop:
        # A future and a transport are their loop's to touch.
        loop.call_soon_threadsafe(_close_opened, opening)
    elif not opening.done():
        opening.add_done_callback(_close_opened)
    elif not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class _InThreads:
    """What :meth:`_Link.arun` gives a command for a cluster: the cluster client's
    commands, each run on a thread of the loop's default executor, so that the loop does
    not wait for them (redis-py's asyncio cluster client would be one more client to keep
    per loop, for a setup whose round trips cost more than a thread anyway)."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    async def _run(self, name: str, *args: object) -> Any:
        method = getattr(self._link.client, name)
        return await asyncio.get_running_loop().run_in_executor(None, method, *args)

    async def evalsha(self, sha: str, numkeys: int, *args: object) -> Any:
        return await self._run("evalsha", sha, numkeys, *args)

    async def script_load(self, text: str) -> Any:
        return await self._run("script_load", text)

    async def delete(self, *keys: str) -> Any:
        return await self._run("delete", *keys)

    async def ping(self) -> bool:
        return bool(await self._run("ping"))


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
        self._options = options
        self._async: _AsyncConnections | _InThreads | None = None  # made at the first arun
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

    @property
    def resting(self) -> bool:
        """Redis is down, and not to be tried again yet: :meth:`run` would give up at once."""
        return self.down_since is not None and time.monotonic() < self._next_try

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

    async def arun(self, command: Callable[[Any], Awaitable[T]]) -> T:
        """:meth:`run` on an event loop: ``command`` is given what awaits the commands,
        :class:`_AsyncConnections` (or, for a cluster, :class:`_InThreads`), and the loop
        goes on while Redis answers."""
        if self.down_since is not None and time.monotonic() < self._next_try:
            raise _Down
        try:
            commands = self._async
            if commands is None:
                commands = self._async = (
                    _InThreads(self)
                    if self._cluster
                    else _AsyncConnections(self.url, self._options)
                )
            try:
                answer = await command(commands)
            except self._connection_errors:  # see run
                answer = await command(commands)
        except self._errors as exc:
            self._went_down(exc)
            raise _Down from None
        if self.down_since is not None:
            self._came_back()
        return answer

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the running loop's connections to be closed."""
        commands = self._async
        if isinstance(commands, _AsyncConnections):
            await commands.aclose()
        self.close()

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
        if isinstance(self._async, _AsyncConnections):
            self._async.close()
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
        self._rereading: set[str] = set()  # mirrors a task re-reads now (on a loop)
        self._tasks: set[asyncio.Task[None]] = set()  # held until they are done

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
        except _Down:
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
        loop = _running_loop()
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
        except _Down:
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
        except _Down:
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
        if claim._void:  # abandoned (see Claim.abandon): its outcome does not count
            return
        name = claim.name
        number = claim._probe
        claim._probe = 0
        if error is None:
            seen = self._seen.get(name)
            if not (number or seen is None or seen.failures or seen.open_until or seen.probing):
                return  # healthy, as far as this process saw: nothing to tell Redis
        loop = _running_loop()
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
        except _Down:
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
        except _Down:
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
        loop = _running_loop()
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
        except _Down:
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
        except _Down:
            logger.debug("probe of %s left to expire in Redis", name)
        self._seen.pop(name, None)

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
        args = self._take_args(limits)
        try:
            wait_ms = self._link.run(lambda r: self._take(keys=self.keys(key), args=args, client=r))
        except _Down:
            return self._unshared(key, limits)
        return int(wait_ms) / 1000

    async def atake(self, key: str, limits: Limits) -> float:
        args = self._take_args(limits)
        try:
            wait_ms = await self._link.arun(
                lambda r: self._take.acall(keys=self.keys(key), args=args, client=r)
            )
        except _Down:
            return self._unshared(key, limits)
        return int(wait_ms) / 1000

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

    def ping(self) -> bool:
        """Whether Redis answers now (and, if it was down, the state is shared again)."""
        try:
            return bool(self._link.run(lambda r: r.ping()))
        except _Down:
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
        except _Down:
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
