"""The gateway's use of the response cache (:mod:`providerhub._cache`): which chat
completions are looked up and kept, what a client's ``Cache-Control`` asks, and the
recording of an answer as it is sent, so that a miss is kept exactly as it was answered.

A hit is answered with ``X-Providerhub-Cache: hit`` and the body the first answer had,
byte for byte (a stream's events up to ``data: [DONE]``), without touching a provider; a
request looked up and not found carries ``X-Providerhub-Cache: miss``. Only whole answers
are kept: status 200, and for a stream, its last event ``[DONE]`` (an answer cut off, an
error event or a client gone is not).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .._cache import CacheSettings, Entry, MemoryCache, ResponseStore, request_key
from .._hub import Hub

__all__ = ["CACHE_HEADER", "GatewayCache", "Lookup", "Recorder"]

CACHE_HEADER = b"x-providerhub-cache"
HIT = (CACHE_HEADER, b"hit")
MISS = (CACHE_HEADER, b"miss")
SHARED = "*"
"""The partition of a shared cache; a client key's is ``key:NAME``, which it cannot be."""
_DONE = b"data: [DONE]\n\n"

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class Lookup:
    """One request's use of the cache: its ``key`` and ``ttl``, and whether it is looked
    up (``read``: not ``no-cache``) and kept (``write``: not ``no-store``)."""

    __slots__ = ("key", "read", "stream", "ttl", "write")

    def __init__(self, key: str, ttl: float, stream: bool, read: bool, write: bool) -> None:
        self.key = key
        self.ttl = ttl
        self.stream = stream
        self.read = read
        self.write = write


class Recorder:
    """An ASGI ``send`` that passes every message on and keeps a copy of the answer's
    status, provider and body."""

    __slots__ = ("_send", "parts", "provider", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.provider = ""
        self.parts: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message["headers"]:
                if name == b"x-providerhub-provider":
                    self.provider = value.decode("latin-1")
        else:
            self.parts.append(message.get("body", b""))
        await self._send(message)


class GatewayCache:
    """The cache of one app: its settings, and its store (Redis when the hub's state is
    in Redis, else this worker's memory)."""

    def __init__(self, settings: CacheSettings, hub: Hub) -> None:
        self.settings = settings
        self._hub = hub  # its aliases read at each request: one added later counts
        self.hits = 0
        self.misses = 0
        self.store: ResponseStore
        response_cache = getattr(hub.state, "response_cache", None)
        if response_cache is not None:  # RedisState: entries shared with every replica
            self.store = response_cache(settings.timeout)
        else:
            self.store = MemoryCache(settings.max_entries, settings.max_bytes)

    @classmethod
    def of(cls, settings: CacheSettings, hub: Hub) -> GatewayCache | None:
        """The app's cache, or None when no model's answers are cached."""
        return cls(settings, hub) if settings.used else None

    def plan(
        self,
        request: Mapping[str, Any],
        stream: bool,
        client: str,
        cache_control: bytes | None,
    ) -> Lookup | None:
        """How the chat completion ``request`` of ``client`` (a key's name) uses the
        cache, or None when its model's answers are not cached, or the client asked for
        neither lookup nor keeping."""
        model: str = request["model"]
        routed = self._hub.aliases.get(model, model)
        ttl = self.settings.ttl_for(model, routed)
        if ttl is None:
            return None
        read = write = True
        if cache_control is not None:
            directives = {d.strip().partition(b"=")[0] for d in cache_control.lower().split(b",")}
            read = b"no-cache" not in directives
            write = b"no-store" not in directives
            if not (read or write):
                return None
        partition = SHARED if self.settings.shared else "key:" + client
        key = request_key(request, model=routed, partition=partition, stream=stream)
        return Lookup(key, ttl, stream, read, write)

    async def find(self, lookup: Lookup) -> Entry | None:
        """The entry of ``lookup``, or None (a miss), counted for :meth:`render`."""
        entry = await self.store.aget(lookup.key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def render(self) -> bytes:
        """The cache's lines of ``/metrics``: this worker's lookups by result, and what
        its memory store holds."""
        store = self.store.kind
        out = [
            "# HELP providerhub_response_cache_lookups_total Chat completions looked up in "
            "the response cache, by result (hit or miss) and store (memory or redis).",
            "# TYPE providerhub_response_cache_lookups_total counter",
            f'providerhub_response_cache_lookups_total{{result="hit",store="{store}"}} {self.hits}',
            f'providerhub_response_cache_lookups_total{{result="miss",store="{store}"}} '
            f"{self.misses}",
        ]
        if isinstance(self.store, MemoryCache):
            out += [
                "# HELP providerhub_response_cache_entries Entries in this worker's memory.",
                "# TYPE providerhub_response_cache_entries gauge",
                f"providerhub_response_cache_entries {len(self.store)}",
                "# HELP providerhub_response_cache_bytes Bytes of answers in this worker's memory.",
                "# TYPE providerhub_response_cache_bytes gauge",
                f"providerhub_response_cache_bytes {self.store.bytes}",
            ]
        return ("\n".join(out) + "\n").encode()

    async def keep(self, lookup: Lookup, recorder: Recorder) -> None:
        """Keep the answer ``recorder`` saw, when it is whole."""
        if recorder.status != 200:
            return
        body = b"".join(recorder.parts)
        if lookup.stream and not body.endswith(_DONE):
            return
        await self.store.aput(lookup.key, Entry(recorder.provider, body), lookup.ttl)
