"""Routing strategies: the order in which a model's candidates are tried.

:func:`~providerhub._routing.plan.plan` finds the candidates (serving the model, working,
not cooling down) in registration order; a model's strategy then puts them in the order
the routing loop tries them in. The loop's fallback, retries and breaker stay the same
whatever the strategy: a strategy only says who is asked first.

- ``ordered`` (the default): registration order, today's fallback.
- ``weighted``: the first candidate drawn at random by ``weights``, the others after it
  in their order; a provider the weights do not name has weight 0 (a fallback only).
- ``least-busy``: fewest calls in flight first (counted in this process, over every
  model), ties to the one that started fewest calls.
- ``lowest-latency``: the lowest moving average of time to first piece (per provider and
  model) first. A provider whose average is ``probe_after`` seconds old or more, or that
  has none yet, is tried first by one call (the oldest first), so that a recovery is
  noticed; that call's time replaces the stale average.
- ``usage-aware``: the most ``rpm``/``tpm`` headroom first, read from the limiter's counts
  in the process (the Redis state's local mirror of them: no round trip on the call's
  path).

A caller that pins providers (``provider=[...]``, ``name/model``) keeps its own order.
The table, in the configuration file or as ``Hub(routing=...)``::

    [routing]
    strategy = "ordered"          # every model not listed below
    probe_after = 10              # lowest-latency: seconds before a slow one is tried again

    [routing.models."gpt-4o"]
    strategy = "weighted"
    weights = { openai = 3, azure = 1 }
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._provider import Provider
    from .._state.health import Claim
    from .._state.limits import Limiter

__all__ = [
    "DEFAULT_PROBE_AFTER",
    "SMOOTHING",
    "STRATEGIES",
    "LeastBusy",
    "LowestLatency",
    "Ordered",
    "Routing",
    "Strategy",
    "UsageAware",
    "Weighted",
]

STRATEGIES = ("ordered", "weighted", "least-busy", "lowest-latency", "usage-aware")
"""The strategies a model may have; ``ordered`` is the default."""

DEFAULT_PROBE_AFTER = 10.0
"""Seconds after which ``lowest-latency`` tries a provider again whose average is old."""

SMOOTHING = 0.3
"""The weight of a new time to first piece in ``lowest-latency``'s moving average."""

_FIELDS = ("strategy", "weights", "probe_after", "models")
_MODEL_FIELDS = ("strategy", "weights", "probe_after")


class Strategy:
    """Orders one model's candidates. ``tracks`` says whether the routing loop reports
    its attempts to it (:meth:`claimed`, :meth:`answered`): only the strategies that
    learn from them, so that the others cost the loop nothing."""

    name = "ordered"
    tracks = False

    def order(self, candidates: list[Provider], limiter: Limiter) -> list[Provider]:
        """``candidates`` (a fresh list, which may be reordered in place), best first."""
        return candidates

    def claimed(self, name: str, claim: Claim) -> Claim:
        """The breaker let a call ask the provider ``name``: the claim the loop keeps,
        released when the attempt ends."""
        return claim

    def answered(self, name: str, seconds: float) -> None:
        """The provider ``name`` gave its first piece ``seconds`` after it was asked."""

    def shares(self, names: Sequence[str]) -> dict[str, float] | None:
        """The share of first tries each of ``names`` is configured to get, when the
        strategy sets one (``weighted``); else None: it follows what the calls learn."""
        return None


class Ordered(Strategy):
    """Registration order: the first candidate is asked first."""


class Weighted(Strategy):
    """The first candidate drawn by weight; ``weights`` maps provider names (any case) to
    numbers >= 0."""

    name = "weighted"

    def __init__(
        self, weights: Mapping[str, float], random: Callable[[], float] = random.random
    ) -> None:
        self._weights = {name.lower(): float(w) for name, w in weights.items()}
        self._by_name: dict[str, float] = {}  # as providers spell their names
        self._random = random

    def _weight(self, name: str) -> float:
        weight = self._by_name.get(name)
        if weight is None:
            weight = self._by_name[name] = self._weights.get(name.lower(), 0.0)
        return weight

    def order(self, candidates: list[Provider], limiter: Limiter) -> list[Provider]:
        weights = [self._weight(p.name) for p in candidates]
        total = sum(weights)
        if total <= 0:
            return candidates
        point = self._random() * total
        for i, weight in enumerate(weights):
            point -= weight
            if point < 0 and weight > 0:
                if i:
                    candidates.insert(0, candidates.pop(i))
                break
        return candidates

    def shares(self, names: Sequence[str]) -> dict[str, float]:
        weights = {name: self._weight(name) for name in names}
        total = sum(weights.values())
        return {n: (w / total if total else 0.0) for n, w in weights.items()}


