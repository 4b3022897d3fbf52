"""A cooldown that holds: a call whose every candidate is cooling down is refused at once,
typed, with when to come back, and nothing reaches the cooling upstream until exactly one
probe goes out (one per cluster of hubs sharing Redis); ``providerhub serve`` answers 503
with ``Retry-After``. And on the worker-thread path of ``acreate`` (no aiohttp), cancelling
the probe frees it at once, closes its socket, and what the abandoned attempt reports later
is not counted. Real loopback servers, a real redis-server, real gateway processes."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub import (
    ConfigurationError,
    NoProviderError,
    ProviderHTTPError,
    ProvidersCoolingDownError,
)
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._internals import WORKERS, arouter, router, settings
from ._support import Endpoint, await_until, sockets, threads, wait_until

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
COOLDOWN = 0.5


def lone_hub(server: Any, **options: Any) -> providerhub.Hub:
    """A hub whose one provider, p1, is the upstream ``server``: the hub's default retries
    (2) unless ``options`` say otherwise."""
    options.setdefault("cooldown", COOLDOWN)
    hub = providerhub.Hub(load_entrypoints=False, **options)
    hub.register(Endpoint("p1", server))
    return hub


def refused_at_once(hub: providerhub.Hub, **kwargs: Any) -> ProvidersCoolingDownError:
    """The error of a call refused by the breaker, checked to come before any request."""
    started = time.perf_counter()
    with pytest.raises(ProvidersCoolingDownError) as caught:
        hub.create(MODEL, HI, **kwargs)
    assert time.perf_counter() - started < 0.2
    return caught.value


@pytest.fixture
def second() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


# -- refused at once, typed ------------------------------------------------------------------


@pytest.mark.slow  # waits out the default retries' backoffs
def test_a_lone_dead_upstream_gets_the_failures_that_open_its_cooldown_then_nothing(
    server: OpenAIServer,
) -> None:
    server.default = Reply.error(500, "down")
    with lone_hub(server, cooldown=30, state=providerhub.MemoryState(clock=FakeClock())) as hub:
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        assert len(server.requests) == 3  # the first try and its two retries: the threshold
        for _ in range(20):
            err = refused_at_once(hub)
            assert isinstance(err, NoProviderError)  # what callers caught before still holds
            assert set(err.waits) == {"p1"} and err.retry_after == 30  # the clock stood
            assert err.retry_after == err.waits["p1"]
            assert "cooling down for 30 s more after 3 failures" in err.reasons["p1"]
        text = str(err)
        assert text.startswith(
            f"every provider that can serve model {MODEL!r} is cooling down after failures, "
            "so nothing was sent: retry in 30 s, when p1 takes calls again:"
        )
        assert "p1: cooling down" in text and server.url not in text and "127.0.0.1" not in text
        # Streams and the asyncio API are refused the same way, as the call is made.
        refused_at_once(hub, stream=True)
        with pytest.raises(ProvidersCoolingDownError):
            hub.acreate(MODEL, HI)
        assert hub.route(MODEL) == []
    assert len(server.requests) == 3


def test_every_candidate_cooling_names_each_with_its_wait(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    state = providerhub.MemoryState(clock=FakeClock())
    with lone_hub(server, retries=0, cooldown=10, state=state) as hub:
        hub.register(Endpoint("p2", second))
        for name in ("p1", "p2"):
            for _ in range(3):
                hub.health.failure(name, ProviderHTTPError(name, "down", status_code=503))
        hub.health.failure("p2", ProviderHTTPError("p2", "down", status_code=503))  # 20 s
        err = refused_at_once(hub)
        assert set(err.waits) == {"p1", "p2"}
        assert (err.waits["p1"], err.waits["p2"]) == (10, 20)
        assert err.retry_after == err.waits["p1"]
        assert set(err.reasons) == {"p1", "p2"}
    assert server.requests == [] and second.requests == []


def test_a_provider_cooled_down_after_the_plan_is_refused_with_its_wait(
    server: OpenAIServer,
) -> None:
    """Planned while healthy, cooling when its turn came (another call's failure): the call
    is refused, typed, sending nothing."""
    state = providerhub.MemoryState(clock=FakeClock())
    with lone_hub(server, retries=0, cooldown=10, state=state) as hub:
        call, candidates = hub._prepare(
            MODEL, HI, stream=False, provider=None, auth=None, timeout=None, retries=None,
            kwargs={},
        )  # fmt: skip
        for _ in range(3):
            hub.health.failure("p1", ProviderHTTPError("p1", "down", status_code=503))
        with pytest.raises(ProvidersCoolingDownError) as caught:
            router.complete(call, candidates)
        assert caught.value.retry_after == 10
    assert server.requests == []


def test_after_the_cooldown_exactly_one_probe_goes_out(server: OpenAIServer) -> None:
    server.default = Reply.error(500, "down")
    clock = FakeClock()
    state = providerhub.MemoryState(clock=clock)
    with lone_hub(server, retries=0, failure_threshold=1, cooldown=30, state=state) as hub:
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        clock.advance(30)
        assert hub.health.cooling("p1") is None
        # The probe is held 0.3 s before its 500, while eleven more calls race for it.
        server.default = Reply(status=500, chunks=[], fault="stall", after=None, delay=0.3)
        outcomes = race(12, lambda: hub.create(MODEL, HI))
        assert sorted(outcomes) == ["ProviderHTTPError"] + ["ProvidersCoolingDownError"] * 11
        assert len(server.requests) == 2
        cooling = hub.health.cooling("p1")
        assert cooling is not None and cooling.remaining == 60  # doubled by the failed probe


def reopened(hub: providerhub.Hub, longer_than: float) -> bool:
    """Whether ``hub`` sees p1 cooling down for more than ``longer_than`` seconds."""
    cooling = hub.health.cooling("p1")
    return cooling is not None and cooling.remaining > longer_than


def race(count: int, call: Any) -> list[str]:
    """Run ``call`` on ``count`` threads at once: the class name of what each raised, or
    "ok"."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = []

    def one() -> None:
        barrier.wait()
        try:
            call()
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        else:
            outcomes.append("ok")

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return outcomes


# -- the option: today's behaviour, one attempt ----------------------------------------------


@pytest.mark.slow  # waits out the default retries' backoffs
def test_try_soonest_makes_one_attempt_per_call_at_the_provider_back_first(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.default = Reply.error(500, "down")
    second.default = Reply.error(500, "down")
    with lone_hub(server, cooldown=30, when_all_cooling="try-soonest") as hub:
        hub.register(Endpoint("p2", second))
        with pytest.raises(providerhub.AllProvidersFailedError):
            hub.create(MODEL, HI)  # three tries each: both cool down, p1 first
        assert (len(server.requests), len(second.requests)) == (3, 3)
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)  # the default retries are 2: one attempt all the same
        assert (len(server.requests), len(second.requests)) == (4, 3)
        # That failure doubled p1's cooldown: p2 is back first now.
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        assert (len(server.requests), len(second.requests)) == (4, 4)
        server.default = Reply.text("p1 is back")
        assert hub.create(MODEL, HI) == "p1 is back"
        assert hub.health.cooling("p1") is None


def test_when_all_cooling_is_checked_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert providerhub.Hub(load_entrypoints=False).when_all_cooling == "refuse"
    monkeypatch.setenv(settings.WHEN_ALL_COOLING_VARIABLE, "Try-Soonest")
    assert providerhub.Hub(load_entrypoints=False).when_all_cooling == "try-soonest"
    hub = providerhub.Hub(load_entrypoints=False, when_all_cooling="refuse")
    assert hub.when_all_cooling == "refuse"  # the argument wins
    monkeypatch.setenv(settings.WHEN_ALL_COOLING_VARIABLE, "soonest")
    with pytest.raises(ConfigurationError, match="PROVIDERHUB_WHEN_ALL_COOLING holds 'soonest'"):
        providerhub.Hub(load_entrypoints=False)
    with pytest.raises(ConfigurationError, match="when_all_cooling holds 'never'"):
        providerhub.Hub(load_entrypoints=False, when_all_cooling="never")


# -- shared through Redis: one cluster, one probe ------------------------------------------


def test_two_hubs_sharing_redis_hold_one_cooldown_and_send_one_probe(
    server: OpenAIServer, redis_url: str
) -> None:
    server.default = Reply.error(500, "down")
    with (
        lone_hub(server, state=redis_url, cooldown=1.0) as first,
        lone_hub(server, state=redis_url, cooldown=1.0) as second,
    ):
        # Redis keeps the time (its TIME), not a clock of the test's: the waits are
        # bounded by the cooldown and by how long the test itself took since it opened.
        opened = time.monotonic()
        with pytest.raises(ProviderHTTPError):
            first.create(MODEL, HI)
        assert len(server.requests) == 3
        for hub in (second, first, second):
            err = refused_at_once(hub)
            assert 1.0 - (time.monotonic() - opened) - 0.01 <= err.retry_after <= 1.0
        assert len(server.requests) == 3
        assert wait_until(lambda: second.health.cooling("p1") is None, 3)
        server.default = Reply(status=500, chunks=[], fault="stall", after=None, delay=0.3)
        hubs = [first, second] * 6
        calls = iter(hubs)
        lock = threading.Lock()

        def call() -> None:
            with lock:
                hub = next(calls)
            hub.create(MODEL, HI)

        reopened_at = time.monotonic()
        outcomes = race(len(hubs), call)
        assert sorted(outcomes) == ["ProviderHTTPError"] + ["ProvidersCoolingDownError"] * 11
        assert len(server.requests) == 4
        for hub in (first, second):
            # Doubled for both, once each one's view (refreshed every 0.25 s) has it: no
            # more than 2 s left, and no less than 2 s less the time the test took since
            # the race (a second left at most, had it not been doubled).
            def left() -> float:
                return 2.0 - (time.monotonic() - reopened_at) - 0.01

            assert wait_until(lambda hub=hub: reopened(hub, left()), 1)
            wait = refused_at_once(hub).retry_after
            assert left() <= wait <= 2.0


# -- the gateway ------------------------------------------------------------------------------


def _body(stream: bool = False) -> bytes:
    return json.dumps({"model": MODEL, "messages": HI, "stream": stream}).encode()


def _gateway_env(upstream: OpenAIServer, tmp: Path, **extra: str) -> dict[str, str]:
    from ._gateway import clean_environment

    config = tmp / "config.toml"
    config.touch()
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config), PROVIDERHUB_GRAVITYENGINE_URL=upstream.url, **extra
    )


