"""The response cache's parts, without a server: the key of a request (canonical, blind
to what does not change the answer, apart per client key and per shape), the memory
store's bounds and TTL (on a FakeClock), and the ``[response_cache]`` settings. The
gateway's use of them, against a real ``providerhub serve``, is tests/test_server_cache.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from providerhub import ConfigurationError
from providerhub.testing import FakeClock

from ._internals import _cache, _config

REQUEST = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "Hi é ✓"}],
    "temperature": 0,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}],
}


def key(request: dict[str, object], partition: str = "key:team", stream: bool = False) -> str:
    return str(_cache.request_key(request, model="gpt-4o", partition=partition, stream=stream))


def test_the_key_is_the_sha256_of_the_canonical_request() -> None:
    reordered = json.loads(json.dumps(dict(reversed(list(REQUEST.items())))))
    reordered["tools"][0]["function"]["parameters"] = {"b": 2, "a": 1}
    assert key(reordered) == key(REQUEST)
    assert len(key(REQUEST)) == 64 and int(key(REQUEST), 16) >= 0


@pytest.mark.parametrize("field", ["user", "metadata", "store", "stream"])
def test_fields_that_do_not_change_the_answer_are_left_out(field: str) -> None:
    assert key({**REQUEST, field: "anything"}) == key(REQUEST)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"messages": [{"role": "user", "content": "Hi"}]},
        {"tools": []},
        {"max_tokens": 5},
        {"response_format": {"type": "json_object"}},
        {"seed": 1},
    ],
)
def test_what_changes_the_answer_changes_the_key(change: dict[str, object]) -> None:
    assert key({**REQUEST, **change}) != key(REQUEST)


def test_the_model_as_routed_is_keyed_not_the_name_asked_for() -> None:
    asked = {**REQUEST, "model": "an-alias"}
    assert key(asked) == key(REQUEST)  # key() keys model="gpt-4o", the alias's target
    other = _cache.request_key(REQUEST, model="gpt-4o-mini", partition="key:team", stream=False)
    assert other != key(REQUEST)


def test_client_keys_and_shapes_are_kept_apart() -> None:
    assert key(REQUEST, "key:team") != key(REQUEST, "key:other")
    assert key(REQUEST, "key:team") != key(REQUEST, "*")
    assert key(REQUEST, stream=True) != key(REQUEST, stream=False)
    usage = {**REQUEST, "stream_options": {"include_usage": True}}
    assert key(usage, stream=True) != key(REQUEST, stream=True)  # a usage chunk, or none
    assert key(usage, stream=False) == key(REQUEST, stream=False)


def entry(size: int, provider: str = "p") -> object:
    return _cache.Entry(provider, b"x" * size)


def test_the_memory_store_keeps_an_entry_for_its_ttl() -> None:
    clock = FakeClock()
    store = _cache.MemoryCache(clock=clock)
    store.put("k", _cache.Entry("p", b"{}"), 10)
    assert store.get("k") == _cache.Entry("p", b"{}")
    clock.advance(9.9)
    assert store.get("k") is not None
    clock.advance(0.1)
    assert store.get("k") is None
    assert len(store) == 0 and store.bytes == 0


def test_the_memory_store_drops_the_least_recently_used_past_max_entries() -> None:
    store = _cache.MemoryCache(max_entries=2, clock=FakeClock())
    store.put("a", entry(1), 60)
    store.put("b", entry(1), 60)
    assert store.get("a") is not None  # now b is the least recently used
    store.put("c", entry(1), 60)
    assert store.get("b") is None
    assert store.get("a") is not None and store.get("c") is not None
    assert len(store) == 2


def test_the_memory_store_keeps_within_max_bytes() -> None:
    store = _cache.MemoryCache(max_bytes=100, clock=FakeClock())
    for name in "abcde":
        store.put(name, entry(30), 60)  # 30 + 1 (provider) + 1 (key) = 32 bytes each
    assert store.bytes <= 100
    assert [n for n in "abcde" if store.get(n) is not None] == ["c", "d", "e"]
    store.put("huge", entry(200), 60)  # larger than the whole store: not kept
    assert store.get("huge") is None and len(store) == 3
    store.put("c", entry(2), 60)  # replaced: its old size is given back
    assert store.bytes == 32 * 2 + 4


def test_an_entry_encodes_to_one_value_and_back() -> None:
    original = _cache.Entry("openai", b"data: {}\n\ndata: [DONE]\n\n")
    assert _cache.Entry.decode(original.encode()) == original
    assert _cache.Entry.decode(b"no newline") is None


def _settings(tmp_path: Path, text: str, **env: str) -> object:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    return _config.load({"PROVIDERHUB_CONFIG": str(config), **env}).cache


def test_the_cache_is_off_by_default(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "")
    assert settings == _cache.CacheSettings()
    assert not settings.used
    assert settings.ttl_for("gpt-4o", "gpt-4o") is None


def test_settings_globally_and_per_model(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        """
[response_cache]
ttl = 60
max_entries = 5
max_bytes = 1000
shared = true
timeout = 0.02

[response_cache.models."gpt-4o"]
ttl = 3600

[response_cache.models."noisy"]
enabled = false
""",
    )
    assert settings.used and not settings.enabled and settings.shared
    assert (settings.max_entries, settings.max_bytes, settings.timeout) == (5, 1000, 0.02)
    assert hash(settings) == hash(settings)  # settings are values, as before the cache
    assert settings.ttl_for("gpt-4o", "gpt-4o") == 3600
    assert settings.ttl_for("alias", "gpt-4o") == 3600  # an alias of it too
    assert settings.ttl_for("other", "other") is None
    everything = _settings(
        tmp_path,
        '[response_cache]\nenabled = true\n[response_cache.models."noisy"]\nenabled = false\n',
    )
    assert everything.ttl_for("other", "other") == _cache.DEFAULT_TTL
    assert everything.ttl_for("noisy", "noisy") is None


def test_variables_come_before_the_file(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        "[response_cache]\nenabled = false\nttl = 60\n",
        PROVIDERHUB_RESPONSE_CACHE_ENABLED="true",
        PROVIDERHUB_RESPONSE_CACHE_TTL="5",
        PROVIDERHUB_RESPONSE_CACHE_SHARED="yes",
        PROVIDERHUB_RESPONSE_CACHE_MAX_ENTRIES="7",
    )
    assert settings.enabled and settings.ttl == 5 and settings.shared
    assert settings.max_entries == 7


@pytest.mark.parametrize(
    ("text", "env", "said"),
    [
        ("[response_cache]\nttl = 0\n", {}, "ttl must be a positive number of seconds"),
        ("[response_cache]\nenabled = 1\n", {}, "enabled must be true or false"),
        ("[response_cache]\nsize = 1\n", {}, "unknown field 'size'"),
        ("[response_cache]\nmax_entries = -1\n", {}, "max_entries must be a positive"),
        ('[response_cache.models."m"]\nshared = true\n', {}, "unknown field 'shared'"),
        ("", {"PROVIDERHUB_RESPONSE_CACHE_ENABLED": "maybe"}, "RESPONSE_CACHE_ENABLED"),
        ("", {"PROVIDERHUB_RESPONSE_CACHE_TTL": "soon"}, "RESPONSE_CACHE_TTL"),
    ],
)
def test_a_mistake_is_refused_saying_where(
    tmp_path: Path, text: str, env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigurationError, match=said):
        _settings(tmp_path, text, **env)
