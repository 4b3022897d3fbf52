"""Cooldowns, probes and rate limits shared through a real redis-server (started by the
tests on a free port, see tests/_redis.py), and the rate limits of the in-memory state.

What crosses processes is tested across real processes; Redis's faults are real ones: the
server killed, restarted on its port, or frozen with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub import (
    ConfigurationError,
    MemoryState,
    PluginError,
    ProviderConnectionError,
    ProviderHTTPError,
    RateLimitError,
)
from providerhub.testing import FakeClock
from providerhub.types import Usage

from ._internals import Limits, MemoryLimiter, settings
from ._support import FakeProvider, threads, wait_until

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
ROOT = Path(__file__).resolve().parent.parent


class Limited(FakeProvider):
    """A scripted provider that declares rate limits."""

    def __init__(self, name: str, *, rpm: int | None = None, tpm: int | None = None, **kw: Any):
        super().__init__(name, [MODEL], **kw)
        self.rpm = rpm
        self.tpm = tpm


def run_python(source: str, *args: str, timeout: float = 30) -> subprocess.Popen[str]:
    """Start ``source`` in a new interpreter (the tests' own), its output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def finish(process: subprocess.Popen[str], timeout: float = 30) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


# -- the in-memory limiter ---------------------------------------------------------------


def test_rpm_is_a_sliding_window_of_exactly_rpm_requests() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryLimiter(clock)
    limits = Limits(rpm=3)
    admitted = []
    for _ in range(3):
        admitted.append(limiter.take("provider:a", limits))
        clock.advance(10)
    assert admitted == [0.0, 0.0, 0.0]
    # The first went in at 1000; the window holds it until 1060, and it is now 1030.
    assert limiter.take("provider:a", limits) == pytest.approx(30.0)
    clock.advance(30 + 1e-6)  # to 1060 and a moment
    assert limiter.take("provider:a", limits) == 0.0  # the first left the window
    assert limiter.take("provider:a", limits) == pytest.approx(10.0, abs=1e-3)
    assert limiter.take("provider:b", limits) == 0.0  # each key counts apart


def test_tpm_admits_while_fewer_tokens_were_reported_in_the_window() -> None:
    clock = FakeClock(1000.0)
    limiter = MemoryLimiter(clock)
    limits = Limits(tpm=100)
    assert limiter.take("provider:a", limits) == 0.0
    limiter.spend("provider:a", 60, limits)
    clock.advance(20)
    assert limiter.take("provider:a", limits) == 0.0  # 60 < 100
    limiter.spend("provider:a", 50, limits)
    clock.advance(5)
    # 110 reported: the first 60 age out at 1060, leaving 50 < 100.
    assert limiter.take("provider:a", limits) == pytest.approx(35.0)
    clock.advance(35 + 1e-6)  # to 1060 and a moment
    assert limiter.take("provider:a", limits) == 0.0


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "5"])
def test_a_provider_declaring_a_bad_limit_is_refused_at_registration(value: object) -> None:
    provider = Limited("p", rpm=None)
    provider.rpm = value  # type: ignore[assignment]
    with (
        providerhub.Hub(load_entrypoints=False) as hub,
        pytest.raises(PluginError, match=r"provider 'p': rpm must be a whole"),
    ):
        hub.register(provider)


def test_a_provider_at_its_rpm_is_skipped_for_the_next_candidate() -> None:
    first = Limited("first", rpm=2, pieces=["one"])
    second = FakeProvider("second", [MODEL], ["two"])
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(first)
        hub.register(second)
        answers = [hub.create(MODEL, HI) for _ in range(4)]
    assert answers == ["one", "one", "two", "two"]
    assert len(first.calls) == 2


def test_every_candidate_at_its_limit_raises_rate_limit_error_with_the_wait() -> None:
    first = Limited("first", rpm=1)
    second = Limited("second", rpm=1)
    state = providerhub.MemoryState(clock=FakeClock())  # the minute stands still
    with providerhub.Hub(load_entrypoints=False, retries=0, state=state) as hub:
        hub.register(first)
        hub.register(second)
        hub.create(MODEL, HI)
        hub.create(MODEL, HI)
        with pytest.raises(RateLimitError) as caught:
            hub.create(MODEL, HI)
    err = caught.value
    assert err.status_code == 429
    assert err.retry_after == 60
    assert "rpm=1" in str(err) and "first" in str(err) and "second" in str(err)
    assert len(first.calls) == len(second.calls) == 1  # the refused call sent nothing


