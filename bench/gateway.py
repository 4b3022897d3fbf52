"""The gateway's speed: ``providerhub serve`` against the bench upstream called directly and
against the LiteLLM proxy, side by side in one run, driven by ``wrk`` (issue 10, item 6).

One run, all on 127.0.0.1:

1. starts the fast upstream (``server.py``), and a slow one of this file's own
   (``--slow-upstream``) that holds each stream open after its first piece until all the
   streams of its group are open;
2. starts one ``providerhub serve`` worker whose openai-compatible endpoints point at the
   two upstreams (a temporary ``PROVIDERHUB_CONFIG``; Gravityengine disabled), and, when
   ``--litellm-venv`` holds it, the LiteLLM proxy with one model on the fast upstream;
3. runs ``wrk`` for a fixed time at 1 and at 32 connections against each of the three, for
   whole answers and for 16-piece streams. A Lua script checks every answer (status 200,
   the reply's text, a stream's first and last pieces and ``[DONE]``);
4. measures the time to the first content event through the gateway and directly (raw
   sockets, alternating blocks, median over ``--ttft-calls``), the gateway's RSS (``VmRSS`` over
   its process tree), and whether ``--streams`` streams held open at once through the
   gateway all arrive whole;
5. prints the figures and the issue's targets as Markdown tables.

Run it from the dev environment (``wrk`` from the system's packages; LiteLLM in a venv of
its own, see bench/README.md)::

    .venv/bin/python bench/gateway.py

The exit status is 1 when a measurement failed (a wrong or failed answer, a target that
did not start), not when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import protocol

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROVIDERHUB = ROOT / ".venv" / "bin" / "providerhub"
LITELLM_VENV = Path("/tmp/litellm-proxy-venv")
CHAT = "/v1/chat/completions"
SLOW_MODEL = "bench-slow"
WRK_NONCE = "bench-gw"
STREAM_PIECES = 16
HOLD_SECONDS = 30.0
"""How long the slow upstream holds a stream for the rest of its group at most."""

TARGET_RATIO = 10.0
TARGET_ADDED_P50_MS = 1.0
TARGET_RSS_MB = 150.0
TARGET_TTFT_MS = 1.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_upstream(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """A bench upstream that prints ``PORT n`` and stops when its standard input closes."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=HERE
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        stop(proc)
        raise RuntimeError(f"the upstream {args} did not start: {line!r}")
    return proc, int(line.split()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float) -> float:
    """Poll ``url`` until it answers 200; the seconds it took."""
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (or the end of standard input), then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()
    else:
        proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores the whole machine kept busy over ``seconds`` (from /proc/stat): other
    work on the machine slows every row, more so on 2 cores."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle, iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(total1 - total0, 1)


