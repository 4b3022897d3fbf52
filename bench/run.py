"""Run the providerhub benchmark suite of issue 4 and write ``results.md`` and
``results.json``.

::

    .venv/bin/python bench/run.py            # the full suite
    .venv/bin/python bench/run.py --quick    # a smoke run, under a minute

Every figure is measured for providerhub and for raw ``requests`` in the same run, each
measurement in a fresh process, repeated, in shuffled order, with every answer checked
against what the server sent. See bench/README.md for what each figure measures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import figures
import machine
import profiling
import protocol
import report
import scratch
from suite import Measurement, Outcome, Samples, evaluate, median, run_once, run_schedule

BENCH = Path(__file__).resolve().parent
DROPPED_ENV = (
    "PYTHONDONTWRITEBYTECODE",  # cold starts must read cached bytecode, as installs have
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONPROFILEIMPORTTIME",
    "PROVIDERHUB_DISABLE_PLUGINS",
    "PROVIDERHUB_GRAVITYENGINE_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the providerhub benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and chunks")
    parser.add_argument(
        "--out", type=Path, default=BENCH / "results", help="where to write the results"
    )
    parser.add_argument("--seed", type=int, default=4, help="seed of the shuffled order")
    parser.add_argument(
        "--compare-python",
        default=sys.executable,
        help="the interpreter for the openai SDK and LiteLLM rows (default: this one)",
    )
    parser.add_argument(
        "--events-per-chunk",
        type=int,
        default=1,
        help="SSE events per HTTP chunk sent by the server (default 1, as servers that "
        "flush every token)",
    )
    parser.add_argument(
        "--batched-events",
        type=int,
        default=16,
        help="also stream from a second server sending this many events per HTTP chunk, "
        "as an informational row of figure 3 (0: do not)",
    )
    parser.add_argument("--plugins", type=int, default=100, help="generated plugins")
    parser.add_argument("--no-scratch", action="store_true", help="skip the 100-plugin venv")
    parser.add_argument("--no-profile", action="store_true", help="do not profile misses")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated measurement key prefixes to run (e.g. 'stream,route')",
    )
    return parser.parse_args(argv)


class BenchServer:
    """The bench server, in its own process so that it takes none of the client's GIL."""

    def __init__(self, events_per_chunk: int, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "server.py"),
                "--events-per-chunk",
                str(events_per_chunk),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the bench server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"

    def prime(self, sizes: list[int]) -> None:
        """Ask once for each stream size, so that no measurement pays for building it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            for pieces in sorted(set(sizes)):
                body = json.dumps(protocol.request_body("prime", stream=True, pieces=pieces))
                conn.request(
                    "POST", protocol.PATH, body.encode(), {"Content-Type": "application/json"}
                )
                text, count = protocol.parse_sse_text(conn.getresponse().read())
                if text != protocol.stream_text("prime", pieces) or count != pieces:
                    raise RuntimeError("the bench server sent a wrong stream")
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the server stops when its standard input closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def child_env(out: Path) -> dict[str, str]:
    """The environment of every measured process: bytecode cached in ``out`` (so the work
    tree is not written to), loopback only, and no setting that changes providerhub."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env["PYTHONPYCACHEPREFIX"] = str(out / ".pycache")
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_TELEMETRY"] = "False"
    return env


