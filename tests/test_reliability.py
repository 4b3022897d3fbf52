"""Retries, fallback, cooldowns and deadlines, against real loopback servers."""

from __future__ import annotations

import email.utils
import io
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from typing import Any, Callable

import pytest
from urllib3.util import Retry

import providerhub
import providerhub_gravityengine
from providerhub import (
    AllProvidersFailedError,
    AuthenticationError,
    MemoryState,
    NoProviderError,
    ProviderHTTPError,
    ProviderTimeoutError,
)
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._support import Endpoint

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
FAST = Retry(total=2, backoff_factor=0, allowed_methods=None)


@pytest.fixture
def second() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def make_hub(*servers: OpenAIServer, **options: Any) -> providerhub.Hub:
    hub = providerhub.Hub(load_entrypoints=False, **options)
    for index, server in enumerate(servers):
        hub.register(Endpoint(f"p{index + 1}", server))
    return hub


@pytest.mark.slow  # waits out the default retries' backoffs
def test_503_twice_then_success_returns_the_whole_answer_with_default_retries(
    server: OpenAIServer,
) -> None:
    server.script(Reply.error(503), Reply.error(503), Reply.text("fine", " now"))
    with make_hub(server) as hub:  # the hub's default: 2 retries
        started = time.monotonic()
        assert hub.create(MODEL, HI) == "fine now"
        assert time.monotonic() - started < 3
        server.script(Reply.error(503), Reply.error(503), Reply.text("streamed"))
        assert list(hub.create(MODEL, HI, stream=True)) == ["streamed"]
    assert len(server.requests) == 6


