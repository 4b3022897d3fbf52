"""The response cache through a real ``providerhub serve``: a hit answered without an
upstream request (the stand-in's ``requests`` count proves it), byte for byte, streams
replayed as the openai SDK reads them; client keys kept apart unless shared;
``Cache-Control`` honoured; only whole answers kept; entries expiring; and in a real
redis-server, shared by two servers, a stopped or frozen Redis a miss and never an error.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import Gateway, clean_environment, poll
from ._redis import RedisClusterServers, RedisServer

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

TEAM = "sk-client-team-key"
OTHER = "sk-client-other-key"
UPSTREAM_KEY = "sk-upstream-secret-7f3a"
CACHED = "cached-model"
BRIEF = "brief-model"  # cached for a fifth of a second
PLAIN = "plain-model"  # not cached
CHAT = "/v1/chat/completions"


def _config(tmp: Path, upstream: OpenAIServer, *, shared: bool = False) -> Path:
    config = tmp / f"config-{uuid.uuid4().hex}.toml"
    team = hashlib.sha256(TEAM.encode()).hexdigest()
    other = hashlib.sha256(OTHER.encode()).hexdigest()
    config.write_text(
        f"""
[endpoints.upstream]
url = "{upstream.url}"
models = ["{CACHED}", "{BRIEF}", "{PLAIN}"]
api_key_env = "UPSTREAM_KEY"

[[server.keys]]
name = "team"
sha256 = "{team}"

[[server.keys]]
name = "other"
sha256 = "{other}"

[response_cache]
shared = {"true" if shared else "false"}

[response_cache.models."{CACHED}"]
ttl = 300

