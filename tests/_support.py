"""Test helpers shared by several test modules."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

SEED_MODULE = '''
"""A provider written to the seed contract alone: it never imports providerhub."""
import json
import urllib.request

url = "http://127.0.0.1:9"
model = {models!r}
supports_stream = {stream!r}
needs_auth = {needs_auth!r}
received = []


def _create_completion(model: str, messages: list, stream: bool, **kwargs):
    received.append(dict(model=model, messages=messages, stream=stream, kwargs=kwargs))
    body = json.dumps(dict(model=model, messages=messages)).encode()
    headers = {{"Content-Type": "application/json"}}
    if kwargs.get("auth"):
        headers["Authorization"] = "Bearer " + kwargs["auth"]
    request = urllib.request.Request(url + "/v1/chat/completions", body, headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        yield json.loads(response.read())["choices"][0]["message"]["content"]
'''


def seed_module(models: list[str], *, stream: bool = False, needs_auth: bool = False) -> str:
    """Source of a seed-contract provider module (no providerhub import)."""
    return SEED_MODULE.format(models=models, stream=stream, needs_auth=needs_auth)


class FakeProvider:
    """An in-memory provider following the contract, scripted per test."""

    def __init__(
        self,
        name: str,
        models: list[str],
        pieces: list[Any] | None = None,
        *,
        fail: BaseException | None = None,
        fail_after: int | None = None,
        stream: bool = True,
        needs_auth: bool = False,
        working: bool = True,
    ) -> None:
        self.name = name
        self.url = f"http://{name}.invalid"
        self.model = models
        self.supports_stream = stream
        self.needs_auth = needs_auth
        self.working = working
        self.pieces = pieces if pieces is not None else [f"from {name}"]
        self.fail = fail
        self.fail_after = fail_after
        self.calls: list[dict[str, Any]] = []

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        self.calls.append({"model": model, "messages": messages, "stream": stream, **kwargs})
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        for index, piece in enumerate(self.pieces):
            if self.fail is not None and self.fail_after == index:
                raise self.fail
            yield piece
        if self.fail is not None and self.fail_after is not None:
            raise self.fail


class Endpoint:
    """An OpenAI-compatible provider built on the plugin API's ``chat_completion``, named
    at will, pointed at one local server (anything with a ``url``)."""

    honors_timeout = True

    def __init__(self, name: str, server: Any, models: list[str] | None = None) -> None:
        self.name = name
        self.url = server.url
        self.model = models or ["gpt-3.5-turbo-16k"]
        self.supports_stream = True
        self.needs_auth = False

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        from ._internals import chat_completion

        yield from chat_completion(
            self.name, self.url + "/v1/chat/completions", model, messages, stream, **kwargs
        )


def sockets() -> int:
    """Open sockets of this process (client and in-process server sides alike)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed between the listing and the look: not open any more
    return count


def threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` every 5 ms for up to ``seconds``; its last answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


async def await_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """:func:`wait_until` for a coroutine: the event loop keeps running while it polls."""
    import asyncio

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.005)
    return condition()


class ReplayServer:
    """A real HTTP server on 127.0.0.1 that answers every POST with ``body``, an event
    stream set by the test: for checking what an SDK makes of bytes a dialect wrote."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self
        self.body = b""

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args: Any) -> None:
                pass  # the test's output stays its own

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