@pytest.mark.slow  # starts serve processes
def test_the_gateway_answers_503_with_retry_after_and_sends_nothing_upstream(
    server: OpenAIServer, tmp_path: Path
) -> None:
    pytest.importorskip("uvicorn")
    from ._gateway import Gateway

    server.default = Reply.error(500, "down")
    gateway = Gateway(tmp_path, _gateway_env(server, tmp_path))
    try:
        opened = time.monotonic()
        status, _, _ = gateway.request("POST", "/v1/chat/completions", _body())
        assert status == 502
        assert len(server.requests) == 3  # the hub's default: three failures open 30 s
        for stream in (False, True, False):
            started = time.perf_counter()
            status, headers, body = gateway.request("POST", "/v1/chat/completions", _body(stream))
            assert time.perf_counter() - started < 0.5
            assert status == 503, body
            # Whole seconds, rounded up: 30 at most, and no less than what is left of the
            # 30 s after the time this test took (the gateway's clock is its own).
            assert 30 - (time.monotonic() - opened) <= int(headers["retry-after"]) <= 30
            error = json.loads(body)["error"]
            assert error["code"] == "no_provider_available"
            assert "gravityengine" in error["message"] and "cooling down" in error["message"]
            assert server.url not in error["message"] and "127.0.0.1" not in error["message"]
        assert len(server.requests) == 3
    finally:
        assert gateway.stop() == 0


