"""The lean HTTP/1.1 client of plain-http upstreams (``providerhub._transports.lean``),
driven through ``achat_completion`` over a hub's kind of session against a raw socket
server of this file's own, which sends exactly the bytes each test needs: bodies cut
short, heads that never come or never end, compressed, chunked and closing answers,
redirects. Every failure is the typed error aiohttp's would be, and every way a call ends
leaves no socket behind, counted."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import providerhub

from ._internals import achat_completion, lean, transports_aio
from ._support import await_until, sockets

pytest.importorskip("aiohttp")
pytest.importorskip("httptools")

HI = [{"role": "user", "content": "Hi"}]
Answer = Callable[[socket.socket, int], bool]
"""Writes the answer to request ``index`` on the socket; False closes the connection."""


def document(text: str) -> bytes:
    return json.dumps(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    ).encode()


def head(status: str = "200 OK", length: int | None = None, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def hold(gone: threading.Event) -> Answer:
    """No answer: wait for the client to close the connection, and say so in ``gone``."""

    def answer(conn: socket.socket, index: int) -> bool:
        while conn.recv(65536):
            pass
        gone.set()
        return False

    return answer


def whole(text: str, *extra: str) -> Answer:
    def answer(conn: socket.socket, index: int) -> bool:
        body = document(text)
        conn.sendall(head("200 OK", len(body), *extra) + body)
        return True

    return answer


class RawServer:
    """One thread per connection; request ``i`` is answered by ``answers[i]`` (the last
    one for every later request). Counts connections and requests."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.requests = 0
        self.ended = 0  # connections the client closed between requests
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        self.ended += 1
                        return
                    buf += data
                top, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in top.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                index = self.requests
                self.requests += 1
                answer = self.answers[min(index, len(self.answers) - 1)]
                try:
                    if not answer(conn, index):
                        return
                except OSError:
                    return

    def close(self) -> None:
        self._stop = True
        self.listener.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(*answers: Answer) -> RawServer:
        made.append(RawServer(*answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


async def ask(session: Any, url: str, stream: bool = False, **options: Any) -> str | list[str]:
    pieces = achat_completion(
        "lean", url + "/v1/chat/completions", "m", HI, stream, session=session, **options
    )
    got = [p async for p in pieces if isinstance(p, str)]
    return got if stream else "".join(got)


def run(test: Callable[[Any], Any]) -> Any:
    """``test(session)`` on a fresh loop with a hub's kind of session (one that has a
    lean pool), closed afterwards; the sockets open before it are open after it."""

    async def main() -> Any:
        before = sockets()
        sessions = transports_aio.Sessions()
        session = await sessions.get()
        assert lean.pool_for(session) is not None
        try:
            return await test(session)
        finally:
            await sessions.aclose()
            assert await await_until(lambda: sockets() <= before), "a socket outlived the call"

    return asyncio.run(main())


def test_whole_answers_reuse_one_connection_from_the_lean_pool(raw: Any) -> None:
    chunked_body = document("chunked")
    chunked = head("200 OK", None, "Transfer-Encoding: chunked") + b"%x\r\n%s\r\n0\r\n\r\n" % (
        len(chunked_body),
        chunked_body,
    )
    zipped = gzip.compress(document("zipped"))
    server = raw(
        whole("one"),
        lambda c, i: c.sendall(chunked) or True,
        lambda c, i: (
            c.sendall(head("200 OK", len(zipped), "Content-Encoding: gzip") + zipped) or True
        ),
        whole("four"),
    )

    async def test(session: Any) -> list[Any]:
        got = [await ask(session, server.url) for _ in range(4)]
        pool = lean.pool_for(session)
        assert pool is not None and pool.idle() == 1
        return got

    assert run(test) == ["one", "chunked", "zipped", "four"]
    assert (server.requests, server.connections) == (4, 1)


def test_a_connection_the_server_closes_is_not_reused(raw: Any) -> None:
    server = raw(whole("a", "Connection: close"), whole("b"), lambda c, i: False, whole("d"))

    async def test(session: Any) -> list[Any]:
        got = [await ask(session, server.url), await ask(session, server.url)]
        await asyncio.sleep(0.05)
        with pytest.raises(providerhub.ProviderConnectionError):
            await ask(session, server.url)  # closed with no answer at all
        got.append(await ask(session, server.url))
        return got

    assert run(test) == ["a", "b", "d"]
    assert server.connections == 3


def test_a_body_cut_short_is_an_error_and_its_connection_is_not_reused(raw: Any) -> None:
    def cut(conn: socket.socket, index: int) -> bool:
        conn.sendall(head("200 OK", 500) + b'{"choices": [')
        return False

    server = raw(cut, whole("after"))

    async def test(session: Any) -> str:
        with pytest.raises(providerhub.StreamInterruptedError, match="mid-answer"):
            await ask(session, server.url)
        return str(await ask(session, server.url))

    assert run(test) == "after"
    assert server.connections == 2


def test_a_stream_reset_mid_answer_is_interrupted(raw: Any) -> None:
    def reset(conn: socket.socket, index: int) -> bool:
        event = b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n'
        conn.sendall(
            head("200 OK", None, "Transfer-Encoding: chunked").replace(
                b"application/json", b"text/event-stream"
            )
            + b"%x\r\n%s\r\n" % (len(event), event)
        )
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return False

    server = raw(reset)

    async def test(session: Any) -> None:
        got: list[str] = []
        with pytest.raises(providerhub.StreamInterruptedError):
            async for piece in achat_completion(
                "lean", server.url + "/v1/chat/completions", "m", HI, True, session=session
            ):
                got.append(str(piece))
        assert got == ["x"]

    run(test)


def test_headers_that_never_come_time_out_at_the_read_timeout(raw: Any) -> None:
    gone = threading.Event()
    server = raw(hold(gone))

    async def test(session: Any) -> float:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderTimeoutError, match="timed out waiting"):
            await ask(session, server.url, timeout=providerhub.Timeout(1, 0.3))
        return time.monotonic() - started

    assert run(test) < 1.5
    assert gone.is_set()


def test_a_trickling_answer_cannot_outlast_the_total(raw: Any) -> None:
    stop = threading.Event()

    def trickle(conn: socket.socket, index: int) -> bool:
        conn.sendall(head("200 OK", 1000))
        while not stop.wait(0.05):
            conn.sendall(b" ")
        return False

    server = raw(trickle)

    async def test(session: Any) -> float:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderTimeoutError, match="total timeout"):
            await ask(session, server.url, timeout=providerhub.Timeout(1, 0.3, 0.4))
        return time.monotonic() - started

    try:
        assert run(test) < 1.5
    finally:
        stop.set()


