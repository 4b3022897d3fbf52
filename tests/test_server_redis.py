"""providerhub serve sharing its state through a real redis-server: rate limits exact
across two server processes (a provider's ``rpm`` and a client key's), ``/readyz`` and
``/metrics`` following Redis as it is killed and started again, the workers of
``serve --workers 2`` sharing one count, and ``providerhub providers`` showing a cooldown
that another process opened."""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub.testing import OpenAIServer, Reply

from ._delay import DelayProxy
from ._gateway import Gateway, clean_environment, poll
from ._redis import RedisServer, free_port, redis

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

RPM = 5
TEAM_KEY = "sk-client-team-key"  # rpm = 5
OPEN_KEY = "sk-client-open-key"  # no limit
LIMITED = "limited-model"  # served by the endpoint "limited", rpm = 5
FREE = "free-model"  # served by the endpoint "free", no limit
MESSAGES = [{"role": "user", "content": "Hi"}]
STATE_METRIC = 'providerhub_state_shared{backend="redis"}'


def _config(tmp: Path, upstream: OpenAIServer, rpm: int = RPM) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f"""
[endpoints.limited]
url = "{upstream.url}"
models = ["{LIMITED}"]
rpm = {rpm}

[endpoints.free]
url = "{upstream.url}"
models = ["{FREE}"]

[[server.keys]]
name = "team"
sha256 = "{hashlib.sha256(TEAM_KEY.encode()).hexdigest()}"
rpm = {RPM}
""",
        encoding="utf-8",
    )
    return config


