"""Routing strategies per model (``[routing]`` of the configuration file, or
``Hub(routing=...)``): ordered fallback, weighted, least-busy, lowest-latency and
usage-aware, against real local servers; the strategy only orders the candidates, and
fallback stays the loop's."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub import ConfigurationError, Hub, MemoryState
from providerhub.plugin import HTTPProvider
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._gateway import poll

MODEL = "routed-model"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def servers() -> Iterator[list[OpenAIServer]]:
    with OpenAIServer() as a, OpenAIServer() as b, OpenAIServer() as c:
        for server in (a, b, c):
            server.default = Reply.text("ok")
        yield [a, b, c]


def _hub(servers: list[OpenAIServer], routing: dict[str, Any], **options: Any) -> Hub:
    hub = Hub(False, retries=0, routing=routing, **options)
    for name, server in zip("abc", servers):
        hub.register(HTTPProvider(name=name, url=server.url, models=[MODEL]))
    return hub


def _strategy(name: str, **fields: Any) -> dict[str, Any]:
    return {"models": {MODEL: {"strategy": name, **fields}}}


def test_ordered_is_the_default_and_keeps_registration_order(
    servers: list[OpenAIServer],
) -> None:
    with _hub(servers, {}) as hub:
        assert hub.strategy(MODEL) == "ordered"
        for _ in range(5):
            assert [p.name for p in hub.route(MODEL)] == ["a", "b", "c"]
            hub.create(MODEL, MESSAGES)
        assert [len(s.requests) for s in servers] == [5, 0, 0]


def test_weighted_splits_three_to_one_within_two_points_over_10000_calls(
    servers: list[OpenAIServer],
) -> None:
    routing = _strategy("weighted", weights={"a": 3, "B": 1})  # names in any case
    with _hub(servers, routing) as hub:
        first = Counter(hub.route(MODEL)[0].name for _ in range(10_000))
        assert set(first) == {"a", "b"}  # c has no weight: a fallback only
        assert abs(first["a"] / 10_000 - 0.75) <= 0.02, first
        # Every candidate stays a fallback: the order only changes who goes first.
        assert sorted(p.name for p in hub.route(MODEL)) == ["a", "b", "c"]
        for _ in range(200):  # real calls, through the loop
            hub.create(MODEL, MESSAGES)
        a, b, c = (len(s.requests) for s in servers)
        assert a + b == 200 and c == 0
        assert 0.6 <= a / 200 <= 0.9, (a, b)


def test_weighted_falls_back_to_the_others_when_its_pick_fails(
    servers: list[OpenAIServer],
) -> None:
    servers[0].default = Reply.error(500)
    with _hub(servers, _strategy("weighted", weights={"a": 1})) as hub:
        answers = {hub.create(MODEL, MESSAGES) for _ in range(2)}
        assert answers == {"ok"}
        assert len(servers[0].requests) == 2 and len(servers[1].requests) == 2


def test_a_pinned_call_keeps_its_own_order(servers: list[OpenAIServer]) -> None:
    with _hub(servers, _strategy("weighted", weights={"c": 1})) as hub:
        assert hub.route(MODEL)[0].name == "c"
        assert [p.name for p in hub.route(MODEL, provider=["b", "a"])] == ["b", "a"]
        hub.create(MODEL, MESSAGES, provider="a")
        assert len(servers[0].requests) == 1


def test_least_busy_sends_to_the_provider_with_fewest_calls_in_flight(
    servers: list[OpenAIServer],
) -> None:
    held = threading.Event()
    servers[0].script(Reply.text("one", "two", after=1, wait=held))
    with _hub(servers[:2], _strategy("least-busy")) as hub:
        assert hub.strategy(MODEL) == "least-busy"
        stream = hub.create(MODEL, MESSAGES, stream=True)
        assert next(iter(stream)) == "one"  # a's call is in flight
        assert [p.name for p in hub.route(MODEL)] == ["b", "a"]
        assert hub.create(MODEL, MESSAGES) == "ok"
        assert len(servers[1].requests) == 1
        assert hub.routing.busy.in_flight == {"a": 1, "b": 0}
        held.set()
        assert "".join(stream) == "two"
        assert hub.routing.busy.in_flight == {"a": 0, "b": 0}
        # Idle alike: the one that started fewer calls goes first, so serial calls alternate.
        for _ in range(4):
            hub.create(MODEL, MESSAGES)
        assert [len(s.requests) for s in servers[:2]] == [3, 3]


def test_least_busy_gives_back_a_failed_attempts_place(servers: list[OpenAIServer]) -> None:
    servers[0].default = Reply.error(503)
    with _hub(servers[:2], _strategy("least-busy")) as hub:
        assert hub.create(MODEL, MESSAGES) == "ok"
        assert hub.routing.busy.in_flight == {"a": 0, "b": 0}


def test_lowest_latency_avoids_a_slowed_upstream_and_notices_its_recovery(
    servers: list[OpenAIServer],
) -> None:
    fast, slow = 0.005, 0.05  # one upstream slowed ten-fold
    delays = dict(zip(servers, (fast, fast, slow)))

    def answer(server: OpenAIServer) -> Any:
        return lambda number, request: Reply(fault="stall", after=None, delay=delays[server])

    for server in servers:
        server.responder = answer(server)
    clock = FakeClock()
    routing = _strategy("lowest-latency", probe_after=10)
    with _hub(servers, routing, state=MemoryState(clock=clock)) as hub:
        for _ in range(300):  # 30 s of the strategy's time
            hub.create(MODEL, MESSAGES)
            clock.advance(0.1)
        counts = [len(s.requests) for s in servers]
        assert sum(counts) == 300
        assert counts[2] <= 30, counts  # at most 10% to the slow one
        assert counts[2] >= 3, counts  # tried again now and then (every 10 s)
        averages = hub.routing.strategy(MODEL).averages()  # type: ignore[attr-defined]
        assert averages["c"] > 2 * min(averages["a"], averages["b"]), averages

        delays[servers[2]] = fast  # it recovers; a probe notices within 10 s
        clock.advance(10)
        before = len(servers[2].requests)
        for _ in range(3):  # the stale ones are probed first, one call each
            hub.create(MODEL, MESSAGES)
        assert len(servers[2].requests) == before + 1  # the probe
        averages = hub.routing.strategy(MODEL).averages()  # type: ignore[attr-defined]
        assert averages["c"] < slow / 2, averages


def test_usage_aware_sends_to_the_most_headroom(servers: list[OpenAIServer]) -> None:
    with Hub(False, retries=0, routing=_strategy("usage-aware")) as hub:
        hub.register(HTTPProvider(name="a", url=servers[0].url, models=[MODEL], rpm=10))
        hub.register(HTTPProvider(name="b", url=servers[1].url, models=[MODEL], rpm=20))
        for _ in range(6):
            hub.create(MODEL, MESSAGES)
        # b has twice the room: after a call each, b (19/20 left) leads a (9/10 left) ...
        a, b = (len(s.requests) for s in servers[:2])
        assert (a, b) == (2, 4)


def test_usage_aware_reads_the_redis_mirror_without_a_round_trip(
    servers: list[OpenAIServer], redis_server: Any
) -> None:
    client = redis_server.client()
    with Hub(False, retries=0, routing=_strategy("usage-aware"), state=redis_server.url) as hub:
        hub.register(HTTPProvider(name="a", url=servers[0].url, models=[MODEL], rpm=10))
        hub.register(HTTPProvider(name="b", url=servers[1].url, models=[MODEL], rpm=10))
        # Another process spends a's room: this one learns it at its next take of a.
        with Hub(False, retries=0, state=redis_server.url) as other:
            other.register(HTTPProvider(name="a", url=servers[0].url, models=[MODEL], rpm=10))
            for _ in range(5):
                other.create(MODEL, MESSAGES)
        hub.create(MODEL, MESSAGES)  # a (no counts seen yet) goes first; it sees 6 of 10
        assert [p.name for p in hub.route(MODEL)] == ["b", "a"]
        strategy = hub.routing.strategy(MODEL)
        candidates = hub.route(MODEL)
        before = _calls(client)
        for _ in range(100):
            strategy.order(list(candidates), hub.state.limiter)
        assert _calls(client) == before
        for _ in range(4):
            hub.create(MODEL, MESSAGES)
        assert len(servers[1].requests) == 4  # b, until it is as used as a


def _calls(client: Any) -> dict[str, int]:
    """The commands Redis has run, by name, and how often (but INFO, which reads them)."""
    stats = client.info("commandstats")
    return {name: s["calls"] for name, s in stats.items() if name != "cmdstat_info"}


def test_the_configuration_file_sets_strategies(
    servers: list[OpenAIServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[routing]\nstrategy = "least-busy"\n\n'
        f'[routing.models."{MODEL}"]\nstrategy = "weighted"\nweights = {{ b = 1 }}\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(config))
    with _hub(servers, None) as hub:  # type: ignore[arg-type]
        assert hub.strategy(MODEL) == "weighted"
        assert hub.strategy("another-model") == "least-busy"
        assert hub.route(MODEL)[0].name == "b"
        hub.alias("fast", MODEL)
        assert hub.strategy("fast") == "weighted"


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"strategy": "fastest"}, "strategy must be one of 'ordered', 'weighted'"),
        ({"stratgy": "weighted"}, "unknown field 'stratgy'"),
        (_strategy("weighted"), "needs weights, a table of provider names and numbers"),
        (_strategy("weighted", weights={"a": -1}), "the weight of 'a' must be a number >= 0"),
        (_strategy("weighted", weights={"a": 0}), "at least one weight must be more than 0"),
        (_strategy("ordered", weights={"a": 1}), "weights are for strategy = 'weighted'"),
        (_strategy("lowest-latency", probe_after=0), "probe_after must be a positive number"),
        ({"models": ["gpt-4o"]}, "models must be a table of models"),
    ],
)
def test_a_bad_table_is_refused_naming_the_fix(routing: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Hub(False, routing=routing)
    assert str(caught.value).startswith("Hub(routing=...)")
    assert message in str(caught.value)


def test_a_bad_routing_table_in_the_file_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[routing]\nstrategy = "random"\n', encoding="utf-8")
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as caught:
        Hub(False)
    assert f"{config} [routing]: strategy must be one of" in str(caught.value)


def test_a_file_that_is_not_toml_leaves_every_model_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[routing]\nstrategy = "weighted\n', encoding="utf-8")
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(config))
    with caplog.at_level("WARNING", logger="providerhub"), Hub(False) as hub:
        assert hub.strategy(MODEL) == "ordered"
    assert f"every model is routed in order: {config}: is not a valid TOML file" in caplog.text


def test_the_async_loop_feeds_the_strategy_too(servers: list[OpenAIServer]) -> None:
    import asyncio

    held = threading.Event()
    servers[0].script(Reply.text("one", "two", after=1, wait=held))

    async def main(hub: Hub) -> None:
        stream = hub.acreate(MODEL, MESSAGES, stream=True)
        async for piece in stream:
            assert piece == "one"
            break
        assert hub.routing.busy.in_flight["a"] == 1
        assert await hub.acreate(MODEL, MESSAGES) == "ok"
        held.set()
        await stream.aclose()
        assert poll(lambda: hub.routing.busy.in_flight == {"a": 0, "b": 0})

    with _hub(servers[:2], _strategy("least-busy")) as hub:
        asyncio.run(main(hub))
        assert len(servers[1].requests) == 1


def test_the_default_strategy_sends_nothing_to_the_loop() -> None:
    with Hub(False, routing={}) as hub:
        assert hub.routing.tracking(MODEL) is None
    assert providerhub.Hub  # the public name the table is given to
