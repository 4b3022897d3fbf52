"""Connections to Redis: a list of idle ones for threads, one pipelined connection per event
loop, a cluster's client, and the link that says whether Redis can be used now.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ... import _settings as settings
from ...errors import ConfigurationError
from .resp import connection_error, encode, parse, timeout_error

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("providerhub.state")

T = TypeVar("T")

running_loop = asyncio._get_running_loop
"""The event loop running on this thread, or None: a command asked for on a loop must not
block it (see the module)."""


def redact_url(url: str) -> str:
    """The URL without its password (``redis://:secret@host`` → ``redis://host``)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]  # host and port, whatever the user info holds
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def cluster_option(url: str) -> tuple[str, bool]:
    """``url`` without its ``cluster`` query parameter (redis-py would take it for a
    connection option), and whether it says ``true``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    said = [value.strip().lower() for name, value in query if name == "cluster"]
    if not said:
        return url, False
    if said[-1] not in ("true", "false", "yes", "no", "1", "0"):
        raise ConfigurationError(
            f"{settings.REDIS_URL_VARIABLE}: the URL's cluster= takes true or false, "
            f"not {said[-1]!r}"
        )
    cluster = said[-1] in ("true", "yes", "1")
    if cluster and parts.scheme.lower() == "unix":
        raise ConfigurationError(
            f"{settings.REDIS_URL_VARIABLE}: a Redis Cluster is reached over TCP "
            "(redis:// or rediss://), not a unix:// socket"
        )
    if cluster and parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError(
            f"{settings.REDIS_URL_VARIABLE}: a Redis Cluster has database 0 only, not "
            f"{parts.path.strip('/')!r}; drop the path or write /0"
        )
    rest = urlencode([(name, value) for name, value in query if name != "cluster"])
    return urlunsplit(parts._replace(query=rest)), cluster


class Down(Exception):
    """Redis cannot be used now: the caller goes on with process-local state."""


class _Connections:
    """The commands this module sends to one (non-cluster) Redis, each on a connection of
    its own while it runs, taken from a list of idle ones.

    redis-py's client and pool cost more than the round trip itself (their per-command
    layers; docs/benchmarks.md has the figures), and a rate-limited call pays one
    command; so the few commands of this module go
    straight to a ``redis.Connection``, which still does the protocol, the handshake
    (password, database, client name) and the timeouts. A connection that fails is
    dropped; one that answered, even with an error reply, goes back to the list.
    """

    def __init__(self, client: redis.Redis) -> None:
        from redis.exceptions import ReadOnlyError, ResponseError

        self._make = client.connection_pool.make_connection
        self.reply_error = ResponseError
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
        except self.reply_error as exc:
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
            # and the retry (see Link.run) should get a fresh one, not the next corpse.
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
            raise connection_error("the connection to Redis was closed")
        future = self._loop.create_future()
        deadline = self._loop.time() + self._timeout
        self._waiting.append((future, deadline))
        # Written at once: held for the rest of the loop's turn to share one write with
        # others, a command waited longer than the write saved (measured, bench/state.py).
        transport.write(encode(args))
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._expire)
        return future

    def _expire(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        oldest = self._waiting[0][1]
        if oldest <= self._loop.time():
            self.close(timeout_error())
        else:
            self._timer = self._loop.call_at(oldest, self._expire)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        position = 0
        try:
            while self._waiting:
                parsed = parse(buffer, position)
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
            self.close(connection_error(f"Redis sent what is not RESP ({exc})"))
            return
        del buffer[:position]

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(connection_error("Redis closed the connection"))

    def close(self, error: BaseException | None = None) -> None:
        """Close the connection; every command still waiting fails with ``error``."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, collections.deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error or connection_error("closed"))
        if self._transport is not None:
            self._transport.close()


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
            pipeline.close(connection_error("the server became a replica"))
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
    if loop.is_running() and running_loop() is not loop:
        # A future and a transport are their loop's to touch.
        loop.call_soon_threadsafe(_close_opened, opening)
    elif not opening.done():
        opening.add_done_callback(_close_opened)
    elif not opening.cancelled() and opening.exception() is None:
        opening.result().close()


class _InThreads:
    """What :meth:`Link.arun` gives a command for a cluster: the cluster client's
    commands, each run on a thread of the loop's default executor, so that the loop does
    not wait for them (redis-py's asyncio cluster client would be one more client to keep
    per loop, for a setup whose round trips cost more than a thread anyway)."""

    def __init__(self, link: Link) -> None:
        self._link = link

    async def _run(self, name: str, *args: object) -> Any:
        method = getattr(self._link.client, name)
        return await asyncio.get_running_loop().run_in_executor(None, method, *args)

    async def execute(self, *args: object) -> Any:
        return await self._run("execute_command", *args)

    async def evalsha(self, sha: str, numkeys: int, *args: object) -> Any:
        return await self._run("evalsha", sha, numkeys, *args)

    async def script_load(self, text: str) -> Any:
        return await self._run("script_load", text)

    async def delete(self, *keys: str) -> Any:
        return await self._run("delete", *keys)

    async def ping(self) -> bool:
        return bool(await self._run("ping"))


class Link:
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
        self.location = redact_url(url) + ("?cluster=true" if cluster else "")
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
        """``command``'s answer, or :class:`Down` when Redis cannot give it now.
        ``command`` is given what sends the commands: :class:`_Connections`, or a
        cluster's client (each has ``evalsha``, ``script_load``, ``delete`` and ``ping``)."""
        with self._watched():
            commands = self._direct or self.client
            try:
                return command(commands)
            except self._connection_errors:  # redis-py's TimeoutError is not one of them
                # A pooled connection that Redis closed (a restart, an idle timeout) fails
                # once; a fresh one may well answer.
                return command(commands)

    async def arun(self, command: Callable[[Any], Awaitable[T]]) -> T:
        """:meth:`run` on an event loop: ``command`` is given what awaits the commands,
        :class:`_AsyncConnections` (or, for a cluster, :class:`_InThreads`), and the loop
        goes on while Redis answers."""
        with self._watched():
            commands = self._async
            if commands is None:
                commands = self._async = (
                    _InThreads(self)
                    if self._cluster
                    else _AsyncConnections(self.url, self._options)
                )
            try:
                return await command(commands)
            except self._connection_errors:  # see run
                return await command(commands)

    @contextlib.contextmanager
    def _watched(self) -> Iterator[None]:
        """Around one command of :meth:`run` or :meth:`arun`: :class:`Down` at once while
        Redis rests, and for what the command raises of the errors that mark Redis down;
        a command that answers marks it up again."""
        if self.down_since is not None and time.monotonic() < self._next_try:
            raise Down
        try:
            yield
        except self._errors as exc:
            self._went_down(exc)
            raise Down from None
        if self.down_since is not None:
            self._came_back()

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the running loop's connections to be closed."""
        commands = self._async
        if isinstance(commands, _AsyncConnections):
            await commands.aclose()
        self.close()

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_interval
            self.error = f"{type(exc).__name__}: {one_line(exc)}"
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


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
