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
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import requests

import providerhub
from providerhub.testing import OpenAIServer, RecordedRequest, Reply
from providerhub.types import Usage

from ._internals import chat_completion, redact, transport

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
def other() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


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


def header(request: bytes, name: str) -> str:
    for line in request.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def trickle(head: bytes, body: bytes, every: float) -> Answer:
    """An answer whose head arrives at once and whose body comes a byte at a time."""

    def answer(conn: socket.socket, request: bytes, stopping: threading.Event) -> None:
        conn.sendall(head)
        for byte in body:
            if stopping.wait(every):
                return
            conn.sendall(bytes([byte]))

    return answer


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


def test_a_trickling_body_cannot_outlast_the_timeout(http: requests.Session) -> None:
    doc = json.dumps({"choices": [{"index": 0, "message": {"content": "late"}}]}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(doc)
    with RawServer(trickle(head, doc, every=0.1)) as raw:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderTimeoutError) as info:
            list(chat_completion("slow", raw.url + PATH, MODEL, HI, False, timeout=1, session=http))
        took = time.monotonic() - started
    # Not before the deadline, and long before the body's last byte (at 6 s and more).
    assert took >= 0.9 and took < len(doc) * 0.1 / 2
    assert str(info.value).startswith("slow: the answer from")
    assert "total timeout" in str(info.value)


def test_a_trickling_error_body_cannot_outlast_the_timeout(http: requests.Session) -> None:
    body = json.dumps({"error": {"message": "x" * 100}}).encode()
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    with RawServer(trickle(head, body, every=0.1)) as raw:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderHTTPError) as info:
            list(chat_completion("slow", raw.url + PATH, MODEL, HI, True, timeout=1, session=http))
        took = time.monotonic() - started
    # The status is the error: the body that did not come in time is left out of it.
    assert info.value.status_code == 503
    assert took >= 0.9 and took < len(body) * 0.1 / 2  # the body would take 12 s


def sse_every(seconds: float, texts: list[str]) -> Answer:
    def answer(conn: socket.socket, request: bytes, stopping: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for index, text in enumerate(texts):
            if index and stopping.wait(seconds):
                return
            doc = {"choices": [{"index": 0, "delta": {"content": text}}]}
            event = f"data: {json.dumps(doc)}\n\n".encode()
            conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))

    return answer


def test_a_late_event_is_timed_while_it_is_awaited(http: requests.Session) -> None:
    got: list[str] = []
    with RawServer(sse_every(2.0, ["a", "b", "c", "d"])) as raw:
        started = time.monotonic()
        with pytest.raises(providerhub.ProviderTimeoutError) as info:
            for piece in chat_completion(
                "slow",
                raw.url + PATH,
                MODEL,
                HI,
                True,
                timeout=providerhub.Timeout(10, 60, total=3),
                session=http,
            ):
                got.append(piece)
        took = time.monotonic() - started
    assert got == ["a", "b"]
    # The third event was due at 4 s: the deadline (3 s), not its arrival, ends the stream;
    # a second of room each way, so that a slow machine cannot tell them apart wrongly.
    assert took >= 2.9 and took < 3.9
    assert "total timeout" in str(info.value)


def test_a_connection_used_under_a_deadline_is_reused_with_its_own_timeouts(
    server: OpenAIServer, http: requests.Session
) -> None:
    endpoint = server.url + PATH
    server.script(Reply.text("quick"), Reply(fault="stall", after=None, delay=0.6))
    first = providerhub.Timeout(5, 5, total=0.5)
    assert list(chat_completion("p", endpoint, MODEL, HI, True, timeout=first, session=http)) == [
        "quick"
    ]
    # The first stream left its socket's timeout shrunk to what remained of 0.5 s; the
    # second request on the same connection waits its own read timeout, not that.
    text = list(chat_completion("p", endpoint, MODEL, HI, False, timeout=5, session=http))
    assert text == ["This is providerhub's local stand-in server answering as m. You said: Hi"]
    assert len({r.client for r in server.requests}) == 1


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


# Redirects -----------------------------------------------------------------------------


def redirect(status: int, location: str) -> Reply:
    return Reply(status=status, headers={"Location": location}, body=b"", content_type="text/plain")


def test_headers_never_follow_a_redirect_to_another_origin(
    server: OpenAIServer, other: OpenAIServer, http: requests.Session
) -> None:
    for status in (307, 308):
        server.script(redirect(status, other.url + PATH + "?token=abc"))
        with pytest.raises(providerhub.ProviderHTTPError) as info:
            list(
                chat_completion(
                    "p",
                    server.url + PATH,
                    MODEL,
                    HI,
                    False,
                    auth=SECRET,
                    headers={"api-key": "configured-key-123"},
                    session=http,
                )
            )
        err = info.value
        assert err.status_code == status
        assert not err.transient
        assert f"redirected to {other.url}{PATH}" in str(err)
        assert "abc" not in str(err)
        assert "same scheme, host and port" in str(err)
    assert other.requests == []


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_that_would_drop_the_post_is_an_error_not_an_answer(
    status: int, server: OpenAIServer, http: requests.Session
) -> None:
    server.script(redirect(status, PATH + "/moved"))
    with pytest.raises(providerhub.ProviderHTTPError) as info:
        list(chat_completion("p", server.url + PATH, MODEL, HI, True, session=http))
    assert info.value.status_code == status
    assert f"redirected to {server.url}{PATH}/moved" in str(info.value)
    assert "as a GET" in str(info.value)
    assert [r.method for r in server.requests] == ["POST"]