def test_tpm_counts_the_usage_answers_report() -> None:
    provider = Limited("p", tpm=20, pieces=["hi", Usage(10, 15, 25)])
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(provider)
        assert hub.create(MODEL, HI) == "hi"
        with pytest.raises(RateLimitError, match="tpm=20"):
            hub.create(MODEL, HI)
        with pytest.raises(RateLimitError):  # streams are counted as well
            list(hub.create(MODEL, HI, stream=True))
    assert len(provider.calls) == 1


class NativeLimited(Limited):
    """An asyncio-native provider (``_acreate_completion``) that declares limits."""

    yields_pieces = True

    async def _acreate_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> AsyncIterator[Any]:
        self.calls.append({"model": model, "native": True})
        for piece in self.pieces:
            yield piece


def test_the_async_api_counts_limits_too() -> None:
    threaded = Limited("threaded", rpm=1)
    native = NativeLimited("native", tpm=10, pieces=["hi", Usage(5, 6, 11)])

    async def main(hub: providerhub.Hub) -> None:
        assert await hub.acreate(MODEL, HI, provider="threaded") == "from threaded"
        with pytest.raises(RateLimitError, match="rpm=1"):
            await hub.acreate(MODEL, HI, provider="threaded")
        assert await hub.acreate(MODEL, HI, provider="native") == "hi"
        with pytest.raises(RateLimitError, match="tpm=10"):
            await hub.acreate(MODEL, HI, provider="native")

    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(threaded)
        hub.register(native)
        asyncio.run(main(hub))
    assert len(threaded.calls) == 1
    assert len(native.calls) == 1
    if importlib.util.find_spec("aiohttp") is not None:  # else the thread pool runs it
        assert native.calls == [{"model": MODEL, "native": True}]


def test_usage_tokens_fall_back_to_the_sum_of_its_parts() -> None:
    assert Usage(3, 4, None).tokens == 7
    assert Usage(3, 4, 9).tokens == 9
    assert Usage().tokens == 0


# -- choosing the state ------------------------------------------------------------------


def test_the_state_is_in_memory_unless_redis_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        assert isinstance(hub.state, MemoryState)
        assert hub.state.status().shared is False
    monkeypatch.setenv(settings.REDIS_URL_VARIABLE, "redis://127.0.0.1:1/0")
    with providerhub.Hub(load_entrypoints=False, state="memory") as hub:
        assert isinstance(hub.state, MemoryState)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "must be a redis://, rediss:// or unix:// URL"),
        ("127.0.0.1:6379", "must be a redis://"),
        ("redis://127.0.0.1:notaport/0", "not a usable Redis URL"),
    ],
)
def test_a_bad_redis_url_is_refused_before_any_connection(url: str, message: str) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError, match=message):
        providerhub.Hub(load_entrypoints=False, state=url)


def test_bad_redis_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.REDIS_TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ConfigurationError, match="PROVIDERHUB_REDIS_TIMEOUT holds 'soon'"):
        settings.redis_timeout()
    monkeypatch.setenv(settings.REDIS_FAIL_VARIABLE, "maybe")
    with pytest.raises(ConfigurationError, match="give 'open'"):
        settings.redis_fail_closed()


# -- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A redis-server of the test's own, to kill and freeze without harming the others."""
    from ._redis import RedisServer

    srv = RedisServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_environment_variable_shares_the_state(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.REDIS_URL_VARIABLE, redis_url)
    with providerhub.Hub(load_entrypoints=False) as hub:
        assert type(hub.state).__name__ == "RedisState"
        status = hub.state.status()
        assert status.backend == "redis" and status.shared
        assert status.location == redis_url


COOLDOWN_SCRIPT = """
import sys, time
import providerhub

class Down:
    url = "http://down.invalid"
    model = ["gpt-3.5-turbo-16k"]
    supports_stream = True
    needs_auth = False
    def _create_completion(self, model, messages, stream, **kwargs):
        raise ConnectionError("refused")
        yield ""

with providerhub.Hub(False, retries=0, failure_threshold=1, state=sys.argv[1]) as hub:
    hub.register(Down(), name="down")
    try:
        hub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}])
    except providerhub.ProviderConnectionError:
        print(time.time(), flush=True)
"""


