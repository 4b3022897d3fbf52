"""The gateway as a raw ASGI app: OpenAI's chat completions and models endpoints over a
hub, through the public :class:`providerhub.AsyncClient`, plus health, readiness and
metrics.

No framework: one function picks the route from the path, and the hot path (a chat
completion) reads the headers once, parses the body once and writes each chunk as one
ASGI message. Nothing is logged per request or per chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .._client import AsyncChunkStream, AsyncClient
from .._hub import Hub
from .._transport import url_secrets
from ..types import ChatCompletion
from . import _errors as errors
from ._config import ClientKey, ServerSettings
from ._keys import Keys
from ._metrics import Metrics, watch_attempts

__all__ = ["PROVIDER_HEADER", "REQUEST_ID_HEADER", "App"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROVIDER_HEADER = b"x-providerhub-provider"
REQUEST_ID_HEADER = b"x-request-id"

CHAT = "/v1/chat/completions"
ROUTING_ARGUMENTS = ("provider", "auth", "timeout", "retries")
"""Arguments of ``create()`` that are not OpenAI parameters: a client may not set them
through the body (``auth`` would let it choose the upstream credential)."""

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_DONE = b"data: [DONE]\n\n"


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


class _Watch:
    """Cancels the request's task when the client disconnects, so an upstream call (or
    stream) nobody waits for is aborted at once; ``finished`` once the answer is sent."""

    __slots__ = ("disconnected", "finished", "task")

    def __init__(self, receive: Receive) -> None:
        self.finished = False
        self.disconnected = False
        current = asyncio.current_task()
        assert current is not None
        self.task = asyncio.get_running_loop().create_task(self._watch(receive, current))

    async def _watch(self, receive: Receive, request: asyncio.Task[Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.finished:
                    self.disconnected = True
                    request.cancel()
                return

    def stop(self) -> None:
        self.finished = True
        self.task.cancel()


class App:
    """The ASGI application of :func:`providerhub.server.create_app`."""

    def __init__(self, hub: Hub, settings: ServerSettings) -> None:
        self.hub = hub
        self.settings = settings
        self.keys = Keys(settings.keys, hub.state.limiter)
        self.metrics = Metrics()
        self._create = AsyncClient(hub).chat.completions.create
        self._max_body = settings.max_body_bytes
        self._max_concurrency = settings.max_concurrency
        self._secrets = _upstream_secrets(hub)
        self._secret_bytes = tuple(s.encode() for s in self._secrets)
        watch_attempts()

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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.hub.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        request_id = None
        authorization = None
        content_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-request-id":
                request_id = value
            elif name == b"content-length":
                content_length = value
        if request_id is None or not _valid_request_id(request_id):
            request_id = os.urandom(12).hex().encode()
        base = [(REQUEST_ID_HEADER, request_id)]

        if path == CHAT:
            if method != "POST":
                await self._fail(send, base, errors.method_not_allowed(method, path), CHAT)
                return
            await self._chat(receive, send, base, authorization, content_length)
            return
        if path in ("/healthz", "/readyz", "/metrics"):
            if method not in ("GET", "HEAD"):
                await self._fail(send, base, errors.method_not_allowed(method, path), path)
                return
            if path == "/healthz":
                await self._document(send, 200, {"status": "ok"}, base, path)
            elif path == "/readyz":
                await self._ready(send, base)
            else:
                body = self.metrics.render(self.hub, await self.hub.state.acheck())
                headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), *base]
                await _respond(send, 200, headers, body)
                self.metrics.answered(path, 200)
            return
        if path == "/v1/models" or path.startswith("/v1/models/"):
            route = "/v1/models" if path == "/v1/models" else "/v1/models/{id}"
            if method != "GET":
                await self._fail(send, base, errors.method_not_allowed(method, path), route)
                return
            if not self._authorized_for_models(authorization):
                failure = errors.unauthorized(authorization is not None)
                await self._fail(send, base, failure, route)
                return
            if route == "/v1/models":
                await self._document(send, 200, self._models(), base, route)
            else:
                await self._model(send, base, path[len("/v1/models/") :])
            return
        await self._fail(send, base, errors.not_found(path), "other")

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
    ) -> None:
        keys = self.keys
        if keys.required:
            key: ClientKey | None = keys.find(authorization)
            if key is None:
                await self._fail(send, headers, errors.unauthorized(authorization is not None))
                return
            wait = await keys.take(key)
            if wait:
                await self._fail(send, headers, errors.rate_limited(key.name, wait))
                return
        metrics = self.metrics
        if metrics.in_flight >= self._max_concurrency:
            await self._fail(send, headers, errors.over_capacity(self._max_concurrency))
            return
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > self._max_body
        ):
            await self._fail(send, headers, errors.too_large(self._max_body))
            return
        metrics.in_flight += 1
        started = time.perf_counter()
        stream = False
        try:
            try:
                body = await _read_body(receive, self._max_body)
            except _Disconnected:
                return
            if body is None:
                await self._fail(send, headers, errors.too_large(self._max_body))
                return
            request = _parse(body)
            if isinstance(request, errors.Failure):
                await self._fail(send, headers, request)
                return
            stream = request.pop("stream", False) is True
            watch = _Watch(receive)
            try:
                if stream:
                    status = await self._stream(send, headers, request, started, watch)
                else:
                    status = await self._complete(send, headers, request, watch)
            except asyncio.CancelledError:
                if not watch.disconnected:
                    raise  # the server is stopping, not the client
                _uncancel()
                metrics.answered(CHAT, 499)  # nginx's "client closed request"
                return
            finally:
                watch.stop()
            metrics.answered(CHAT, status)
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
            completion: ChatCompletion = await self._create(stream=False, **request)
        except Exception as exc:  # every failure becomes an OpenAI error answer
            watch.finished = True
            return await self._error(send, headers, exc)
        watch.finished = True
        body = self._scrub(dumps(completion.to_dict()))
        headers.append(_JSON)
        if completion.provider:
            headers.append((PROVIDER_HEADER, completion.provider.encode()))
        await _respond(send, 200, headers, body)
        return 200

    async def _stream(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        request: dict[str, Any],
        started: float,
        watch: _Watch,
    ) -> int:
        chunks: AsyncChunkStream | None = None
        try:
            try:
                chunks = await self._create(stream=True, **request)
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
            if first is None:
                watch.finished = True
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
            try:
                async for chunk in chunks:
                    event = b"data: " + scrub(dumps(chunk.to_dict())) + b"\n\n"
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            except Exception as exc:
                # Too late for a status: an error event, as OpenAI sends, which the openai
                # SDK raises as APIError; no [DONE], so no client takes the answer as whole.
                failure = errors.failure_for(exc, self.hub, self._secrets)
                event = b"data: " + dumps(failure.body()) + b"\n\n"
                watch.finished = True
                await send({"type": "http.response.body", "body": event})
                return failure.status
            watch.finished = True
            await send({"type": "http.response.body", "body": _DONE})
            return 200
        finally:
            if chunks is not None:
                await chunks.aclose()

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
        docs: dict[str, dict[str, Any]] = {}
        for model, providers in self.hub.models().items():
            docs[model] = {
                "id": model,
                "object": "model",
                "created": 0,
                "owned_by": providers[0] if providers else "providerhub",
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
            "state": {**dataclasses.asdict(state), "describe": state.describe()},
        }
        await self._document(send, 200 if available else 503, doc, headers, "/readyz")

    # -- answers ---------------------------------------------------------------------------

    def _failure(self, exc: Exception) -> errors.Failure:
        return errors.failure_for(exc, self.hub, self._secrets)

    async def _error(self, send: Send, headers: list[tuple[bytes, bytes]], exc: Exception) -> int:
        failure = self._failure(exc)
        await self._fail(send, headers, failure, None)
        return failure.status

    async def _fail(
        self,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        failure: errors.Failure,
        route: str | None = CHAT,
    ) -> None:
        headers.append(_JSON)
        if failure.retry_after is not None:
            headers.append((b"retry-after", str(failure.retry_after).encode()))
        if failure.provider:
            headers.append((PROVIDER_HEADER, failure.provider.encode()))
        await _respond(send, failure.status, headers, self._scrub(dumps(failure.body())))
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


def _parse(body: bytes) -> dict[str, Any] | errors.Failure:
    """The arguments of ``create()`` from a request body, or the 400 to answer."""
    try:
        request = loads(body)
    except ValueError as exc:
        return errors.bad_request(f"the request body is not valid JSON: {exc}")
    if not isinstance(request, dict):
        return errors.bad_request("the request body must be a JSON object")
    if not isinstance(request.get("model"), str):
        return errors.bad_request("model is required: the name of a model, a string", "model")
    if "messages" not in request:
        return errors.bad_request("messages is required: a list of messages", "messages")
    if "stream" in request and not isinstance(request["stream"], bool):
        return errors.bad_request("stream must be true or false", "stream")
    for name in ROUTING_ARGUMENTS:
        if name in request:
            return errors.bad_request(
                f"{name!r} is not a chat completions parameter (to pin a provider, "
                "name it in the model: 'provider/model')",
                name,
            )
    return request


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