@pytest.mark.parametrize("status", [307, 308])
def test_a_same_origin_307_or_308_is_followed_with_body_and_headers(
    status: int, server: OpenAIServer, http: requests.Session
) -> None:
    server.script(redirect(status, "/v2/chat/completions"), Reply.text("moved", " here"))
    pieces = list(
        chat_completion(
            "p", server.url + PATH, MODEL, HI, True, headers={"api-key": "k-1"}, session=http
        )
    )
    assert pieces == ["moved", " here"]
    first, second = server.requests
    assert second.path == "/v2/chat/completions"
    assert second.body == first.body
    assert second.headers["api-key"] == "k-1"


def test_a_redirect_loop_is_not_retried(server: OpenAIServer) -> None:
    server.responder = lambda number, request: redirect(307, PATH)
    with hub_for(server.url) as hub, pytest.raises(providerhub.ProviderHTTPError) as info:
        hub.create(MODEL, HI)  # the hub's default retries: 2
    assert f"more than {transport.MAX_REDIRECTS} times" in str(info.value)
    assert len(server.requests) == transport.MAX_REDIRECTS + 1


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


def test_a_key_echoed_into_the_http_framing_is_hidden(http: requests.Session) -> None:
    def chunk_size_is_the_key(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        key = header(request, "Authorization").removeprefix("Bearer ")
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + key.encode() + b"\r\n"
        )

    for stream in (True, False):
        raw = RawServer(chunk_size_is_the_key)
        with raw, pytest.raises(providerhub.ProviderError) as info:
            list(chat_completion("p", raw.url + PATH, MODEL, HI, stream, auth=SECRET, session=http))
        # Nothing was yielded from the stream, the document had begun to arrive.
        kind = providerhub.ProviderConnectionError if stream else providerhub.StreamInterruptedError
        assert type(info.value) is kind
        assert "invalid literal for int() with base 16: b'***" in str(info.value)
        assert_error_clean(info.value)


def test_credentials_in_the_url_stay_out_of_every_message(
    server: OpenAIServer, http: requests.Session
) -> None:
    host = server.url.removeprefix("http://")
    echo = Reply(status=401, body=lambda r: f"no: {r.headers['Authorization']}", content_type="")
    server.script(echo)
    with pytest.raises(providerhub.AuthenticationError) as info:
        list(
            chat_completion(
                "p", f"http://user:{SECRET}@{host}{PATH}", MODEL, HI, False, session=http
            )
        )
    assert "no: Basic ***" in str(info.value)  # the server did echo them, encoded
    errors: list[BaseException] = [info.value]
    for endpoint in (
        f"user:{SECRET}@{host}{PATH}",  # no scheme: requests quotes the url
        f"htp://user:{SECRET}@{host}{PATH}",
        f"http://user:{SECRET}@127.0.0.1:1{PATH}",
        f"http://{SECRET}@[bad{PATH}",
    ):
        with pytest.raises(providerhub.ProviderError) as caught:
            list(chat_completion("p", endpoint, MODEL, HI, False, session=http))
        errors.append(caught.value)
    server.script(redirect(302, f"http://user:{SECRET}@elsewhere.invalid/x?key={SECRET}"))
    with pytest.raises(providerhub.ProviderHTTPError) as info:
        list(chat_completion("p", server.url + PATH, MODEL, HI, False, session=http))
    errors.append(info.value)
    for err in errors:
        assert_error_clean(err)
        assert_clean(str(err), "dXNlcjpzay1s")  # the start of base64("user:sk-l...")


def test_redact_hides_user_info_of_any_url() -> None:
    text = redact(f"see https://bob:{SECRET}@proxy.example:3128/ and ftp://x@y")
    assert text == "see https://***@proxy.example:3128/ and ftp://***@y"


# What reaches the caller ----------------------------------------------------------------


def sse(*docs: Any) -> str:
    return "".join(f"data: {json.dumps(doc)}\n\n" for doc in docs) + "data: [DONE]\n\n"