def test_a_cooldown_opened_in_one_process_is_honoured_by_another_within_a_second(
    redis_url: str,
) -> None:
    provider = FakeProvider("down", [MODEL], ["up"])
    with providerhub.Hub(False, retries=0, failure_threshold=1, state=redis_url) as hub:
        hub.register(provider)
        hub.register(FakeProvider("other", [MODEL], ["other"]))
        assert hub.create(MODEL, HI) == "up"  # healthy, and the mirror has read it so
        opened_at = float(finish(run_python(COOLDOWN_SCRIPT, redis_url)))
        assert wait_until(lambda: hub.health.cooling("down") is not None, 2.0)
        seen_after = time.time() - opened_at
        assert hub.create(MODEL, HI) == "other"  # the cooling provider is passed over
    assert seen_after < 1.0
    assert len(provider.calls) == 1


PROBE_SCRIPT = """
import sys, threading, time
import providerhub

url, start, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
state = providerhub.RedisState(url)
health = state.health(1, 0.2, 10)
barrier = threading.Barrier(threads)
claims = []

def run():
    barrier.wait()
    claims.append(health.acquire("flaky"))

workers = [threading.Thread(target=run) for _ in range(threads)]
time.sleep(max(0.0, start - time.time()))
for w in workers:
    w.start()
for w in workers:
    w.join()
print(sum(1 for c in claims if c is not None and c.probe), sum(1 for c in claims if c is None))
"""


def test_exactly_one_probe_among_many_callers_in_several_processes(redis_url: str) -> None:
    state = providerhub.RedisState(redis_url)
    health = state.health(1, 0.2, 10)
    claim = health.acquire("flaky")
    assert claim is not None
    claim.failure(ProviderConnectionError("flaky", "refused"))  # cooling for 0.2 s
    assert health.cooling("flaky") is not None
    start = time.time() + 1.0  # the processes start racing once the cooldown is over
    processes = [run_python(PROBE_SCRIPT, redis_url, str(start), "8") for _ in range(3)]
    results = [finish(p).split() for p in processes]
    probes = sum(int(r[0]) for r in results)
    refused = sum(int(r[1]) for r in results)
    assert (probes, refused) == (1, 23)
    cooling = health.cooling("flaky")
    assert cooling is not None and cooling.remaining == 0.0  # "a probe call is under way"
    state.close()


RPM_SCRIPT = """
import sys, time
import providerhub
from providerhub._state.limits import Limits

url, start, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
limiter = providerhub.RedisState(url).limiter
time.sleep(max(0.0, start - time.time()))
print(sum(1 for _ in range(count) if limiter.take("provider:p", Limits(rpm=7)) == 0.0))
"""


def test_rpm_is_exact_across_processes(redis_url: str) -> None:
    start = time.time() + 0.8
    processes = [run_python(RPM_SCRIPT, redis_url, str(start), "20") for _ in range(3)]
    admitted = sum(int(finish(p)) for p in processes)
    assert admitted == 7


def test_every_key_is_hash_tagged_and_expires(redis_url: str, redis_server: Any) -> None:
    state = providerhub.RedisState(redis_url)
    health = state.health(1, 0.05, 1.0)
    claim = health.acquire("a")
    assert claim is not None
    claim.failure(ProviderConnectionError("a", "refused"))
    assert wait_until(lambda: health.acquire("a") is not None, 1.0)  # the probe: held
    state.limiter.take("provider:b", Limits(rpm=5, tpm=100))
    state.limiter.spend("provider:b", 30, Limits(tpm=100))
    state.limiter.close()  # the tokens are counted by a thread of its own: let it finish
    state.limiter.take("client:some {odd} key", Limits(rpm=5))
    with redis_server.client() as client:
        keys = client.keys("*")
        assert len(keys) == 5, keys
        for key in keys:
            assert client.pttl(key) > 0, key
            tag = key.decode().split("{", 1)[1].split("}", 1)[0]
            assert tag and "{" not in tag, key
    state.close()


