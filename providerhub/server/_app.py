"""The gateway as a raw ASGI app: OpenAI's chat completions, embeddings and models
endpoints over a hub, through the public :class:`providerhub.AsyncClient`, the client
dialects of :mod:`._dialects` (OpenAI Responses, Anthropic Messages) translated onto
them, plus health, readiness and metrics.

No framework: one function picks the route from the path, and the hot path (a chat
completion) reads the headers once, parses the body once and writes each chunk as one
ASGI message. Nothing is logged per request or per chunk.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from .._client import AsyncChunkStream, AsyncClient
from .._codecs.anthropic_gateway import MessagesRequest, count_tokens
from .._hub import Hub
from .._options import not_a_parameter
from .._provider import Provider
from .._redaction import url_secrets
from .._routing.arouter import AsyncStream
from .._routing.plan import Call
from .._spend import Prices, cost
from .._validation import MAX_DEPTH
from ..errors import InvalidRequestError
from ..types import ChatCompletion, ChatCompletionChunk, CreateEmbeddingResponse, Usage, Verbatim
from . import _errors as errors
from ._caching import HIT, MISS, GatewayCache, Recorder
from ._config import ClientKey, ServerSettings
from ._dialects import COUNT_TOKENS, DIALECTS, Dialect, Events, Read
from ._instrument import instrument
from ._keys import Keys
from ._metrics import Metrics, watch_attempts

if TYPE_CHECKING:
    from ._reload import Reloader

if TYPE_CHECKING:
    from .._provider import Provider
    from .._routing.arouter import AsyncStream
    from .._routing.plan import Call

__all__ = ["DISCONNECT_EXTENSION", "PROVIDER_HEADER", "REQUEST_ID_HEADER", "App"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROVIDER_HEADER = b"x-providerhub-provider"
REQUEST_ID_HEADER = b"x-request-id"

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"

DISCONNECT_EXTENSION = "providerhub.disconnect"
"""An ASGI scope extension of ``providerhub serve``'s protocol
(:mod:`providerhub.server._protocol`): a function that takes a callback to call if the
client goes away before the answer is complete. Under a server without it, a task per
request waits for ``http.disconnect`` instead."""

OnDisconnect = Callable[[Callable[[], None]], None]

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"
_CLOSE = (b"connection", b"close")
_GET_ROUTES = {"/healthz": "/healthz", "/readyz": "/readyz", "/metrics": "/metrics"}
_POST_ROUTES = frozenset({CHAT, COUNT_TOKENS, EMBEDDINGS, *DIALECTS})
_EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_MESSAGES = DIALECTS["/v1/messages"]
_MODELS = "/v1/models"
_MODEL = "/v1/models/{id}"
_EXPOSE = (
    b"access-control-expose-headers",
    b"x-request-id, x-providerhub-provider, retry-after",
)
_VARY = (b"vary", b"origin")
_ALLOWED_HEADERS = b"authorization, content-type, x-request-id, x-api-key"
_valid_header_list = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~, -]{1,1000}").fullmatch
"""Header names and commas: what a preflight may ask for and have echoed back."""


def _json_codec() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

        def dumps(value: Any) -> bytes:
            return encoder.encode(value).encode()

        return dumps, json.loads
    dumps_orjson: Callable[[Any], bytes] = orjson.dumps
    loads_orjson: Callable[[bytes], Any] = orjson.loads
    return dumps_orjson, loads_orjson


dumps, loads = _json_codec()


class _Disconnected(Exception):
    """The client went away before its request body was in."""


class _Deadline:
    """Cancels the current task in ``seconds`` unless :meth:`cancel` comes first;
    ``expired`` tells its cancellation from any other. One timer, armed once."""

    __slots__ = ("_handle", "_task", "expired")

    def __init__(self, seconds: float) -> None:
        self.expired = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def cancel(self) -> None:
        self._handle.cancel()


class _Watch:
    """Cancels the request's task when the client disconnects, so an upstream call (or
    stream) nobody waits for is aborted at once; ``started`` once a stream's status is
    sent, ``finished`` once the answer is being sent.

    Told by the protocol (:data:`DISCONNECT_EXTENSION`) where it can: a task per request
    that waits on ``receive()`` costs more than the rest of the app's own work on it."""

    __slots__ = ("disconnected", "events", "finished", "key", "request", "started", "task")

    def __init__(self, receive: Receive, on_disconnect: OnDisconnect | None) -> None:
        self.key: ClientKey | None = None
        """The client key of the request, whose spend its answer counts to."""
        self.events: Events | None = None
        """A client dialect's stream writer, once its stream began (to end it)."""
        self.finished = False
        self.started = False
        self.disconnected = False
        current = asyncio.current_task()
        assert current is not None
        self.request = current
        self.task: asyncio.Task[None] | None = None
        if on_disconnect is not None:
            on_disconnect(self._lost)
        else:
            self.task = asyncio.get_running_loop().create_task(self._watch(receive))

    def _lost(self) -> None:
        if not self.finished:
            self.disconnected = True
            self.request.cancel()

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._lost()
                return

    def stop(self) -> None:
        self.finished = True
        if self.task is not None:
            self.task.cancel()