def _env(config: Path, redis_url: str) -> dict[str, str]:
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_REDIS_URL=redis_url,
        PROVIDERHUB_DISABLE_PLUGINS="gravityengine",  # only the endpoints of the file
        PROVIDERHUB_SERVER_API_KEYS=OPEN_KEY,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateways(
    upstream: OpenAIServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Gateway]]:
    """Two server processes, as two replicas behind a balancer, sharing one Redis."""
    tmp = tmp_path_factory.mktemp("replicas")
    env = _env(_config(tmp, upstream), redis_server.url)
    first = Gateway(tmp, env)
    try:
        second = Gateway(tmp, env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    assert [first.stop(), second.stop()] == [0, 0]


@pytest.fixture
def replicas(
    gateways: tuple[Gateway, Gateway], redis_url: str, upstream: OpenAIServer
) -> tuple[Gateway, Gateway]:
    """The two replicas, over an emptied Redis and an upstream with no requests yet."""
    upstream.requests.clear()
    return gateways


def _chat(gateway: Gateway, model: str, key: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": model, "messages": MESSAGES}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return gateway.request("POST", "/v1/chat/completions", body, headers)


def _alternate(
    replicas: tuple[Gateway, Gateway], model: str, key: str, count: int = 2 * RPM
) -> list[tuple[int, dict[str, str], bytes]]:
    return [_chat(replicas[i % 2], model, key) for i in range(count)]


def _metric(gateway: Gateway, name: str) -> float:
    status, _, body = gateway.request("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def _ready(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    status, _, body = gateway.request("GET", "/readyz")
    doc: dict[str, Any] = json.loads(body)
    return status, doc


# -- exact counts across replicas ----------------------------------------------------------


def test_a_providers_rpm_is_exact_across_two_servers(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer
) -> None:
    began = time.monotonic()
    answers = _alternate(replicas, LIMITED, OPEN_KEY)
    took = time.monotonic() - began
    assert [status for status, _, _ in answers] == [200] * RPM + [429] * RPM
    assert len(upstream.requests) == RPM  # the refused five never left the gateways
    for _, headers, body in answers[RPM:]:
        # The first request leaves the minute in just under 60 s: no sooner than 60 s
        # less the time the requests took (whole seconds, rounded up).
        assert 60 - took <= int(headers["retry-after"]) <= 60
        error = json.loads(body)["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert "at its rate limit (rpm=5)" in error["message"]
    # The limit is the provider's: another model of the same upstream is not held back.
    assert _chat(replicas[0], FREE, OPEN_KEY)[0] == 200


def test_a_client_keys_rpm_is_exact_across_two_servers(
    replicas: tuple[Gateway, Gateway], upstream: OpenAIServer
) -> None:
    began = time.monotonic()
    answers = _alternate(replicas, FREE, TEAM_KEY)
    took = time.monotonic() - began
    assert [status for status, _, _ in answers] == [200] * RPM + [429] * RPM
    assert len(upstream.requests) == RPM
    for _, headers, body in answers[RPM:]:
        assert 60 - took <= int(headers["retry-after"]) <= 60
        assert (
            "the client key 'team' is over its requests-per-minute limit"
            in (json.loads(body)["error"]["message"])
        )
    # Keys are counted apart: one without a limit goes on through both servers.
    assert [status for status, _, _ in _alternate(replicas, FREE, OPEN_KEY, 4)] == [200] * 4


# -- Redis going and coming back -----------------------------------------------------------


def test_readyz_and_metrics_follow_redis_killed_and_started_again(
    replicas: tuple[Gateway, Gateway], redis_server: RedisServer
) -> None:
    for gateway in replicas:
        status, ready = _ready(gateway)
        assert status == 200 and ready["providers"] == ["limited", "free"]
        # Anyone may ask /readyz: it says whether the state is shared, not where.
        assert ready["state"] == {
            "backend": "redis",
            "shared": True,
            "down_since": None,
            "describe": "shared through Redis",
        }
        assert _metric(gateway, STATE_METRIC) == 1
        assert _chat(gateway, FREE, TEAM_KEY)[0] == 200
    sockets = [gateway.sockets() for gateway in replicas]

    redis_server.kill()
    try:
        for gateway in replicas:
            # Seen within a second, with no call needed: readiness asks Redis itself, once
            # a second at most. Still ready: failing open, calls go on with this process's
            # own counts.
            assert poll(lambda g=gateway: _ready(g)[1]["state"]["shared"] is False, 1.5)
            status, ready = _ready(gateway)
            assert status == 200 and ready["providers"] == ["limited", "free"]
            state = ready["state"]
            assert (state["backend"], state["shared"]) == ("redis", False)
            assert state["down_since"] <= time.time()
            assert state["describe"] == (
                "process-local: Redis cannot be reached; shared again when it is back"
            )
            # Neither the address nor redis-py's words (the server's log has both).
            address = f"127.0.0.1:{redis_server.port}"
            assert address not in json.dumps(ready) and "error" not in state
            assert _metric(gateway, STATE_METRIC) == 0
            started = time.perf_counter()
            assert _chat(gateway, LIMITED, TEAM_KEY)[0] == 200
            assert time.perf_counter() - started < 0.5  # no waiting on the dead Redis
    finally:
        redis_server.start()  # on the same port, empty

    for gateway, baseline in zip(replicas, sockets):
        assert poll(lambda g=gateway: _ready(g)[1]["state"]["shared"] is True, timeout=3)
        assert _metric(gateway, STATE_METRIC) == 1
        assert _chat(gateway, LIMITED, TEAM_KEY)[0] == 200
        # The connection Redis dropped was let go, not kept beside the new one.
        assert poll(lambda g=gateway, n=baseline: g.sockets() <= n)
        log = gateway.log()
        # Once per transition, however many calls and scrapes met the dead Redis.
        assert log.count(" cannot be used (") == 1
        assert log.count(" answers again after ") == 1
    # Shared again: the counts of both replicas meet in the restarted (empty) Redis, which
    # has counted the one call of each since.
    answers = _alternate(replicas, LIMITED, OPEN_KEY)
    assert [status for status, _, _ in answers] == [200] * (RPM - 2) + [429] * (RPM + 2)


def test_the_workers_of_one_server_share_the_count(
    upstream: OpenAIServer, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    # Database 1, so that the workers' connections can be told from the replicas'.
    url = redis_url.rsplit("/", 1)[0] + "/1"
    gateway = Gateway(tmp_path, _env(_config(tmp_path, upstream), url), ["--workers", "2"])
    try:
        # Both workers up (the first answers /healthz while the other may still be making
        # its connection pools), or the requests below could all reach the first.
        assert poll(lambda: gateway.log().count("Application startup complete.") == 2, 10)
        with redis_server.client() as client:
            statuses = []
            # Until both workers took requests (each opens its connection to Redis with
            # its first one): the kernel hands each connection to either.
            while len(statuses) < 2 * RPM or _workers_seen(client) < 2:
                assert len(statuses) < 60, "the requests all went to one worker"
                statuses.append(_chat(gateway, FREE, TEAM_KEY)[0])
        assert statuses[:RPM] == [200] * RPM
        assert set(statuses[RPM:]) == {429}
    finally:
        assert gateway.stop() == 0


def _workers_seen(client: Any) -> int:
    return sum(
        1 for c in client.client_list() if c.get("name") == "providerhub" and c.get("db") == "1"
    )


def test_failing_closed_without_redis_refuses_what_is_rate_limited(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = _env(_config(tmp_path, upstream), dead)
    gateway = Gateway(tmp_path, {**env, "PROVIDERHUB_REDIS_FAIL": "closed"})
    try:
        upstream.requests.clear()
        # limited has an rpm, which cannot be counted: not available, and refused.
        status, ready = _ready(gateway)
        assert status == 200 and ready["providers"] == ["free"]
        assert ready["state"]["shared"] is False
        # 503, not 429: no one is over a limit, the limit cannot be counted. Without the
        # Redis address, which the log has.
        address = dead.split("://", 1)[1].split("/", 1)[0]
        status, headers, body = _chat(gateway, LIMITED, OPEN_KEY)
        assert (status, headers["retry-after"]) == (503, "1")
        assert address not in body.decode()
        error = json.loads(body)["error"]
        assert error["code"] == "shared_state_unavailable"
        assert error["message"] == (
            "the rate limit of the provider 'limited' cannot be counted: the server's shared "
            "state (Redis) is unreachable, and the server refuses such requests until it is "
            "back; retry in 1 s"
        )
        status, headers, body = _chat(gateway, FREE, TEAM_KEY)  # so is a key with an rpm
        assert (status, headers["retry-after"]) == (503, "1")
        error = json.loads(body)["error"]
        assert error["message"].startswith(
            "the requests-per-minute limit of the client key 'team' cannot be counted: the "
            "server's shared state (Redis) is unreachable"
        )
        assert "over its" not in error["message"] and address not in body.decode()
        assert _chat(gateway, FREE, OPEN_KEY)[0] == 200  # nothing to count: it goes on
        assert len(upstream.requests) == 1
        assert address in gateway.log()
    finally:
        assert gateway.stop() == 0


# -- Redis off the event loop ----------------------------------------------------------------


def test_healthz_answers_at_once_while_rate_limited_calls_wait_on_a_distant_redis(
    upstream: OpenAIServer, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    with DelayProxy(redis_server.port, 0.05) as proxy:  # 100 ms there and back
        # Database 2: its connections told from the other tests' servers'.
        env = _env(_config(tmp_path, upstream, rpm=100_000), proxy.url[: -len("/0")] + "/2")
        gateway = Gateway(tmp_path, {**env, "PROVIDERHUB_REDIS_TIMEOUT": "2"})
        try:
            assert _chat(gateway, LIMITED, OPEN_KEY)[0] == 200  # connected, scripts loaded
            assert _chat(gateway, FREE, TEAM_KEY)[0] == 200  # the key's script too
            threads, connections = gateway.threads(), _connections(redis_server)
            assert connections == 1  # one, pipelined: the worker's event loop's
            upstream.requests.clear()
            statuses: list[int] = []

            def client(key: str) -> None:
                for _ in range(3):
                    statuses.append(_chat(gateway, LIMITED, key)[0])

            # 16 clients, 3 calls each: a round trip to Redis per call (two with the key's
            # own limit), which on the loop would hold every other request 100 ms each.
            callers = [
                threading.Thread(target=client, args=(TEAM_KEY if i < 1 else OPEN_KEY,))
                for i in range(16)
            ]
            for caller in callers:
                caller.start()
            health = []
            while any(caller.is_alive() for caller in callers):
                started = time.perf_counter()
                assert gateway.request("GET", "/healthz")[0] == 200
                health.append(time.perf_counter() - started)
                time.sleep(0.01)
            for caller in callers:
                caller.join()
            assert statuses == [200] * 48
            assert len(upstream.requests) == 48
            assert statistics.median(health) < 0.025, health
            assert max(health) < 0.09, health  # under one round trip to Redis, always
            assert len(health) >= 5  # asked all along the calls
            # No thread, nor a connection to Redis, per call.
            assert poll(lambda: gateway.threads() <= threads)
            assert _connections(redis_server) == connections
        finally:
            assert gateway.stop() == 0
    with redis.Redis(port=redis_server.port, db=2, socket_timeout=5) as client_:
        limiter = providerhub.RedisState(redis_url).limiter
        # Every call counted, exactly: the warm-up's and the 48, and the key's 1 + 3.
        assert client_.zcard(limiter.keys("provider:limited")[0]) == 49
        assert client_.zcard(limiter.keys("client:team")[0]) == 4


def _connections(redis_server: RedisServer) -> int:
    """The connections ``providerhub`` opened to database 2."""
    with redis_server.client() as client:
        listed = client.client_list()
    return sum(1 for c in listed if c.get("name") == "providerhub" and c.get("db") == "2")


def test_readyz_and_metrics_ping_redis_once_a_second_at_most(
    replicas: tuple[Gateway, Gateway], redis_server: RedisServer
) -> None:
    gateway = replicas[0]

    def pings() -> int:
        with redis_server.client() as client:
            stats = client.info("commandstats")
        return int(stats.get("cmdstat_ping", {}).get("calls", 0))

    before = pings()
    started = time.perf_counter()
    for _ in range(40):
        status, ready = _ready(gateway)
        assert status == 200 and ready["state"]["shared"] is True
        assert _metric(gateway, STATE_METRIC) == 1
    seconds = time.perf_counter() - started
    # 80 unauthenticated requests: one PING per second they spanned (and the one that
    # may have started it), not one each.
    assert pings() - before <= int(seconds) + 2, seconds


# -- the command line ------------------------------------------------------------------------


def test_providers_shows_a_cooldown_opened_by_another_process(
    upstream: OpenAIServer, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, upstream)
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(config))
    upstream.script(Reply.error(500, "down for maintenance"))
    # This process's hub fails once and opens free's cooldown, in Redis.
    with providerhub.Hub(state=redis_url, failure_threshold=1, retries=0) as hub:
        with pytest.raises(providerhub.ProviderHTTPError):
            hub.create(FREE, MESSAGES)
        assert hub.health.cooling("free") is not None

    env = _env(config, redis_url)
    doc = json.loads(_cli(env, "providers", "--json"))
    by_name = {p["name"]: p for p in doc["providers"]}
    cooldown = by_name["free"]["cooldown"]
    assert 25 <= cooldown["remaining"] <= 30  # the hub's default cooldown, 30 s
    assert (cooldown["failures"], cooldown["last_error"]) == (1, "ProviderHTTPError")
    assert by_name["limited"]["cooldown"] is None
    assert (doc["state"]["backend"], doc["state"]["shared"]) == ("redis", True)
    assert doc["state"]["location"] == redis_url

    text = _cli(env, "providers")
    assert "  cooldown: " in text and "after 1 failures in a row (last: ProviderHTTPError)" in text
    assert f"cooldowns: shared through {redis_url}\n" in text

    # Without Redis the command sees only its own process: no cooldown.
    del env["PROVIDERHUB_REDIS_URL"]
    doc = json.loads(_cli(env, "providers", "--json"))
    assert all(p["cooldown"] is None for p in doc["providers"])
    assert doc["state"]["describe"] == "in this process's memory"


def test_providers_says_when_redis_cannot_be_reached(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = _env(_config(tmp_path, upstream), dead)
    text = _cli(env, "providers")
    assert f"cooldowns: not known: {dead} cannot be reached (" in text
    state = json.loads(_cli(env, "providers", "--json"))["state"]
    assert (state["shared"], state["location"]) == (False, dead)


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "providerhub", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
