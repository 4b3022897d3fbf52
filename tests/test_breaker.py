"""The breaker's probe: exactly one call gets it, and it is given back however that call
ends, so a provider is never left cooling down for good. Real loopback servers, and
cooldowns on a clock the tests move (:class:`providerhub.testing.FakeClock`)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import providerhub
from providerhub import (
    InvalidRequestError,
    MemoryState,
    NoProviderError,
    ProviderHTTPError,
    ProvidersCoolingDownError,
    RateLimitError,
)
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._internals import Claim, Health
from ._support import Endpoint, FakeProvider, await_until, wait_until

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
COOLDOWN = 30.0  # on the test's clock: it passes at once


@pytest.fixture
def second() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    """The time of the test's hub."""
    return FakeClock()


@pytest.fixture
def hub(server: OpenAIServer, clock: FakeClock) -> Iterator[providerhub.Hub]:
    """One provider, p1, on ``server``; no retries; cooldowns on ``clock``."""
    state = MemoryState(clock=clock)
    with providerhub.Hub(load_entrypoints=False, retries=0, cooldown=COOLDOWN, state=state) as h:
        h.register(Endpoint("p1", server))
        yield h


def open_breaker(hub: providerhub.Hub, clock: FakeClock, name: str = "p1") -> None:
    """Fail ``name`` until it cools down, then let the cooldown pass: the next call to it
    is the probe."""
    for _ in range(hub.health.threshold):
        hub.health.failure(name, ProviderHTTPError(name, "down", status_code=503))
    cooling = hub.health.cooling(name)
    assert cooling is not None and cooling.remaining == hub.health.cooldown
    clock.advance(hub.health.cooldown - 1)
    assert hub.health.cooling(name) is not None  # not a second early
    clock.advance(1)
    assert hub.health.cooling(name) is None


def probing(hub: providerhub.Hub, name: str = "p1") -> bool:
    return hub.health.snapshot()[name].probing


def assert_released_then_next_call_probes(hub: providerhub.Hub, server: OpenAIServer) -> None:
    """The probe was given back without a verdict: the breaker is still open, its time
    up, the failures as they were; the next call probes, and its success heals p1."""
    state = hub.health.snapshot()["p1"]
    assert not state.probing
    assert state.failures == hub.health.threshold  # the way it ended was not a failure
    assert state.open_until > 0
    assert hub.health.cooling("p1") is None
    server.script(Reply.text("healed"))
    assert hub.create(MODEL, HI) == "healed"
    assert hub.health.snapshot()["p1"].failures == 0
    assert hub.health.cooling("p1") is None


# -- the clock ------------------------------------------------------------------------------


def test_a_hub_cools_down_and_counts_its_limits_on_the_clock_of_its_state(
    server: OpenAIServer, clock: FakeClock
) -> None:
    """``MemoryState(clock=...)``: the cooldowns, their doubling, and the rate limits'
    minute are measured on the given clock, to the second, and pass without waiting."""
    provider = Endpoint("p1", server)
    provider.rpm = 2  # type: ignore[attr-defined]  # a provider's optional limit
    state = MemoryState(clock=clock)
    with providerhub.Hub(
        load_entrypoints=False, retries=0, failure_threshold=1, cooldown=30, state=state
    ) as hub:
        hub.register(provider)
        server.script(Reply.error(503))
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        with pytest.raises(ProvidersCoolingDownError) as cooling:
            hub.create(MODEL, HI)
        assert cooling.value.retry_after == 30  # no time passed on the clock
        clock.advance(29)
        with pytest.raises(ProvidersCoolingDownError) as cooling:
            hub.create(MODEL, HI)
        assert cooling.value.retry_after == 1
        clock.advance(1)
        server.script(Reply.error(503))
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)  # the probe, failed: twice as long
        with pytest.raises(ProvidersCoolingDownError) as cooling:
            hub.create(MODEL, HI)
        assert cooling.value.retry_after == 60
        clock.advance(60)
        assert hub.create(MODEL, HI).endswith("You said: Hi")  # the probe heals p1
        # Its rpm: two requests in the minute (the failed probe was one, 60 s ago, and
        # has left it), then a wait until the oldest leaves.
        clock.advance(10)
        assert hub.create(MODEL, HI).endswith("You said: Hi")
        with pytest.raises(RateLimitError) as limited:
            hub.create(MODEL, HI)
        assert limited.value.retry_after == 50
        clock.advance(50)
        assert hub.create(MODEL, HI).endswith("You said: Hi")
    assert len(server.requests) == 5


def test_a_fake_clock_stands_still_until_advanced_and_only_goes_forward() -> None:
    clock = FakeClock()
    start = clock()
    assert clock() == start  # no time passes by itself
    clock.advance(0)
    clock.advance(2.5)
    assert clock() == start + 2.5
    with pytest.raises(ValueError, match="only goes forward"):
        clock.advance(-1)
    assert clock() == start + 2.5
    assert FakeClock(0.0)() == 0.0