REPLICA = """
import uvicorn, providerhub
from providerhub.server import create_app

hub = providerhub.Hub(cooldown=1.0, failure_threshold=1, retries=0)
uvicorn.run(create_app(hub), host="127.0.0.1", port=0, log_level="info")
"""


@pytest.mark.slow  # starts serve processes
def test_two_gateways_sharing_redis_hold_one_cooldown_and_send_one_probe(
    server: OpenAIServer, redis_url: str, tmp_path: Path
) -> None:
    pytest.importorskip("uvicorn")
    from ._gateway import Gateway, poll

    script = tmp_path / "replica.py"
    script.write_text(textwrap.dedent(REPLICA), encoding="utf-8")
    env = _gateway_env(server, tmp_path, PROVIDERHUB_REDIS_URL=redis_url)
    replicas = [Gateway(tmp_path, env, command=[sys.executable, str(script)]) for _ in range(2)]
    try:
        server.default = Reply.error(500, "down")
        status, _, _ = replicas[0].request("POST", "/v1/chat/completions", _body())
        assert status == 502 and len(server.requests) == 1  # threshold 1: it cools down
        status, headers, _ = replicas[1].request("POST", "/v1/chat/completions", _body())
        assert status == 503 and headers["retry-after"] == "1"
        assert len(server.requests) == 1
        # Once the cooldown is over, each replica races for the one probe.
        assert poll(lambda: all(r.request("GET", "/readyz")[0] == 200 for r in replicas), 3)
        server.default = Reply(status=500, chunks=[], fault="stall", after=None, delay=0.3)
        statuses = race_gateways(replicas * 4)
        assert sorted(statuses) == [502] + [503] * 7
        assert len(server.requests) == 2
    finally:
        for replica in replicas:
            replica.stop()  # a bare uvicorn.run() ends by the signal, not with 0


