"""The server's metrics, in Prometheus' text format, counted by hand: a counter is a dict
entry and a histogram a list of bucket counts, so counting costs a few hundred
nanoseconds and the server needs no metrics library.

Attempts per provider, retries and fallbacks inside a call included, are counted by an
observer the router calls as each attempt ends
(:func:`providerhub._routing.router.observe_attempts`):
a dict entry per attempt, whatever the logging configuration says.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._spend import plain, usd
from ._telemetry import current

if TYPE_CHECKING:
    from .._hub import Hub
    from .._state.store import StateStatus
    from ..types import Usage
    from ._telemetry import Exchange

__all__ = ["ATTEMPTS", "CLOSED", "Histogram", "Metrics", "closed", "watch_attempts"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Seconds: from a local upstream's millisecond to a long answer's minute."""

OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1)
"""Seconds of the gateway's own time: from a tenth of a millisecond up."""


class Histogram:
    """A Prometheus histogram with fixed ``buckets`` (upper bounds, in seconds)."""

    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one: above every bound
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.total += value

    def lines(self, name: str, labels: str) -> Iterable[str]:
        sep = "," if labels else ""
        running = 0
        for bound, count in zip(self.buckets, self.counts):
            running += count
            yield f'{name}_bucket{{{labels}{sep}le="{bound}"}} {running}'
        yield f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}'
        yield f"{name}_sum{{{labels}}} {self.total}" if labels else f"{name}_sum {self.total}"
        yield f"{name}_count{{{labels}}} {self.count}" if labels else f"{name}_count {self.count}"