def test_with_retries_0_the_router_falls_back_instead(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.script(Reply.error(503))
    second.script(Reply.text("from the second"))
    with make_hub(server, second) as hub:
        assert hub.create(MODEL, HI, retries=0) == "from the second"
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_never_retried(server: OpenAIServer, status: int) -> None:
    server.script(Reply.error(status))
    with make_hub(server, retries=FAST) as hub, pytest.raises(ProviderHTTPError):
        hub.create(MODEL, HI)
    assert len(server.requests) == 1


@pytest.mark.parametrize("retry_after", [None, "0"])
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(
    server: OpenAIServer, status: int, retry_after: str | None
) -> None:
    server.script(Reply.error(status, retry_after=retry_after), Reply.text("ok"))
    with make_hub(server, retries=FAST) as hub:
        started = time.monotonic()
        assert hub.create(MODEL, HI) == "ok"
        assert time.monotonic() - started < 1
    assert len(server.requests) == 2
    server.script(Reply.error(status, retry_after=retry_after))
    with make_hub(server, retries=0) as hub, pytest.raises(ProviderHTTPError) as info:
        hub.create(MODEL, HI)
    assert info.value.status_code == status
    assert info.value.retry_after == (None if retry_after is None else 0.0)


@pytest.mark.parametrize(
    "fault",
    [
        Reply(fault="reset", after=None),
        Reply(fault="reset", after=0),
        Reply(fault="cut", after=0),
        pytest.param(
            Reply(fault="stall", after=None, delay=5),
            marks=pytest.mark.slow,  # waits out the read timeout
        ),
    ],
)
def test_network_faults_before_any_text_are_retried(server: OpenAIServer, fault: Reply) -> None:
    server.script(fault, Reply.text("recovered"))
    with make_hub(server, retries=FAST) as hub:
        started = time.monotonic()
        pieces = list(hub.create(MODEL, HI, stream=True, timeout=providerhub.Timeout(2, 0.5)))
        assert time.monotonic() - started < 3
    assert pieces == ["recovered"]


def test_a_failure_after_text_is_not_retried_and_text_is_never_duplicated(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.script(Reply.text("one", " two", fault="reset", after=1))
    with make_hub(server, second, retries=FAST) as hub:
        got = []
        with pytest.raises(providerhub.StreamInterruptedError):
            for piece in hub.create(MODEL, HI, stream=True):
                got.append(piece)
    assert got == ["one"]
    assert len(server.requests) == 1
    assert second.requests == []


@pytest.mark.slow  # waits out a Retry-After
def test_retry_after_seconds_is_honoured(server: OpenAIServer) -> None:
    server.script(Reply.error(429, retry_after="1"), Reply.text("ok"))
    with make_hub(server, retries=FAST) as hub:
        started = time.monotonic()
        assert hub.create(MODEL, HI) == "ok"
        waited = time.monotonic() - started
    assert 0.9 <= waited < 2.5


@pytest.mark.slow  # waits out a Retry-After
def test_retry_after_as_an_http_date_is_honoured(server: OpenAIServer) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    server.script(Reply.error(503, retry_after=when), Reply.text("ok"))
    with make_hub(server, retries=FAST) as hub:
        started = time.monotonic()
        assert hub.create(MODEL, HI) == "ok"
        waited = time.monotonic() - started
    assert 0.5 <= waited < 3.5  # HTTP dates have whole seconds


def test_a_retry_after_past_the_cap_falls_back_at_once(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.script(Reply.error(429, retry_after="3600"))
    with make_hub(server, second, retries=FAST, retry_after_max=5) as hub:
        started = time.monotonic()
        assert "You said: Hi" in hub.create(MODEL, HI)
        assert time.monotonic() - started < 1
    assert len(server.requests) == 1


@pytest.mark.slow  # waits out a timeout
def test_the_total_timeout_bounds_retries(server: OpenAIServer) -> None:
    server.default = Reply.error(503, retry_after="1")
    with make_hub(server, retries=Retry(total=10, backoff_factor=0)) as hub:
        started = time.monotonic()
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI, timeout=1.5)
        assert time.monotonic() - started < 2
    assert len(server.requests) == 2  # then the next wait would pass the deadline


@pytest.mark.slow  # waits out a timeout
def test_a_stall_mid_stream_raises_within_the_read_timeout(server: OpenAIServer) -> None:
    server.script(Reply.text("a", "b", fault="stall", after=1, delay=10))
    with make_hub(server, retries=FAST) as hub:
        stream = hub.create(MODEL, HI, stream=True, timeout=providerhub.Timeout(2, 0.5))
        assert next(stream) == "a"
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            next(stream)
        assert time.monotonic() - started < 1.5


@pytest.mark.slow  # waits out a timeout
def test_the_total_deadline_holds_mid_stream(server: OpenAIServer) -> None:
    server.script(Reply.text(*["x"] * 50, chunk_delay=0.1))
    with make_hub(server) as hub:
        started = time.monotonic()
        got = []
        with pytest.raises(ProviderTimeoutError, match="total timeout"):
            for piece in hub.create(MODEL, HI, stream=True, timeout=providerhub.Timeout(2, 2, 1)):
                got.append(piece)
        assert time.monotonic() - started < 1.6
    assert 3 <= len(got) < 50


# -- cooldowns -----------------------------------------------------------------------------


def test_three_failures_cool_a_provider_down_then_it_is_probed_again(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.default = Reply.error(500, "down")
    clock = FakeClock()
    state = MemoryState(clock=clock)
    with make_hub(server, second, retries=0, cooldown=30, state=state) as hub:
        for _ in range(3):
            assert "You said" in hub.create(MODEL, HI)  # p1 fails, p2 answers
        assert len(server.requests) == 3
        assert [p.name for p in hub.route(MODEL)] == ["p2"]
        hub.create(MODEL, HI)
        assert len(server.requests) == 3  # skipped while cooling down
        clock.advance(29)
        assert [p.name for p in hub.route(MODEL)] == ["p2"]  # not a second early
        clock.advance(1)
        server.default = Reply.text("back")
        assert [p.name for p in hub.route(MODEL)] == ["p1", "p2"]
        assert hub.create(MODEL, HI) == "back"  # the probe went through, and healed it
        assert hub.health.cooling("p1") is None
        assert len(server.requests) == 4


def test_a_failed_probe_doubles_the_cooldown(server: OpenAIServer) -> None:
    server.default = Reply.error(500)
    clock = FakeClock()
    with make_hub(server, retries=0, cooldown=10, state=MemoryState(clock=clock)) as hub:
        for _ in range(3):
            with pytest.raises(ProviderHTTPError):
                hub.create(MODEL, HI)
        first = hub.health.cooling("p1")
        assert first is not None and first.remaining == 10
        clock.advance(10.5)
        assert hub.health.cooling("p1") is None  # half-open: one probe may go
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        second = hub.health.cooling("p1")
        assert second is not None and second.remaining == 20
        assert second.failures == 4


def test_a_cooled_provider_is_explained_and_the_earliest_is_tried_when_all_cool(
    server: OpenAIServer, second: OpenAIServer
) -> None:
    server.default = Reply.error(500)
    second.default = Reply.error(500)
    # Trying the earliest is the option; refusing is the default (tests/test_cooldown.py).
    with make_hub(server, second, retries=0, cooldown=30, when_all_cooling="try-soonest") as hub:
        for _ in range(3):
            with pytest.raises(AllProvidersFailedError):
                hub.create(MODEL, HI)
        hub.health.failure("p2", ProviderHTTPError("p2", "x", status_code=500))  # p2 ends later
        candidates = hub.route(MODEL)
        assert [p.name for p in candidates] == ["p1"]
        second.default = Reply.text("unused")
        server.default = Reply.text("p1 is back")
        assert hub.create(MODEL, HI) == "p1 is back"


def test_an_auth_failure_cools_down_at_once_and_shows_in_no_provider_error(
    server: OpenAIServer,
) -> None:
    server.default = Reply.error(401)
    clock = FakeClock()
    with make_hub(server, retries=0, state=MemoryState(clock=clock)) as hub:
        with pytest.raises(AuthenticationError):
            hub.create(MODEL, HI)
        cooling = hub.health.cooling("p1")
        assert cooling is not None and cooling.failures == 1
        clock.advance(31)
        probe = hub.health.acquire("p1")  # another call is probing p1 right now
        assert probe is not None and probe.probe
        with pytest.raises(NoProviderError) as info:
            hub.create(MODEL, HI)
        assert "a probe call is under way" in info.value.reasons["p1"]
        assert "AuthenticationError" in info.value.reasons["p1"]


def test_providers_command_shows_the_cooldown(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ._internals import cli, hub_module

    server.default = Reply.error(503)
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    # On a clock of the test's, so that "30 s left" is what the cooldown holds however
    # long the calls took (29.4 s left would show 29).
    state = MemoryState(clock=FakeClock())
    own = providerhub.Hub(load_entrypoints=False, retries=0, state=state)
    own.register_plugin(providerhub_gravityengine, name="gravityengine")
    monkeypatch.setattr(hub_module, "_default_hub", own)
    for _ in range(3):
        with pytest.raises(ProviderHTTPError):
            providerhub.create(MODEL, HI)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["providers"]) == 0
    assert "cooldown: 30 s left, after 3 failures in a row (last: ProviderHTTPError)" in (
        out.getvalue()
    )
    own.close()


# -- concurrency ---------------------------------------------------------------------------


def test_32_streams_through_one_hub_against_a_flaky_server(server: OpenAIServer) -> None:
    words = [f"w{i} " for i in range(40)]

    def every_third_fails(number: int, request: Any) -> Reply:
        return Reply.error(503) if number % 3 == 0 else Reply.text(*words)

    server.responder = every_third_fails
    outcomes: list[Any] = []
    lock = threading.Lock()
    # What is tested is the retries under 32 threads. Interleaved, a failure of each of
    # three threads can come in a row before any success is counted; the breaker would
    # then refuse the calls that follow (tests/test_cooldown.py tests that), so it is set
    # out of reach here.
    with make_hub(server, retries=FAST, failure_threshold=64) as hub:

        def worker() -> None:
            try:
                text = "".join(hub.create(MODEL, HI, stream=True, timeout=20))
            except providerhub.ProviderHubError as exc:
                result: Any = exc
            else:
                result = text
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        state = hub.health.snapshot().get("p1")
    assert len(outcomes) == 32
    texts = [o for o in outcomes if isinstance(o, str)]
    assert all(t == "".join(words) for t in texts)
    assert len(texts) >= 30  # a retry absorbs nearly every failure
    assert all(isinstance(o, providerhub.ProviderError) for o in outcomes if o not in texts)
    if state is not None:
        assert state.failures >= 0 and not state.probing


# -- plugins that misbehave ----------------------------------------------------------------


@pytest.mark.slow  # waits out a timeout
def test_a_provider_hanging_past_the_deadline_is_cut_off(hub: providerhub.Hub) -> None:
    release = threading.Event()

    class Hanging:
        url = "http://hang.invalid"
        model = ["m"]
        supports_stream = True
        needs_auth = False

        def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
            yield "start"
            release.wait(30)  # a seed module calling the network with no timeout
            yield "never seen"

    hub.register(Hanging(), name="hanging")
    started = time.monotonic()
    got = []
    with pytest.raises(ProviderTimeoutError, match="gave nothing"):
        for piece in hub.create("m", HI, stream=True, timeout=providerhub.Timeout(1, 0.5, 1)):
            got.append(piece)
    assert time.monotonic() - started < 1.5
    assert got == ["start"]
    release.set()


@pytest.mark.slow  # waits out a timeout
def test_a_provider_hanging_before_any_text_falls_back_in_time(
    hub: providerhub.Hub, fake: Callable[..., Any]
) -> None:
    release = threading.Event()

    class Stuck:
        url = "http://stuck.invalid"
        model = ["m"]
        supports_stream = True
        needs_auth = False

        def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
            release.wait(30)
            yield "late"

    hub.register(Stuck(), name="stuck")
    hub.register(fake("backup", ["m"]))
    started = time.monotonic()
    assert hub.create("m", HI, timeout=providerhub.Timeout(1, 0.5)) == "from backup"
    assert time.monotonic() - started < 1.5
    release.set()
