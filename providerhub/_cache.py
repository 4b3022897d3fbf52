"""The response cache: which answers are kept, under what key, and the store in memory
(the Redis store is :mod:`providerhub._state.redis.cache`).

Configured by the ``[response_cache]`` table of providerhub's configuration file, off
unless it says so, for every model or for some::

    [response_cache]
    enabled = true          # every model's answers (false by default)
    ttl = 300               # seconds an answer is served again
    max_entries = 10000     # the memory store's bounds, per worker: the least recently
    max_bytes = 104857600   #   used answers go first past either
    shared = false          # true: one cache for every client key
    timeout = 0.05          # seconds a Redis lookup or write may take: past it, a miss

    [response_cache.models."gpt-4o"]
    enabled = true          # this model's answers, whatever the table above says
    ttl = 3600

``PROVIDERHUB_RESPONSE_CACHE_ENABLED``, ``_TTL``, ``_MAX_ENTRIES``, ``_MAX_BYTES``,
``_SHARED`` and ``_TIMEOUT`` override the table's values (``PROVIDERHUB_CACHE_DIR`` is
the models list's, not this).

The key of an answer is the SHA-256 of the request in canonical JSON (sorted keys, no
spaces): the model as routed (an alias's target), the messages, the tools and every
parameter that can change the answer, but not ``stream``, ``user``, ``metadata`` or
``store``; a streamed answer and a whole document are kept apart, as each is replayed in
its own shape. The key starts from the client key's name unless the cache is shared, so
nothing one client key was answered is served to another; an entry holds the answer as
it was sent (already scrubbed of upstream credentials) and the provider's name, never a
client key or a credential.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._timeout import MAX_SECONDS
from .errors import ConfigurationError

__all__ = [
    "ENV_PREFIX",
    "CacheSettings",
    "Entry",
    "MemoryCache",
    "ModelCache",
    "ResponseStore",
    "load_settings",
    "request_key",
]

ENV_PREFIX = "PROVIDERHUB_RESPONSE_CACHE_"
DEFAULT_TTL = 300.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_TIMEOUT = 0.05
"""Seconds a Redis lookup may take before it counts as a miss: a Redis hit takes well
under a millisecond on a LAN, and a lookup is paid by every cached model's misses."""

IGNORED = frozenset({"stream", "user", "metadata", "store"})
"""Request fields that do not change the answer, left out of its key."""
_FIELDS = ("enabled", "ttl", "max_entries", "max_bytes", "shared", "timeout", "models")
_MODEL_FIELDS = ("enabled", "ttl")
VERSION = 1
"""Starts every key: a change to what a key covers changes it, so old entries miss."""


@dataclass(frozen=True)
class ModelCache:
    """One model's setting: whether its answers are cached, and for how long."""

    enabled: bool
    ttl: float


@dataclass(frozen=True)
class CacheSettings:
    """What the ``[response_cache]`` table says (see the module); off by default."""

    enabled: bool = False
    ttl: float = DEFAULT_TTL
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_bytes: int = DEFAULT_MAX_BYTES
    shared: bool = False
    timeout: float = DEFAULT_TIMEOUT
    # Out of the hash (a dict has none): the settings stay hashable, as ServerSettings was.
    models: Mapping[str, ModelCache] = field(default_factory=dict, hash=False)

    @property
    def used(self) -> bool:
        """Whether any model's answers may be cached."""
        return self.enabled or any(m.enabled for m in self.models.values())

    def ttl_for(self, model: str, routed: str) -> float | None:
        """How long an answer of ``model`` (``routed``: the model it stands for) is kept,
        or None when its answers are not cached. A model's own table decides before the
        global one; the name asked for before the one routed."""
        own = self.models.get(model) or self.models.get(routed)
        if own is not None:
            return own.ttl if own.enabled else None
        return self.ttl if self.enabled else None


