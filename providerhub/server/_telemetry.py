"""Where a request's time goes: one small record per request (an :class:`Exchange`),
kept in a context variable while the request is served, which the router's attempt
observer (:func:`providerhub._routing.plan.observe_attempts`) adds each attempt's
seconds to. When the request ends, the gateway's own time (the request's minus its
attempts') and the time to its first token go into ``/metrics``' histograms by route,
and, when asked for, into an access log line (:mod:`._access_log`) and OpenTelemetry
spans (:mod:`._otel`).

The cost per request is a record of a few slots, a context variable set and reset and
two histogram counts; nothing per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._access_log import AccessLog
    from ._metrics import Metrics
    from ._otel import Tracing

__all__ = ["Exchange", "Telemetry", "current", "observe_attempt"]


class Exchange:
    """One request as it is served: when it began, what it asked for, and what each
    part of the gateway recorded of it."""

    __slots__ = (
        "answer",
        "attempts",
        "first_token",
        "headers",
        "key",
        "model",
        "peer",
        "provider",
        "route",
        "span",
        "started",
        "started_ns",
        "status",
        "upstream",
    )

    def __init__(self, started: float) -> None:
        self.started = started
        self.started_ns = 0
        """The wall clock at the start, in nanoseconds (for spans; 0 when none is made)."""
        self.route: str | None = None
        """Set by :meth:`Metrics.answered <providerhub.server._metrics.Metrics.answered>`."""
        self.status = 0
        self.upstream = 0.0
        """Seconds spent in provider attempts, retries and fallbacks included."""
        self.attempts = 0
        self.provider: str | None = None
        """The provider of the last attempt."""
        self.model: str | None = None
        """The model asked for (of the last attempt: an alias resolved)."""
        self.first_token: float | None = None
        """Seconds from the request to the first chunk sent, for a stream."""
        self.answer: Any = None
        """The completion or chunk stream ``create()`` gave (for the usage and the model
        answered), kept only when an access log or traces are on."""
        self.key: str | None = None
        """The client key's name."""
        self.peer: tuple[str, int | None] | None = None
        """The host (and port) of a request's one and successful attempt, which has no span
        of its own: its request's span carries it."""
        self.headers: list[tuple[bytes, bytes]] | None = None
        """The answer's headers (the first holds the request id)."""
        self.span: Any = None


_current: ContextVar[Exchange | None] = ContextVar("providerhub_exchange", default=None)


def current() -> Exchange | None:
    """The request being served by this task, if any."""
    return _current.get()


_incoming: ContextVar[list[tuple[bytes, bytes]] | None] = ContextVar(
    "providerhub_incoming", default=None
)


def incoming() -> list[tuple[bytes, bytes]] | None:
    """The headers of the request being served, when traces are on (for its trace's
    parent)."""
    return _incoming.get()


_tracing: Tracing | None = None
"""The spans of attempts, when some app of this process traces."""


def observe_attempt(provider: str, model: str, attempt: int, outcome: str, seconds: float) -> None:
    """The router's observer: an attempt's seconds go to the request whose task made it
    (the async router runs on the request's task; the sync API's threads have no request)."""
    exchange = _current.get()
    if exchange is None:
        return
    exchange.upstream += seconds
    exchange.attempts += 1
    exchange.provider = provider
    exchange.model = model
    if exchange.span is not None and _tracing is not None:
        _tracing.attempt(exchange, provider, model, attempt, outcome, seconds)


Chat = Callable[..., Awaitable[None]]


class Telemetry:
    """Wraps an app's request handler and its ``create()``: a record per request, timed
    into ``metrics``, logged to ``access_log`` and traced by ``tracing`` when given."""

    def __init__(
        self,
        metrics: Metrics,
        access_log: AccessLog | None = None,
        tracing: Tracing | None = None,
        key_name: Callable[[bytes | None], str | None] | None = None,
    ) -> None:
        global _tracing
        from .._routing.plan import observe_attempts

        observe_attempts(observe_attempt)
        self.metrics = metrics
        self.access_log = access_log
        self.tracing = tracing
        self.detailed = access_log is not None or tracing is not None
        self._key_name = key_name
        if tracing is not None:
            _tracing = tracing

    def around(self, chat: Chat) -> Chat:
        """``chat`` (the app's ``_chat``), each call of it recorded."""
        metrics = self.metrics
        detailed = self.detailed
        tracing = self.tracing
        key_name = self._key_name
        perf_counter = time.perf_counter
        finish = self.finish

        async def recorded(*args: Any, **kwargs: Any) -> None:
            exchange = Exchange(perf_counter())
            if detailed:
                exchange.headers = args[2]
                if key_name is not None:
                    exchange.key = key_name(args[3])
                if tracing is not None:
                    tracing.begin(exchange)
            token = _current.set(exchange)
            try:
                await chat(*args, **kwargs)
            finally:
                _current.reset(token)
                if detailed:
                    finish(exchange)
                else:
                    metrics.timed(exchange, perf_counter() - exchange.started)

        return recorded

    def finish(self, exchange: Exchange) -> None:
        seconds = time.perf_counter() - exchange.started
        self.metrics.timed(exchange, seconds)
        if self.tracing is not None:
            self.tracing.end(exchange, seconds)
        if self.access_log is not None:
            self.access_log.write(exchange, seconds)

    def around_http(self, http: Chat) -> Chat:
        """``http`` (the app's ``_http``), its request's headers kept for the spans when
        traces are on; as it is otherwise."""
        if self.tracing is None:
            return http

        async def traced(scope: Any, receive: Any, send: Any) -> None:
            token = _incoming.set(scope["headers"])
            try:
                await http(scope, receive, send)
            finally:
                _incoming.reset(token)

        return traced

    def around_create(self, create: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``create`` (the client's), its answer kept on the request's record: what the
        access log and the spans read the usage and the model answered from."""
        if not self.detailed:
            return create

        async def kept(**request: Any) -> Any:
            answer = await create(**request)
            exchange = _current.get()
            if exchange is not None:
                exchange.answer = answer
                if exchange.model is None:
                    exchange.model = request.get("model")
            return answer

        return kept


def usage_of(answer: Any) -> tuple[int | None, int | None, str | None]:
    """The input and output tokens and the model of a completion, or of a chunk stream
    once it ended (its chunker kept the usage the provider reported, asked for or not)."""
    if answer is None:
        return None, None, None
    usage = getattr(answer, "usage", None)
    model = getattr(answer, "model", None)
    chunker = getattr(answer, "_chunker", None)
    if chunker is not None:
        usage = getattr(chunker, "_usage", None)
        model = getattr(chunker, "model", None)
    if usage is None:
        return None, None, model if isinstance(model, str) else None
    return (
        getattr(usage, "prompt_tokens", None),
        getattr(usage, "completion_tokens", None),
        model if isinstance(model, str) else None,
    )


def request_id(exchange: Exchange) -> str | None:
    headers = exchange.headers
    if headers:
        return headers[0][1].decode("ascii", "replace")
    return None