class Busy:
    """Calls in flight per provider, and calls started, in this process: shared by every
    ``least-busy`` model of a hub, as a provider busy with one model is busy."""

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = {}
        self.started: dict[str, int] = {}
        self.lock = threading.Lock()

    def begin(self, name: str) -> None:
        with self.lock:
            self.in_flight[name] = self.in_flight.get(name, 0) + 1
            self.started[name] = self.started.get(name, 0) + 1

    def end(self, name: str) -> None:
        with self.lock:
            self.in_flight[name] -= 1


class _BusyClaim:
    """A claim that counts its provider's call in flight until it is released."""

    __slots__ = ("_busy", "_claim", "_done", "name")

    def __init__(self, claim: Claim, busy: Busy, name: str) -> None:
        self._claim = claim
        self._busy = busy
        self._done = False
        self.name = claim.name
        busy.begin(name)

    @property
    def probe(self) -> bool:
        return self._claim.probe

    def success(self) -> None:
        self._claim.success()

    def failure(self, error: Any) -> None:
        self._claim.failure(error)

    def release(self) -> None:
        if not self._done:  # released once the attempt ends, however often it is asked
            self._done = True
            self._busy.end(self.name)
        self._claim.release()


class LeastBusy(Strategy):
    """Fewest calls in flight first; ties to the provider that started fewest calls."""

    name = "least-busy"
    tracks = True

    def __init__(self, busy: Busy) -> None:
        self._busy = busy

    def order(self, candidates: list[Provider], limiter: Limiter) -> list[Provider]:
        in_flight = self._busy.in_flight
        started = self._busy.started
        candidates.sort(key=lambda p: (in_flight.get(p.name, 0), started.get(p.name, 0)))
        return candidates

    def claimed(self, name: str, claim: Claim) -> Claim:
        return _BusyClaim(claim, self._busy, name)  # type: ignore[return-value]


class LowestLatency(Strategy):
    """The lowest moving average of time to first piece first; a provider whose average
    is ``probe_after`` seconds old (or that has none) is tried first by one call.
    ``clock`` measures the age of the averages (the hub state's clock: a test's
    :class:`~providerhub.testing.FakeClock`)."""

    name = "lowest-latency"
    tracks = True

    def __init__(
        self, probe_after: float = DEFAULT_PROBE_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.probe_after = probe_after
        self._clock = clock
        # name -> [average seconds (inf: none yet), when measured, when a probe was sent]
        self._seen: dict[str, list[float]] = {}

    def _entry(self, name: str) -> list[float]:
        entry = self._seen.get(name)
        if entry is None:
            entry = self._seen[name] = [math.inf, -math.inf, -math.inf]
        return entry

    def order(self, candidates: list[Provider], limiter: Limiter) -> list[Provider]:
        now = self._clock()
        after = self.probe_after
        entries = [self._entry(p.name) for p in candidates]
        stale = -1  # the candidate measured longest ago, if that is too long and unprobed
        for i, entry in enumerate(entries):
            if (
                now - entry[1] >= after
                and now - entry[2] >= after
                and (stale < 0 or entry[1] < entries[stale][1])
            ):
                stale = i
        if stale >= 0:
            entries[stale][2] = now  # one call probes it; the others keep to what is known
            candidates.insert(0, candidates.pop(stale))
            return candidates
        averages = {id(p): e[0] for p, e in zip(candidates, entries)}
        candidates.sort(key=lambda p: averages[id(p)])
        return candidates

    def answered(self, name: str, seconds: float) -> None:
        entry = self._entry(name)
        now = self._clock()
        if now - entry[1] >= self.probe_after:  # none yet, or too old to go on from
            entry[0] = seconds
        else:
            entry[0] += SMOOTHING * (seconds - entry[0])
        entry[1] = now
        entry[2] = -math.inf

    def averages(self) -> dict[str, float]:
        """The moving average of each provider measured, in seconds."""
        return {name: e[0] for name, e in self._seen.items() if e[0] != math.inf}


class UsageAware(Strategy):
    """The most rate-limit headroom first (a provider without limits has all of it)."""

    name = "usage-aware"

    def order(self, candidates: list[Provider], limiter: Limiter) -> list[Provider]:
        headroom = limiter.headroom
        candidates.sort(key=lambda p: -headroom(p.limit_key, p.limits) if p.limits else -1.0)
        return candidates


class _Spec:
    """One strategy as configured, made into a :class:`Strategy` per model."""

    __slots__ = ("name", "probe_after", "weights")

    def __init__(self, name: str, weights: dict[str, float], probe_after: float) -> None:
        self.name = name
        self.weights = weights
        self.probe_after = probe_after


class Routing:
    """A hub's strategies: one per model, made on first use from the model's entry of
    the table, or the table's default. :attr:`clock` measures ``lowest-latency``'s ages
    (the hub sets its state's)."""

    def __init__(
        self,
        table: Mapping[str, Any] | None = None,
        where: str = "Hub(routing=...)",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        table = {} if table is None else table
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"{where} must be a table (a mapping), not {_kind(table)}")
        _unknown(table, _FIELDS, where)
        probe_after = _probe_after(table, DEFAULT_PROBE_AFTER, where)
        self.default = _spec(table, "ordered", probe_after, where)
        self._specs: dict[str, _Spec] = {}
        models = table.get("models", {})
        if not isinstance(models, Mapping):
            raise ConfigurationError(
                f'{where}: models must be a table of models ([routing.models."gpt-4o"]), '
                f"not {_kind(models)}"
            )
        for model, entry in models.items():
            at = f"{where} models.{model}"
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"{at} must be a table, not {_kind(entry)}")
            _unknown(entry, _MODEL_FIELDS, at)
            self._specs[model] = _spec(
                entry, None, _probe_after(entry, probe_after, at), at, fallback=self.default
            )
        self.clock = clock
        """What ``lowest-latency`` strategies made from now on read the time from."""
        self._busy = Busy()
        self._made: dict[str, Strategy] = {}
        self._lock = threading.Lock()

    def spec_name(self, model: str) -> str:
        """The name of ``model``'s strategy."""
        return self._specs.get(model, self.default).name

    def configured(self) -> dict[str, str]:
        """The models given a strategy of their own, and its name."""
        return {model: spec.name for model, spec in self._specs.items()}

    def strategy(self, model: str) -> Strategy:
        """``model``'s strategy (one object per model, so that what it learns is the
        model's)."""
        made = self._made.get(model)
        if made is None:
            with self._lock:
                made = self._made.get(model)
                if made is None:
                    made = self._made[model] = self._make(self._specs.get(model, self.default))
        return made

    def tracking(self, model: str) -> Strategy | None:
        """``model``'s strategy when the loop reports its attempts to it, else None."""
        made = self.strategy(model)
        return made if made.tracks else None

    @property
    def busy(self) -> Busy:
        """The calls in flight per provider that ``least-busy`` counts."""
        return self._busy

    def _make(self, spec: _Spec) -> Strategy:
        if spec.name == "weighted":
            return Weighted(spec.weights)
        if spec.name == "least-busy":
            return LeastBusy(self._busy)
        if spec.name == "lowest-latency":
            return LowestLatency(spec.probe_after, self.clock)
        if spec.name == "usage-aware":
            return UsageAware()
        return Ordered()