def tree_rss_mb(pid: int) -> float:
    """``VmRSS`` summed over ``pid`` and its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total_kb = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if found:
            total_kb += int(found.group(1))
    return total_kb / 1024


def start_gateway(
    workdir: Path,
    fast: int,
    slow: int,
    extra_env: dict[str, str] | None = None,
    limits: str = "",
    script: Path = PROVIDERHUB,
    workers: int = 1,
) -> tuple[subprocess.Popen[bytes], str, float]:
    """``providerhub serve`` (the console ``script`` of one tree's venv, ``workers``
    workers) over the two upstreams (with ``extra_env`` set, such as
    ``PROVIDERHUB_REDIS_URL``, and ``limits`` lines such as ``rpm = 1000`` in the fast
    endpoint's table); its base url and the seconds from the start to its first
    ``/healthz`` answer."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "providerhub.toml"
    config.write_text(
        f'[endpoints.bench]\nurl = "http://127.0.0.1:{fast}"\nmodels = ["{protocol.MODEL}"]\n'
        f"{limits}\n"
        f'[endpoints.slow]\nurl = "http://127.0.0.1:{slow}"\nmodels = ["{SLOW_MODEL}"]\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVIDERHUB_")}
    env.update(PROVIDERHUB_CONFIG=str(config), PROVIDERHUB_DISABLE_PLUGINS="gravityengine")
    env.update(extra_env or {})
    port = free_port()
    command = [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=open(workdir / "gateway.log", "wb"),  # noqa: SIM115  # closed with the process
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    startup = wait_ready(base + "/healthz", proc, 20)
    return proc, base, startup


def start_litellm(workdir: Path, venv: Path, fast: int) -> tuple[subprocess.Popen[bytes], str]:
    """The LiteLLM proxy, one worker, serving the bench model from the fast upstream."""
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {protocol.MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{protocol.MODEL}\n"
        f"      api_base: http://127.0.0.1:{fast}/v1\n"
        "      api_key: bench-unused\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = dict(os.environ)
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_DOCS="True")
    env.pop("DATABASE_URL", None)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        env=env,
        cwd=workdir,
        stdout=open(workdir / "litellm.log", "wb"),  # noqa: SIM115  # closed with the process
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/health/liveliness", proc, 180)
    return proc, base


def litellm_version(venv: Path) -> str:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or "?"


# -- wrk ------------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    literal = json.dumps(text, ensure_ascii=True)
    if "\\u" in literal:
        raise ValueError(f"not a plain ASCII Lua string: {text!r}")
    return literal


DIALECT_ROUTES = {
    "chat": CHAT,
    "messages": "/v1/messages",
    "responses": "/v1/responses",
}
"""The routes of the same request in each dialect the gateway serves."""
_LAST_EVENT = {"chat": "[DONE]", "messages": "message_stop", "responses": "response.completed"}


def dialect_body(dialect: str, stream: bool) -> dict[str, Any]:
    """The benchmark's request in ``dialect``: the same messages, and as many pieces."""
    messages = protocol.messages_for(WRK_NONCE)
    limit = STREAM_PIECES if stream else 64  # Messages requires one: each dialect sends it
    if dialect == "responses":
        body: dict[str, Any] = {"model": protocol.MODEL, "input": messages}
        body["max_output_tokens"] = limit
    else:
        body = {"model": protocol.MODEL, "messages": messages, "max_tokens": limit}
    if stream:
        body["stream"] = True
    return body


def wrk_script(stream: bool, dialect: str = "chat") -> str:
    """The Lua script: the POST, a check of every answer, and the figures as one line."""
    body = dialect_body(dialect, stream)
    if stream:
        last = _LAST_EVENT[dialect]
        expects = [protocol.first_piece(WRK_NONCE), protocol.word(STREAM_PIECES - 1), last]
    else:
        # The ASCII part of the reply: a proxy may send the rest as \\u escapes.
        expects = [protocol.reply_text(WRK_NONCE).split(" Voil")[0]]
    checks = " and ".join(f"string.find(body, {lua_string(e)}, 1, true) ~= nil" for e in expects)
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {lua_string(json.dumps(body))}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; first_bad = "" end
function response(status, headers, body)
  if status == 200 and {checks} then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
function done(summary, latency, requests)
  local o, b, fb = 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad")
    if fb == "" then fb = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT %d %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    o, b, e.connect, e.read, e.write, e.status, e.timeout))
  io.write("FIRSTBAD " .. fb .. "\\n")
end
"""


@dataclass
class WrkResult:
    target: str
    kind: str
    connections: int
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    ok: int = 0
    bad: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    first_bad: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> bool:
        """A wrong answer, or one that never came whole."""
        return self.bad > 0 or any(self.errors[k] for k in ("connect", "read", "write"))


def run_wrk(
    script: Path, url: str, connections: int, seconds: float, target: str, kind: str
) -> WrkResult:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    result = WrkResult(target, kind, connections)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            n = [int(x) for x in line.split()[1:]]
            result.requests, result.seconds = n[0], n[1] / 1e6
            result.p50_ms, result.p99_ms = n[2] / 1000, n[3] / 1000
            result.ok, result.bad = n[4], n[5]
            result.errors = dict(zip(("connect", "read", "write", "status", "timeout"), n[6:]))
        elif line.startswith("FIRSTBAD "):
            result.first_bad = line[9:]
    if not result.errors:
        raise RuntimeError(f"wrk gave no result for {url}: {out.stdout} {out.stderr}")
    return result


# -- time to first token --------------------------------------------------------------------


class RawStream:
    """A keep-alive connection that POSTs stream requests and reads chunked SSE answers,
    timing the first content event; nothing between the socket and the clock."""

    def __init__(self, base: str, path: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"

    def ttft(self, nonce: str, pieces: int) -> tuple[float, bytes]:
        """Seconds from sending the request to the arrival of the first content piece, and
        the whole answer, to :func:`check_stream` after the timed loop: parsing it here
        would leave the target idle between calls, and waking it would be timed too."""
        body = json.dumps(
            {
                "model": protocol.MODEL,
                "messages": protocol.messages_for(nonce),
                "stream": True,
                "max_tokens": pieces,
            }
        ).encode()
        request = (
            self.head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        marker = json.dumps(protocol.first_piece(nonce)).encode()
        buf = bytearray()
        started = time.perf_counter()
        self.sock.sendall(request)
        first = -1.0
        while True:
            data = self.sock.recv(262144)
            if not data:
                raise RuntimeError("the connection closed mid-answer")
            buf += data
            if first < 0 and marker in buf:
                first = time.perf_counter() - started
            if buf.endswith(b"\r\n0\r\n\r\n"):
                return first, bytes(buf)

    def close(self) -> None:
        self.sock.close()


def check_stream(nonce: str, pieces: int, first: float, answer: bytes) -> None:
    """Raise unless ``answer`` is the whole chunked stream the upstream sent for ``nonce``
    and its first piece was seen."""
    head, _, chunked = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
        raise RuntimeError(f"unexpected answer: {head[:200]!r}")
    text, count = protocol.parse_sse_text(dechunk(chunked))
    if first < 0 or text != protocol.stream_text(nonce, pieces) or count != pieces:
        raise RuntimeError(f"wrong stream for {nonce}: {count} pieces")


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    at = 0
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[end + 2 : end + 2 + size]
        at = end + 2 + size + 2


TTFT_BLOCK = 25
"""Calls in a row to one target: alternating single calls would leave each chain of
processes idle in between, and waking an idle one costs this VM a few hundred µs."""


def measure_ttft(direct: str, gateway: str, calls: int) -> tuple[float, float]:
    """Median time to the first content event, in ms, directly and through the gateway,
    in alternating blocks of :data:`TTFT_BLOCK` calls after a warm-up; every answer is
    checked after its block."""
    clients = {"a": RawStream(direct, CHAT), "b": RawStream(gateway, CHAT)}
    times: dict[str, list[float]] = {"a": [], "b": []}

    def block(tag: str, size: int, warm: bool) -> None:
        done = []
        for _ in range(size):
            nonce = f"ttft-{tag}{'w' if warm else ''}{len(done) + len(times[tag])}"
            done.append((nonce, *clients[tag].ttft(nonce, STREAM_PIECES)))
        for nonce, first, answer in done:
            check_stream(nonce, STREAM_PIECES, first, answer)
        if not warm:
            times[tag].extend(first for _, first, _ in done)

    try:
        block("a", 50, warm=True)
        block("b", 50, warm=True)
        while len(times["b"]) < calls:
            block("a", TTFT_BLOCK, warm=False)
            block("b", TTFT_BLOCK, warm=False)
    finally:
        for client in clients.values():
            client.close()
    return statistics.median(times["a"]) * 1000, statistics.median(times["b"]) * 1000


# -- 1,000 streams at once ------------------------------------------------------------------


@dataclass
class ManyStreams:
    count: int
    pieces: int
    complete: int = 0
    wrong: int = 0
    failed: int = 0
    most_open_client: int = 0
    most_open_upstream: int = 0
    seconds: float = 0.0
    first_error: str = ""


async def many_streams(gateway: str, slow: int, count: int, pieces: int) -> ManyStreams:
    """``count`` streams through the gateway from the slow upstream, which holds each one
    after its first piece until all are open: how many arrived whole, and the most open at
    once as the client and the upstream saw them."""
    import aiohttp

    result = ManyStreams(count, pieces)
    open_now = 0
    group = f"hold{count}"

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal open_now
        nonce = f"{group}-{index}"
        body = {
            "model": SLOW_MODEL,
            "messages": protocol.messages_for(nonce),
            "stream": True,
            "max_tokens": pieces,
        }
        got: list[str] = []
        done = False
        async with session.post(gateway + CHAT, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}: {await response.text()}")
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                if line.strip() == b"data: [DONE]":
                    done = True
                    break
                content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if content:
                    if not got:
                        open_now += 1
                        result.most_open_client = max(result.most_open_client, open_now)
                    got.append(content)
        if got:
            open_now -= 1
        if done and "".join(got) == protocol.stream_text(nonce, pieces) and len(got) == pieces:
            result.complete += 1
        else:
            result.wrong += 1

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=HOLD_SECONDS + 60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        outcomes = await asyncio.gather(
            *(one(session, i) for i in range(count)), return_exceptions=True
        )
    result.seconds = time.perf_counter() - started
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    result.failed = len(errors)
    if errors:
        result.first_error = repr(errors[0])[:300]
    with urllib.request.urlopen(f"http://127.0.0.1:{slow}/stats", timeout=10) as response:
        result.most_open_upstream = json.loads(response.read()).get(group, 0)
    return result


# -- the slow upstream (``--slow-upstream``) ------------------------------------------------


async def slow_upstream(delay: float) -> None:
    """An OpenAI-compatible upstream whose streams wait, after their first piece, until
    all the streams of their group are open (the nonce ``hold<N>-<i>`` puts a stream in
    group ``hold<N>`` of N streams), then send a piece every ``delay`` seconds.
    ``GET /stats`` answers the most streams of each group that were open at once."""
    gates: dict[str, asyncio.Event] = {}
    open_now: dict[str, int] = {}
    most: dict[str, int] = {}

    def frame(payload: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(payload), payload)

    async def answer(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        nonce = request["messages"][-1]["content"]
        model = request["model"]
        pieces = int(request.get("max_tokens") or protocol.DEFAULT_PIECES)
        group, _, _ = nonce.partition("-")
        size = int(group[4:]) if group.startswith("hold") and group[4:].isdigit() else 1
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(frame(e) for e in protocol.head_events(nonce, model))
        )
        await writer.drain()
        gate = gates.setdefault(group, asyncio.Event())
        open_now[group] = open_now.get(group, 0) + 1
        most[group] = max(most.get(group, 0), open_now[group])
        try:
            if open_now[group] >= size:
                gate.set()
            try:
                await asyncio.wait_for(gate.wait(), HOLD_SECONDS)
            except asyncio.TimeoutError:
                gate.set()
            for event in protocol.tail_events(pieces, model):
                await asyncio.sleep(delay)
                writer.write(frame(event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            open_now[group] -= 1

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if method == "GET" and path == "/stats":
                    doc = json.dumps(most).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(doc), doc)
                    )
                    await writer.drain()
                    continue
                request = json.loads(body)
                if not request.get("stream"):
                    doc = protocol.completion_document(
                        request["messages"][-1]["content"], request["model"]
                    )
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(doc), doc)
                    )
                    await writer.drain()
                    continue
                await answer(writer, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    # The parent's end of the pipe closing (or a stray byte) stops the server.
    loop.add_reader(sys.stdin.fileno(), stopped.set)
    try:
        await asyncio.wait_for(stopped.wait(), 4 * 3600)
    finally:
        server.close()


# -- the issue-16 ratios, one tree against another (``--rounds``) ----------------------------

TARGET_ADDED_RATIO_MS = 0.30
TARGET_SHARE_32 = 0.25
TARGET_STREAM_SHARE_32 = 0.20
RATIO_ROWS = (("non-stream", 1), ("non-stream", 32), ("stream", 32))


@dataclass
class RatioRound:
    """One round's three figures for one gateway, each against the upstream's own row of
    the same round."""

    added_ms: float
    share_32: float
    stream_share_32: float
    rps_32: float


TARGET_DIALECT_ADDED_MS = 0.10


def measure_dialects(args: argparse.Namespace) -> int:
    """What a request in Anthropic's Messages or OpenAI's Responses dialect adds over the
    same request through ``/v1/chat/completions``, at 1 connection, whole and streamed:
    the routes run in turn (their order rotating) in each of ``--rounds`` rounds against
    one gateway; prints the median latency of each route and the medians of the per-round
    differences."""
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            fast_proc, fast = start_upstream([str(HERE / "server.py")])
            procs.append(fast_proc)
            proc, base, _ = start_gateway(workdir / "gateway", fast, fast)
            procs.append(proc)
            scripts: dict[tuple[str, str], Path] = {}
            for dialect in DIALECT_ROUTES:
                for kind in ("non-stream", "stream"):
                    path = workdir / f"{dialect}-{kind}.lua"
                    path.write_text(wrk_script(kind == "stream", dialect))
                    scripts[(dialect, kind)] = path
            for (dialect, kind), path in scripts.items():
                url = base + DIALECT_ROUTES[dialect]
                run_wrk(path, url, 1, args.warmup, "warm-up", kind)
            p50: dict[tuple[str, str], list[float]] = {key: [] for key in scripts}
            order = list(DIALECT_ROUTES)
            for index in range(args.rounds):
                turn = order[index % 3 :] + order[: index % 3]
                for kind in ("non-stream", "stream"):
                    for dialect in turn:
                        url = base + DIALECT_ROUTES[dialect]
                        r = run_wrk(scripts[(dialect, kind)], url, 1, args.duration, dialect, kind)
                        if r.failed:
                            log(f"{dialect} {kind}: wrong answers: {r.first_bad[:200]}")
                            return 1
                        p50[(dialect, kind)].append(r.p50_ms)
        finally:
            for proc in reversed(procs):
                stop(proc)
    for kind in ("non-stream", "stream"):
        chat = p50[("chat", kind)]
        log(f"{kind}, 1 connection, median of {args.rounds} rounds:")
        log(f"  chat completions p50 {statistics.median(chat):.3f} ms")
        for dialect in ("messages", "responses"):
            mine = p50[(dialect, kind)]
            added = [m - c for m, c in zip(mine, chat)]
            log(
                f"  {dialect:<9} p50 {statistics.median(mine):.3f} ms, adds "
                f"{statistics.median(added):+.3f} ms (rounds {min(added):+.3f} to "
                f"{max(added):+.3f}; target <= +{TARGET_DIALECT_ADDED_MS:.2f})"
            )
    return 0


def measure_ratios(args: argparse.Namespace) -> int:
    """The three ratios of issue 16 for this tree's gateway and, with ``--compare-python``,
    another tree's, in alternating rounds against the upstream called directly: the median
    latency added at 1 connection, and the share of the upstream's requests/s at 32
    connections for whole answers and for 16-piece streams; for each ``--workers`` count.
    Prints the medians over the rounds with their range; writes ``gateway-ratios.md`` and
    ``.json``."""
    trees = {"this": PROVIDERHUB}
    if args.compare_python:
        trees["other"] = Path(args.compare_python).parent / "providerhub"
    labels = {
        "this": ROOT.name,
        "other": Path(args.compare_python or "./x/y").absolute().parents[2].name,
    }
    workers = [int(w) for w in str(args.workers).split(",")]
    busy = busy_cores()
    procs: list[subprocess.Popen[bytes]] = []
    rounds: dict[str, list[RatioRound]] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        try:
            fast_proc, fast = start_upstream([str(HERE / "server.py")])
            procs.append(fast_proc)
            gateways: dict[str, str] = {}
            for tree, script in trees.items():
                for count in workers:
                    key = f"{tree} w{count}"
                    proc, base, _ = start_gateway(
                        workdir / key.replace(" ", "-"), fast, fast, script=script, workers=count
                    )
                    procs.append(proc)
                    gateways[key] = base
                    rounds[key] = []
            scripts = {}
            for kind in ("non-stream", "stream"):
                scripts[kind] = workdir / f"{kind}.lua"
                scripts[kind].write_text(wrk_script(kind == "stream"))
            upstream = f"http://127.0.0.1:{fast}"
            for base in [upstream, *gateways.values()]:
                for kind in scripts:
                    run_wrk(scripts[kind], base + CHAT, 8, args.warmup, "warm-up", kind)
            for index in range(args.rounds):
                order = list(gateways)
                if index % 2:
                    order.reverse()
                rows: dict[tuple[str, str, int], WrkResult] = {}
                for name in ["upstream", *order]:
                    base = upstream if name == "upstream" else gateways[name]
                    for kind, connections in RATIO_ROWS:
                        r = run_wrk(
                            scripts[kind], base + CHAT, connections, args.duration, name, kind
                        )
                        if r.failed:
                            failures.append(f"{name} {kind} c={connections}: {r.first_bad[:200]}")
                        rows[(name, kind, connections)] = r
                up = {(k, c): rows[("upstream", k, c)] for k, c in RATIO_ROWS}
                for name in order:
                    mine = {(k, c): rows[(name, k, c)] for k, c in RATIO_ROWS}
                    rounds[name].append(
                        RatioRound(
                            added_ms=mine[("non-stream", 1)].p50_ms - up[("non-stream", 1)].p50_ms,
                            share_32=mine[("non-stream", 32)].rps / up[("non-stream", 32)].rps,
                            stream_share_32=mine[("stream", 32)].rps / up[("stream", 32)].rps,
                            rps_32=mine[("non-stream", 32)].rps,
                        )
                    )
                    last = rounds[name][-1]
                    log(
                        f"round {index + 1} {name}: +{last.added_ms:.3f} ms, "
                        f"{last.share_32:.1%} ({last.rps_32:,.0f} of "
                        f"{up[('non-stream', 32)].rps:,.0f} req/s), streams "
                        f"{last.stream_share_32:.1%}"
                    )
        except Exception as exc:  # a target that did not start, or a broken measurement
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            for proc in reversed(procs):
                stop(proc)

    def spread(values: list[float], fmt: str) -> str:
        if not values:
            return "-"
        return (
            f"{format(statistics.median(values), fmt)} "
            f"({format(min(values), fmt)} to {format(max(values), fmt)})"
        )

    lines = [
        f"## Gateway ratios, {args.rounds} alternating rounds of {args.duration} s a row "
        f"({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"{os.cpu_count()} cores, {busy:.2f} busy before the run; medians (range) over the "
        "rounds, each round's gateway rows against the upstream's rows of that round.",
        "",
        "| tree | workers | added p50, 1 conn | share of upstream req/s, 32 conns "
        "| share, 16-piece streams, 32 conns | req/s, 32 conns |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, got in rounds.items():
        tree, count = name.split(" w")
        lines.append(
            f"| {labels[tree]} | {count} | {spread([r.added_ms for r in got], '.3f')} ms | "
            f"{spread([r.share_32 * 100 for r in got], '.1f')}% | "
            f"{spread([r.stream_share_32 * 100 for r in got], '.1f')}% | "
            f"{spread([r.rps_32 for r in got], ',.0f')} |"
        )
    for count in workers:
        mine, theirs = rounds.get(f"this w{count}"), rounds.get(f"other w{count}")
        if not mine or not theirs:
            continue
        pairs = list(zip(mine, theirs))
        lines += [
            "",
            f"Paired, {labels['this']} against {labels['other']}, {count} worker(s) "
            "(median (range) over the rounds of each round's figures): added latency "
            f"{spread([(a.added_ms - b.added_ms) * 1000 for a, b in pairs], '+.0f')} µs; "
            "req/s at 32 connections "
            f"{spread([a.share_32 / b.share_32 for a, b in pairs], '.2f')}x; "
            "streams at 32 connections "
            f"{spread([a.stream_share_32 / b.stream_share_32 for a, b in pairs], '.2f')}x.",
        ]
    lines += [
        "",
        f"Targets: added <= {TARGET_ADDED_RATIO_MS:.2f} ms, share >= "
        f"{TARGET_SHARE_32:.0%}, stream share >= {TARGET_STREAM_SHARE_32:.0%}.",
    ]
    lines += [f"\nFAILED: {f}" for f in failures]
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gateway-ratios.md").write_text(report)
    doc = {
        "busy_cores_before": busy,
        "rounds": {name: [asdict(r) for r in got] for name, got in rounds.items()},
        "labels": labels,
        "failures": failures,
    }
    (args.out / "gateway-ratios.json").write_text(json.dumps(doc, indent=2))
    return 1 if failures else 0


# -- the report -----------------------------------------------------------------------------


def fmt_rate(rps: float) -> str:
    return f"{rps / 1000:,.1f}k" if rps >= 10_000 else f"{rps:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up")
    parser.add_argument("--ttft-calls", type=int, default=500)
    parser.add_argument("--streams", type=int, default=1000, help="streams held open at once")
    parser.add_argument("--stream-pieces", type=int, default=20, help="pieces of each of them")
    parser.add_argument("--litellm-venv", type=Path, default=LITELLM_VENV)
    parser.add_argument("--no-stream-rows", action="store_true", help="skip wrk's stream rows")
    parser.add_argument(
        "--ttft-only",
        action="store_true",
        help="only the time to first token (no wrk, no LiteLLM, no held streams): to iterate",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="only issue 16's three ratios, in this many alternating rounds",
    )
    parser.add_argument(
        "--dialects",
        action="store_true",
        help="only what /v1/messages and /v1/responses add over /v1/chat/completions "
        "(--rounds rounds, 5 by default)",
    )
    parser.add_argument(
        "--compare-python",
        help="with --rounds: another tree's venv python, whose gateway is measured alongside",
    )
    parser.add_argument(
        "--workers", default="1", help="with --rounds: worker counts to measure, e.g. 1,2"
    )
    parser.add_argument("--slow-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.01, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slow_upstream:
        asyncio.run(slow_upstream(args.delay))
        return 0
    if shutil.which("wrk") is None:
        log("wrk is not installed (Debian: apt-get install wrk)")
        return 1
    if args.dialects:
        args.rounds = args.rounds or 5
        return measure_dialects(args)
    if args.rounds:
        return measure_ratios(args)

    failures: list[str] = []
    notes: list[str] = []
    results: list[WrkResult] = []
    procs: list[subprocess.Popen[bytes]] = []
    figures: dict[str, Any] = {}
    figures["busy_cores_before"] = busy_cores()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        try:
            fast_proc, fast = start_upstream([str(HERE / "server.py")])
            procs.append(fast_proc)
            slow_proc, slow = start_upstream([str(Path(__file__)), "--slow-upstream"])
            procs.append(slow_proc)
            gateway_proc, gateway, startup = start_gateway(workdir, fast, slow)
            procs.append(gateway_proc)
            figures["gateway_startup_s"] = startup
            log(
                f"upstream :{fast}, slow upstream :{slow}, gateway {gateway} (pid "
                f"{gateway_proc.pid}, up in {startup:.2f} s)"
            )
            targets = {
                "upstream": f"http://127.0.0.1:{fast}",
                "providerhub": gateway,
            }
            litellm_proc = None
            if args.ttft_only:
                pass
            elif (args.litellm_venv / "bin" / "litellm").exists():
                log("starting the LiteLLM proxy")
                started = time.perf_counter()
                litellm_proc, litellm = start_litellm(workdir, args.litellm_venv, fast)
                procs.append(litellm_proc)
                figures["litellm_startup_s"] = time.perf_counter() - started
                figures["litellm_version"] = litellm_version(args.litellm_venv)
                targets["litellm"] = litellm
            else:
                notes.append(
                    f"LiteLLM proxy rows skipped: no {args.litellm_venv}/bin/litellm "
                    "(python3 -m venv /tmp/litellm-proxy-venv && /tmp/litellm-proxy-venv/bin/"
                    'pip install "litellm[proxy]==1.80.0")'
                )

            kinds = ["non-stream"] if args.no_stream_rows else ["non-stream", "stream"]
            if args.ttft_only:
                kinds = []
            scripts = {}
            for kind in kinds:
                scripts[kind] = workdir / f"{kind}.lua"
                scripts[kind].write_text(wrk_script(kind == "stream"))
            for name, base in targets.items():
                for kind in kinds:
                    run_wrk(scripts[kind], base + CHAT, 8, args.warmup, name, kind)
                    for connections in (1, 32):
                        log(f"wrk: {name}, {kind}, {connections} connection(s)")
                        r = run_wrk(
                            scripts[kind], base + CHAT, connections, args.duration, name, kind
                        )
                        results.append(r)
                        log(
                            f"  {r.rps:,.0f} req/s, p50 {r.p50_ms:.3f} ms, p99 "
                            f"{r.p99_ms:.3f} ms, {r.ok} checked, {r.bad} wrong, {r.errors}"
                        )
                        if r.failed:
                            failures.append(
                                f"{name} {kind} c={connections}: {r.bad} wrong answers, "
                                f"errors {r.errors}; first: {r.first_bad[:200]}"
                            )
                if name == "providerhub":
                    figures["gateway_rss_mb_after_wrk"] = tree_rss_mb(gateway_proc.pid)
                elif name == "litellm" and litellm_proc is not None:
                    figures["litellm_rss_mb_after_wrk"] = tree_rss_mb(litellm_proc.pid)
                    stop_litellm(litellm_proc)

            log(f"time to first token, {args.ttft_calls} calls each, interleaved")
            ttft_direct, ttft_gateway = measure_ttft(targets["upstream"], gateway, args.ttft_calls)
            figures["ttft_direct_ms"], figures["ttft_gateway_ms"] = ttft_direct, ttft_gateway
            log(f"  direct {ttft_direct:.3f} ms, gateway {ttft_gateway:.3f} ms")

            if args.ttft_only:
                raise _Done
            log(f"{args.streams} streams held open at once through the gateway")
            many = asyncio.run(many_streams(gateway, slow, args.streams, args.stream_pieces))
            figures["many_streams"] = asdict(many)
            figures["gateway_rss_mb_after_streams"] = tree_rss_mb(gateway_proc.pid)
            log(f"  {many}")
            if many.wrong:
                failures.append(f"{many.wrong} of the {many.count} streams arrived wrong")
        except _Done:
            pass
        except Exception as exc:  # a target that did not start, or a broken measurement
            failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            for proc in reversed(procs):
                stop(proc)
            for log_name in ("gateway.log", "litellm.log"):
                path = workdir / log_name
                if failures and path.exists():
                    log(
                        f"--- {log_name} (last lines)\n"
                        + "\n".join(path.read_text(errors="replace").splitlines()[-15:])
                    )

    report = render(results, figures, notes, failures, args)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gateway.md").write_text(report)
    doc = {
        "wrk": [asdict(r) | {"rps": r.rps} for r in results],
        **figures,
        "notes": notes,
        "failures": failures,
    }
    (args.out / "gateway.json").write_text(json.dumps(doc, indent=2))
    return 1 if failures else 0


class _Done(Exception):
    """The measurements asked for are in (``--ttft-only``)."""


def stop_litellm(proc: subprocess.Popen[bytes]) -> None:
    """The proxy is measured alone: it stops before the gateway's remaining figures."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def render(
    results: list[WrkResult],
    figures: dict[str, Any],
    notes: list[str],
    failures: list[str],
    args: argparse.Namespace,
) -> str:
    def find(target: str, kind: str, connections: int) -> WrkResult | None:
        for r in results:
            if (r.target, r.kind, r.connections) == (target, kind, connections):
                return r
        return None

    lines = [
        f"## The gateway against the upstream and the LiteLLM proxy "
        f"(wrk, {args.duration:g} s a row, {time.strftime('%Y-%m-%d')})",
        "",
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, one `providerhub serve` worker; "
        f"LiteLLM {figures.get('litellm_version', 'not run')}; streams of "
        f"{STREAM_PIECES} pieces.",
        "",
        "| target | answer | 1 conn req/s | p50 | p99 | 32 conns req/s | p50 | p99 | checked |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    labels = {
        "upstream": "upstream, direct",
        "providerhub": "providerhub serve",
        "litellm": "LiteLLM proxy",
    }
    for target in ("upstream", "providerhub", "litellm"):
        for kind in ("non-stream", "stream"):
            one, many = find(target, kind, 1), find(target, kind, 32)
            if one is None or many is None:
                continue
            checked = "all" if not (one.failed or many.failed) else "**wrong answers**"
            lines.append(
                f"| {labels[target]} | {kind} | {fmt_rate(one.rps)} | {one.p50_ms:.2f} ms | "
                f"{one.p99_ms:.2f} ms | {fmt_rate(many.rps)} | {many.p50_ms:.2f} ms | "
                f"{many.p99_ms:.2f} ms | {checked} ({one.ok + many.ok:,}) |"
            )
    lines += ["", "| figure | measured | target | met |", "| --- | --- | --- | --- |"]

    def row(figure: str, measured: str, target: str, met: bool | None) -> None:
        verdict = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {figure} | {measured} | {target} | {verdict} |")

    ph, ll = find("providerhub", "non-stream", 32), find("litellm", "non-stream", 32)
    if ph and ll and ll.rps:
        ratio = ph.rps / ll.rps
        row(
            "throughput at 32 connections, providerhub / LiteLLM",
            f"{ratio:.1f}x ({fmt_rate(ph.rps)} / {fmt_rate(ll.rps)} req/s)",
            f">= {TARGET_RATIO:g}x",
            ratio >= TARGET_RATIO,
        )
    else:
        row(
            "throughput at 32 connections, providerhub / LiteLLM",
            "LiteLLM not run",
            f">= {TARGET_RATIO:g}x",
            None,
        )
    up1, ph1 = find("upstream", "non-stream", 1), find("providerhub", "non-stream", 1)
    if up1 and ph1:
        added = ph1.p50_ms - up1.p50_ms
        row(
            "median latency added at 1 connection",
            f"{added * 1000:,.0f} µs ({ph1.p50_ms:.3f} - {up1.p50_ms:.3f} ms)",
            f"<= {TARGET_ADDED_P50_MS:g} ms",
            added <= TARGET_ADDED_P50_MS,
        )
    rss = [
        figures[k]
        for k in ("gateway_rss_mb_after_wrk", "gateway_rss_mb_after_streams")
        if k in figures
    ]
    if rss:
        row(
            "RSS after the load (after wrk; after the streams)",
            " ; ".join(f"{v:.1f} MB" for v in rss),
            f"<= {TARGET_RSS_MB:g} MB",
            max(rss) <= TARGET_RSS_MB,
        )
    many = figures.get("many_streams")
    if many:
        held = min(many["most_open_client"], many["most_open_upstream"])
        row(
            "streams held open at once, every piece delivered",
            f"{many['complete']:,}/{many['count']:,} whole, {held:,} open at once "
            f"({many['seconds']:.1f} s)",
            f"{many['count']:,}",
            many["complete"] == many["count"] and held == many["count"],
        )
    if "ttft_gateway_ms" in figures:
        added = figures["ttft_gateway_ms"] - figures["ttft_direct_ms"]
        row(
            "time to first token (median), gateway - direct",
            f"+{added * 1000:,.0f} µs ({figures['ttft_gateway_ms']:.3f} vs "
            f"{figures['ttft_direct_ms']:.3f} ms)",
            f"<= {TARGET_TTFT_MS:g} ms",
            added <= TARGET_TTFT_MS,
        )
    extras = []
    if "gateway_startup_s" in figures:
        extras.append(f"gateway up (first `/healthz`) in {figures['gateway_startup_s']:.2f} s")
    if "litellm_startup_s" in figures:
        extras.append(f"LiteLLM proxy up in {figures['litellm_startup_s']:.1f} s")
    if "litellm_rss_mb_after_wrk" in figures:
        extras.append(f"LiteLLM RSS after its load {figures['litellm_rss_mb_after_wrk']:.0f} MB")
    if extras:
        lines += ["", "; ".join(extras) + "."]
    if "busy_cores_before" in figures:
        lines += [
            "",
            f"Before the run, other processes kept {figures['busy_cores_before']:.2f} of the "
            f"{os.cpu_count()} cores busy.",
        ]
    for note in notes:
        lines += ["", f"Note: {note}"]
    for failure in failures:
        lines += ["", f"FAILED: {failure}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