def request_key(request: Mapping[str, Any], *, model: str, partition: str, stream: bool) -> str:
    """The key of the answer to ``request`` (a chat completion's body, without
    ``stream``): the hex SHA-256 of its canonical JSON, with ``model`` (as routed) in
    place of the one asked for, ``partition`` (a client key's name, or ``*`` when the cache
    is shared) and the answer's shape."""
    doc = {k: v for k, v in request.items() if k not in IGNORED}
    doc["model"] = model
    if not stream:
        doc.pop("stream_options", None)  # says what a stream carries: a document has none
    # The standard library's encoder, not orjson: two workers (or replicas) must make the
    # same key whichever of the two they have.
    text = json.dumps(
        [VERSION, partition, "stream" if stream else "document", doc],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A whole answer as it was sent: its body (a JSON document, or every event of a
    stream up to ``data: [DONE]``) and the provider that gave it."""

    provider: str
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + len(self.provider)

    def encode(self) -> bytes:
        """The entry as one value (for Redis): the provider's name, a newline, the body."""
        return self.provider.encode() + b"\n" + self.body

    @classmethod
    def decode(cls, value: bytes) -> Entry | None:
        """The entry :meth:`encode` gave, or None for a value that is not one."""
        provider, newline, body = value.partition(b"\n")
        if not newline:
            return None
        try:
            return cls(provider.decode(), body)
        except UnicodeDecodeError:
            return None


class ResponseStore:
    """Where entries are kept: :class:`MemoryCache`, or Redis
    (:class:`~providerhub._state.redis.cache.RedisCache`). Neither raises: a store that
    cannot answer is a miss, and a write it cannot make is dropped."""

    kind = ""
    """``memory`` or ``redis``, for messages."""

    async def aget(self, key: str) -> Entry | None:
        raise NotImplementedError

    async def aput(self, key: str, entry: Entry, ttl: float) -> None:
        raise NotImplementedError


class MemoryCache(ResponseStore):
    """Entries in this process: a least-recently-used map bounded by ``max_entries`` and
    by ``max_bytes`` of answers, each entry kept ``ttl`` seconds of ``clock``
    (:func:`time.monotonic`; a :class:`~providerhub.testing.FakeClock` in tests)."""

    kind = "memory"

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[Entry, float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        entry, expires = found
        if expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry, ttl: float) -> None:
        size = entry.size + len(key)
        if size > self.max_bytes:
            return  # would push out everything else, and still not fit
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (entry, self._clock() + ttl)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry, _ = self._entries.pop(key)
        self.bytes -= entry.size + len(key)

    async def aget(self, key: str) -> Entry | None:
        return self.get(key)

    async def aput(self, key: str, entry: Entry, ttl: float) -> None:
        self.put(key, entry, ttl)


def load_settings(table: Any, env: Mapping[str, str], where: str) -> CacheSettings:
    """The settings of the ``[response_cache]`` ``table`` (``where`` it is, for messages)
    and of the ``PROVIDERHUB_RESPONSE_CACHE_*`` variables of ``env``, which come first.
    Anything wrong is a :class:`~providerhub.ConfigurationError` saying where and what."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: [response_cache] must be a table")
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise ConfigurationError(
            f"{where} [response_cache]: unknown field {unknown[0]!r} "
            f"(the fields are {', '.join(_FIELDS)})"
        )
    at = f"{where} [response_cache]"
    models_table = table.get("models", {})
    if not isinstance(models_table, dict):
        raise ConfigurationError(f'{at}: models must be tables ([response_cache.models."NAME"])')
    ttl = _seconds(_value(table, "ttl", env, float), "ttl", at, DEFAULT_TTL)
    models = {}
    for name, entry in models_table.items():
        model_at = f'{where} [response_cache.models."{name}"]'
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{model_at}: must be a table with enabled and ttl")
        extra = sorted(set(entry) - set(_MODEL_FIELDS))
        if extra:
            raise ConfigurationError(
                f"{model_at}: unknown field {extra[0]!r} (the fields are enabled, ttl)"
            )
        models[name] = ModelCache(
            _flag(entry.get("enabled", True), "enabled", model_at),
            _seconds(entry.get("ttl"), "ttl", model_at, ttl),
        )
    return CacheSettings(
        enabled=_flag(_value(table, "enabled", env, _parse_flag), "enabled", at),
        ttl=ttl,
        max_entries=_count(
            _value(table, "max_entries", env, int), "max_entries", at, DEFAULT_MAX_ENTRIES
        ),
        max_bytes=_count(_value(table, "max_bytes", env, int), "max_bytes", at, DEFAULT_MAX_BYTES),
        shared=_flag(_value(table, "shared", env, _parse_flag), "shared", at),
        timeout=_seconds(_value(table, "timeout", env, float), "timeout", at, DEFAULT_TIMEOUT),
        models=models,
    )


def _value(table: Mapping[str, Any], name: str, env: Mapping[str, str], parse: Any) -> Any:
    variable = ENV_PREFIX + name.upper()
    raw = env.get(variable, "").strip()
    if not raw:
        return table.get(name)
    try:
        return parse(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}: {raw!r} is not a valid {name}") from None


def _parse_flag(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _flag(value: Any, name: str, at: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigurationError(f"{at}: {name} must be true or false, not {value!r}")
    return value


def _count(value: Any, name: str, at: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{at}: {name} must be a positive whole number, not {value!r}")
    return value


def _seconds(value: Any, name: str, at: str, default: float) -> float:
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        raise ConfigurationError(
            f"{at}: {name} must be a positive number of seconds, not {value!r}"
        )
    return float(value)
