"""The gateway's HTTP protocol gathers an answer's writes: what the app sends in one turn
of the event loop leaves in one ``send``. Seen over a ``SOCK_SEQPACKET`` socket pair,
which keeps each ``send`` a record of its own, with the protocol ``providerhub serve``
runs (``GatewayProtocol``) on one end and a plain socket reading records on the other."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httptools")

from uvicorn import Config
from uvicorn.server import ServerState

from ._internals import DISCONNECT_EXTENSION, GatewayProtocol

REQUEST = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


class _Records(socket.socket):
    """A ``SOCK_SEQPACKET`` socket that asyncio takes for the stream socket it wants: it
    reads and writes it as one, and each ``send`` stays a record."""

    @property
    def type(self) -> socket.SocketKind:
        return socket.SOCK_STREAM


async def _answers(app: Any, requests: bytes, records: int) -> list[bytes]:
    """Serve ``requests`` (sent at once) with ``app`` over the protocol; the first
    ``records`` records the client reads."""
    loop = asyncio.get_running_loop()
    server_end, client_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server_end = _Records(fileno=server_end.detach())
    config = Config(app, lifespan="off", log_level="warning")
    state = ServerState()
    await loop.connect_accepted_socket(
        lambda: GatewayProtocol(config=config, server_state=state, app_state={}, _loop=loop),
        sock=server_end,
    )
    client_end.setblocking(False)
    try:
        await loop.sock_sendall(client_end, requests)
        got = []
        for _ in range(records):
            got.append(await asyncio.wait_for(loop.sock_recv(client_end, 65536), 5))
        return got
    finally:
        client_end.close()
        for connection in list(state.connections):
            connection.shutdown()
        await asyncio.sleep(0.01)


def test_a_whole_answer_is_one_send_and_kept_alive_answers_stay_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    two = REQUEST + REQUEST.replace(b"/x", b"/second")
    first, second = asyncio.run(_answers(app, two, 2))
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\n/x")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"\r\n\r\n/second")


def test_a_stream_sends_what_came_together_at_once_and_the_rest_as_it_comes() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"a", b"b", b"c"):  # in one turn: one send with the head
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await asyncio.sleep(0.01)  # the next piece comes later: a send of its own
        await send({"type": "http.response.body", "body": b"d", "more_body": True})
        await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    first, second, last = asyncio.run(_answers(app, REQUEST, 3))
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"transfer-encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n")
    assert second == b"1\r\nd\r\n"
    assert last == b"0\r\n\r\n"


def test_the_protocol_tells_the_app_at_once_when_the_client_goes_away() -> None:
    told = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["extensions"][DISCONNECT_EXTENSION](told.set)
        await asyncio.sleep(10)  # an upstream call that never ends

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server_end, client_end = socket.socketpair()
        state = ServerState()
        config = Config(app, lifespan="off", log_level="warning")
        await loop.connect_accepted_socket(
            lambda: GatewayProtocol(config=config, server_state=state, app_state={}, _loop=loop),
            sock=server_end,
        )
        client_end.sendall(REQUEST)
        await asyncio.sleep(0.05)
        assert not told.is_set()
        client_end.close()
        await asyncio.wait_for(told.wait(), 5)
        for task in state.tasks:
            task.cancel()

    asyncio.run(main())
