"""Profiles of the providerhub side of a figure whose target was missed.

A worker figure is run once more under cProfile (the worker's ``profile`` option wraps the
measured part only); a cold-start figure runs its command under ``python -m cProfile`` and
``-X importtime``. :func:`summarize` names the functions of providerhub (core and plugins)
with the most cumulative and self time, and the functions of any code with the most self
time, which is where the time goes.
"""

from __future__ import annotations

import pstats
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OURS = ("/providerhub/", "/providerhub_gravityengine/")
"""Path parts of providerhub's own code, in the work tree or installed."""


@dataclass(frozen=True)
class Entry:
    """One function of a profile."""

    where: str
    calls: int
    self_s: float
    cumulative_s: float

    def line(self, total: float) -> str:
        share = 100 * self.cumulative_s / total if total else 0.0
        return (
            f"`{self.where}`: cumulative {self.cumulative_s * 1000:.1f} ms ({share:.0f}%), "
            f"self {self.self_s * 1000:.1f} ms, {self.calls} calls"
        )


def _short(filename: str, line: int, func: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return func  # a built-in, or code without a file
    for marker in (*OURS, "/site-packages/", "/lib/python3"):
        at = filename.find(marker)
        if at >= 0:
            filename = filename[at + 1 :]
            break
    return f"{func} ({filename}:{line})"


def summarize(path: Path, top: int = 10) -> dict[str, Any]:
    """The top functions of the cProfile stats in ``path``."""
    stats: Any = pstats.Stats(str(path))
    entries = []
    for (filename, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():
        entries.append((filename, Entry(_short(filename, line, func), calls, tt, ct)))
    total = float(stats.total_tt)
    ours = [e for f, e in entries if any(m in f for m in OURS)]
    everything = [e for _, e in entries]
    return {
        "total_s": total,
        "ours_by_cumulative": sorted(ours, key=lambda e: -e.cumulative_s)[:top],
        "ours_by_self": sorted(ours, key=lambda e: -e.self_s)[:top],
        "all_by_self": sorted(everything, key=lambda e: -e.self_s)[:top],
    }


def import_times(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, top: int = 12
) -> list[tuple[str, int, int]]:
    """``-X importtime`` of ``argv`` (a Python command): the modules with the most self
    time, as ``(module, self us, cumulative us)``."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split(":", 1)[1].split("|")
        if len(fields) != 3:
            continue
        found.append((fields[2].strip(), int(fields[0]), int(fields[1])))
    found.sort(key=lambda t: -t[1])
    return found[:top]


def profile_command(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, out: Path
) -> dict[str, Any]:
    """Run a cold-start command (``python -c CODE`` or the ``providerhub`` console script)
    under cProfile, and under ``-X importtime``."""
    python, rest = argv[0], list(argv[1:])
    if rest[:1] == ["-c"]:
        script = cwd / (out.stem + ".py")
        script.write_text(rest[1] + "\n")
        target = [str(script)]
    else:  # the console script: run its module with the interpreter beside it
        python = str(Path(argv[0]).parent / "python")
        target = ["-m", "providerhub", *rest]
    subprocess.run(
        [python, "-m", "cProfile", "-o", str(out), *target],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        timeout=300,
        check=True,
    )
    summary = summarize(out)
    summary["import_time"] = import_times([python, *target], env, cwd)
    return summary


def render(title: str, summary: Mapping[str, Any]) -> str:
    """A summary as Markdown."""
    total = summary["total_s"]
    lines = [f"### {title}", "", f"Profiled time: {total * 1000:.1f} ms.", ""]
    for label, key in (
        ("providerhub functions by cumulative time", "ours_by_cumulative"),
        ("providerhub functions by self time", "ours_by_self"),
        ("all functions by self time", "all_by_self"),
    ):
        lines += [f"{label}:", ""]
        lines += [f"1. {e.line(total)}" for e in summary[key]] or ["(none)"]
        lines.append("")
    if summary.get("import_time"):
        lines += ["imports with the most self time (`-X importtime`):", ""]
        for name, self_us, cumulative_us in summary["import_time"]:
            lines.append(f"1. `{name}`: self {self_us} µs, cumulative {cumulative_us} µs")
        lines.append("")
    return "\n".join(lines)
