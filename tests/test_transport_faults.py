"""What a server or a setting can do wrong on the wire, against real loopback servers:
failures no retry can fix, deadlines a slow server cannot stretch, redirects, credentials
echoed back, and answers of several choices.

Servers here are OpenAIServer where it can script the answer, and :class:`RawServer`, a
few lines over a listening socket, where the answer must be wrong in ways an HTTP server
library will not write: a trickle, a credential as a chunk-size line, TLS refused.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import requests

import providerhub
from providerhub import _transport as transport
from providerhub._openai_compat import chat_completion
from providerhub.testing import OpenAIServer, RecordedRequest, Reply

HI = [{"role": "user", "content": "Hi"}]
MODEL = "m"
PATH = "/v1/chat/completions"
SECRET = "sk-live-" + "Q7wX2mZ9pL4vN8kR3tY6uB1cD5fG0hJ" + "aS2dF4gH6j"  # 50 characters
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy")
PROXY_VARIABLES += ("ALL_PROXY", "no_proxy", "NO_PROXY")


def assert_clean(text: str, secret: str = SECRET) -> None:
    """No 8 characters in a row of ``secret`` in ``text``; says so without showing it."""
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}
    assert not any(piece in text for piece in pieces), "a piece of the credential leaked"


def assert_error_clean(err: BaseException, secret: str = SECRET) -> None:
    for text in (str(err), repr(err), repr(vars(err))):
        assert_clean(text, secret)


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # the directory's own descriptor, closed by now
    return count


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every thread and socket a test opens is gone after it (checked after the test's
    servers and sessions are closed, as this fixture is set up before them).

    urllib3 closes a pool's connections when the pool is collected, and an error a test
    caught holds the response, and so the pool, in its traceback's frames: hence the
    collection before each look."""
    threads, sockets = threading.active_count(), open_sockets()
    yield
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        gc.collect()
        if threading.active_count() <= threads and open_sockets() <= sockets:
            return
        time.sleep(0.02)
    assert threading.active_count() <= threads, threading.enumerate()
    assert open_sockets() <= sockets


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session of the test's own, closed after it: the shared default one would keep
    its pooled connections open past the socket count."""
    session = transport.new_session()
    yield session
    session.close()


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


Answer = Callable[[socket.socket, bytes, threading.Event], None]


class RawServer:
    """Accepts connections on 127.0.0.1, one at a time; for each, reads the request (head
    and ``Content-Length`` body) and hands the socket to ``answer``, then closes it."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    request = self._read_request(conn)
                    self.requests.append(request)
                    self.answer(conn, request, self.stopping)
                except OSError:
                    continue  # the client hung up, as deadline tests make it do

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece or piece[:1] == b"\x16":  # the end, or a TLS handshake: no HTTP
                return data + piece
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            piece = conn.recv(65536)
            if not piece:
                break
            body += piece
        return head + b"\r\n\r\n" + body


class Endpoint:
    """A provider calling an OpenAI-compatible url through the shared helper."""

    honors_timeout = True
    supports_stream = True
    needs_auth = False

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.model = [MODEL]
        self.headers = headers

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        yield from chat_completion(
            "endpoint", self.url + PATH, model, messages, stream, headers=self.headers, **kwargs
        )


def hub_for(url: str, **options: Any) -> providerhub.Hub:
    hub = providerhub.Hub(load_entrypoints=False, **options)
    hub.register(Endpoint(url), name="endpoint")
    return hub


def attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "providerhub.router"]


# Failures no retry can fix ---------------------------------------------------------------


def answer_400(conn: socket.socket, request: bytes, stopping: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_https_to_a_plain_http_server_fails_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="providerhub.router")
    with RawServer(answer_400) as raw, hub_for(f"https://127.0.0.1:{raw.port}") as hub:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderConfigurationError) as info:
            hub.create(MODEL, HI)  # the hub's default retries: 2
        took = time.monotonic() - started
        assert raw.connections == 1
    err = info.value
    assert str(err).startswith(f"endpoint: TLS handshake with 127.0.0.1:{raw.port} failed: ")
    assert "WRONG_VERSION_NUMBER" in str(err) or "wrong version number" in str(err)
    assert isinstance(err, providerhub.ProviderConnectionError)
    assert not err.transient
    assert took < 1
    assert len(attempts(caplog)) == 1
    assert "(retrying)" not in attempts(caplog)[0]


