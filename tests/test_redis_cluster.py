"""Shared state through a real Redis Cluster: three ``redis-server`` masters on free loopback
ports (tests/_redis.py), reached with ``?cluster=true``. A cooldown opened by one hub is
seen by another, the probe goes to one caller only, and an ``rpm`` is exact, with the keys
of the providers spread over different nodes, so that the client must follow the slots."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import providerhub
from providerhub import ConfigurationError, RateLimitError
from providerhub.testing import OpenAIServer, Reply

from ._internals import Claim, Limits, RedisState
from ._redis import RedisClusterServers
from ._support import Endpoint, sockets, wait_until

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
COOLDOWN = 5.0
PROBE_COOLDOWN = 0.2


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers().start()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def cluster_url(cluster: RedisClusterServers) -> str:
    """The cluster, every master emptied for this test."""
    cluster.flushall()
    return cluster.url


def spread_names(cluster: RedisClusterServers, count: int) -> list[str]:
    """``count`` provider names whose keys live on ``count`` different nodes."""
    state = RedisState(cluster.url)
    health = state.health(3, COOLDOWN, 10.0)
    try:
        by_node: dict[int, str] = {}
        for i in range(200):
            name = f"p{i}"
            node = cluster.node_of(health.keys(name)[0])  # type: ignore[attr-defined]
            by_node.setdefault(node.port, name)
            if len(by_node) == count:
                return sorted(by_node.values())
    finally:
        state.close()
    raise AssertionError(f"no {count} names on {count} different nodes")


def make_hub(url: str, endpoints: list[Any]) -> providerhub.Hub:
    hub = providerhub.Hub(load_entrypoints=False, retries=0, cooldown=COOLDOWN, state=url)
    for endpoint in endpoints:
        hub.register(endpoint)
    return hub


class Limited(Endpoint):
    rpm = 5


def test_a_cluster_url_is_checked_before_any_connection() -> None:
    with pytest.raises(ConfigurationError, match="database 0 only"):
        RedisState("redis://127.0.0.1:1/2?cluster=true")
    with pytest.raises(ConfigurationError, match="not a unix:// socket"):
        RedisState("unix:///tmp/redis.sock?cluster=true")
    with pytest.raises(ConfigurationError, match="takes true or false"):
        RedisState("redis://127.0.0.1:1?cluster=maybe")
    # A cluster that does not answer is a Redis fault, not an error: made at the first call.
    state = RedisState("redis://127.0.0.1:1?cluster=true", timeout=0.05)
    assert state.location == "redis://127.0.0.1:1?cluster=true"
    assert state.limiter.take("provider:x", Limits(rpm=1)) == 0.0
    assert not state.status().shared
    assert "cannot be reached" in state.status().describe()
    state.close()


def test_cooldowns_spread_over_nodes_reach_the_other_hub(
    cluster: RedisClusterServers, cluster_url: str
) -> None:
    names = spread_names(cluster, 3)
    with OpenAIServer() as server:
        server.default = Reply.error(503, "down")
        endpoints = [Endpoint(name, server, models=[f"m-{name}"]) for name in names]
        a = make_hub(cluster_url, endpoints)
        b = make_hub(cluster_url, endpoints)
        try:
            for name in names:
                assert b.health.cooling(name) is None  # b has read each mirror once
                for _ in range(a.health.threshold):
                    with pytest.raises(providerhub.ProviderHTTPError):
                        a.create(f"m-{name}", HI)
            # b learns of each cooldown from the cluster, within the mirror's refresh.
            for name in names:
                assert wait_until(lambda n=name: b.health.cooling(n) is not None, 1.0), name
            assert a.state.status().shared and b.state.status().shared
            for name in names:
                key = a.health.keys(name)[0]  # type: ignore[attr-defined]
                with cluster.node_of(key).client() as client:
                    assert client.hget(key, "failures") == str(a.health.threshold).encode()
                    assert client.pttl(key) > 0  # every key has a TTL
        finally:
            a.close()
            b.close()


def test_one_probe_among_callers_of_two_hubs(
    cluster: RedisClusterServers, cluster_url: str
) -> None:
    (name,) = spread_names(cluster, 1)
    states = [RedisState(cluster_url) for _ in range(2)]
    healths = [state.health(1, PROBE_COOLDOWN, 10.0) for state in states]
    try:
        claim = healths[0].acquire(name)
        assert claim is not None
        claim.failure(providerhub.ProviderHTTPError(name, "down", status_code=503))
        assert wait_until(lambda: healths[1].cooling(name) is not None, 5.0)
        # Past the cooldown, 16 threads, half on each hub, ask at once.
        assert wait_until(lambda: all(h.cooling(name) is None for h in healths), 5.0)
        barrier = threading.Barrier(16)
        claims: list[Claim | None] = []
        lock = threading.Lock()

        def ask(i: int) -> None:
            barrier.wait()
            got = healths[i % 2].acquire(name)
            with lock:
                claims.append(got)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        probes = [c for c in claims if c is not None and c.probe]
        assert len(claims) == 16 and len(probes) == 1
        assert [c for c in claims if c is not None] == probes  # the others were refused
        probes[0].success()
        assert wait_until(lambda: all(h.cooling(name) is None for h in healths), 5.0)
        assert all(state.status().shared for state in states)
    finally:
        for state in states:
            state.close()


def test_rpm_is_exact_across_two_hubs(cluster: RedisClusterServers, cluster_url: str) -> None:
    names = spread_names(cluster, 2)
    with OpenAIServer() as server:
        endpoints = [Limited(name, server, models=[f"m-{name}"]) for name in names]
        hubs = [make_hub(cluster_url, endpoints) for _ in range(2)]
        before = sockets()
        try:
            for name in names:
                let_in = refused = 0
                for i in range(12):  # alternate requests, as a load balancer would
                    try:
                        hubs[i % 2].create(f"m-{name}", HI)
                        let_in += 1
                    except RateLimitError as exc:
                        assert exc.retry_after is not None and 0 < exc.retry_after <= 60
                        refused += 1
                assert (let_in, refused) == (5, 7), name
            assert len(server.requests) == 10  # 5 for each provider, on different nodes
            assert all(hub.state.status().shared for hub in hubs)
        finally:
            for hub in hubs:
                hub.close()
        # The hubs' connections to the three nodes are closed with them.
        assert wait_until(lambda: sockets() <= before, 1.0)


def test_on_an_event_loop_a_cluster_counts_and_claims_the_same(
    cluster: RedisClusterServers, cluster_url: str
) -> None:
    names = spread_names(cluster, 2)
    states = [RedisState(cluster_url) for _ in range(2)]
    healths = [state.health(1, 30, 60) for state in states]
    limits = Limits(rpm=3)

    async def main() -> None:
        for name in names:
            waits = [
                await states[i % 2].limiter.atake(f"provider:{name}", limits) for i in range(5)
            ]
            assert waits[:3] == [0.0] * 3 and all(0 < w <= 60 for w in waits[3:]), name
        claim = await healths[0].aacquire(names[0])
        assert claim is not None
        claim.failure(providerhub.ProviderConnectionError(names[0], "refused"))
        # Sent by a task of its own (the loop does not wait for it): the other hub sees it.
        assert await _eventually(lambda: healths[1].acquire(names[0]) is None)
        for state in states:
            assert (await state.acheck()).shared

    try:
        asyncio.run(main())
    finally:
        for state in states:
            state.close()


async def _eventually(condition: Any, seconds: float = 2.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return bool(condition())


def test_a_cluster_that_cannot_answer_at_first_is_used_once_it_does(
    cluster: RedisClusterServers, cluster_url: str
) -> None:
    """The client is made at the first command: a node that does not answer then leaves
    the hub counting on its own, and the next try after ``retry_interval`` shares again."""
    first = cluster.nodes[0]  # the node the URL names
    state = RedisState(cluster_url, timeout=0.05, retry_interval=0.05)
    limits = Limits(rpm=2)
    first.pause()
    try:
        assert state.limiter.take("provider:x", limits) == 0.0  # counted in the process
        status = state.status()
        assert not status.shared
        # The client was not made: no connection, the reason kept (its wording is
        # redis-py's, which changes between releases; 8.2 renamed the class).
        assert status.error and status.down_since is not None
    finally:
        first.resume()
    try:
        assert wait_until(lambda: state.ping(), 1.0)
        assert state.status().shared
        # Redis's count starts afresh: two let in, then the third waits.
        assert state.limiter.take("provider:x", limits) == 0.0
        assert state.limiter.take("provider:x", limits) == 0.0
        assert state.limiter.take("provider:x", limits) > 0
    finally:
        state.close()
