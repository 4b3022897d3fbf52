"""What a client can make ``providerhub serve`` hold, over raw sockets against a real server
process: the size and time of a request's head, the time of its body, the slot taken
only once the body is in, the write timeout of an answer nobody reads; and the HTTP
details (``Allow``, ``HEAD``, CORS, ``/v1/models/``, a long URL)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import STREAM_TEXTS, Gateway, check_stream_events, clean_environment, poll

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

MODEL = "gpt-3.5-turbo-16k"
MAX_CONCURRENCY = 50
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 3.0
WRITE_TIMEOUT = 1.0
ORIGIN = "https://app.example.com"
HEAD_LIMIT = 64 * 1024  # the default


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("limits")
    config = tmp / "config.toml"
    config.write_text(
        f'[server]\nwrite_timeout = {WRITE_TIMEOUT}\ncors_origins = ["{ORIGIN}"]\n',
        encoding="utf-8",
    )
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_SERVER_MAX_CONCURRENCY=str(MAX_CONCURRENCY),
        PROVIDERHUB_SERVER_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        PROVIDERHUB_SERVER_BODY_TIMEOUT=str(BODY_TIMEOUT),
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert "Traceback" not in gw.log(), gw.log()


def _connect(gateway: Gateway, **options: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for option, value in options.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, option), value)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", gateway.port))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it ends the connection."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece


def _answer(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _error(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = doc["error"]
    return error


def _rss(gateway: Gateway) -> int:
    """The server process's resident memory, in bytes."""
    for line in Path(f"/proc/{gateway.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _metric(gateway: Gateway, name: str) -> float:
    _, _, body = gateway.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _chat(**fields: Any) -> bytes:
    messages = [{"role": "user", "content": "Hi"}]
    return json.dumps({"model": MODEL, "messages": messages, **fields}).encode()


# -- the head --------------------------------------------------------------------------------


def _send_big_header(gateway: Gateway, total: int, pause: float) -> tuple[int, bytes]:
    """Send a request whose one header would be ``total`` bytes, 64 KiB at a time, until the
    server answers; the bytes sent by then and the answer."""
    sock = _connect(gateway)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        piece = b"a" * 65536
        while sent < total and not select.select([sock], [], [], pause)[0]:
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(piece)
        return sent, _read_all(sock)
    finally:
        sock.close()


def test_a_head_over_the_limit_gets_431_before_it_is_all_sent_and_memory_stays_flat(
    gateway: Gateway,
) -> None:
    sockets = gateway.sockets()
    sent, data = _send_big_header(gateway, 8 << 20, pause=0.05)
    status, headers, body = _answer(data)
    assert status == 431 and headers["connection"] == "close"
    assert _error(body)["code"] == "request_header_fields_too_large"
    assert str(HEAD_LIMIT) in _error(body)["message"]
    assert sent < 1 << 20  # answered while the client was still sending

    # Four clients pushing 16 MiB heads at once, as fast as they can: the server drops
    # what comes past the limit, so its memory does not grow with what they send
    # (without the limit it peaked 63 MB higher, and /healthz took a second).
    before = _rss(gateway)
    peak = before
    results: list[tuple[int, bytes]] = []
    clients = [
        threading.Thread(target=lambda: results.append(_send_big_header(gateway, 16 << 20, 0)))
        for _ in range(4)
    ]
    for client in clients:
        client.start()
    assert gateway.request("GET", "/healthz")[0] == 200  # served meanwhile
    while any(client.is_alive() for client in clients):
        peak = max(peak, _rss(gateway))
        time.sleep(0.01)
    assert [_answer(data)[0] for _, data in results] == [431] * 4
    assert peak - before < 8 << 20, f"the server grew by {(peak - before) / 2**20:.1f} MiB"
    assert poll(lambda: gateway.sockets() <= sockets, timeout=5)
    assert (
        _metric(gateway, 'providerhub_server_connections_closed_total{reason="headers_too_large"}')
        >= 5
    )


def test_a_url_over_the_limit_gets_a_json_414_and_a_request_not_http_a_json_400(
    gateway: Gateway,
) -> None:
    sock = _connect(gateway)
    try:
        sock.sendall(b"GET /v1/models?q=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = _answer(_read_all(sock))
    finally:
        sock.close()
    assert status == 414 and headers["content-type"] == "application/json"
    assert _error(body)["code"] == "uri_too_long"
    sock = _connect(gateway)  # not HTTP at all: uvicorn's plain-text 400 is JSON too
    try:
        sock.sendall(b"HELLO there\r\n\r\n")
        status, headers, body = _answer(_read_all(sock))
    finally:
        sock.close()
    assert status == 400 and headers["content-type"] == "application/json"
    assert _error(body)["code"] == "invalid_request"
    # A head just under the limit is served.
    status, _, _ = gateway.request("GET", "/healthz", headers={"X-Pad": "a" * (HEAD_LIMIT - 200)})
    assert status == 200


def test_slow_heads_get_408_and_their_connections_close(gateway: Gateway) -> None:
    sockets = gateway.sockets()
    threads = gateway.threads()
    partial = [_connect(gateway) for _ in range(40)]
    silent = [_connect(gateway) for _ in range(10)]
    for sock in partial:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    assert poll(lambda: gateway.sockets() >= 50, timeout=2)  # all accepted
    assert gateway.request("GET", "/healthz")[0] == 200  # others are served meanwhile
    started = time.monotonic()
    for sock in partial:
        status, headers, body = _answer(_read_all(sock))
        assert status == 408 and headers["connection"] == "close"
        assert _error(body)["code"] == "request_timeout" and "headers" in _error(body)["message"]
    for sock in silent:
        assert _read_all(sock) == b""  # nothing asked, nothing answered: closed
    assert time.monotonic() - started < HEADER_TIMEOUT + 2
    for sock in partial + silent:
        sock.close()
    assert poll(lambda: gateway.sockets() <= sockets, timeout=5)
    assert gateway.threads() <= threads
    assert (
        _metric(gateway, 'providerhub_server_connections_closed_total{reason="header_timeout"}')
        >= 50
    )


def test_the_next_request_on_a_kept_alive_connection_has_its_own_header_timeout(
    gateway: Gateway,
) -> None:
    sock = _connect(gateway)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(HEADER_TIMEOUT * 0.6)  # idle, within uvicorn's keep-alive
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next head, cut short
        began = time.monotonic()
        status, _, body = _answer(_read_all(sock))
        waited = time.monotonic() - began
    finally:
        sock.close()
    assert status == 408 and "headers" in _error(body)["message"]
    # Counted from the next request's first byte, not from the connection or the first.
    assert HEADER_TIMEOUT * 0.9 <= waited < HEADER_TIMEOUT + 1


# -- the body, and the slot ---------------------------------------------------------------------


def test_slow_bodies_hold_no_slot_and_get_408(gateway: Gateway, upstream: OpenAIServer) -> None:
    assert gateway.request("POST", "/v1/chat/completions", _chat())[0] == 200
    sockets = gateway.sockets()  # the upstream's kept-alive connection among them
    slow = []
    for _ in range(MAX_CONCURRENCY + 10):
        sock = _connect(gateway)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        slow.append(sock)
    assert poll(lambda: gateway.sockets() >= len(slow), timeout=2)  # all accepted
    started = time.monotonic()
    for _ in range(5):  # every slot is free for requests whose body is in
        status, _, body = gateway.request("POST", "/v1/chat/completions", _chat())
        assert status == 200, body
    assert time.monotonic() - started < BODY_TIMEOUT  # while the slow bodies still came
    assert _metric(gateway, "providerhub_server_in_flight_requests") == 0

    for sock in slow:
        status, headers, body = _answer(_read_all(sock))
        assert status == 408 and headers["connection"] == "close"
        assert "body" in _error(body)["message"]
        sock.close()
    assert poll(lambda: gateway.sockets() <= sockets, timeout=5)


# -- the write timeout --------------------------------------------------------------------------


def test_a_stream_nobody_reads_is_closed_after_the_write_timeout_and_frees_its_slot(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    sockets = gateway.sockets()
    serving = threading.active_count()
    closed = 'providerhub_server_connections_closed_total{reason="write_timeout"}'
    before = _metric(gateway, closed)
    # 12 MiB in 16 KiB pieces, more than the socket buffers between the two hold.
    upstream.script(Reply.text(*["x" * 16384] * 800, chunk_delay=0.005))
    sock = _connect(gateway, SO_RCVBUF=4096)
    try:
        body = _chat(stream=True)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")  # and then reads no more
        assert poll(lambda: _metric(gateway, "providerhub_server_in_flight_requests") == 1, 2)
        stalled = time.monotonic()
        assert poll(lambda: _metric(gateway, closed) == before + 1, timeout=8)
        assert time.monotonic() - stalled >= WRITE_TIMEOUT * 0.9
        assert poll(lambda: _metric(gateway, "providerhub_server_in_flight_requests") == 0, 2)
        # The upstream stream was aborted: its handler thread ended long before its 4 s.
        assert poll(lambda: threading.active_count() <= serving, timeout=2)
        assert poll(lambda: gateway.sockets() <= sockets, timeout=2)
    finally:
        sock.close()
    _, _, metrics = gateway.request("GET", "/metrics")
    assert 'route="/v1/chat/completions",status="499"' in metrics.decode()


# -- HTTP details ------------------------------------------------------------------------------


def test_each_event_of_a_stream_is_its_chunk_in_compact_json(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    # This gateway knows no upstream secret: nothing to scrub from the events.
    upstream.script(Reply.text(*STREAM_TEXTS))
    status, _, body = gateway.request("POST", "/v1/chat/completions", _chat(stream=True))
    assert status == 200
    check_stream_events(body, MODEL, STREAM_TEXTS)


def test_405_names_the_allowed_methods(gateway: Gateway) -> None:
    status, headers, body = gateway.request("GET", "/v1/chat/completions")
    assert status == 405 and headers["allow"] == "POST, OPTIONS"
    assert _error(body)["code"] == "method_not_allowed"
    status, headers, _ = gateway.request("DELETE", "/v1/models")
    assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS"
    status, headers, _ = gateway.request("POST", "/healthz")
    assert status == 405 and headers["allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/v1/models", f"/v1/models/{MODEL}"]
)
def test_head_answers_a_get_route_with_its_headers_and_no_body(gateway: Gateway, path: str) -> None:
    get_status, get_headers, get_body = gateway.request("GET", path)
    sock = _connect(gateway)
    try:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = _answer(_read_all(sock))
    finally:
        sock.close()
    assert status == get_status == 200
    assert body == b""
    assert headers["content-type"] == get_headers["content-type"]
    if path != "/metrics":  # the only one whose body changes between two requests
        assert int(headers["content-length"]) == len(get_body)


def test_models_with_an_empty_id_is_404(gateway: Gateway) -> None:
    status, _, body = gateway.request("GET", "/v1/models/")
    assert status == 404 and _error(body)["code"] == "not_found"


def test_cors_answers_allowed_origins_only(gateway: Gateway) -> None:
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    status, headers, body = gateway.request("OPTIONS", "/v1/chat/completions", headers=preflight)
    assert status == 204 and body == b""
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-methods"] == "POST, OPTIONS"
    assert headers["access-control-allow-headers"] == "authorization, content-type, x-stainless-os"
    assert headers["vary"].lower() == "origin"

    denied = {**preflight, "Origin": "https://evil.example.com"}
    status, headers, body = gateway.request("OPTIONS", "/v1/chat/completions", headers=denied)
    assert status == 403 and "access-control-allow-origin" not in headers
    assert _error(body)["code"] == "origin_not_allowed"

    status, headers, _ = gateway.request("GET", "/v1/models", headers={"Origin": ORIGIN})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in headers["access-control-expose-headers"]
    status, headers, _ = gateway.request(
        "GET", "/v1/models", headers={"Origin": "https://evil.example.com"}
    )
    assert status == 200 and "access-control-allow-origin" not in headers