@pytest.mark.parametrize(
    ("base", "says"),
    [
        ("htp://127.0.0.1:1", "No connection adapters"),
        ("127.0.0.1:1", "cannot be sent"),
        ("http://[bad", "not a valid host"),
        ("http://exa mple.invalid", "invalid character"),
        ("http://" + "a" * 70 + ".invalid", "label empty or too long"),
    ],
)
def test_an_invalid_url_fails_at_once_saying_why(
    base: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providerhub.router")
    with hub_for(base) as hub, pytest.raises(providerhub.ProviderConfigurationError) as info:
        hub.create(MODEL, HI)
    assert says in str(info.value)
    assert "PROVIDERHUB_ENDPOINT_URL" in str(info.value)
    assert attempts(caplog) and len(attempts(caplog)) == 1


@pytest.mark.parametrize(
    "proxy",
    [
        f"http://user:{SECRET}@127.0.0.1:1",  # nothing listens there
        f"ftp://user:{SECRET}@127.0.0.1:1",  # a scheme no proxy speaks
        "socks5://127.0.0.1:1",  # needs requests[socks], which is not installed
    ],
)
def test_a_bad_proxy_setting_fails_at_once_without_its_credentials(
    proxy: str,
    no_proxy_settings: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="providerhub.router")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    hub = hub_for("http://provider.invalid")
    with hub, pytest.raises(providerhub.ProviderConfigurationError) as info:
        hub.create(MODEL, HI)
    assert "proxy" in str(info.value)
    assert "HTTPS_PROXY" in str(info.value)
    assert_error_clean(info.value)
    assert len(attempts(caplog)) == 1


def test_connection_failures_are_still_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="providerhub.router")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        hub = hub_for(f"http://127.0.0.1:{port}", retries=1)
        with hub, pytest.raises(providerhub.ProviderConnectionError) as info:
            hub.create(MODEL, HI)
    assert type(info.value) is providerhub.ProviderConnectionError
    assert info.value.transient
    assert len(attempts(caplog)) == 2


def test_socket_errors_a_plugin_lets_through_are_typed_too(hub: providerhub.Hub) -> None:
    import urllib.error

    class Seed:
        url = "http://seed.invalid"
        model = [MODEL]
        supports_stream = False
        needs_auth = False

        def _create_completion(self, model: str, messages: Any, stream: bool) -> Any:
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
            yield ""

    hub.register(Seed(), name="seed")
    with pytest.raises(providerhub.ProviderConnectionError, match="connection refused"):
        hub.create(MODEL, HI)


# Deadlines a slow server cannot stretch ----------------------------------------------------


def test_an_absurd_timeout_is_refused_before_anything_is_sent(server: OpenAIServer) -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Endpoint(server.url), name="endpoint")
        with pytest.raises(providerhub.InvalidRequestError, match="at most"):
            hub.create(MODEL, HI, timeout=1e300)
        with pytest.raises(providerhub.InvalidRequestError, match="timeout read"):
            hub.create(MODEL, HI, timeout=providerhub.Timeout(10, 1e12))
        with pytest.raises(providerhub.InvalidRequestError):
            chat_completion("p", server.url + PATH, MODEL, HI, False, timeout=1e300)
        assert server.requests == []
        longest = providerhub.Timeout(threading.TIMEOUT_MAX, threading.TIMEOUT_MAX)
        server.script(Reply.text("fine"))
        assert hub.create(MODEL, HI, timeout=longest) == "fine"


# Credentials echoed back ---------------------------------------------------------------


def echo_key_around_the_cut(request: RecordedRequest) -> str:
    key = request.headers["Authorization"].removeprefix("Bearer ")
    return "x" * 190 + " " + key + " and more"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=400, body=echo_key_around_the_cut, content_type="text/plain"),
        Reply(
            status=500,
            body=lambda r: json.dumps({"error": {"message": echo_key_around_the_cut(r)}}),
            content_type="application/json",
        ),
        Reply(status=200, body=echo_key_around_the_cut, content_type="text/plain"),
        Reply(status=200, body=lambda r: "<html>" + echo_key_around_the_cut(r)[6:]),
    ],
)
def test_a_key_crossing_the_excerpt_cut_is_hidden_whole(
    reply: Reply, server: OpenAIServer, http: requests.Session
) -> None:
    server.script(reply)
    with pytest.raises(providerhub.ProviderError) as info:
        list(chat_completion("p", server.url + PATH, MODEL, HI, False, auth=SECRET, session=http))
    assert info.value.body is not None and "xxxx" in info.value.body
    assert_error_clean(info.value)


def test_redact_hides_user_info_of_any_url() -> None:
    text = transport.redact(f"see https://bob:{SECRET}@proxy.example:3128/ and ftp://x@y")
    assert text == "see https://***@proxy.example:3128/ and ftp://***@y"