def delta(index: int, text: str, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": {"content": text}, "finish_reason": finish}


def test_with_several_choices_a_stream_follows_the_first(
    server: OpenAIServer, http: requests.Session
) -> None:
    body = sse(
        {"choices": [delta(0, "The sky")]},
        {"choices": [delta(1, "Grass")]},
        {"choices": [delta(1, " is green."), delta(0, " is blue.")]},  # both, out of order
        {"choices": [delta(1, "", "stop")]},
        {"choices": [delta(0, "", "stop")]},
    )
    server.script(Reply(body=body, content_type="text/event-stream"))
    pieces = list(chat_completion("p", server.url + PATH, MODEL, HI, True, n=2, session=http))
    assert "".join(pieces) == "The sky is blue."


def test_with_several_choices_a_document_gives_the_first(
    server: OpenAIServer, http: requests.Session
) -> None:
    doc = {
        "choices": [
            {"index": 1, "message": {"content": "Grass is green."}},
            {"index": 0, "message": {"content": "The sky is blue."}},
        ]
    }
    server.script(Reply(body=json.dumps(doc), content_type="application/json"))
    text = list(chat_completion("p", server.url + PATH, MODEL, HI, False, n=2, session=http))
    assert text == ["The sky is blue."]


def test_an_event_stream_is_known_in_any_case_and_with_parameters(
    server: OpenAIServer, http: requests.Session
) -> None:
    body = sse({"choices": [delta(0, "hi")]}, {"choices": [delta(0, "", "stop")]})
    server.script(Reply(body=body, content_type="Text/Event-Stream; Charset=UTF-8"))
    assert list(chat_completion("p", server.url + PATH, MODEL, HI, True, session=http)) == ["hi"]


NAN_EVENTS = (
    'data: {"choices":[{"index":0,"delta":{"content":"not"},"logprobs":NaN}]}\n\n'
    'data: {"choices":[{"index":0,"delta":{"content":" a"}}],"seed":123456789012345678901234}\n\n'
    'data: {"choices":[{"index":0,"delta":{"content":" number"},"x":-Infinity}]}\n\n'
    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)


def test_events_read_the_same_with_and_without_orjson(
    server: OpenAIServer, http: requests.Session
) -> None:
    pytest.importorskip("orjson")
    server.script(Reply(body=NAN_EVENTS, content_type="text/event-stream"))
    with_orjson = list(chat_completion("p", server.url + PATH, MODEL, HI, True, session=http))
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from providerhub._codecs import openai_chat as oc\n"
        "from providerhub._speedups import scan_json\n"
        "from providerhub._http.chat import chat_completion\n"
        "assert oc._json_loads() is scan_json\n"
        f"print(repr(list(chat_completion('p', {server.url + PATH!r}, 'm',"
        " [{'role': 'user', 'content': 'Hi'}], True))))\n"
    )
    server.script(Reply(body=NAN_EVENTS, content_type="text/event-stream"))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert with_orjson == ["not", " a", " number"]
    assert result.stdout.strip() == repr(with_orjson)


def test_a_document_orjson_refuses_reads_as_the_standard_library_reads_it(
    server: OpenAIServer, http: requests.Session
) -> None:
    # Documents go to orjson first when it is installed; what it refuses (NaN, an integer
    # past 64 bits, a body in UTF-16) to json.loads, which reads all three.
    doc = (
        '{"choices":[{"index":0,"message":{"content":"not a number"},"logprobs":NaN}],'
        '"seed":123456789012345678901234,"usage":{"prompt_tokens":1,"completion_tokens":2,'
        '"total_tokens":3}}'
    )
    for body in (doc.encode(), doc.encode("utf-16")):
        server.script(Reply(body=body, content_type="application/json"))
        pieces = list(
            chat_completion("p", server.url + PATH, MODEL, HI, False, session=http, structured=True)
        )
        assert pieces[0] == "not a number"
        assert Usage(1, 2, 3) in pieces
    server.script(Reply(body="{not json", content_type="application/json"))
    with pytest.raises(providerhub.ProviderResponseError, match="not JSON"):
        list(chat_completion("p", server.url + PATH, MODEL, HI, False, session=http))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"stop": {"a", "b"}}, "the parameter 'stop'"),
        ({"metadata": {"at": object()}}, "the parameter 'metadata'"),
        ({"user": "u", "tools": [{"f": lambda: None}]}, "the parameter 'tools'"),
    ],
)
def test_a_parameter_json_cannot_carry_is_refused_before_sending(
    params: dict[str, Any], named: str, gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    with pytest.raises(providerhub.InvalidRequestError, match=named) as info:
        chat_completion("p", server.url + PATH, MODEL, HI, False, **params)  # no next()
    assert "cannot be sent as JSON" in str(info.value)
    for _ in range(4):  # more than the breaker's threshold
        with pytest.raises(providerhub.InvalidRequestError, match=named):
            gravity_hub.create("gpt-3.5-turbo-16k", HI, **params)
    assert gravity_hub.health.cooling("gravityengine") is None
    assert server.requests == []


def test_messages_json_cannot_carry_are_named(server: OpenAIServer) -> None:
    with pytest.raises(providerhub.InvalidRequestError, match="the messages for p"):
        chat_completion("p", server.url + PATH, MODEL, [{"role": "user", "content": {1, 2}}], False)


def test_a_connection_reset_after_done_leaves_the_answer_whole(http: requests.Session) -> None:
    def done_then_reset(conn: socket.socket, request: bytes, stopping: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for data in (json.dumps({"choices": [delta(0, "whole")]}), "[DONE]"):
            event = f"data: {data}\n\n".encode()
            conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
        # No terminating chunk: a reset, as SO_LINGER 0 makes close() send one.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with RawServer(done_then_reset) as raw:
        pieces = list(chat_completion("p", raw.url + PATH, MODEL, HI, True, session=http))
    assert pieces == ["whole"]
