"""providerhub serve starting and stopping: under a second to start, loopback only
without keys, SIGTERM draining the streams under way, and create_app() under uvicorn."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import Gateway, clean_environment, poll
from ._internals import cli

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

MODEL = "gpt-3.5-turbo-16k"


def _env(upstream: OpenAIServer, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.touch()
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config), PROVIDERHUB_GRAVITYENGINE_URL=upstream.url
    )


def _body(stream: bool = True) -> bytes:
    messages = [{"role": "user", "content": "Hi"}]
    return json.dumps({"model": MODEL, "messages": messages, "stream": stream}).encode()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_it_starts_in_under_a_second_and_sigterm_drains_streams(
    server: OpenAIServer, tmp_path: Path
) -> None:
    gateway = Gateway(tmp_path, _env(server, tmp_path), ["--drain-timeout", "10"])
    try:
        # Under a second of the process's own time (what starting costs, however busy the
        # machine), and a few seconds of the wall clock's at most (no waiting on anything).
        assert _cpu_seconds(gateway.pid) < 1.0
        assert gateway.ready_after < 5.0, gateway.ready_after
        server.script(Reply.text(*[f"p{i} " for i in range(10)], chunk_delay=0.05))
        conn = gateway.connection()
        conn.request("POST", "/v1/chat/completions", _body())
        response = conn.getresponse()
        assert response.readline().startswith(b"data: ")

        gateway.process.send_signal(signal.SIGTERM)
        assert poll(lambda: _refused(gateway.port), timeout=2)  # no new connections
        rest = response.read().decode()
        assert rest.endswith("data: [DONE]\n\n")
        assert all(f"p{i} " in rest for i in range(1, 10))  # every piece, to the end
        conn.close()
        assert gateway.process.wait(5) == 0
    finally:
        gateway.stop()


def test_past_the_drain_timeout_streams_end_with_an_error_event_and_it_exits_0(
    server: OpenAIServer, tmp_path: Path
) -> None:
    release = threading.Event()
    gateway = Gateway(tmp_path, _env(server, tmp_path), ["--drain-timeout", "0.3"])
    try:
        server.script(
            Reply.text("a", "b", wait=release, after=1),
            Reply(fault="stall", after=None, delay=10),
        )
        conn = gateway.connection()
        conn.request("POST", "/v1/chat/completions", _body())
        response = conn.getresponse()
        assert response.readline().startswith(b"data: ")
        waiting = gateway.connection()  # a document not begun
        waiting.request("POST", "/v1/chat/completions", _body(stream=False))
        assert poll(lambda: len(server.requests) == 2)
        stopped = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        assert gateway.process.wait(5) == 0
        assert time.monotonic() - stopped < 2.0
        # Ended, as a failure mid-stream is: an error event and no [DONE].
        events = response.read().decode().strip().split("\n\n")
        assert events[-1].startswith("data: ") and "[DONE]" not in events[-1]
        assert json.loads(events[-1][len("data: ") :])["error"]["code"] == "server_shutting_down"
        conn.close()
        answer = waiting.getresponse()
        assert answer.status == 503 and answer.getheader("Retry-After") == "1"
        assert json.loads(answer.read())["error"]["code"] == "server_shutting_down"
        waiting.close()
        log = gateway.log()
        assert "Traceback" not in log and "CancelledError" not in log, log
    finally:
        release.set()
        gateway.stop()


def test_the_first_chat_completion_does_not_hold_the_other_requests(
    server: OpenAIServer, tmp_path: Path
) -> None:
    gateway = Gateway(tmp_path, _env(server, tmp_path))
    try:
        health: list[float] = []
        done = threading.Event()

        def ask() -> None:
            conn = gateway.connection()  # kept alive: the time is the server's, not a connect
            while not done.is_set():
                started = time.perf_counter()
                conn.request("GET", "/healthz")
                assert conn.getresponse().read() == b'{"status":"ok"}'
                health.append(time.perf_counter() - started)
            conn.close()

        asker = threading.Thread(target=ask)
        asker.start()
        assert poll(lambda: len(health) >= 20)
        # The worker's first call: its connection pools (requests' and aiohttp's, the
        # certificates loaded) were made at startup, not now on the event loop, where
        # they held every other request about 0.2 s.
        status, _, _ = gateway.request("POST", "/v1/chat/completions", _body(stream=False))
        asked = len(health)
        assert poll(lambda: len(health) >= asked + 20)
        done.set()
        asker.join(5)
        assert status == 200
        # Well under those 0.2 s, with room for a busy machine's scheduling.
        assert max(health) < 0.15, sorted(health)[-5:]
    finally:
        assert gateway.stop() == 0


def test_two_workers_serve_and_stop_with_0(server: OpenAIServer, tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, _env(server, tmp_path), ["--workers", "2"])
    try:
        for _ in range(4):
            status, _, _ = gateway.request("POST", "/v1/chat/completions", _body(stream=False))
            assert status == 200
    finally:
        assert gateway.stop() == 0


def test_a_reachable_address_without_keys_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in error
    assert "PROVIDERHUB_SERVER_API_KEYS" in error and "--allow-unauthenticated" in error


CUSTOM_APP = """
import uvicorn, providerhub
from providerhub.server import create_app

# A breaker that opens at the first failure and closes after 0.2 s: the cooling case.
hub = providerhub.Hub(failure_threshold=1, cooldown=0.2, retries=0)
uvicorn.run(create_app(hub), host="127.0.0.1", port=0, log_level="info")
"""


def test_create_app_runs_under_uvicorn_and_503_while_a_probe_is_under_way(
    server: OpenAIServer, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(CUSTOM_APP), encoding="utf-8")
    gateway = Gateway(tmp_path, _env(server, tmp_path), command=[sys.executable, str(script)])
    release = threading.Event()
    try:
        server.script(Reply.error(500, "broken"))
        status, _, _ = gateway.request("POST", "/v1/chat/completions", _body(stream=False))
        assert status == 502  # and the breaker opens
        assert gateway.request("GET", "/readyz")[0] == 503  # nothing available now
        assert poll(lambda: gateway.request("GET", "/readyz")[0] == 200, timeout=2)

        server.script(Reply.text("a", "b", wait=release, after=1))  # the probe, held
        conn = gateway.connection()
        conn.request("POST", "/v1/chat/completions", _body())
        probe = conn.getresponse()
        assert probe.readline().startswith(b"data: ")
        status, headers, body = gateway.request("POST", "/v1/chat/completions", _body(stream=False))
        assert status == 503 and headers["retry-after"] == "1"
        assert "cooling down" in json.loads(body)["error"]["message"]
        release.set()
        assert probe.read().endswith(b"data: [DONE]\n\n")
        conn.close()
    finally:
        release.set()
        gateway.stop()