# -- exactly one probe ---------------------------------------------------------------------


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter can, so that a claim that is not atomic
    gets caught between its check and its write."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.slow  # 60 races of 16 threads switching every µs: seconds on a busy machine
@pytest.mark.usefixtures("eager_switching")
def test_exactly_one_of_many_racing_threads_gets_the_probe() -> None:
    clock = [0.0]
    health = Health(threshold=1, cooldown=1.0, clock=lambda: clock[0])
    for round_ in range(60):
        health.failure("p", ProviderHTTPError("p", "down", status_code=503))
        clock[0] += 1000  # the cooldown (doubling each round, at most 600 s) is over
        barrier = threading.Barrier(16)
        got: list[Claim | None] = []
        early = round_ % 2 == 1  # asking early changes nothing once the time is up

        def race(
            barrier: threading.Barrier = barrier, early: bool = early, got: list[Any] = got
        ) -> None:
            barrier.wait()
            got.append(health.acquire("p", early=early))  # list.append is atomic

        racers = [threading.Thread(target=race) for _ in range(16)]
        for t in racers:
            t.start()
        for t in racers:
            t.join(5)
        claims = [c for c in got if c is not None]
        assert len(got) == 16
        assert len(claims) == 1 and claims[0].probe, f"round {round_}: {got}"
        claims[0].release()
        assert not health.snapshot()["p"].probing


def test_many_calls_after_a_cooldown_send_one_probe_and_the_others_fall_back(
    hub: providerhub.Hub, server: OpenAIServer, second: OpenAIServer, clock: FakeClock
) -> None:
    hub.register(Endpoint("p2", second))
    open_breaker(hub, clock)
    release = threading.Event()
    server.default = Reply.text("probe", " answered", wait=release, after=1)
    barrier = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        text = "".join(hub.create(MODEL, HI, stream=True, timeout=10))
        with lock:
            outcomes.append(text)

    callers = [threading.Thread(target=call) for _ in range(12)]
    for t in callers:
        t.start()
    # The probe holds p1 (its server keeps the rest of the answer) while the others go.
    assert wait_until(lambda: len(outcomes) == 11, 5)
    assert len(server.requests) == 1
    assert probing(hub)
    release.set()
    for t in callers:
        t.join(5)
    assert sorted(outcomes)[-1] == "probe answered"
    assert all("You said: Hi" in text for text in sorted(outcomes)[:-1])
    assert len(second.requests) == 11
    assert hub.health.snapshot()["p1"].failures == 0  # the probe's success healed p1