class App:
    """The ASGI application of :func:`providerhub.server.create_app`."""

    def __init__(self, hub: Hub, settings: ServerSettings) -> None:
        self.metrics = Metrics()
        self.reloader: Reloader | None = None
        """What reloads the configuration on SIGHUP (set by ``providerhub serve``)."""
        self.configure(hub, settings)
        watch_attempts()

    def configure(self, hub: Hub, settings: ServerSettings) -> None:
        """Serve with ``hub`` and ``settings`` from now on: at start, and on a reload
        (:mod:`._reload`), when requests under way keep what they began with."""
        self.hub = hub
        self.settings = settings
        self.keys = Keys(settings.keys, hub.state.limiter, hub.state.budgets())
        by_model, by_provider = settings.prices
        declared = {name: p.prices for name, p in hub.providers.items()}
        self.prices = Prices(declared, by_model, by_provider)
        client = AsyncClient(hub)
        self._max_body = settings.max_body_bytes
        self._max_concurrency = settings.max_concurrency
        self._body_timeout = settings.body_timeout
        self._cors = frozenset(o.encode() for o in settings.cors_origins)
        self._cors_any = "*" in settings.cors_origins
        # Not the body's to set: ``timeout`` is among the ROUTING_ARGUMENTS it may not name.
        self._upstream = settings.upstream_limits()
        self._secrets = _upstream_secrets(hub)
        self._secret_bytes = tuple(s.encode() for s in self._secrets)
        self.cache = GatewayCache.of(settings.cache, hub)
        telemetry = instrument(self, hub, settings)
        self._create = telemetry.around_create(client.chat.completions.create)
        self._embeddings = telemetry.around_create(client.embeddings.create)
        recorded = telemetry.around(App._chat.__get__(self))
        self._chat = recorded  # type: ignore[method-assign, assignment]
        traced = telemetry.around_http(App._http.__get__(self))
        self._http = traced  # type: ignore[method-assign, assignment]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websocket: not served; returning closes it

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._warm_up()
                if self.reloader is not None:
                    self.reloader.install()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _warm_up(self) -> None:
        """Make the hub's connection pools for this loop before the server takes
        connections. Made by the first chat completion instead, they held the event loop,
        and so every request of the worker, for about 0.2 s on the benchmark machine
        (importing requests and aiohttp, loading the certificates into the TLS context).
        The aiohttp session only when a provider takes the native path. A failure here
        (a ``REQUESTS_CA_BUNDLE`` that cannot be read, say) is logged and left to the
        calls, which meet it and answer as they did before, so that the server still
        starts."""
        from .._routing import arouter

        try:
            self.hub.session  # noqa: B018 (made on first use: every call is given it)
            if any(arouter.native([p]) for p in self.hub.providers.values()):
                await self.hub._aiohttp_session()
        except Exception as exc:
            errors.logger.warning(
                "the connection pools could not be made at startup (%s: %s); each call tries again",
                type(exc).__name__,
                exc,
            )

    # -- routing ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        request_id = None
        authorization = None
        content_length = None
        origin = None
        api_key = None
        betas = None
        cache_control = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-api-key":  # how Anthropic's clients send a key
                api_key = value
            elif name == b"anthropic-beta":
                betas = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"content-length":
                content_length = value
            elif name == b"origin":
                origin = value
            elif name == b"cache-control":
                cache_control = value
        if request_id is None or not _valid_request_id(request_id):
            request_id = os.urandom(12).hex().encode()
        base = [(REQUEST_ID_HEADER, request_id)]
        if origin is not None and self._cors:
            base += self._cors_headers(origin)

        if path == CHAT:
            if method == "POST":
                extensions = scope.get("extensions")
                on_disconnect = extensions and extensions.get(DISCONNECT_EXTENSION)
                await self._chat(
                    receive,
                    send,
                    base,
                    authorization,
                    content_length,
                    on_disconnect or None,
                    cache_control=cache_control,
                )
            else:
                await self._other_method(scope, send, base, CHAT, origin)
            return
        if path in _POST_ROUTES:
            if method != "POST":
                await self._other_method(scope, send, base, path, origin)
                return
            if authorization is None and api_key is not None:
                authorization = b"Bearer " + api_key
            extensions = scope.get("extensions")
            on_disconnect = extensions and extensions.get(DISCONNECT_EXTENSION)
            if path == EMBEDDINGS:
                await self._chat(
                    receive,
                    send,
                    base,
                    authorization,
                    content_length,
                    on_disconnect or None,
                    embeddings=True,
                )
                return
            dialect = DIALECTS.get(path, _MESSAGES)
            await self._chat(
                receive,
                send,
                base,
                authorization,
                content_length,
                on_disconnect or None,
                dialect,
                counting=path == COUNT_TOKENS,
                betas=betas,
            )
            return
        route = _GET_ROUTES.get(path)
        if route is None:
            if path == _MODELS:
                route = _MODELS
            elif path.startswith("/v1/models/"):
                route = _MODEL
            else:
                await self._fail(send, base, errors.not_found(path), "other")
                return
        if method not in ("GET", "HEAD"):  # HEAD: uvicorn sends the headers only
            await self._other_method(scope, send, base, route, origin)
        elif route == "/healthz":
            await self._document(send, 200, {"status": "ok"}, base, route)
        elif route == "/readyz":
            await self._ready(send, base)
        elif route == "/metrics":
            body = self.metrics.render(self.hub, await self.hub.state.acheck())
            if self.cache is not None:
                body += self.cache.render()
            headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), *base]
            await _respond(send, 200, headers, body)
            self.metrics.answered(route, 200)
        elif not self._authorized_for_models(authorization):
            await self._fail(send, base, errors.unauthorized(authorization is not None), route)
        elif route == _MODELS:
            await self._document(send, 200, self._models(), base, route)
        elif path == "/v1/models/":  # no id: no such model, nor a model named ""
            await self._fail(send, base, errors.not_found(path), route)
        else:
            await self._model(send, base, path[len("/v1/models/") :])

    async def _other_method(
        self,
        scope: Scope,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        route: str,
        origin: bytes | None,
    ) -> None:
        """A method the route does not serve: 405 with ``Allow``, or with CORS on, the
        answer to an ``OPTIONS`` (a browser's preflight)."""
        allow = "POST" if route in _POST_ROUTES else "GET, HEAD"
        if self._cors:
            allow += ", OPTIONS"
        headers.append((b"allow", allow.encode()))
        method: str = scope["method"]
        if method != "OPTIONS" or not self._cors:
            failure = errors.method_not_allowed(method, scope["path"], allow)
            await self._fail(send, headers, failure, route)
            return
        if origin is not None:
            if not self._cors_allows(origin):
                failure = errors.origin_not_allowed(origin.decode("latin-1"))
                await self._fail(send, headers, failure, route)
                return
            asked = b""
            for name, value in scope["headers"]:
                if name == b"access-control-request-headers":
                    asked = value
            # The client's own headers (the openai SDKs add x-stainless-*): a key is
            # what guards the server, not a list of header names.
            allowed = asked if asked and _valid_header_list(asked) else _ALLOWED_HEADERS
            headers += [
                (b"access-control-allow-methods", allow.encode()),
                (b"access-control-allow-headers", allowed),
                (b"access-control-max-age", b"600"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        self.metrics.answered(route, 204)

    def _cors_allows(self, origin: bytes) -> bool:
        return self._cors_any or origin in self._cors

    def _cors_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """What an answer to ``origin`` carries with CORS on: the origin allowed (``*``
        with ``cors_origins = ["*"]``, whose answers do not vary), or only ``Vary``."""
        if self._cors_any:
            return [(b"access-control-allow-origin", b"*"), _EXPOSE]
        if origin in self._cors:
            return [(b"access-control-allow-origin", origin), _VARY, _EXPOSE]
        return [_VARY]

    def _authorized_for_models(self, authorization: bytes | None) -> bool:
        return not self.keys.required or self.keys.find(authorization) is not None

    # -- chat completions ------------------------------------------------------------------

    async def _chat(
        self,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        authorization: bytes | None,
        content_length: bytes | None,
        on_disconnect: OnDisconnect | None = None,
        dialect: Dialect | None = None,
        *,
        counting: bool = False,
        embeddings: bool = False,
        betas: bytes | None = None,
        cache_control: bytes | None = None,
    ) -> None:
        """Serve a chat completion in OpenAI's chat dialect, or in ``dialect``'s
        (``counting``: Anthropic's token count, estimated), or OpenAI's embeddings
        (``embeddings``), each admitted alike: keys, limits, body caps, concurrency."""
        route = CHAT if dialect is None else COUNT_TOKENS if counting else dialect.route
        if embeddings:
            route = EMBEDDINGS
        shape = None if dialect is None else dialect.error
        keys = self.keys
        key: ClientKey | None = None
        client = ""
        if keys.required:
            key = keys.find(authorization)
            if key is None:
                failure = errors.unauthorized(authorization is not None)
                await self._fail(send, headers, failure, route, shape)
                return
            wait = await keys.take(key)
            if wait:
                await self._fail(send, headers, errors.rate_limited(key.name, wait), route, shape)
                return
            if key.budget is not None:
                over = await keys.over_budget(key)
                if over is not None:
                    await self._fail(send, headers, errors.over_budget(over), route, shape)
                    return
            client = key.name
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > self._max_body
        ):
            await self._fail(send, headers, errors.too_large(self._max_body), route, shape)
            return
        started = time.perf_counter()
        # The body first, within its timeout: a client slow to send holds a connection,
        # never one of the slots, which go to requests ready to be served.
        deadline = _Deadline(self._body_timeout)
        try:
            body = await _read_body(receive, self._max_body)
        except _Disconnected:
            return
        except asyncio.CancelledError:
            _uncancel()  # the deadline's, or the server stopping: answered either way
            failure = (
                errors.timed_out("body", self._body_timeout)
                if deadline.expired
                else errors.shutting_down()
            )
            headers.append(_CLOSE)  # the rest of the body is not waited for
            await self._fail(send, headers, failure, route, shape)
            return
        finally:
            deadline.cancel()
        if body is None:
            await self._fail(send, headers, errors.too_large(self._max_body), route, shape)
            return
        metrics = self.metrics
        if metrics.in_flight >= self._max_concurrency:
            failure = errors.over_capacity(self._max_concurrency)
            await self._fail(send, headers, failure, route, shape)
            return
        metrics.in_flight += 1
        stream = False
        try:
            if embeddings:
                request = _parse_embeddings(body)
                read = None
            elif dialect is None:
                request = _parse(body)
                read = None
            else:
                request, read = _read(dialect, body, counting)
                if isinstance(read, MessagesRequest) and counting:
                    doc = {"input_tokens": count_tokens(read)}
                    await self._document(send, 200, doc, headers, route)
                    return
            if isinstance(request, errors.Failure):
                await self._fail(send, headers, request, route, shape)
                return
            stream = request.pop("stream", False) is True
            recorder = lookup = None
            if self.cache is not None and dialect is None and not embeddings:
                lookup = self.cache.plan(request, stream, client, cache_control)
                if lookup is not None:
                    if lookup.read:
                        entry = await self.cache.find(lookup)
                        if entry is not None:
                            await self._cached(send, headers, entry.provider, entry.body, stream)
                            metrics.answered(route, 200)
                            return
                        headers.append(MISS)
                    if lookup.write:
                        send = recorder = Recorder(send)
            own = len(headers)  # the answer's headers before _stream or _complete add theirs
            watch = _Watch(receive, on_disconnect)
            watch.key = key
            try:
                if embeddings:
                    status = await self._embed(send, headers, request, watch)
                elif dialect is not None and read is not None:
                    status = await self._translated(
                        dialect, read, send, headers, request, started, watch, betas
                    )
                elif stream:
                    status = await self._stream(send, headers, request, started, watch)
                else:
                    status = await self._complete(send, headers, request, watch)
                if recorder is not None and lookup is not None and self.cache is not None:
                    await self.cache.keep(lookup, recorder)
            except asyncio.CancelledError:
                _uncancel()
                if watch.disconnected:
                    metrics.answered(route, 499)  # nginx's "client closed request"
                    return
                # Not the client: the server stopping, past its drain deadline.
                status = await self._cut(send, headers[:own], watch, dialect)
            finally:
                watch.stop()
            metrics.answered(route, status)
        finally:
            metrics.in_flight -= 1
            metrics.latency[stream].observe(time.perf_counter() - started)

    async def _complete(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        request: dict[str, Any],
        watch: _Watch,
    ) -> int:
        try:
            completion: ChatCompletion = await self._create(
                stream=False, timeout=self._upstream, **request
            )
        except Exception as exc:  # every failure becomes an OpenAI error answer
            watch.finished = True
            return await self._error(send, headers, exc)
        watch.finished = True
        await self._spend(watch.key, completion.provider, completion.model, completion.usage)
        body = self._scrub(dumps(completion.to_dict()))
        return await self._whole(send, headers, completion.provider, body)

    async def _cached(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        provider: str,
        body: bytes,
        stream: bool,
    ) -> None:
        """Answer with a cached answer's ``body``: a stream's events at once, as they were
        first sent, or the document."""
        headers.extend(_SSE_HEADERS if stream else (_JSON,))
        if provider:
            headers.append((PROVIDER_HEADER, provider.encode()))
        headers.append(HIT)
        await _respond(send, 200, headers, body)

    async def _embed(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        request: dict[str, Any],
        watch: _Watch,
    ) -> int:
        """Answer an embeddings request with OpenAI's document (vectors as floats, or
        base64 as asked), or its error."""
        try:
            answer: CreateEmbeddingResponse = await self._embeddings(
                timeout=self._upstream, **request
            )
        except Exception as exc:  # every failure becomes an OpenAI error answer
            watch.finished = True
            return await self._error(send, headers, exc)
        watch.finished = True
        used = answer.usage
        usage = Usage(used.prompt_tokens, 0, used.total_tokens)
        await self._spend(watch.key, answer.provider, answer.model, usage)
        body = self._scrub(dumps(answer.to_dict()))
        return await self._whole(send, headers, answer.provider, body)

    async def _stream(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        request: dict[str, Any],
        started: float,
        watch: _Watch,
    ) -> int:
        chunks: AsyncChunkStream | None = None
        # The usage is asked for upstream whatever the client asked, for the spend; its
        # chunk reaches the client only if the client asked for it.
        options = request.get("stream_options")
        hide_usage = options is None or (
            isinstance(options, dict) and options.get("include_usage") is not True
        )
        if hide_usage:
            request["stream_options"] = {**(options or {}), "include_usage": True}
        try:
            try:
                chunks = await self._create(stream=True, timeout=self._upstream, **request)
                first = await chunks.__anext__()
            except StopAsyncIteration:
                first = None
            except Exception as exc:  # before any byte went out: a proper error status
                watch.finished = True
                return await self._error(send, headers, exc)
            assert chunks is not None
            headers.extend(_SSE_HEADERS)
            if chunks.provider:
                headers.append((PROVIDER_HEADER, chunks.provider.encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            watch.started = True
            if first is None:
                watch.finished = True
                await self._spend(watch.key, chunks.provider, request["model"], chunks.usage)
                await send({"type": "http.response.body", "body": _DONE})
                return 200
            scrub = self._scrub
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + scrub(dumps(first.to_dict())) + b"\n\n",
                    "more_body": True,
                }
            )
            self.metrics.first_token.observe(time.perf_counter() - started)
            following = chunks.anext_text
            try:
                head, tail = _text_template(chunks)
                # With no secret to scrub, a text chunk's event is the template around it.
                plain = head and not self._secret_bytes
                event_head, event_tail = b"data: " + head, tail + b"\n\n"
                while True:
                    try:
                        chunk = await following()
                    except StopAsyncIteration:
                        break
                    if not isinstance(chunk, str):
                        if hide_usage and not chunk.choices:
                            continue  # the usage chunk, which the client did not ask for
                        event = b"data: " + scrub(dumps(chunk.to_dict())) + b"\n\n"
                    elif plain:
                        event = event_head + dumps(chunk) + event_tail
                    else:
                        doc = head + dumps(chunk) + tail if head else _text_doc(chunks, chunk)
                        event = b"data: " + scrub(doc) + b"\n\n"
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            except Exception as exc:
                # Too late for a status: an error event, as OpenAI sends, which the openai
                # SDK raises as APIError; no [DONE], so no client takes the answer as whole.
                failure = self._failure(exc, headers, mid_answer=True)
                event = b"data: " + dumps(failure.body()) + b"\n\n"
                watch.finished = True
                await self._spend(watch.key, chunks.provider, first.model, chunks.usage)
                await send({"type": "http.response.body", "body": event})
                return failure.status
            watch.finished = True
            await self._spend(watch.key, chunks.provider, first.model, chunks.usage)
            await send({"type": "http.response.body", "body": _DONE})
            return 200
        finally:
            if chunks is not None:
                await chunks.aclose()

    async def _cut(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        watch: _Watch,
        dialect: Dialect | None = None,
    ) -> int:
        """End an answer the server stopped: a stream with an error event (no ``[DONE]``),
        as a failure mid-stream is; a request not answered yet with 503."""
        failure = errors.shutting_down()
        if watch.started:
            if dialect is not None and watch.events is not None:
                event = dialect.broken(watch.events, failure)
            else:
                event = b"data: " + dumps(failure.body()) + b"\n\n"
            await send({"type": "http.response.body", "body": event})
        elif not watch.finished:
            await self._fail(
                send, headers, failure, None, None if dialect is None else dialect.error
            )
        return failure.status

    async def _passed(
        self,
        call: Call,
        candidates: list[Provider],
        read: MessagesRequest,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        started: float,
        watch: _Watch,
    ) -> int:
        """A Messages request sent through unchanged to providers that speak Messages,
        and their answer passed back as it came (:class:`~providerhub.types.Verbatim`):
        thinking blocks with their signatures, cache usage and every field the gateway
        does not know survive. Failures before the answer begins are retried and failed
        over as for any call; after, the stream ends with an ``error`` event."""
        error_shape = _MESSAGES.error
        if not call.stream:
            pieces: list[Any] = []
            try:
                provider = await self.hub._acollect(call, candidates, pieces.append)
            except Exception as exc:
                watch.finished = True
                failure = self._failure(exc, headers)
                await self._fail(send, headers, failure, None, error_shape)
                return failure.status
            watch.finished = True
            usage = next((p for p in reversed(pieces) if type(p) is Usage), None)
            await self._spend(watch.key, provider, call.model, usage)
            body = b"".join(p.data for p in pieces if type(p) is Verbatim)
            return await self._whole(send, headers, provider, self._scrub(body))
        stream = self.hub._astream(call, candidates)
        used: list[Usage] = []
        try:
            try:
                first = await _next_verbatim(stream, used)
            except Exception as exc:
                watch.finished = True
                failure = self._failure(exc, headers)
                await self._fail(send, headers, failure, None, error_shape)
                return failure.status
            headers.extend(_SSE_HEADERS)
            if stream.provider:
                headers.append((PROVIDER_HEADER, stream.provider.encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            watch.started = True
            events = watch.events = _MESSAGES.events(read, None, dumps)
            if first is None:
                watch.finished = True
                await self._spend(
                    watch.key, stream.provider, call.model, used[-1] if used else None
                )
                await send({"type": "http.response.body", "body": b""})
                return 200
            self.metrics.first_token.observe(time.perf_counter() - started)
            scrub = self._scrub
            body = scrub(first)
            try:
                while True:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    data = await _next_verbatim(stream, used)
                    if data is None:
                        break
                    body = scrub(data)
            except Exception as exc:
                failure = self._failure(exc, headers, mid_answer=True)
                watch.finished = True
                await self._spend(
                    watch.key, stream.provider, call.model, used[-1] if used else None
                )
                event = _MESSAGES.broken(events, failure)
                await send({"type": "http.response.body", "body": event})
                return failure.status
            watch.finished = True
            await self._spend(watch.key, stream.provider, call.model, used[-1] if used else None)
            await send({"type": "http.response.body", "body": b""})
            return 200
        finally:
            await stream.aclose()

    async def _translated(
        self,
        dialect: Dialect,
        read: Read,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        request: dict[str, Any],
        started: float,
        watch: _Watch,
        betas: bytes | None = None,
    ) -> int:
        """A request in ``dialect``, made as a chat completion and answered in that
        dialect: a whole document, or its event stream. A Messages request whose every
        candidate speaks Messages itself is passed through instead (:meth:`_passed`)."""
        if isinstance(read, MessagesRequest):
            try:
                passed = self.hub._pass_through(
                    read.model,
                    read.original,
                    stream=read.stream,
                    betas=betas.decode("latin-1") if betas else None,
                    timeout=self._upstream,
                )
            except Exception as exc:
                watch.finished = True
                failure = self._failure(exc, headers)
                await self._fail(send, headers, failure, None, dialect.error)
                return failure.status
            if passed is not None:
                call, candidates = passed
                return await self._passed(call, candidates, read, send, headers, started, watch)
        chunks: AsyncChunkStream | None = None
        first: ChatCompletionChunk | None = None
        try:
            try:
                if read.stream:
                    chunks = await self._create(stream=True, timeout=self._upstream, **request)
                    first = await chunks.__anext__()
                else:
                    answer: ChatCompletion = await self._create(
                        stream=False, timeout=self._upstream, **request
                    )
            except StopAsyncIteration:
                pass
            except Exception as exc:  # before any byte went out: a proper error status
                watch.finished = True
                failure = self._failure(exc, headers)
                await self._fail(send, headers, failure, None, dialect.error)
                return failure.status
            if chunks is None:
                watch.finished = True
                await self._spend(watch.key, answer.provider, answer.model, answer.usage)
                body = self._scrub(dumps(dialect.document(answer.to_dict(), read)))
                return await self._whole(send, headers, answer.provider, body)
            headers.extend(_SSE_HEADERS)
            if chunks.provider:
                headers.append((PROVIDER_HEADER, chunks.provider.encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            watch.started = True
            events = watch.events = dialect.events(read, first.model if first else None, dumps)
            scrub = self._scrub
            opening = events.start()
            if first is not None:
                opening += events.chunk(first.to_dict())
                self.metrics.first_token.observe(time.perf_counter() - started)
            await send({"type": "http.response.body", "body": scrub(opening), "more_body": True})
            following = chunks.anext_text
            try:
                while True:
                    try:
                        chunk = await following()
                    except StopAsyncIteration:
                        break
                    if isinstance(chunk, str):
                        event = events.text(chunk)
                    else:
                        event = events.chunk(chunk.to_dict())
                    if event:
                        await send(
                            {"type": "http.response.body", "body": scrub(event), "more_body": True}
                        )
            except Exception as exc:
                failure = self._failure(exc, headers, mid_answer=True)
                watch.finished = True
                await self._spend(watch.key, chunks.provider, request["model"], chunks.usage)
                await send({"type": "http.response.body", "body": dialect.broken(events, failure)})
                return failure.status
            watch.finished = True
            await self._spend(watch.key, chunks.provider, request["model"], chunks.usage)
            await send({"type": "http.response.body", "body": scrub(events.finish())})
            return 200
        finally:
            if chunks is not None:
                await chunks.aclose()

    # -- spend -------------------------------------------------------------------------

    async def _spend(
        self, key: ClientKey | None, provider: str | None, model: str, usage: Usage | None
    ) -> None:
        """Count an answer's tokens and cost in the metrics, and charge the cost to
        ``key``'s budget when it has one, before the answer's last bytes go out: a client
        that has its answer finds it counted, on every replica."""
        spent = cost(usage, self.prices.find(provider, model))
        self.metrics.spent(provider or "", model, "" if key is None else key.name, usage, spent)
        if key is not None and key.budget is not None and isinstance(spent, int) and spent:
            await self.keys.spend(key, spent)

    async def _whole(
        self, send: Send, headers: list[tuple[bytes, bytes]], provider: str | None, body: bytes
    ) -> int:
        """Answer 200 with a whole JSON document ``body``, naming the ``provider``."""
        headers.append(_JSON)
        if provider:
            headers.append((PROVIDER_HEADER, provider.encode()))
        await _respond(send, 200, headers, body)
        return 200

    def _scrub(self, data: bytes) -> bytes:
        # An upstream that echoes its credential back must not hand it to clients.
        for secret in self._secret_bytes:
            if secret in data:
                data = data.replace(secret, b"***")
        return data

    # -- models, readiness -----------------------------------------------------------------

    def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": list(self._model_docs().values())}

    def _model_docs(self) -> dict[str, dict[str, Any]]:
        """The models a client can be served: those of a provider that works and has its
        credential (an installed plugin without its key lists none)."""
        registered = self.hub.providers
        usable = {
            name
            for name, p in registered.items()
            if p.working and not (p.needs_auth and not p.credential(None))
        }
        docs: dict[str, dict[str, Any]] = {}
        # Chat models, then embedding models; a name of both kinds is one entry.
        for by_model in (self.hub.models(), self.hub.embedding_models()):
            for model, listed in by_model.items():
                providers = [name for name in listed if name in usable]
                if not providers:
                    continue
                if model in docs:
                    known = docs[model]["providers"]
                    known.extend(p for p in providers if p not in known)
                    continue
                docs[model] = {
                    "id": model,
                    "object": "model",
                    "created": 0,
                    "owned_by": providers[0],
                    "providers": providers,
                }
        for alias, target in self.hub.aliases.items():
            docs[alias] = {
                "id": alias,
                "object": "model",
                "created": 0,
                "owned_by": "providerhub",
                "alias_for": target,
            }
        return docs

    async def _model(self, send: Send, headers: list[tuple[bytes, bytes]], model: str) -> None:
        route = "/v1/models/{id}"
        doc = self._model_docs().get(model)
        if doc is None:
            try:
                candidates = self.hub.route(model)  # a pinned name, or an unknown one
            except Exception as exc:
                await self._fail(send, headers, self._failure(exc), route)
                return
            owner = candidates[0].name if candidates else "providerhub"
            doc = {"id": model, "object": "model", "created": 0, "owned_by": owner}
        await self._document(send, 200, doc, headers, route)

    async def _ready(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        hub = self.hub
        state = await hub.state.acheck()
        # Failing closed, a provider with a rate limit takes no call while its count
        # cannot be shared; failing open (the default), it goes on, counted here.
        limits_refused = not state.shared and hub.state.fail_closed
        available = [
            p.name
            for p in hub.providers.values()
            if p.working
            and not (p.needs_auth and not p.credential(None))
            and not (limits_refused and p.limits)
            and hub.health.cooling(p.name) is None
        ]
        doc: dict[str, Any] = {
            "status": "ready" if available else "not ready",
            "providers": available,
            "plugin_errors": [e.name for e in hub.plugin_errors],
            # Anyone may ask: no Redis address, no redis-py error text.
            "state": state.public(),
        }
        await self._document(send, 200 if available else 503, doc, headers, "/readyz")

    # -- answers ---------------------------------------------------------------------------

    def _failure(
        self,
        exc: Exception,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        mid_answer: bool = False,
    ) -> errors.Failure:
        """The answer for ``exc``; for a request's failure (its ``headers`` given, with
        its id), logged with the detail the client is not told."""
        request_id = None if headers is None else _request_id(headers)
        failure = errors.failure_for(
            exc,
            self.hub,
            self._secrets,
            upstream_timeout=self._upstream.total,
            request_id=request_id,
            mid_answer=mid_answer,
        )
        if request_id is not None:
            errors.log_failure(exc, failure, request_id, self._secrets)
        return failure

    async def _error(self, send: Send, headers: list[tuple[bytes, bytes]], exc: Exception) -> int:
        failure = self._failure(exc, headers)
        await self._fail(send, headers, failure, None)
        return failure.status

    async def _fail(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        failure: errors.Failure,
        route: str | None = CHAT,
        shape: Callable[[errors.Failure], Mapping[str, Any]] | None = None,
    ) -> None:
        """Answer with ``failure``, its body in OpenAI's shape or, for a client dialect,
        in the dialect's (``shape``)."""
        headers.append(_JSON)
        if failure.retry_after is not None:
            headers.append((b"retry-after", str(failure.retry_after).encode()))
        if failure.provider:
            headers.append((PROVIDER_HEADER, failure.provider.encode()))
        doc = failure.body() if shape is None else shape(failure)
        await _respond(send, failure.status, headers, self._scrub(dumps(doc)))
        if route is not None:
            self.metrics.answered(route, failure.status)

    async def _document(
        self,
        send: Send,
        status: int,
        doc: Mapping[str, Any],
        headers: list[tuple[bytes, bytes]],
        route: str,
    ) -> None:
        headers.append(_JSON)
        await _respond(send, status, headers, dumps(doc))
        self.metrics.answered(route, status)


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    # A length rather than chunks: one less framing, and HEAD answers tell it too.
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        piece: bytes = message.get("body", b"")
        size += len(piece)
        if size > limit:
            return None
        parts.append(piece)
        if not message.get("more_body", False):
            return b"".join(parts)


_MARK = "\x00providerhub-text\x00"


def _text_template(chunks: AsyncChunkStream) -> tuple[bytes, bytes]:
    """The JSON of a stream's chunk of text around its text: ``head + dumps(text) + tail``
    is ``dumps(chunks.text_chunk(text).to_dict())`` (a chunk's id, time and model are
    those of its stream), with no chunk, dict or list built. Empty when another field
    holds the mark (a model named so): each chunk is then built."""
    mark = dumps(_MARK)
    whole = dumps(chunks.text_chunk(_MARK).to_dict())
    if whole.count(mark) != 1:
        return b"", b""
    head, _, tail = whole.partition(mark)
    return head, tail


def _text_doc(chunks: AsyncChunkStream, text: str) -> bytes:
    """The JSON of the chunk of ``text``, built (without :func:`_text_template`)."""
    return dumps(chunks.text_chunk(text).to_dict())


def _parse(body: bytes) -> dict[str, Any] | errors.Failure:
    """The arguments of ``create()`` from a request body, or the 400 to answer."""
    try:
        request = loads(body)
    except ValueError as exc:
        return errors.bad_request(f"the request body is not valid JSON: {exc}")
    except RecursionError:  # the standard library's parser, without orjson
        return errors.bad_request(
            "the request body nests deeper than this server reads; messages and "
            f"parameters may nest at most {MAX_DEPTH} levels"
        )
    if not isinstance(request, dict):
        return errors.bad_request("the request body must be a JSON object")
    if not isinstance(request.get("model"), str):
        return errors.bad_request("model is required: the name of a model, a string", "model")
    if "messages" not in request:
        return errors.bad_request("messages is required: a list of messages", "messages")
    if "stream" in request and not isinstance(request["stream"], bool):
        return errors.bad_request("stream must be true or false", "stream")
    for name in request:
        why = not_a_parameter(name)
        if why is not None:
            return errors.bad_request(why, name)
    return request


def _parse_embeddings(body: bytes) -> dict[str, Any] | errors.Failure:
    """The arguments of ``embeddings.create()`` from a request body, or the 400 to answer:
    OpenAI's fields only (``model`` and ``input`` required), checked further, as any
    caller's, by the client."""
    try:
        request = loads(body)
    except ValueError as exc:
        return errors.bad_request(f"the request body is not valid JSON: {exc}")
    except RecursionError:
        return errors.bad_request(
            f"the request body nests deeper than this server reads (at most {MAX_DEPTH} levels)"
        )
    if not isinstance(request, dict):
        return errors.bad_request("the request body must be a JSON object")
    if not isinstance(request.get("model"), str):
        return errors.bad_request("model is required: the name of a model, a string", "model")
    if "input" not in request:
        return errors.bad_request("input is required: a string or a list of strings", "input")
    for name in request:
        if name not in _EMBEDDING_FIELDS:
            return errors.bad_request(
                f"{name!r} is not an embeddings parameter (they are: "
                f"{', '.join(sorted(_EMBEDDING_FIELDS))})",
                name,
            )
    return request


def _read(
    dialect: Dialect, body: bytes, counting: bool = False
) -> tuple[dict[str, Any] | errors.Failure, Read | None]:
    """The ``create()`` arguments of a request in ``dialect`` and the request read, or
    the 400 to answer; ``counting``, a token count's, which needs no ``max_tokens``."""
    try:
        doc = loads(body)
    except ValueError as exc:
        return errors.bad_request(f"the request body is not valid JSON: {exc}"), None
    except RecursionError:
        return errors.bad_request(
            f"the request body nests deeper than this server reads (at most {MAX_DEPTH} levels)"
        ), None
    if counting and isinstance(doc, dict) and "max_tokens" not in doc:
        doc = {**doc, "max_tokens": 1}
    try:
        read = dialect.read(doc)
    except InvalidRequestError as exc:
        return errors.bad_request(str(exc), exc.param), None
    return dict(read.chat), read


async def _next_verbatim(stream: AsyncStream, used: list[Usage]) -> bytes | None:
    """The next frame a pass-through stream passes on, or None at its end; its usage
    pieces (the limiter's) are appended to ``used``, for the spend."""
    while True:
        try:
            piece = await stream.__anext__()
        except StopAsyncIteration:
            return None
        if type(piece) is Verbatim:
            data: bytes = piece.data
            return data
        if type(piece) is Usage:
            used.append(piece)


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The id of the request whose answer ``headers`` are (the first one, set at once)."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii")
    return "-"


_valid_request_id = re.compile(rb"[\x21-\x7e]{1,200}").fullmatch
"""An id a client sent is echoed when it is 1 to 200 visible ASCII characters."""


def _uncancel() -> None:
    # Python 3.11+: the cancellation was ours, and is handled; later awaits must not see it.
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


def _upstream_secrets(hub: Hub) -> tuple[str, ...]:
    """Every upstream credential the hub's providers may send: their keys, and the user
    info of their urls."""
    found: set[str] = set()
    for provider in hub.providers.values():
        key = provider.credential(None)
        if key:
            found.add(key)
        found.update(url_secrets(provider.url))
    return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))