def test_redis_killed_mid_run_then_restarted(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providerhub.state")
    provider = Limited("p", rpm=1000)
    state = providerhub.RedisState(own_redis.url)
    with providerhub.Hub(False, retries=0, failure_threshold=1, state=state) as hub:
        hub.register(provider)
        assert hub.create(MODEL, HI) == "from p"
        own_redis.kill()
        times = []
        for _ in range(20):
            began = time.perf_counter()
            assert hub.create(MODEL, HI) == "from p"  # local state: calls go on
            times.append(time.perf_counter() - began)
        assert max(times) < 0.3
        status = hub.state.status()
        assert not status.shared and status.error
        assert status.down_since is not None
        down = [r for r in caplog.records if "cannot be used" in r.getMessage()]
        assert len(down) == 1  # once per transition, not once per call
        assert provider.calls and hub.health.cooling("p") is None  # not the provider's fault

        own_redis.start()  # the same port
        other = providerhub.RedisState(own_redis.url).health(1, 30, 60)
        opened = other.acquire("p")
        assert opened is not None
        opened.failure(ProviderConnectionError("p", "refused"))  # opened by another process
        # Within the retry interval (1 s) and the mirror's refresh, the hub shares again.
        assert wait_until(lambda: hub.health.cooling("p") is not None, 2.5)
        assert hub.state.status().shared
        back = [r for r in caplog.records if "answers again after" in r.getMessage()]
        assert len(back) == 1
        hub.register(FakeProvider("other", [MODEL], ["other"]))
        assert hub.create(MODEL, HI) == "other"


def test_a_frozen_redis_costs_a_call_at_most_its_timeout_and_is_not_the_providers_fault(
    own_redis: Any,
) -> None:
    provider = Limited("p", rpm=1000)
    state = providerhub.RedisState(own_redis.url, timeout=0.1)
    with providerhub.Hub(False, retries=0, failure_threshold=1, state=state) as hub:
        hub.register(provider)
        assert hub.create(MODEL, HI) == "from p"
        own_redis.pause()
        try:
            times = []
            for _ in range(10):
                began = time.perf_counter()
                assert hub.create(MODEL, HI) == "from p"
                times.append(time.perf_counter() - began)
            assert "Timeout" in hub.state.status().error
        finally:
            own_redis.resume()
    assert max(times) < 0.1 * 3 + 0.2  # at most a few commands' timeouts, once
    assert sorted(times)[5] < 0.05  # then the pacing keeps Redis out of the way
    assert hub.health.snapshot() == {}  # the provider was not blamed


def test_rate_limits_can_fail_closed_while_redis_is_down(own_redis: Any) -> None:
    provider = Limited("p", rpm=1000)
    free = FakeProvider("free", [MODEL], ["free"])
    state = providerhub.RedisState(own_redis.url, fail_closed=True)
    with providerhub.Hub(False, retries=0, state=state) as hub:
        hub.register(provider)
        assert hub.create(MODEL, HI) == "from p"
        own_redis.kill()
        with pytest.raises(RateLimitError, match="PROVIDERHUB_REDIS_FAIL=closed"):
            hub.create(MODEL, HI)
        hub.register(free)  # a provider without limits is not affected
        assert hub.create(MODEL, HI) == "free"
    assert len(provider.calls) == 1


def test_the_redis_password_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    from ._redis import RedisServer

    caplog.set_level(logging.INFO, logger="providerhub.state")
    srv = RedisServer(None, ["--requirepass", "right-pw"]).start()
    try:
        good = providerhub.RedisState(srv.url.replace("redis://", "redis://:right-pw@"))
        assert good.ping() and good.status().shared
        bad = providerhub.RedisState(srv.url.replace("redis://", "redis://:wrong-pw@"))
        assert bad.health(1, 30, 60).cooling("p") is None  # goes on with local state
        status = bad.status()
        assert not status.shared and status.error
        shown = [repr(good), repr(bad), str(status), status.describe(), caplog.text]
        assert all("right-pw" not in t and "wrong-pw" not in t for t in shown), shown
        assert status.location == srv.url
    finally:
        srv.stop()


def test_a_probe_given_back_in_one_process_lets_another_probe(redis_url: str) -> None:
    one = providerhub.RedisState(redis_url).health(1, 0.05, 1)
    two = providerhub.RedisState(redis_url).health(1, 0.05, 1)
    claim = one.acquire("p")
    assert claim is not None
    claim.failure(ProviderConnectionError("p", "refused"))
    held: list[Any] = []

    def probe_taken() -> bool:
        found = one.acquire("p")
        if found is not None and found.probe:
            held.append(found)
        return bool(held)

    assert wait_until(probe_taken, 1.0)
    assert two.acquire("p") is None  # held in the other "process"
    held[0].release()
    probe = two.acquire("p")
    assert probe is not None and probe.probe
    probe.success()
    assert wait_until(lambda: one.cooling("p") is None, 1.0)
    assert two.acquire("p") is not None


def test_json_status_of_the_state(redis_url: str) -> None:
    state = providerhub.RedisState(redis_url)
    status = state.status()
    assert json.loads(json.dumps(status.__dict__))["backend"] == "redis"
    assert status.describe() == f"shared through {redis_url}"
    state.close()


def test_a_success_in_one_process_closes_the_breaker_for_all(redis_url: str) -> None:
    one = providerhub.RedisState(redis_url).health(2, 30, 60)
    two = providerhub.RedisState(redis_url).health(2, 30, 60)
    claim = one.acquire("p")
    assert claim is not None
    claim.failure(ProviderConnectionError("p", "refused"))  # one failure of two
    assert one.snapshot() == {} or one.snapshot()["p"].failures == 1
    done = two.acquire("p")
    assert done is not None
    done.success()
    claim = one.acquire("p")
    assert claim is not None
    claim.failure(ProviderConnectionError("p", "refused"))
    assert one.cooling("p") is None  # the success in between reset the count


def test_concurrent_threads_share_one_state(redis_url: str) -> None:
    state = providerhub.RedisState(redis_url)
    admitted: list[float] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for _ in range(5):
            admitted.append(state.limiter.take("provider:t", Limits(rpm=13)))

    workers = [threading.Thread(target=run) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(1 for w in admitted if w == 0.0) == 13
    state.close()


def test_redis_state_is_in_the_public_api_and_loaded_only_when_asked() -> None:
    code = (
        "import sys, providerhub; assert 'providerhub._state.redis' not in sys.modules; "
        "assert 'redis' not in sys.modules; providerhub.RedisState; "
        "assert 'providerhub._state.redis' in sys.modules"
    )
    finish(run_python(code))
    assert "RedisState" in providerhub.__all__


def test_a_retry_counts_against_rpm_and_is_not_made_without_room() -> None:
    flaky = Limited("flaky", rpm=2, fail=ProviderConnectionError("flaky", "reset"))
    spare = FakeProvider("spare", [MODEL], ["spare"])
    with providerhub.Hub(load_entrypoints=False, retries=5) as hub:
        hub.register(flaky)
        hub.register(spare)
        assert hub.create(MODEL, HI, timeout=5) == "spare"
    assert len(flaky.calls) == 2  # the first request and one retry: rpm=2, not 6 requests


TPM_SCRIPT = """
import sys
import providerhub
from providerhub.types import Usage

class Wordy:
    url = "http://wordy.invalid"
    model = ["gpt-3.5-turbo-16k"]
    supports_stream = True
    needs_auth = False
    tpm = 100
    def _create_completion(self, model, messages, stream, **kwargs):
        yield "many words"
        yield Usage(40, 40, 80)

with providerhub.Hub(False, retries=0, state=sys.argv[1]) as hub:
    hub.register(Wordy(), name="wordy")
    print(hub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}]))
"""


def test_tokens_one_process_reported_count_in_another(redis_url: str) -> None:
    assert finish(run_python(TPM_SCRIPT, redis_url)).strip() == "many words"
    before = threads()
    wordy = Limited("wordy", tpm=100, pieces=["more", Usage(20, 10, 30)])
    with providerhub.Hub(False, retries=0, state=redis_url) as hub:
        hub.register(wordy)
        assert hub.create(MODEL, HI) == "more"  # 80 of 100 were spent elsewhere
        # 110 now, once the counting thread has sent its 30 to Redis (a take under tpm
        # alone counts nothing).
        limits = Limits(tpm=100)
        assert wait_until(lambda: hub.state.limiter.take("provider:wordy", limits) > 0, 1.0)
        with pytest.raises(RateLimitError, match="tpm=100"):
            hub.create(MODEL, HI)
        assert any(t.name == "providerhub-tokens" for t in threads() - before)
    assert wait_until(lambda: threads() <= before, 1.0)  # closing the hub ends the thread
    assert len(wordy.calls) == 1


def test_tokens_that_left_the_window_are_dropped_and_recounted(
    redis_url: str, redis_server: Any
) -> None:
    state = providerhub.RedisState(redis_url)
    limiter = state.limiter
    limits = Limits(tpm=100)
    limiter.spend("provider:p", 150, limits)
    limiter.close()
    assert 59 < limiter.take("provider:p", limits) <= 61  # 150 of 100, for a minute
    tpm_key = limiter.keys("provider:p")[1]
    with redis_server.client() as client:
        seconds = [f for f in client.hgetall(tpm_key) if f not in (b"t", b"o")]
        assert len(seconds) == 1
        now_ms = int(seconds[0])
        # Move those tokens two minutes back, as if they had been reported then.
        old = str(now_ms - 120_000)
        client.delete(tpm_key)
        client.hset(tpm_key, mapping={old: 150, "t": 150, "o": old})
        client.hset(tpm_key, str(now_ms), 30)  # and 30 tokens of now
        client.hincrby(tpm_key, "t", 30)
        assert limiter.take("provider:p", limits) == 0.0  # 30 left in the window
        assert client.hgetall(tpm_key) == {
            str(now_ms).encode(): b"30",
            b"t": b"30",
            b"o": str(now_ms).encode(),
        }
    state.close()


def test_a_primary_turned_replica_is_left_and_its_connections_dropped(own_redis: Any) -> None:
    from ._redis import RedisServer

    other = RedisServer().start()
    state = providerhub.RedisState(own_redis.url)
    limits = Limits(rpm=100)
    try:
        assert state.limiter.take("provider:p", limits) == 0.0
        with own_redis.client() as client:

            def ours() -> int:
                listed = client.client_list()
                return sum(1 for c in listed if c.get("name") == "providerhub")

            assert ours() == 1
            client.replicaof("127.0.0.1", other.port)  # a failover: now a replica
            assert state.limiter.take("provider:p", limits) == 0.0  # counted locally
            status = state.status()
            assert not status.shared and status.error
            assert wait_until(lambda: ours() == 0, 1.0)  # no connection kept to a replica
            client.replicaof("no", "one")
            assert wait_until(lambda: state.check().shared, 2.5)  # and back once it is primary
    finally:
        state.close()
        other.stop()


FORK_SCRIPT = """
import os, sys
import providerhub
from providerhub._state.limits import Limits

state = providerhub.RedisState(sys.argv[1])
limits = Limits(rpm=100)
assert state.limiter.take("provider:f", limits) == 0.0  # a connection, idle now
pid = os.fork()
if pid == 0:
    ok = state.limiter.take("provider:f", limits) == 0.0 and state.status().shared
    os._exit(0 if ok else 1)
_, code = os.waitpid(pid, 0)
# The parent's connection is untouched by the child: its next command answers at once.
after = state.limiter.take("provider:f", limits)
print(os.waitstatus_to_exitcode(code), after, state.status().shared)
"""


def test_a_forked_child_makes_its_own_connections(redis_url: str, redis_server: Any) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    out = finish(run_python(FORK_SCRIPT, redis_url)).split()
    assert out == ["0", "0.0", "True"]
    state = providerhub.RedisState(redis_url)
    with redis_server.client() as client:  # the parent's two and the child's one, counted
        assert client.zcard(state.limiter.keys("provider:f")[0]) == 3


def test_a_request_refused_as_invalid_counts_in_no_process(redis_url: str) -> None:
    state = providerhub.RedisState(redis_url)
    health = state.health(1, 0.2, 10)
    for _ in range(10):
        claim = health.acquire("p")
        assert claim is not None
        claim.failure(ProviderHTTPError("p", "temperature out of range", status_code=400))
    assert health.cooling("p") is None
    assert "p" not in health.snapshot()
    claim = health.acquire("p")
    assert claim is not None
    claim.failure(ProviderHTTPError("p", "down", status_code=500))
    assert health.cooling("p") is not None  # a provider's failure still opens it at once
    state.close()


# -- on an event loop ----------------------------------------------------------------------


def test_redis_round_trips_do_not_stall_the_event_loop(redis_url: str, redis_server: Any) -> None:
    from ._delay import DelayProxy

    native = NativeLimited("native", rpm=1000, pieces=["hi"])
    baseline = threads()
    with DelayProxy(redis_server.port, 0.05) as proxy:  # Redis 100 ms away, there and back
        # Database 3: this test's connections told from the others'.
        state = providerhub.RedisState(proxy.url[: -len("/0")] + "/3", timeout=2.0)
        gaps: list[float] = []

        async def tick(stop: asyncio.Event) -> None:
            while not stop.is_set():
                began = time.perf_counter()
                await asyncio.sleep(0.005)
                gaps.append(time.perf_counter() - began)

        async def main(hub: providerhub.Hub) -> float:
            # The first call connects, loads the scripts and imports aiohttp: a few round
            # trips, and a moment of the loop's own.
            assert await hub.acreate(MODEL, HI) == "hi"
            stop = asyncio.Event()
            ticker = asyncio.get_running_loop().create_task(tick(stop))
            began = time.perf_counter()
            answers = await asyncio.gather(*(hub.acreate(MODEL, HI) for _ in range(10)))
            took = time.perf_counter() - began
            stop.set()
            await ticker
            assert answers == ["hi"] * 10
            await hub.aclose()
            return took

        with providerhub.Hub(load_entrypoints=False, retries=0, state=state) as hub:
            hub.register(native)
            took = asyncio.run(main(hub))
    # While ten calls waited on Redis, one round trip or two each, the loop turned on:
    # blocking it, each call's script would have held it 100 ms, and the ten a second.
    # (A gap under 90 ms: a shared machine can hold a 5 ms sleep longer than 50 ms.)
    assert max(gaps) < 0.09, sorted(gaps)[-5:]
    assert took < 0.6
    import redis

    with redis.Redis(port=redis_server.port, db=3, socket_timeout=5) as client:
        assert client.zcard(state.limiter.keys("provider:native")[0]) == 11  # each, once
        # The loop's one connection went with the hub.
        assert wait_until(
            lambda: (
                not any(
                    c.get("name") == "providerhub" and c.get("db") == "3"
                    for c in client.client_list()
                )
            ),
            2.0,
        )
    assert wait_until(lambda: threads() <= baseline, 2.0)


def test_a_loops_calls_share_one_connection_and_a_timeout_is_a_redis_fault(
    own_redis: Any,
) -> None:
    # The asyncio-native path's: without aiohttp, acreate runs on worker threads, each
    # with a connection from the pool (the Python 3.9 run of .ci/run has no aiohttp).
    pytest.importorskip("aiohttp")
    from ._delay import DelayProxy

    native = NativeLimited("native", rpm=1000, pieces=["hi"])
    with DelayProxy(own_redis.port, 0.02) as proxy:
        state = providerhub.RedisState(proxy.url, timeout=0.5)

        async def main(hub: providerhub.Hub) -> list[str]:
            answers = await asyncio.gather(*(hub.acreate(MODEL, HI) for _ in range(20)))
            own_redis.pause()  # frozen: the next commands get no answer
            try:
                began = time.perf_counter()
                more = await asyncio.gather(*(hub.acreate(MODEL, HI) for _ in range(5)))
                # Counted in the process once Redis timed out, at most one timeout late.
                assert time.perf_counter() - began < 0.5 * 2 + 0.3
                assert "Timeout" in hub.state.status().error
            finally:
                own_redis.resume()
            await hub.aclose()
            return answers + more

        with providerhub.Hub(load_entrypoints=False, retries=0, state=state) as hub:
            hub.register(native)
            assert asyncio.run(main(hub)) == ["hi"] * 25
            assert hub.health.snapshot() == {}  # Redis's fault, not the provider's
    # Twenty calls at once went over one connection, pipelined; the frozen one was
    # dropped, and a second made after it.
    assert proxy.connections <= 3


def test_a_call_cancelled_while_the_connection_opens_leaves_it_to_the_others(
    redis_url: str, redis_server: Any
) -> None:
    from ._delay import DelayProxy

    limits = Limits(rpm=100)
    with DelayProxy(redis_server.port, 0.05) as proxy:
        state = providerhub.RedisState(proxy.url, timeout=2.0)

        async def main() -> list[float]:
            calls = [
                asyncio.get_running_loop().create_task(state.limiter.atake("provider:c", limits))
                for _ in range(3)
            ]
            await asyncio.sleep(0.02)  # the connection's handshake is on its way
            calls[0].cancel()
            waits = await asyncio.gather(*calls[1:])
            assert calls[0].cancelled()
            await state.aclose()
            return waits

        assert asyncio.run(main()) == [0.0, 0.0]
        assert state.status().shared  # the others were not told Redis is down
        assert proxy.connections == 1
    with redis_server.client() as client:
        assert client.zcard(state.limiter.keys("provider:c")[0]) == 2
