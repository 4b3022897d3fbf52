"""The suite's output: the Markdown table and the JSON document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from suite import Outcome, Samples, median


def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit, rounded for reading."""
    if value is None:
        return "—"
    if unit == "chunks/s":
        return f"{value / 1000:,.1f}k chunks/s"
    if unit == "us":
        return f"{value:,.2f} µs" if value < 100 else f"{value:,.1f} µs"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    return f"{value:,.3g} {unit}"


def fmt_ratio(o: Outcome) -> str:
    if o.ratio is None:
        return "—"
    text = f"{o.ratio:.3f}x" if 0.9 <= o.ratio <= 1.1 else f"{o.ratio:.2f}x"
    if o.row.unit == "MB" and o.delta is not None:
        text += f" ({o.delta:+.1f} MB)"
    elif o.row.unit == "us" and o.delta is not None and o.row.baseline_label == "raw requests":
        text += f" ({o.delta:+.1f} µs)"
    return text


def fmt_met(o: Outcome) -> str:
    if o.median is None:
        return "ERROR"
    if o.row.target is None:
        return ""
    if o.met is None:
        return "n/a"
    return "yes" if o.met else "**no**"


def table(outcomes: Sequence[Outcome]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| figure | subject | subject median | baseline | baseline median "
        "| paired ratio subject/baseline (median) | target | met? | n |",
        "| --- | --- | ---: | --- | ---: | ---: | --- | --- | ---: |",
    ]
    for o in outcomes:
        r = o.row
        value = fmt_value(o.median, r.unit) if o.median is not None else "error (see notes)"
        base = r.baseline_label if r.baseline else "—"
        lines.append(
            f"| {r.figure} | {r.subject} | {value} | {base} | "
            f"{fmt_value(o.baseline_median, r.unit)} | {fmt_ratio(o)} | "
            f"{r.target.text if r.target else '—'} | {fmt_met(o)} | {o.n} |"
        )
    return "\n".join(lines)


def ceiling_lines(
    ceilings: Samples, providerhub: Mapping[str, float | None], loads: Mapping[str, float | None]
) -> list[str]:
    """The server's ceiling, how close the providerhub figures come to it, and how busy the
    server was meanwhile (``loads``: its CPU time over the measured part, per figure)."""
    lines = []
    labels = {
        "nonstream": ("non-stream, 1 connection", "us"),
        "stream": ("stream, 1 connection", "chunks/s"),
        "concurrent": ("stream, concurrent connections", "chunks/s"),
    }
    for name, (label, unit) in labels.items():
        key = f"ceiling/{name}"
        values = [v for _, v in ceilings.values.get(key, [])]
        if not values:
            err = ceilings.errors.get(key, ["no data"])[0]
            lines.append(f"- {label}: error: {err}")
            continue
        best = median(values)
        mine = providerhub.get(name)
        if unit == "us":
            text = f"{1e6 / best:,.0f} req/s ({best:.1f} µs a request)"
            share = f"; providerhub runs at {100 * best / mine:.0f}% of it" if mine else ""
        else:
            text = fmt_value(best, unit)
            share = f"; providerhub runs at {100 * mine / best:.0f}% of it" if mine else ""
        load = loads.get(name)
        busy = (
            ""
            if load is None
            else f" (the server was busy {100 * load:.0f}% of one core meanwhile)"
        )
        lines.append(f"- {label}: {text}{share}{busy}")
    return lines


def markdown(
    *,
    machine: Mapping[str, Any],
    config: Mapping[str, Any],
    ceilings: list[str],
    outcomes: Sequence[Outcome],
    notes: Sequence[str],
    profiles: Sequence[str],
    runtime_s: float,
    command: str,
) -> str:
    """The whole ``results.md``."""
    v = machine["versions"]
    out = [
        "# providerhub benchmark results",
        "",
        f"Command: `{command}` ({'quick' if config.get('quick') else 'full'} run, "
        f"{runtime_s:.0f} s).",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"{machine['platform']}; Python {machine['python']}; requests {v.get('requests')}, "
        f"urllib3 {v.get('urllib3')}; providerhub {v.get('providerhub')} at "
        f"{machine['commit']}; orjson {v.get('orjson') or 'not installed'}, openai "
        f"{config.get('openai_version') or 'not installed'}, LiteLLM "
        f"{config.get('litellm_version') or 'not installed'}; "
        f"{machine['distributions_installed']} distributions in the environment.",
        "",
        "Server's own ceiling (bare `http.client` loop, fresh processes):",
        "",
        *ceilings,
        "",
        "Medians over fresh processes; the ratio is the median of the per-round ratios of "
        "subject and baseline measured in the same shuffled round. For chunks/s a ratio above "
        "1 is faster than the baseline; for times and memory, below 1 is better.",
        "",
        table(outcomes),
        "",
    ]
    if notes:
        out += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    missed = [o for o in outcomes if o.met is False]
    out.append(
        f"Targets: {sum(1 for o in outcomes if o.met)} met, {len(missed)} missed"
        + (": " + "; ".join(o.row.figure for o in missed) if missed else "")
        + "."
    )
    out.append("")
    if profiles:
        out += ["## Profiles of the missed targets", "", *profiles]
    return "\n".join(out).rstrip() + "\n"


def outcome_json(o: Outcome) -> dict[str, Any]:
    r = o.row
    return {
        "figure": r.figure,
        "subject": r.subject,
        "key": r.key,
        "unit": r.unit,
        "better": r.better,
        "baseline": r.baseline,
        "baseline_label": r.baseline_label if r.baseline else None,
        "median": o.median,
        "baseline_median": o.baseline_median,
        "paired_ratio": o.ratio,
        "paired_delta": o.delta,
        "target": r.target.text if r.target else None,
        "met": o.met,
        "n": o.n,
        "error": o.error,
    }
