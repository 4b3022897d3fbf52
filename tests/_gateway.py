"""A real ``providerhub serve`` process for the server's tests: started on 127.0.0.1 with
a port of its own choosing (read from its log, so no two tests race for one), ready once
``/healthz`` answers, stopped with SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``PROVIDERHUB_*`` variable, plus ``extra``;
    and no models cache (``PROVIDERHUB_CACHE_DIR`` names no directory) unless ``extra``
    names one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVIDERHUB_")}
    env["PROVIDERHUB_CACHE_DIR"] = os.devnull
    env.update(extra)
    return env


class Gateway:
    """A server process; ``url`` is its base url (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        tmp: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        self.log_path = tmp / f"gateway-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        argv = command or [sys.executable, "-m", "providerhub", "serve", "--port", "0", *args]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.port = self._wait_for_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_until_healthy()
        self.ready_after = time.perf_counter() - self.started

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = RUNNING.search(self.log())
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log()}")
            time.sleep(0.01)
        raise AssertionError(f"the server did not start: {self.log()}")

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.request("GET", "/healthz")
            except OSError:
                time.sleep(0.01)
                continue
            if status == 200:
                return
        raise AssertionError(f"/healthz never answered: {self.log()}")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP exchange: the status, the headers (names lower-cased), the body."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            data = response.read()
            found = {k.lower(): v for k, v in response.getheaders()}
            return response.status, found, data
        finally:
            conn.close()

    def sockets(self) -> int:
        """Open sockets of the server process."""
        count = 0
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                if os.readlink(fd).startswith("socket:"):
                    count += 1
            except OSError:
                continue  # closed while we looked
        return count

    def threads(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/task").iterdir()))

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()


STREAM_TEXTS = ['say "hi"', "back\\slash\nline", "é ✓ 🎉", "\x00providerhub-text\x00", "</b>"]
"""Pieces of text whose JSON needs escapes, non-ASCII and a mark the gateway uses."""


def check_stream_events(body: bytes, model: str, texts: Sequence[str]) -> None:
    """Assert that ``body``, a streamed answer of ``texts``, is the chunks OpenAI streams,
    each event the chunk in compact JSON byte for byte, as encoding it whole gives."""
    events = body.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    docs = [json.loads(e[len(b"data: ") :]) for e in events[:-2]]
    first = docs[0]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": first["id"],
            "object": "chat.completion.chunk",
            "created": first["created"],
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    expected = [chunk({"role": "assistant", "content": texts[0]})]
    expected += [chunk({"content": text}) for text in texts[1:]]
    expected.append(chunk({}, "stop"))
    assert docs == expected
    compact = [
        b"data: " + json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        for doc in expected
    ]
    assert events[:-2] == compact


def poll(condition: object, timeout: float = 3.0) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():  # type: ignore[operator]
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