def race_gateways(gateways: list[Any]) -> list[int]:
    barrier = threading.Barrier(len(gateways))
    statuses: list[int] = []

    def one(gateway: Any) -> None:
        barrier.wait()
        statuses.append(gateway.request("POST", "/v1/chat/completions", _body())[0])

    threads = [threading.Thread(target=one, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return statuses


# -- cancelling the probe on the worker-thread path ------------------------------------------


class StallingServer:
    """Accepts, reads a request, and answers nothing until the client goes (then closes
    its side at once); the requests after the first ``stalls`` get a completion, and the
    connection is closed (no pooled connection stays open)."""

    def __init__(self, stalls: int = 1) -> None:
        self.requests = 0
        self.hangups = 0
        """Stalled requests whose client went away."""
        self.stalls = stalls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            while length and len(body) < int(length.group(1)):
                body += conn.recv(65536)  # read whole: closing on unread data resets
            self.requests += 1
            if self.requests <= self.stalls:
                while conn.recv(65536):  # no headers, ever: until the client goes
                    pass
                self.hangups += 1
                return
            doc = json.dumps(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": "back"},
                              "finish_reason": "stop"}]}
            ).encode()  # fmt: skip
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(doc)}\r\n\r\n".encode()
                + doc
            )

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


@pytest.fixture
def stalling() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


def open_breaker(hub: providerhub.Hub, clock: FakeClock) -> None:
    """Open p1's breaker and let its cooldown pass: the next call to p1 is the probe."""
    for _ in range(hub.health.threshold):
        hub.health.failure("p1", ProviderHTTPError("p1", "down", status_code=503))
    assert hub.health.cooling("p1") is not None
    clock.advance(hub.health.cooldown)
    assert hub.health.cooling("p1") is None


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKERS.name]


