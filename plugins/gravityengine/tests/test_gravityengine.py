"""Gravityengine against a real local OpenAI-compatible server: the request it sends, the
text it yields, and each failure as a typed error naming it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import providerhub
import providerhub_gravityengine as ge
from providerhub import (
    AuthenticationError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from providerhub.testing import OpenAIServer, RecordedRequest, Reply

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]


def test_module_keeps_the_seed_shape_and_values() -> None:
    assert ge.url == "https://gpt4.gravityengine.cc"
    assert ge.model == ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"]
    assert ge.supports_stream is True
    assert ge.needs_auth is False
    assert ge.params == (
        "providerhub.providers.gravityengine supports: "
        "(model: str, messages: list, stream: bool, **kwargs)"
    )


def test_installed_through_its_entry_point() -> None:
    with providerhub.Hub() as hub:
        provider = hub.providers["gravityengine"]
    assert provider.obj is ge
    assert provider.distribution == "providerhub-gravityengine"


def test_non_stream_sends_the_seed_body_and_reads_the_message(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("Hello", " there"))
    assert hub.create(MODEL, HI) == "Hello there"
    [request] = server.requests
    assert request.path == "/api/openai/v1/chat/completions"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.json() == {
        "model": MODEL,
        "temperature": 0.7,
        "presence_penalty": 0,
        "messages": HI,
    }


def test_stream_yields_each_delta_as_sent(hub: providerhub.Hub, server: OpenAIServer) -> None:
    server.script(Reply.text("Hel", "lo", ", ", "wörld 😀"))
    assert list(hub.create(MODEL, HI, stream=True)) == ["Hel", "lo", ", ", "wörld 😀"]
    assert server.requests[0].json()["stream"] is True
    assert server.requests[0].headers["Accept"] == "text/event-stream"


def test_caller_parameters_override_the_defaults(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    hub.create(MODEL, HI, temperature=0.1, top_p=0.5, max_tokens=7, stop=["\n"], seed=3)
    body = server.requests[0].json()
    assert body["temperature"] == 0.1
    assert body["presence_penalty"] == 0
    assert (body["top_p"], body["max_tokens"], body["stop"], body["seed"]) == (0.5, 7, ["\n"], 3)


def test_unknown_parameter_is_refused_before_sending(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    with pytest.raises(providerhub.InvalidRequestError, match="'colour'"):
        hub.create(MODEL, HI, colour="red")
    assert server.requests == []


def test_credential_goes_as_bearer_from_auth_or_environment(
    hub: providerhub.Hub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.create(MODEL, HI, auth={"gravityengine": "sk-from-auth"})
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-from-auth"
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_API_KEY", "sk-from-env")
    hub.create(MODEL, HI)
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-from-env"


def test_streams_incrementally(hub: providerhub.Hub, server: OpenAIServer) -> None:
    release = threading.Event()
    server.script(Reply.text("first", " second", " third", wait=release, after=1))
    stream = hub.create(MODEL, HI, stream=True, timeout=10)
    assert next(stream) == "first"  # arrived while the server still holds the rest
    assert not release.is_set()
    release.set()
    assert list(stream) == [" second", " third"]


def test_a_json_document_answering_a_stream_request_is_yielded_once(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("all", " at once", json_for_stream=True))
    assert list(hub.create(MODEL, HI, stream=True)) == ["all at once"]


def test_called_directly_like_the_seed(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    server.script(Reply.text("a", "b"))
    assert list(ge._create_completion(model=MODEL, messages=HI, stream=True)) == ["a", "b"]


# -- failures ------------------------------------------------------------------------------


def failure(hub: providerhub.Hub, reply: Reply, server: OpenAIServer, *, stream: bool) -> Any:
    server.script(reply)
    started = time.monotonic()
    pieces: list[str] = []
    with pytest.raises(providerhub.ProviderError) as info:
        if stream:
            for piece in hub.create(MODEL, HI, stream=True, timeout=providerhub.Timeout(2, 0.5)):
                pieces.append(piece)
        else:
            hub.create(MODEL, HI, timeout=providerhub.Timeout(2, 0.5))
    assert time.monotonic() - started < 3
    assert info.value.provider == "gravityengine"
    assert str(info.value).startswith("gravityengine: ")
    return info.value, pieces


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (Reply.error(401, "bad key"), AuthenticationError, "PROVIDERHUB_GRAVITYENGINE_API_KEY"),
        (Reply.error(403, "forbidden"), AuthenticationError, "HTTP 403"),
        (Reply.error(404), ProviderHTTPError, "PROVIDERHUB_GRAVITYENGINE_URL"),
        (Reply.error(400, "bad request"), ProviderHTTPError, "bad request"),
        (Reply.error(429, "slow down", retry_after="7"), RateLimitError, "retry after 7 s"),
        (Reply.error(429, "slow down"), RateLimitError, "retry later"),
        (Reply.error(500, "oops"), ProviderHTTPError, "HTTP 500"),
        (Reply.error(502), ProviderHTTPError, "HTTP 502"),
        (Reply.error(503, "overloaded", retry_after="2"), ProviderHTTPError, "overloaded"),
        (Reply.error(504), ProviderHTTPError, "try again later"),
        (Reply.html(), ProviderResponseError, "HTML page"),
        (Reply.html(status=403), AuthenticationError, "Just a moment"),
        (
            Reply(body=b'{"choices": [{"mess', content_type="application/json"),
            ProviderResponseError,
            "not JSON",
        ),
        (
            Reply(body=b'{"result": "no choices"}', content_type="application/json"),
            ProviderResponseError,
            "no choices[0].message.content",
        ),
        (
            Reply(
                body=b'{"error": {"message": "model overloaded"}}', content_type="application/json"
            ),
            ProviderResponseError,
            "model overloaded",
        ),
        (Reply(body=b"", content_type="application/json"), ProviderResponseError, "empty body"),
        (Reply(fault="reset", after=None), ProviderConnectionError, "could not connect"),
        pytest.param(
            Reply(fault="stall", after=None, delay=5),
            ProviderTimeoutError,
            "timed out",
            marks=pytest.mark.slow,  # waits out the read timeout
        ),
    ],
)
def test_each_failure_is_a_typed_error_naming_gravityengine(
    hub: providerhub.Hub,
    server: OpenAIServer,
    reply: Reply,
    error: type[Exception],
    says: str,
    stream: bool,
) -> None:
    err, pieces = failure(hub, reply, server, stream=stream)
    assert type(err) is error
    assert says in str(err)
    assert pieces == []
    if isinstance(err, ProviderHTTPError):
        assert err.status_code == reply.status
    if isinstance(err, RateLimitError) and "Retry-After" in reply.headers:
        assert err.retry_after == 7


@pytest.mark.parametrize(
    ("reply", "error", "says", "before"),
    [
        (
            Reply.text("a", "b", "c", fault="cut", after=2),
            StreamInterruptedError,
            "[DONE]",
            ["a", "b"],
        ),
        (
            Reply.text("a", "b", fault="error_event", after=1),
            ProviderResponseError,
            "mid-answer",
            ["a"],
        ),
        (Reply.text("a", "b", fault="reset", after=1), StreamInterruptedError, "broke", ["a"]),
        pytest.param(
            Reply.text("a", "b", fault="stall", after=1, delay=5),
            ProviderTimeoutError,
            "timed out",
            ["a"],
            marks=pytest.mark.slow,  # waits out the read timeout
        ),
        (Reply.text("a", "b", fault="reset", after=0), ProviderConnectionError, "could not", []),
        (Reply.text("a", fault="cut", after=0), StreamInterruptedError, "[DONE]", []),
    ],
)
def test_mid_stream_failures_raise_after_the_text_already_given(
    hub: providerhub.Hub,
    server: OpenAIServer,
    reply: Reply,
    error: type[Exception],
    says: str,
    before: list[str],
) -> None:
    err, pieces = failure(hub, reply, server, stream=True)
    assert type(err) is error
    assert says in str(err)
    assert pieces == before


def test_truncated_json_document_is_a_response_error(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    err, _ = failure(hub, Reply.text("whole answer", fault="cut"), server, stream=False)
    assert isinstance(err, ProviderResponseError)


def test_connection_refused_names_the_url_variable(
    hub: providerhub.Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderConnectionError) as info:
        hub.create(MODEL, HI)
    assert "connection refused" in str(info.value)
    assert "PROVIDERHUB_GRAVITYENGINE_URL" in str(info.value)


def test_an_oversized_answer_is_refused_not_buffered(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    server.script(Reply.text("x" * 5000))
    with pytest.raises(ProviderResponseError, match="larger than 1000 bytes"):
        list(ge._create_completion(MODEL, HI, False, max_body_bytes=1000))
    server.script(Reply.text("y" * 5000))
    with pytest.raises(ProviderResponseError, match="event larger than 1000 bytes"):
        list(ge._create_completion(MODEL, HI, True, max_event_bytes=1000))


def test_a_credential_echoed_by_the_server_never_reaches_the_message(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    secret = "sk-very-secret-credential-123"

    def echo_headers(request: RecordedRequest) -> str:
        return f"denied for {request.headers.get('Authorization')} and key {secret}"

    server.script(Reply(status=401, body=echo_headers, content_type="text/plain"))
    with pytest.raises(AuthenticationError) as info:
        hub.create(MODEL, HI, auth={"gravityengine": secret})
    assert server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    assert secret not in str(info.value)
    assert secret not in repr(info.value)
    assert "***" in str(info.value)
