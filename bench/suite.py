"""The measurements of the suite, the rows of its table, and the shuffled schedule that runs
them.

A :class:`Measurement` is one thing timed in a fresh process: a whole command (cold start:
the parent times the process from start to exit) or a worker (:mod:`worker`: the process
times its own warm part). A :class:`Row` compares a subject measurement with a baseline
measured in the same run. The schedule runs in rounds: each round runs every measurement
once, in a shuffled order, so a pair (subject, baseline) of one round ran close together and
their ratio is a *paired* ratio; the table reports the median of those.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
WORKER = BENCH / "worker.py"
GIVE_UP_AFTER = 2
"""Failures of one measurement after which the schedule stops running it."""


@dataclass(frozen=True)
class Measurement:
    """One thing to time, ``reps`` times, each in a fresh process.

    ``command`` set: the parent times the whole process, in milliseconds, and checks its
    exit status and that its output holds ``expect``. Otherwise ``spec`` goes to the worker,
    run by ``python``.
    """

    key: str
    reps: int
    python: str = sys.executable
    spec: Mapping[str, Any] | None = None
    command: Sequence[str] | None = None
    expect: str | None = None
    timeout: float = 600.0

    def argv(self, extra: Mapping[str, Any] | None = None) -> list[str]:
        if self.command is not None:
            return list(self.command)
        spec = dict(self.spec or {})
        spec.update(extra or {})
        return [self.python, str(WORKER), json.dumps(spec)]


@dataclass(frozen=True)
class Target:
    """A target of the issue: ``kind`` is ``ratio_max``, ``ratio_min`` (on the paired
    ratio), ``abs_max`` (on the subject's median) or ``delta_max`` (on the paired
    difference)."""

    kind: str
    value: float
    text: str

    def met(self, median: float, ratio: float | None, delta: float | None) -> bool | None:
        if self.kind == "abs_max":
            return median <= self.value
        if self.kind == "ratio_max":
            return None if ratio is None else ratio <= self.value
        if self.kind == "ratio_min":
            return None if ratio is None else ratio >= self.value
        if self.kind == "delta_max":
            return None if delta is None else delta <= self.value
        raise ValueError(self.kind)


@dataclass(frozen=True)
class Row:
    """One line of the table: ``subject`` measured by ``key`` against ``baseline``."""

    figure: str
    subject: str
    key: str
    unit: str
    better: str  # "lower" or "higher"
    baseline: str | None = None
    baseline_label: str = "raw requests"
    target: Target | None = None


@dataclass
class Samples:
    """What the schedule collected: per measurement, ``(round, value)`` pairs, the
    workers' details, and the errors."""

    values: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, key: str, round_: int, value: float, details: dict[str, Any]) -> None:
        self.values.setdefault(key, []).append((round_, value))
        self.details.setdefault(key, []).append(details)

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


RUN_ERRORS = (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError)


def run_once(
    m: Measurement, env: Mapping[str, str], cwd: Path, extra: Mapping[str, Any] | None = None
) -> tuple[float, dict[str, Any]]:
    """Run ``m`` once in a fresh process: its value and details. A failure, including a
    wrong answer, raises one of :data:`RUN_ERRORS`."""
    argv = m.argv(extra)
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=m.timeout
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"exit {done.returncode}: {tail}")
    if m.command is not None:
        if m.expect is not None and m.expect not in done.stdout:
            raise RuntimeError(f"output lacks {m.expect!r}")
        return elapsed * 1000, {}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["value"]), dict(result.get("details") or {})


def run_schedule(
    measurements: Sequence[Measurement],
    env: Mapping[str, str],
    cwd: Path,
    *,
    seed: int,
    progress: Callable[[str], None],
) -> Samples:
    """Run every measurement ``reps`` times, round by round, shuffled within each round."""
    rng = random.Random(seed)
    samples = Samples()
    rounds = max((m.reps for m in measurements), default=0)
    for r in range(rounds):
        batch = [m for m in measurements if r < m.reps]
        rng.shuffle(batch)
        started = time.monotonic()
        for m in batch:
            if len(samples.errors.get(m.key, [])) >= GIVE_UP_AFTER:
                continue
            try:
                value, details = run_once(m, env, cwd)
            except RUN_ERRORS as exc:
                samples.fail(m.key, f"round {r}: {exc}")
                progress(f"  {m.key}: FAILED: {exc}")
                continue
            samples.add(m.key, r, value, details)
        progress(f"round {r + 1}/{rounds}: {len(batch)} runs in {time.monotonic() - started:.1f} s")
    return samples


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class Outcome:
    """A row's figures: medians, the paired ratio and difference, and the verdict."""

    row: Row
    n: int
    median: float | None
    baseline_median: float | None
    ratio: float | None
    delta: float | None
    met: bool | None
    error: str | None


def evaluate(row: Row, samples: Samples) -> Outcome:
    """The row's figures from the samples (None where there is nothing to compute)."""
    mine = dict(samples.values.get(row.key, []))
    errors = samples.errors.get(row.key, [])
    if row.baseline is not None:
        errors = errors + samples.errors.get(row.baseline, [])
    if not mine:
        return Outcome(row, 0, None, None, None, None, None, errors[0] if errors else "no data")
    subject = median(list(mine.values()))
    base_median = ratio = delta = None
    if row.baseline is not None:
        theirs = dict(samples.values.get(row.baseline, []))
        if theirs:
            base_median = median(list(theirs.values()))
            common = sorted(set(mine) & set(theirs))
            if common:
                ratio = median([mine[r] / theirs[r] for r in common])
                delta = median([mine[r] - theirs[r] for r in common])
    met = row.target.met(subject, ratio, delta) if row.target is not None else None
    error = errors[0] if errors else None
    return Outcome(row, len(mine), subject, base_median, ratio, delta, met, error)