[response_cache.models."{BRIEF}"]
ttl = 0.2
""",
        encoding="utf-8",
    )
    return config


def _env(config: Path, **extra: str) -> dict[str, str]:
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_DISABLE_PLUGINS="gravityengine",
        PROVIDERHUB_ALIASES=f"nickname={CACHED}",
        UPSTREAM_KEY=UPSTREAM_KEY,
        **extra,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("cache")
    server = Gateway(tmp, _env(_config(tmp, upstream)))
    yield server
    assert server.stop() == 0


def _request(
    gateway: Gateway,
    text: str,
    *,
    model: str = CACHED,
    key: str = TEAM,
    stream: bool = False,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    doc: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        doc["stream"] = True
    sent = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    return gateway.request("POST", CHAT, json.dumps(doc).encode(), sent)


def _fresh() -> str:
    """A question no earlier test asked, so that each test starts with a cold cache."""
    return f"question {uuid.uuid4().hex}"


def test_a_repeated_request_is_answered_from_the_cache(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    text = _fresh()
    before = len(upstream.requests)
    status, first_headers, first = _request(gateway, text)
    assert status == 200 and first_headers["x-providerhub-cache"] == "miss"
    assert len(upstream.requests) == before + 1
    for _ in range(3):
        status, headers, body = _request(gateway, text)
        assert status == 200 and headers["x-providerhub-cache"] == "hit"
        assert body == first  # the same document, byte for byte
        assert headers["x-providerhub-provider"] == "upstream"
        assert headers["content-type"] == "application/json"
        assert headers["x-request-id"] != first_headers["x-request-id"]
    assert len(upstream.requests) == before + 1  # no hit went upstream
    assert json.loads(first)["choices"][0]["message"]["content"].endswith(text)  # the echo


def _metric(gateway: Gateway, line: str) -> float:
    status, _, body = gateway.request("GET", "/metrics")
    assert status == 200
    for found in body.decode().splitlines():
        if found.startswith(line + " "):
            return float(found.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line} in /metrics")


HITS = 'providerhub_response_cache_lookups_total{result="hit",store="memory"}'
MISSES = 'providerhub_response_cache_lookups_total{result="miss",store="memory"}'


def test_metrics_count_hits_and_misses(gateway: Gateway) -> None:
    hits, misses = _metric(gateway, HITS), _metric(gateway, MISSES)
    entries = _metric(gateway, "providerhub_response_cache_entries")
    text = _fresh()
    for _ in range(3):
        _request(gateway, text)
    _request(gateway, text, model=PLAIN)  # not cached: not looked up
    _request(gateway, text, Cache_Control="no-cache")  # not looked up either
    assert _metric(gateway, HITS) == hits + 2
    assert _metric(gateway, MISSES) == misses + 1
    assert _metric(gateway, "providerhub_response_cache_entries") == entries + 1
    assert _metric(gateway, "providerhub_response_cache_bytes") > 0


def test_an_alias_shares_the_entry_of_its_model(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    assert _request(gateway, text)[1]["x-providerhub-cache"] == "miss"
    before = len(upstream.requests)
    assert _request(gateway, text, model="nickname")[1]["x-providerhub-cache"] == "hit"
    assert len(upstream.requests) == before


def test_a_model_not_configured_is_not_cached(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    before = len(upstream.requests)
    for _ in range(2):
        status, headers, _ = _request(gateway, text, model=PLAIN)
        assert status == 200 and "x-providerhub-cache" not in headers
    assert len(upstream.requests) == before + 2


def test_a_stream_is_replayed_as_its_chunks(gateway: Gateway, upstream: OpenAIServer) -> None:
    openai = pytest.importorskip("openai")
    text = _fresh()
    upstream.script(Reply.text("Hel", "lo ", text))
    status, headers, first = _request(gateway, text, stream=True)
    assert status == 200 and headers["x-providerhub-cache"] == "miss"
    before = len(upstream.requests)
    status, headers, again = _request(gateway, text, stream=True)
    assert status == 200 and headers["x-providerhub-cache"] == "hit"
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert again == first  # every event as it was first sent, then [DONE]
    assert again.endswith(b"data: [DONE]\n\n") and again.count(b"data: ") == 5
    # The openai SDK reads the replay as the stream it was.
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TEAM, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=CACHED, messages=[{"role": "user", "content": text}], stream=True
    )
    assert raw.headers["x-providerhub-cache"] == "hit"
    pieces = [c.choices[0].delta.content for c in raw.parse() if c.choices]
    assert "".join(p or "" for p in pieces) == "Hello " + text
    # A document and a stream are kept apart: each is replayed in its own shape.
    assert _request(gateway, text)[1]["x-providerhub-cache"] == "miss"
    assert len(upstream.requests) == before + 1


def test_client_keys_do_not_share_entries(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    _, _, team_answer = _request(gateway, text, key=TEAM)
    before = len(upstream.requests)
    status, headers, _ = _request(gateway, text, key=OTHER)
    assert status == 200 and headers["x-providerhub-cache"] == "miss"
    assert len(upstream.requests) == before + 1
    assert _request(gateway, text, key=OTHER)[1]["x-providerhub-cache"] == "hit"
    assert _request(gateway, text, key=TEAM)[2] == team_answer


def test_a_shared_cache_serves_every_key(upstream: OpenAIServer, tmp_path: Path) -> None:
    server = Gateway(tmp_path, _env(_config(tmp_path, upstream, shared=True)))
    try:
        text = _fresh()
        assert _request(server, text, key=TEAM)[1]["x-providerhub-cache"] == "miss"
        before = len(upstream.requests)
        assert _request(server, text, key=OTHER)[1]["x-providerhub-cache"] == "hit"
        assert len(upstream.requests) == before
    finally:
        assert server.stop() == 0


def test_cache_control_no_cache_and_no_store(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    before = len(upstream.requests)
    status, headers, _ = _request(gateway, text, Cache_Control="no-store")
    assert status == 200 and headers["x-providerhub-cache"] == "miss"
    assert _request(gateway, text)[1]["x-providerhub-cache"] == "miss"  # not kept: looked up
    assert len(upstream.requests) == before + 2
    # Now kept: no-cache goes upstream all the same, and keeps its fresh answer.
    upstream.script(Reply.text("fresh"))
    status, headers, body = _request(gateway, text, Cache_Control="max-age=0, No-Cache")
    assert status == 200 and "x-providerhub-cache" not in headers
    assert len(upstream.requests) == before + 3
    status, headers, again = _request(gateway, text)
    assert headers["x-providerhub-cache"] == "hit" and again == body
    assert json.loads(body)["choices"][0]["message"]["content"] == "fresh"
    before = len(upstream.requests)
    assert _request(gateway, text, Cache_Control="no-cache, no-store")[0] == 200
    assert len(upstream.requests) == before + 1
    assert _request(gateway, text)[2] == body  # no-store: the entry is still the one kept


def test_only_whole_answers_are_kept(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    upstream.script(Reply.error(400, "bad request upstream"))
    assert _request(gateway, text)[0] == 400
    upstream.script(Reply.text("cut", "short", fault="cut", after=1))
    status, _, body = _request(gateway, text, stream=True)
    assert status == 200 and not body.endswith(b"data: [DONE]\n\n")  # an error event
    upstream.script(Reply.text("par", "tial", fault="error_event", after=1))
    _, _, body = _request(gateway, text, stream=True)
    assert not body.endswith(b"data: [DONE]\n\n")
    before = len(upstream.requests)
    status, headers, body = _request(gateway, text)
    assert status == 200 and headers["x-providerhub-cache"] == "miss"
    status, headers, _ = _request(gateway, text, stream=True)
    assert status == 200 and headers["x-providerhub-cache"] == "miss"
    assert len(upstream.requests) == before + 2


def test_an_entry_expires_after_its_ttl(gateway: Gateway, upstream: OpenAIServer) -> None:
    text = _fresh()
    assert _request(gateway, text, model=BRIEF)[1]["x-providerhub-cache"] == "miss"
    assert _request(gateway, text, model=BRIEF)[1]["x-providerhub-cache"] == "hit"
    assert poll(lambda: _request(gateway, text, model=BRIEF)[1]["x-providerhub-cache"] == "miss")


def test_an_entry_holds_no_credential(gateway: Gateway, upstream: OpenAIServer) -> None:
    # An upstream that echoes its key: the answer is scrubbed before it is kept.
    text = _fresh()
    upstream.script(Reply.text("key: ", UPSTREAM_KEY))
    _, _, first = _request(gateway, text)
    assert UPSTREAM_KEY.encode() not in first and b"***" in first
    status, headers, body = _request(gateway, text)
    assert status == 200 and headers["x-providerhub-cache"] == "hit" and body == first


# -- in Redis ------------------------------------------------------------------------------


@pytest.fixture
def replicas(
    upstream: OpenAIServer, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Gateway, Gateway]]:
    env = _env(_config(tmp_path, upstream), PROVIDERHUB_REDIS_URL=redis_url)
    first = Gateway(tmp_path, env)
    try:
        second = Gateway(tmp_path, env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    assert [first.stop(), second.stop()] == [0, 0]


def test_replicas_share_entries_through_redis(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer, redis_server: RedisServer
) -> None:
    first, second = replicas
    text = _fresh()
    for stream in (False, True):
        _, headers, answer = _request(first, text, stream=stream)
        assert headers["x-providerhub-cache"] == "miss"
        before = len(upstream.requests)
        _, headers, again = _request(second, text, stream=stream)
        assert headers["x-providerhub-cache"] == "hit" and again == answer
        assert len(upstream.requests) == before
    assert _request(second, text, key=OTHER)[1]["x-providerhub-cache"] == "miss"
    redis_hits = 'providerhub_response_cache_lookups_total{result="hit",store="redis"}'
    assert _metric(second, redis_hits) == 2
    with redis_server.client() as client:
        keys = client.keys("providerhub:cache:*")
        assert len(keys) == 3
        for key in keys:
            assert 290_000 < client.pttl(key) <= 300_000  # the model's ttl
            value = client.get(key)
            assert TEAM.encode() not in value and OTHER.encode() not in value
            assert UPSTREAM_KEY.encode() not in value
            assert value.startswith(b"upstream\n")


def test_a_redis_entry_expires_after_its_ttl(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer
) -> None:
    text = _fresh()
    assert _request(replicas[0], text, model=BRIEF)[1]["x-providerhub-cache"] == "miss"
    assert _request(replicas[1], text, model=BRIEF)[1]["x-providerhub-cache"] == "hit"
    assert poll(
        lambda: _request(replicas[1], text, model=BRIEF)[1]["x-providerhub-cache"] == "miss"
    )


def test_a_stopped_redis_is_a_miss_not_an_error(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer, redis_server: RedisServer
) -> None:
    first = replicas[0]
    text = _fresh()
    _, _, answer = _request(first, text)
    assert _request(first, text)[2] == answer
    redis_server.kill()
    try:
        before = len(upstream.requests)
        for _ in range(3):
            status, headers, body = _request(first, text)
            assert status == 200 and headers["x-providerhub-cache"] == "miss"
            assert json.loads(body)["choices"][0]["message"]["content"].endswith(text)
        assert len(upstream.requests) == before + 3
    finally:
        redis_server.start()
    # Back: the answers are kept and served again.
    assert poll(lambda: _request(first, text)[1]["x-providerhub-cache"] == "hit")


def test_a_frozen_redis_is_a_miss_within_the_timeout(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer, redis_server: RedisServer
) -> None:
    first = replicas[0]
    text = _fresh()
    _request(first, text)
    assert _request(first, text)[1]["x-providerhub-cache"] == "hit"
    sockets = first.sockets()
    redis_server.pause()
    try:
        began = time.monotonic()
        status, headers, _ = _request(first, text)
        took = time.monotonic() - began
        assert status == 200 and headers["x-providerhub-cache"] == "miss"
        # A 50 ms lookup and a 50 ms write at most, around the upstream's answer.
        assert took < 0.5
    finally:
        redis_server.resume()
    # Redis answers again: hits again, and the connection given up on is not left open.
    assert poll(lambda: _request(first, text)[1]["x-providerhub-cache"] == "hit")
    assert poll(lambda: first.sockets() <= sockets)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers().start()
    try:
        yield servers
    finally:
        servers.stop()


def test_entries_in_a_redis_cluster(cluster: RedisClusterServers) -> None:
    """A cluster's commands go to the node of the entry's key (on threads of the loop's
    executor): an entry kept is found, with its TTL, and a key not there is a miss."""
    import asyncio

    from ._internals import RedisState, _cache

    async def scenario() -> tuple[object, object, object]:
        state = RedisState(cluster.url)  # ?cluster=true
        try:
            store = state.response_cache(1.0)
            missing = await store.aget("0" * 64)
            await store.aput("1" * 64, _cache.Entry("upstream", b"{}"), 0.2)
            found = await store.aget("1" * 64)
            deadline = time.monotonic() + 3
            expired = found
            while expired is not None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                expired = await store.aget("1" * 64)
            return missing, found, expired
        finally:
            await state.aclose()

    missing, found, expired = asyncio.run(scenario())
    assert missing is None and expired is None
    assert found == _cache.Entry("upstream", b"{}")