class _Attempts:
    """Counts the router's attempts by provider and outcome."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.won: dict[tuple[str, str], int] = {}
        """Calls answered, by (model, provider): each provider's share of a model."""
        self._count_lock = threading.Lock()  # attempts end on the async API's threads too

    def observe(
        self, provider: str, model: str, attempt: int, outcome: str, seconds: float
    ) -> None:
        key = (provider, outcome)
        with self._count_lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if outcome == "ok":
                won = (model, provider)
                self.won[won] = self.won.get(won, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._count_lock:
            return dict(self.counts)

    def shares(self) -> dict[tuple[str, str], int]:
        """Calls answered, by (model, provider)."""
        with self._count_lock:
            return dict(self.won)


ATTEMPTS = _Attempts()
"""The attempts of every call in this process, by (provider, outcome)."""


CLOSED: dict[str, int] = {}
"""Connections this process closed on a limit, by reason; the protocol counts them (on
the event loop), before or outside any request the app sees."""


def closed(reason: str) -> None:
    """Count a connection closed on a limit: ``headers_too_large``, ``url_too_long``,
    ``header_timeout``, ``bad_request`` or ``write_timeout``."""
    CLOSED[reason] = CLOSED.get(reason, 0) + 1


def watch_attempts() -> None:
    """Count the router's attempts (once per process)."""
    from .._routing.router import observe_attempts

    observe_attempts(ATTEMPTS.observe)


class Metrics:
    """One app's request metrics (one worker's: each worker process counts its own)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency = {False: Histogram(), True: Histogram()}
        self.first_token = _FirstToken()
        self.overhead: dict[str, Histogram] = {}
        self.first_tokens: dict[str, Histogram] = {}
        self.in_flight = 0
        self.tokens: dict[tuple[str, str, str, str], int] = {}
        """Tokens answered, by provider, model, client key name and type."""
        self.spend: dict[tuple[str, str, str], int] = {}
        """Picodollars spent, by provider, model and client key name."""
        self.unpriced: dict[tuple[str, str, str, str], int] = {}
        """Answers not priced, by provider, model, client key name and why."""

    def spent(
        self, provider: str, model: str, key: str, usage: Usage | None, cost: int | str
    ) -> None:
        """Count an answer's tokens and its ``cost`` (picodollars, or why it has none)."""
        if usage is not None:
            tokens = self.tokens
            for kind, count in (
                ("prompt", usage.prompt_tokens),
                ("completion", usage.completion_tokens),
                ("cached", usage.cached_tokens),
                ("cache_creation", usage.cache_creation_tokens),
                ("reasoning", usage.reasoning_tokens),
            ):
                if count:
                    labels = (provider, model, key, kind)
                    tokens[labels] = tokens.get(labels, 0) + count
        if isinstance(cost, int):
            labels3 = (provider, model, key)
            self.spend[labels3] = self.spend.get(labels3, 0) + cost
        else:
            labels = (provider, model, key, cost)
            self.unpriced[labels] = self.unpriced.get(labels, 0) + 1

    def answered(self, route: str, status: int) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        exchange = current()
        if exchange is not None:
            exchange.route = route
            exchange.status = status

    def timed(self, exchange: Exchange, seconds: float) -> None:
        """Count a request that took ``seconds`` in all: the gateway's part of them, and
        its time to first token (a stream's), under its route."""
        route = exchange.route
        if route is None:  # gone before it was answered (its body never came)
            return
        overhead = self.overhead.get(route)
        if overhead is None:
            overhead = self.overhead[route] = Histogram(OVERHEAD_BUCKETS)
            self.first_tokens[route] = Histogram()
        overhead.observe(max(0.0, seconds - exchange.upstream))
        if exchange.first_token is not None:
            self.first_tokens[route].observe(exchange.first_token)

    def render(self, hub: Hub, state: StateStatus) -> bytes:
        """The metrics text of this app over ``hub``, whose state is ``state`` now."""
        out = [
            "# HELP providerhub_server_requests_total Requests answered, by route and status.",
            "# TYPE providerhub_server_requests_total counter",
        ]
        for (route, status), count in sorted(self.requests.items()):
            out.append(
                f'providerhub_server_requests_total{{route="{route}",status="{status}"}} {count}'
            )
        out += [
            "# HELP providerhub_server_request_duration_seconds Chat completion requests, "
            "from the request to the end of the answer.",
            "# TYPE providerhub_server_request_duration_seconds histogram",
        ]
        for stream, histogram in self.latency.items():
            label = f'stream="{str(stream).lower()}"'
            out += histogram.lines("providerhub_server_request_duration_seconds", label)
        out += [
            *self._timing_lines(),
            "# HELP providerhub_server_in_flight_requests Chat completion requests being "
            "served now.",
            "# TYPE providerhub_server_in_flight_requests gauge",
            f"providerhub_server_in_flight_requests {self.in_flight}",
            "# HELP providerhub_server_connections_closed_total Connections closed on a "
            "limit, by reason: the request line and headers too large or too slow, a request "
            "httptools cannot parse, or an answer the client did not read in time.",
            "# TYPE providerhub_server_connections_closed_total counter",
            *(
                f'providerhub_server_connections_closed_total{{reason="{reason}"}} {count}'
                for reason, count in sorted(CLOSED.items())
            ),
            "# HELP providerhub_provider_attempts_total Attempts to call a provider (retries "
            "and fallbacks included), by outcome: ok, closed, or the error's class.",
            "# TYPE providerhub_provider_attempts_total counter",
        ]
        for (provider, outcome), count in sorted(ATTEMPTS.snapshot().items()):
            out.append(
                f'providerhub_provider_attempts_total{{provider="{_label(provider)}",'
                f'outcome="{_label(outcome)}"}} {count}'
            )
        out += [
            "# HELP providerhub_provider_calls_won_total Calls a provider answered, by "
            "model: each provider's share of a model's traffic.",
            "# TYPE providerhub_provider_calls_won_total counter",
        ]
        for (model, provider), count in sorted(ATTEMPTS.shares().items()):
            out.append(
                f'providerhub_provider_calls_won_total{{model="{_label(model)}",'
                f'provider="{_label(provider)}"}} {count}'
            )
        out += [
            "# HELP providerhub_routing_strategy The routing strategy of each model more "
            "than one provider serves, or given one of its own (always 1).",
            "# TYPE providerhub_routing_strategy gauge",
        ]
        configured = hub.routing.configured()
        for model, names in hub.models().items():
            if len(names) > 1 or model in configured:
                out.append(
                    f'providerhub_routing_strategy{{model="{_label(model)}",'
                    f'strategy="{hub.strategy(model)}"}} 1'
                )
        out += [
            "# HELP providerhub_provider_cooldown_seconds Seconds left of a provider's "
            "cooldown (0: it takes calls; a probe under way counts as 0).",
            "# TYPE providerhub_provider_cooldown_seconds gauge",
        ]
        failures: list[str] = []
        for name in hub.providers:
            cooling = hub.health.cooling(name)
            remaining = 0.0 if cooling is None else round(cooling.remaining, 3)
            out.append(
                f'providerhub_provider_cooldown_seconds{{provider="{_label(name)}"}} {remaining}'
            )
            count = 0 if cooling is None else cooling.failures
            failures.append(
                f'providerhub_provider_consecutive_failures{{provider="{_label(name)}"}} {count}'
            )
        out += [
            "# HELP providerhub_provider_consecutive_failures Failures in a row of a provider "
            "in cooldown (0 when it is not cooling down).",
            "# TYPE providerhub_provider_consecutive_failures gauge",
            *failures,
        ]
        out += [
            "# HELP providerhub_tokens_total Tokens of the answers served, by provider, model, "
            "client key and type: prompt, completion (reasoning included), and of those "
            "cached (prompt tokens read from the provider's cache), cache_creation (written "
            "to it) and reasoning.",
            "# TYPE providerhub_tokens_total counter",
        ]
        for (provider, model, key, kind), count in sorted(self.tokens.items()):
            out.append(
                f'providerhub_tokens_total{{provider="{_label(provider)}",model="{_label(model)}",'
                f'key="{_label(key)}",type="{kind}"}} {count}'
            )
        out += [
            "# HELP providerhub_spend_usd_total US dollars the answers served cost at their "
            "models' prices, by provider, model and client key (exact sums).",
            "# TYPE providerhub_spend_usd_total counter",
        ]
        for (provider, model, key), picodollars in sorted(self.spend.items()):
            out.append(
                f'providerhub_spend_usd_total{{provider="{_label(provider)}",'
                f'model="{_label(model)}",key="{_label(key)}"}} {plain(usd(picodollars))}'
            )
        out += [
            "# HELP providerhub_unpriced_answers_total Answers not counted in the spend, by "
            "provider, model, client key and reason: no_usage (the provider did not report "
            "it) or no_price (no price is known for the model).",
            "# TYPE providerhub_unpriced_answers_total counter",
        ]
        for (provider, model, key, reason), count in sorted(self.unpriced.items()):
            out.append(
                f'providerhub_unpriced_answers_total{{provider="{_label(provider)}",'
                f'model="{_label(model)}",key="{_label(key)}",reason="{reason}"}} {count}'
            )
        out += [
            "# HELP providerhub_state_shared Whether cooldowns and rate-limit counts are "
            "shared with other processes now (1), or kept by this one alone (0: in memory, "
            "or Redis cannot be reached), by backend.",
            "# TYPE providerhub_state_shared gauge",
            f'providerhub_state_shared{{backend="{_label(state.backend)}"}} {int(state.shared)}',
        ]
        return ("\n".join(out) + "\n").encode()

    def _timing_lines(self) -> list[str]:
        """Time to first token and the gateway's own time, by route."""
        out = [
            "# HELP providerhub_server_time_to_first_token_seconds Streams, from the request "
            "to the first chunk sent, by route.",
            "# TYPE providerhub_server_time_to_first_token_seconds histogram",
        ]
        for route, histogram in sorted(self.first_tokens.items()):
            if histogram.count:
                name = "providerhub_server_time_to_first_token_seconds"
                out += histogram.lines(name, f'route="{_label(route)}"')
        out += [
            "# HELP providerhub_server_overhead_seconds The gateway's own time per request, "
            "by route: the whole request's less its attempts at providers (reading the "
            "body, admission, routing, backoff between retries, encoding and writing).",
            "# TYPE providerhub_server_overhead_seconds histogram",
        ]
        for route, histogram in sorted(self.overhead.items()):
            label = f'route="{_label(route)}"'
            out += histogram.lines("providerhub_server_overhead_seconds", label)
        return out


class _FirstToken:
    """Where the app puts a stream's time to its first token: on the request's record,
    counted under its route once the request ends (:meth:`Metrics.timed`)."""

    __slots__ = ()

    def observe(self, seconds: float) -> None:
        exchange = current()
        if exchange is not None:
            exchange.first_token = seconds


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