@pytest.mark.parametrize("stream", [False, True])
def test_cancelling_the_probe_on_the_thread_path_frees_it_at_once_and_closes_its_socket(
    stalling: StallingServer, stream: bool
) -> None:
    clock = FakeClock()
    with lone_hub(stalling, retries=0, state=providerhub.MemoryState(clock=clock)) as hub:
        assert not arouter.native(hub.route(MODEL))  # the worker-thread path
        open_breaker(hub, clock)
        assert wait_until(lambda: not worker_threads(), 2)
        before_sockets, before_threads = sockets(), threads()
        state = hub.health.snapshot()["p1"]

        async def probe() -> str:
            # A read timeout of a minute: nothing but the cancellation ends the wait.
            timeout = providerhub.Timeout(5, 60)
            if stream:
                return "".join([p async for p in hub.acreate(MODEL, HI, stream=True,
                                                             timeout=timeout)])  # fmt: skip
            return await hub.acreate(MODEL, HI, timeout=timeout)

        async def main() -> float:
            task = asyncio.create_task(probe())
            assert await await_until(lambda: stalling.requests == 1, 2)
            assert hub.health.snapshot()["p1"].probing
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            cancelled = time.perf_counter()
            assert not hub.health.snapshot()["p1"].probing  # given back with the cancel
            assert await await_until(lambda: stalling.hangups == 1)  # the socket was cut
            # The next call is the new probe, and reaches the upstream at once.
            assert await hub.acreate(MODEL, HI, timeout=5) == "back"
            return time.perf_counter() - cancelled

        assert asyncio.run(main()) < 1.0
        assert stalling.requests == 2
        # The cancelled worker's socket was shut down: it ends, and closes it, at once
        # (the read timeout was a minute); the server saw the client go.
        assert wait_until(lambda: not worker_threads(), 1)
        assert wait_until(lambda: sockets() <= before_sockets and threads() <= before_threads, 1)
        healed = hub.health.snapshot()["p1"]
        assert healed.failures == 0 and healed.open_until == 0.0  # by the new probe alone
        assert state.failures == hub.health.threshold


class Held:
    """A provider on the worker-thread path whose answer comes only when the test says:
    what a cancelled call's worker reports after the caller has gone."""

    honors_timeout = True

    def __init__(self, outcome: BaseException | str) -> None:
        self.name = "p1"
        self.url = "http://held.invalid"
        self.model = [MODEL]
        self.supports_stream = True
        self.needs_auth = False
        self.outcome = outcome
        self.release = threading.Event()
        self.calls = 0

    def _create_completion(self, model: str, messages: Any, stream: bool, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            yield "fresh"
            return
        self.release.wait(10)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        yield self.outcome


@pytest.mark.parametrize(
    "outcome", ["late answer", ProviderHTTPError("p1", "late failure", status_code=503)]
)
def test_what_a_cancelled_probe_reports_later_does_not_touch_the_breaker(
    outcome: BaseException | str,
) -> None:
    held = Held(outcome)
    clock = FakeClock()
    state = providerhub.MemoryState(clock=clock)
    with providerhub.Hub(load_entrypoints=False, retries=0, cooldown=0.5, state=state) as hub:
        hub.register(held)
        open_breaker(hub, clock)

        async def main() -> None:
            task = asyncio.create_task(hub.acreate(MODEL, HI))
            assert await await_until(lambda: held.calls == 1, 2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        before = hub.health.snapshot()["p1"]
        assert not before.probing and before.failures == hub.health.threshold
        held.release.set()  # the abandoned attempt now succeeds, or fails
        assert wait_until(lambda: not worker_threads(), 2)
        after = hub.health.snapshot()["p1"]
        assert after == before  # neither healed nor failed by it
        assert hub.create(MODEL, HI) == "fresh"  # the probe is free