def test_a_call_planned_before_another_took_the_probe_is_turned_away_with_the_reason(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    stream = hub.create(MODEL, HI, stream=True)  # planned while no probe was under way
    other = hub.health.acquire("p1")
    assert other is not None and other.probe
    with pytest.raises(NoProviderError) as info:
        next(stream)
    assert "a probe call is under way" in info.value.reasons["p1"]
    assert server.requests == []
    other.release()
    assert_released_then_next_call_probes(hub, server)


def test_a_failed_probe_reopens_the_breaker_for_twice_as_long(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    server.script(Reply.error(503))
    with pytest.raises(ProviderHTTPError):
        hub.create(MODEL, HI)
    state = hub.health.snapshot()["p1"]
    assert not state.probing and state.period == 2 * COOLDOWN
    cooling = hub.health.cooling("p1")
    assert cooling is not None and cooling.remaining > 0


def test_a_failed_probe_is_not_retried_and_doubles_the_cooldown_once(
    server: OpenAIServer,
    clock: FakeClock,
) -> None:
    state = MemoryState(clock=clock)
    with providerhub.Hub(load_entrypoints=False, retries=2, cooldown=COOLDOWN, state=state) as hub:
        hub.register(Endpoint("p1", server))
        open_breaker(hub, clock)
        server.script(Reply.error(503), Reply.error(503), Reply.error(503))
        with pytest.raises(ProviderHTTPError):
            hub.create(MODEL, HI)
        assert len(server.requests) == 1  # the probe failed: no retries behind it
        assert hub.health.snapshot()["p1"].period == 2 * COOLDOWN


# -- every way a probe call can end gives the probe back -----------------------------------


def test_a_probe_stream_closed_early_gives_the_probe_back(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    server.script(Reply.text("a", "b", "c"))
    stream = hub.create(MODEL, HI, stream=True)
    assert next(stream) == "a"
    assert probing(hub)
    stream.close()
    assert_released_then_next_call_probes(hub, server)


def test_a_probe_stream_dropped_unfinished_gives_the_probe_back_at_once(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    server.script(Reply.text("a", "b", "c"))
    stream = hub.create(MODEL, HI, stream=True)
    assert next(stream) == "a"
    assert probing(hub)
    del stream  # no gc.collect(): nothing but the stream holds its generator
    assert not probing(hub)
    assert_released_then_next_call_probes(hub, server)


def test_a_probe_stream_left_with_break_gives_the_probe_back(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    server.script(Reply.text("a", "b", "c"))
    for piece in hub.create(MODEL, HI, stream=True):
        assert piece == "a"
        assert probing(hub)
        break
    assert not probing(hub)
    assert_released_then_next_call_probes(hub, server)


def test_an_invalid_request_found_by_the_probed_provider_gives_the_probe_back(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    with pytest.raises(InvalidRequestError, match="no_such_parameter"):
        hub.create(MODEL, HI, no_such_parameter=1)
    assert server.requests == []
    assert_released_then_next_call_probes(hub, server)


@pytest.mark.parametrize("fail_after", [None, 1], ids=["before any text", "mid-stream"])
@pytest.mark.parametrize("error", [InvalidRequestError("bad"), KeyboardInterrupt()])
def test_a_probe_ended_by_an_invalid_request_or_keyboard_interrupt_gives_it_back(
    hub: providerhub.Hub,
    server: OpenAIServer,
    error: BaseException,
    fail_after: int | None,
    clock: FakeClock,
) -> None:
    hub.unregister("p1")
    hub.register(FakeProvider("p1", [MODEL], ["a", "b"], fail=error, fail_after=fail_after))
    open_breaker(hub, clock)
    with pytest.raises(type(error)):
        for _ in hub.create(MODEL, HI, stream=True):
            assert probing(hub)
    hub.unregister("p1")
    hub.register(Endpoint("p1", server))
    assert_released_then_next_call_probes(hub, server)


def test_a_cancelled_probe_acreate_gives_the_probe_back_and_is_no_failure(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    server.script(Reply(fault="stall", after=None, delay=5))  # no headers for 5 s

    async def main() -> None:
        task = asyncio.create_task(hub.acreate(MODEL, HI, timeout=providerhub.Timeout(1, 0.2)))
        assert await await_until(lambda: len(server.requests) == 1)
        assert probing(hub)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancellation gives the probe back (tests/test_cooldown.py: at once, and the
        # worker's socket is shut down).
        assert await await_until(lambda: not probing(hub))

    asyncio.run(main())
    assert len(server.requests) == 1
    assert_released_then_next_call_probes(hub, server)


def test_a_cancelled_probe_astream_gives_the_probe_back_and_is_no_failure(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    release = threading.Event()
    server.script(Reply.text("a", " never", wait=release, after=1))

    async def main() -> None:
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in hub.acreate(MODEL, HI, stream=True, timeout=10):
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        assert probing(hub)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await await_until(lambda: not probing(hub))

    asyncio.run(main())
    release.set()
    assert_released_then_next_call_probes(hub, server)


def test_a_probe_astream_left_with_break_gives_the_probe_back(
    hub: providerhub.Hub, server: OpenAIServer, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    release = threading.Event()
    server.script(Reply.text("a", " never", wait=release, after=1))

    async def main() -> None:
        async for piece in hub.acreate(MODEL, HI, stream=True, timeout=10):
            assert piece == "a"
            assert probing(hub)
            break
        # No aclose(): the stream, dropped, aborts its call; the loop goes on running.
        assert await await_until(lambda: not probing(hub))

    asyncio.run(main())
    release.set()
    assert_released_then_next_call_probes(hub, server)


@pytest.mark.parametrize("close", ["aclose", "drop"])
def test_a_probe_astream_closed_or_dropped_gives_the_probe_back(
    hub: providerhub.Hub, server: OpenAIServer, close: str, clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    release = threading.Event()
    server.script(Reply.text("a", " never", wait=release, after=1))

    async def main() -> None:
        stream = hub.acreate(MODEL, HI, stream=True, timeout=10)
        assert await stream.__anext__() == "a"
        assert probing(hub)
        if close == "aclose":
            await stream.aclose()
            assert not probing(hub)  # the call is over when aclose() returns
        else:
            del stream
            assert await await_until(lambda: not probing(hub))

    asyncio.run(main())
    release.set()
    assert_released_then_next_call_probes(hub, server)


def test_a_stream_never_started_takes_no_probe(
    hub: providerhub.Hub, server: OpenAIServer, fake: Callable[..., Any], clock: FakeClock
) -> None:
    open_breaker(hub, clock)
    stream = hub.create(MODEL, HI, stream=True)
    assert not probing(hub)
    del stream
    astream = hub.acreate(MODEL, HI, stream=True)
    del astream
    assert not probing(hub) and server.requests == []
    assert_released_then_next_call_probes(hub, server)