def test_a_head_past_the_limit_and_a_body_past_max_body_bytes_are_refused(raw: Any) -> None:
    def huge_head(conn: socket.socket, index: int) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * (lean.MAX_HEAD_BYTES + 10))
        return True

    big = document("x" * 5000)
    server = raw(huge_head, lambda c, i: c.sendall(head("200 OK", len(big)) + big) or True)

    async def test(session: Any) -> None:
        with pytest.raises(providerhub.ProviderConnectionError, match="head passes"):
            await ask(session, server.url)
        with pytest.raises(providerhub.ProviderResponseError, match="larger than 1000 bytes"):
            await ask(session, server.url, max_body_bytes=1000)

    run(test)


def test_a_redirect_to_another_origin_is_refused_and_not_followed(raw: Any) -> None:
    elsewhere = raw(whole("elsewhere"))
    moved = head("307 Temporary Redirect", 0, f"Location: {elsewhere.url}/v1/chat/completions")
    server = raw(lambda c, i: c.sendall(moved) or True)

    async def test(session: Any) -> None:
        with pytest.raises(providerhub.ProviderHTTPError, match="same scheme, host and port"):
            await ask(session, server.url)

    run(test)
    assert elsewhere.requests == 0


def test_cancelling_a_call_waiting_for_its_head_closes_the_connection(raw: Any) -> None:
    gone = threading.Event()
    server = raw(hold(gone), whole("next"))

    async def test(session: Any) -> str:
        task = asyncio.create_task(ask(session, server.url))
        assert await await_until(lambda: server.requests == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await await_until(gone.is_set), "the connection stayed open"
        return str(await ask(session, server.url))

    assert run(test) == "next"
    assert server.connections == 2


def test_a_connection_idle_past_the_keepalive_is_closed(
    raw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lean, "KEEPALIVE_SECONDS", 0.2)
    server = raw(whole("a"))

    async def test(session: Any) -> None:
        assert await ask(session, server.url) == "a"
        pool = lean.pool_for(session)
        assert pool is not None and pool.idle() == 1
        assert await await_until(lambda: pool.idle() == 0, 2), "the idle connection stayed"
        assert await await_until(lambda: server.ended == 1, 2)

    run(test)