def _spec(
    table: Mapping[str, Any],
    default: str | None,
    probe_after: float,
    where: str,
    *,
    fallback: _Spec | None = None,
) -> _Spec:
    name = table.get("strategy", default if fallback is None else fallback.name)
    if name not in STRATEGIES:
        raise ConfigurationError(
            f"{where}: strategy must be one of {', '.join(map(repr, STRATEGIES))}, not {name!r}"
        )
    raw = table.get("weights")
    if raw is None:
        if name == "weighted":
            if fallback is not None and fallback.name == "weighted" and "strategy" not in table:
                return _Spec(name, fallback.weights, probe_after)
            raise ConfigurationError(
                f"{where}: strategy 'weighted' needs weights, a table of provider names and "
                "numbers: weights = { openai = 3, azure = 1 }"
            )
        return _Spec(name, {}, probe_after)
    if name != "weighted":
        raise ConfigurationError(
            f"{where}: weights are for strategy = 'weighted' (the strategy is {name!r})"
        )
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigurationError(
            f"{where}: weights must be a table of provider names and numbers, as "
            "weights = { openai = 3, azure = 1 }"
        )
    weights: dict[str, float] = {}
    for provider, weight in raw.items():
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ConfigurationError(
                f"{where}: the weight of {provider!r} must be a number >= 0, not {weight!r}"
            )
        weights[str(provider)] = float(weight)
    if not any(weights.values()):
        raise ConfigurationError(f"{where}: at least one weight must be more than 0")
    return _Spec(name, weights, probe_after)


def _probe_after(table: Mapping[str, Any], default: float, where: str) -> float:
    value = table.get("probe_after", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{where}: probe_after must be a positive number of seconds, not {value!r}"
        )
    return float(value)


def _unknown(table: Mapping[str, Any], fields: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in table if k not in fields)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown field {unknown[0]!r} (the fields are {', '.join(fields)})"
        )


def _kind(value: object) -> str:
    return type(value).__name__