def importable(python: str, module: str, env: dict[str, str]) -> str | None:
    """The version of ``module``'s distribution if ``python`` can import it, else None."""
    code = (
        "import importlib.util, sys\n"
        f"if importlib.util.find_spec({module!r}) is None: sys.exit(1)\n"
        "from importlib import metadata\n"
        f"print(metadata.version({module!r}))"
    )
    try:
        done = subprocess.run(
            [python, "-c", code], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or "unknown" if done.returncode == 0 else None


def server_load(samples: Samples, key: str) -> float | None:
    """The median share of a core the server used while ``key`` was measured."""
    shares = [d["server_cpu_share"] for d in samples.details.get(key, [])]
    shares = [s for s in shares if s is not None]
    return median(shares) if shares else None


def warm_up(measurements: list[Measurement], env: dict[str, str], cwd: Path) -> None:
    """Run each command twice and each memory measurement once, untimed, so that every
    module's bytecode is cached before anything is measured."""
    for m in measurements:
        runs = 2 if m.command is not None else (1 if m.key.startswith("rss/") else 0)
        for _ in range(runs):
            try:
                run_once(m, env, cwd)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
                log(f"  warm-up of {m.key} failed: {exc}")
                break


def profile_misses(
    outcomes: list[Outcome],
    measurements: dict[str, Measurement],
    env: dict[str, str],
    cwd: Path,
    out: Path,
) -> tuple[list[str], dict[str, Any]]:
    """Profile the providerhub side of every missed target."""
    rendered: list[str] = []
    data: dict[str, Any] = {}
    done: set[str] = set()
    (out / "profiles").mkdir(parents=True, exist_ok=True)
    for o in outcomes:
        key = o.row.key
        if o.met is not False or o.row.subject != "providerhub" or key in done:
            continue
        done.add(key)
        m = measurements[key]
        path = out / "profiles" / (key.replace("/", "-") + ".prof")
        log(f"profiling {key}")
        try:
            if m.command is not None:
                summary = profiling.profile_command(m.command, env, cwd, path)
            else:
                run_once(m, env, cwd, {"profile": str(path)})
                summary = profiling.summarize(path)
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
            rendered.append(f"### {o.row.figure}\n\nprofiling failed: {exc}\n")
            continue
        text = profiling.render(f"{o.row.figure} ({key}, cProfile)", summary)
        rendered.append(text)
        (path.with_suffix(".md")).write_text(text)
        data[key] = {
            "figure": o.row.figure,
            "stats_file": str(path),
            "total_s": summary["total_s"],
            **{
                k: [e.__dict__ for e in summary[k]]
                for k in ("ours_by_cumulative", "ours_by_self", "all_by_self")
            },
            "import_time": summary.get("import_time"),
        }
    return rendered, data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    sizes = figures.QUICK if args.quick else figures.FULL
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(out)
    tmp = Path(tempfile.mkdtemp(prefix="providerhub-bench-"))
    command = "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    notes: list[str] = []
    server: BenchServer | None = None
    batched: BenchServer | None = None
    try:
        info = machine.describe()
        log(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}")
        server = BenchServer(args.events_per_chunk, env)
        env["PROVIDERHUB_GRAVITYENGINE_URL"] = server.base_url
        log(f"bench server at {server.base_url} (pid {server.proc.pid})")

        setup = figures.Setup(base_url=server.base_url, sizes=sizes, server_pid=server.proc.pid)
        if args.batched_events > 1:
            batched = BenchServer(args.batched_events, env)
            setup.batched = (batched.base_url, batched.proc.pid, args.batched_events)
            log(f"batched bench server at {batched.base_url} (pid {batched.proc.pid})")
        setup.compare_python = args.compare_python
        setup.has_orjson = importable(sys.executable, "orjson", env) is not None
        if not setup.has_orjson:
            notes.append(
                "stream with orjson: skipped: orjson is not installed "
                "(pip install -r bench/requirements.txt)"
            )
        versions: dict[str, str | None] = {}
        for lib, label in figures.COMPARISONS.items():
            versions[lib] = importable(args.compare_python, lib, env)
            setup.comparisons[lib] = versions[lib] is not None
            if versions[lib] is None:
                notes.append(
                    f"{label}: skipped: not installed in {args.compare_python} "
                    "(pip install -r bench/requirements.txt, or pass --compare-python)"
                )
        if args.compare_python != sys.executable and any(setup.comparisons.values()):
            notes.append(
                f"The openai SDK and LiteLLM rows ran with {args.compare_python} "
                f"(library versions there: {machine.versions(args.compare_python)})."
            )

        if not args.no_scratch:
            log(f"building the scratch venv with {args.plugins} generated plugins")
            try:
                env_100 = scratch.create(tmp / "scratch", args.plugins)
                setup.scratch_python = str(env_100.python)
                setup.scratch_script = str(env_100.script)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                notes.append(f"cold start with {args.plugins} plugins: skipped: {exc}")
                log(f"  scratch venv failed: {exc}")

        measurements, rows = figures.build(setup)
        if args.only:
            prefixes = tuple(p.strip() for p in args.only.split(",") if p.strip())
            measurements = [m for m in measurements if m.key.startswith(prefixes)]
            keys = {m.key for m in measurements}
            rows = [r for r in rows if r.key in keys]

        server.prime([sizes.stream_pieces, sizes.stream_warmup, sizes.concurrent_pieces, 50])
        if batched is not None:
            batched.prime([sizes.stream_pieces, sizes.stream_warmup])
        log("measuring the server's ceiling with a bare http.client loop")
        ceiling_samples = run_schedule(
            figures.ceilings(setup), env, tmp, seed=args.seed, progress=log
        )

        for line in report.ceiling_lines(ceiling_samples, {}, {}):
            log(f"  server ceiling: {line[2:]}")
        log(f"warming up ({len(measurements)} measurements)")
        warm_up(measurements, env, tmp)
        rounds = max(m.reps for m in measurements) if measurements else 0
        log(f"running {sum(m.reps for m in measurements)} fresh processes in {rounds} rounds")
        samples = run_schedule(measurements, env, tmp, seed=args.seed, progress=log)
        outcomes = [evaluate(r, samples) for r in rows]
        for key, errors in sorted(samples.errors.items()):
            notes.append(f"{key}: {len(errors)} failed run(s); first: {errors[0]}")

        profiles: list[str] = []
        profile_data: dict[str, Any] = {}
        if not args.no_profile:
            by_key = {m.key: m for m in measurements}
            profiles, profile_data = profile_misses(outcomes, by_key, env, tmp, out)

        runtime = time.monotonic() - started
        ph = {o.row.key: o.median for o in outcomes if o.row.subject == "providerhub"}
        names = ("nonstream", "stream", "concurrent")
        ceiling_text = report.ceiling_lines(
            ceiling_samples,
            {name: ph.get(f"{name}/providerhub") for name in names},
            {name: server_load(samples, f"{name}/providerhub") for name in names},
        )
        config = {
            "quick": args.quick,
            "sizes": sizes.__dict__,
            "seed": args.seed,
            "events_per_chunk": args.events_per_chunk,
            "batched_events": args.batched_events,
            "plugins": args.plugins,
            "server": server.base_url,
            "compare_python": args.compare_python,
            "openai_version": versions.get("openai"),
            "litellm_version": versions.get("litellm"),
            "pycache_prefix": env["PYTHONPYCACHEPREFIX"],
        }
        md = report.markdown(
            machine=info,
            config=config,
            ceilings=ceiling_text,
            outcomes=outcomes,
            notes=notes,
            profiles=profiles,
            runtime_s=runtime,
            command=command,
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.md").write_text(md)
        doc = {
            "command": command,
            "runtime_s": runtime,
            "machine": info,
            "config": config,
            "server_ceiling": {
                "lines": ceiling_text,
                "samples": ceiling_samples.values,
                "errors": ceiling_samples.errors,
            },
            "rows": [report.outcome_json(o) for o in outcomes],
            "samples": samples.values,
            "details": samples.details,
            "errors": samples.errors,
            "notes": notes,
            "profiles": profile_data,
        }
        (out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(md)
        log(f"wrote {out / 'results.md'} and {out / 'results.json'} in {runtime:.0f} s")
        return 1 if samples.errors else 0
    finally:
        for running in (server, batched):
            if running is not None:
                running.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
