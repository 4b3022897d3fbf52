"""providerhub serve, as clients see it: a real server process (uvicorn on 127.0.0.1) over
a hub whose Gravityengine provider points at the local OpenAI-compatible server, driven
with the openai SDK (sync and async) and with raw HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import STREAM_TEXTS, Gateway, check_stream_events, clean_environment, poll

# The server extra's and the SDK's packages; the Python 3.9 run of .ci/run installs the
# core's tests only.
openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

ENV_KEY = "sk-client-env-key"
CI_KEY = "sk-client-ci-key"  # rpm = 3
TEAM_KEY = "sk-client-team-key"
UPSTREAM_KEY = "sk-upstream-SECRET-4242"
MAX_BODY = 64 * 1024
MAX_CONCURRENCY = 3
MODEL = "gpt-3.5-turbo-16k"
MESSAGES = [{"role": "user", "content": "Hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    config = tmp / "config.toml"
    config.write_text(
        "[server]\n"
        f"max_body_bytes = {MAX_BODY}\n"
        "[[server.keys]]\n"
        'name = "ci"\n'
        f'sha256 = "{hashlib.sha256(CI_KEY.encode()).hexdigest()}"\n'
        "rpm = 3\n"
        "[[server.keys]]\n"
        'name = "team"\n'
        f'sha256 = "{hashlib.sha256(TEAM_KEY.encode()).hexdigest()}"\n',
        encoding="utf-8",
    )
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_GRAVITYENGINE_API_KEY=UPSTREAM_KEY,
        PROVIDERHUB_ALIASES=f"fast={MODEL}",
        PROVIDERHUB_SERVER_API_KEYS=f" {ENV_KEY} ,",
        PROVIDERHUB_SERVER_MAX_CONCURRENCY=str(MAX_CONCURRENCY),
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log()


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=ENV_KEY, max_retries=0)


def auth(key: str = ENV_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def chat_body(**fields: Any) -> bytes:
    return json.dumps({"model": MODEL, "messages": MESSAGES, **fields}).encode()


# -- the API -----------------------------------------------------------------------------------


def test_a_document_through_the_sdk_names_provider_and_request_id(
    client: openai.OpenAI, upstream: OpenAIServer
) -> None:
    upstream.script(Reply.text("Hello", " there", usage={"prompt_tokens": 3, "total_tokens": 5}))
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello there"
    assert completion.usage is not None and completion.usage.total_tokens == 5
    assert raw.headers["x-providerhub-provider"] == "gravityengine"
    assert len(raw.headers["x-request-id"]) == 24
    # The upstream got the request with its own credential, never the client's key.
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"

    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, extra_headers={"X-Request-Id": "trace-42"}
    )
    assert raw.headers["x-request-id"] == "trace-42"


@pytest.mark.parametrize("model", ["fast", f"gravityengine/{MODEL}", f"gravityengine:{MODEL}"])
def test_aliases_and_pinned_names_reach_the_upstream_as_the_model(
    client: openai.OpenAI, upstream: OpenAIServer, model: str
) -> None:
    completion = client.chat.completions.create(model=model, messages=MESSAGES)
    assert completion.choices[0].message.content
    assert upstream.requests[-1].json()["model"] == MODEL


def test_a_stream_with_tool_calls_and_usage_through_the_sdk(
    client: openai.OpenAI, upstream: OpenAIServer
) -> None:
    upstream.script(
        Reply.tools(
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
            {"name": "get_weather", "arguments": {"city": "Bergen"}},
            usage={"prompt_tokens": 52, "completion_tokens": 9, "total_tokens": 61},
        )
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    ):
        if not chunk.choices:
            usage = chunk.usage
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            assert delta.function is not None
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    assert [json.loads(c["arguments"]) for c in calls.values()] == [
        {"city": "Oslo"},
        {"city": "Bergen"},
    ]
    assert {c["name"] for c in calls.values()} == {"get_weather"}
    assert all(c["id"] for c in calls.values())
    assert finish == "tool_calls"
    assert usage is not None and usage.total_tokens == 61
    assert upstream.requests[-1].json()["tools"] == TOOLS


def test_a_stream_on_the_wire(gateway: Gateway, upstream: OpenAIServer) -> None:
    upstream.script(Reply.text("a", "b"))
    status, headers, body = gateway.request(
        "POST", "/v1/chat/completions", chat_body(stream=True), auth()
    )
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert headers["x-providerhub-provider"] == "gravityengine"
    assert headers["x-request-id"]
    events = body.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e[len("data: ") :]) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "ab"


def test_each_event_of_a_stream_is_its_chunk_in_compact_json_and_scrubbed(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    # This gateway knows an upstream key: each event is scrubbed of it.
    upstream.script(Reply.text(*STREAM_TEXTS, f"key {UPSTREAM_KEY}"))
    status, _, body = gateway.request(
        "POST", "/v1/chat/completions", chat_body(stream=True), auth()
    )
    assert status == 200
    check_stream_events(body, MODEL, [*STREAM_TEXTS, "key ***"])


def test_the_async_sdk_works_unchanged(gateway: Gateway, upstream: OpenAIServer) -> None:
    async def run() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=TEAM_KEY, max_retries=0
        ) as client:
            upstream.script(Reply.text("one"), Reply.text("tw", "o"))
            completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
            stream = await client.chat.completions.create(
                model=MODEL, messages=MESSAGES, stream=True
            )
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return completion.choices[0].message.content, "".join(pieces)

    assert asyncio.run(run()) == ("one", "two")


def test_models_lists_every_model_and_alias(client: openai.OpenAI) -> None:
    # The other installed plugins' models (Claude's, ...) are listed too, before the aliases.
    ids = [m.id for m in client.models.list()]
    assert [i for i in ids if i.startswith("gpt-") or i == "fast"] == [
        "gpt-3.5-turbo-0613",
        MODEL,
        "fast",
    ]
    assert ids == [*sorted(ids[:-1]), "fast"]
    assert client.models.retrieve(MODEL).owned_by == "gravityengine"
    assert client.models.retrieve("fast").model_dump()["alias_for"] == MODEL
    assert client.models.retrieve(f"gravityengine/{MODEL}").owned_by == "gravityengine"
    with pytest.raises(openai.NotFoundError, match=re.escape(MODEL)):
        client.models.retrieve("gpt-3.5-turbo-16")


def test_health_readiness_and_metrics(
    gateway: Gateway, client: openai.OpenAI, upstream: OpenAIServer
) -> None:
    upstream_requests = len(upstream.requests)
    status, _, body = gateway.request("GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = gateway.request("GET", "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["providers"] == ["gravityengine"]
    assert ready["state"] == {
        "backend": "memory",
        "shared": False,
        "down_since": None,
        "describe": "in this process's memory",
    }
    assert len(upstream.requests) == upstream_requests  # neither asks a provider

    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    status, headers, body = gateway.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert (
        _metric(
            text, 'providerhub_server_requests_total{route="/v1/chat/completions",status="200"}'
        )
        >= 1
    )
    assert (
        _metric(text, 'providerhub_provider_attempts_total{provider="gravityengine",outcome="ok"}')
        >= 1
    )
    assert _metric(text, 'providerhub_server_request_duration_seconds_count{stream="false"}') >= 1
    overhead = 'providerhub_server_overhead_seconds_bucket{route="/v1/chat/completions",le="+Inf"}'
    assert _metric(text, overhead) >= 1
    assert _metric(text, "providerhub_server_in_flight_requests") == 0
    assert 'providerhub_provider_cooldown_seconds{provider="gravityengine"}' in text
    assert _metric(text, 'providerhub_state_shared{backend="memory"}') == 0
    assert "# TYPE providerhub_state_shared gauge" in text


QUIET_SERVE = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "logging.getLogger('providerhub').setLevel(logging.WARNING)\n"
    "from providerhub._cli import main\n"
    "sys.exit(main(['serve', '--port', '0']))\n"
)
"""``providerhub serve`` logging at INFO, but with the providerhub loggers at WARNING."""


def test_attempts_are_counted_with_the_providerhub_loggers_at_warning(
    upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("quiet")
    (tmp / "none.toml").write_text("", encoding="utf-8")
    env = clean_environment(
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_GRAVITYENGINE_API_KEY=UPSTREAM_KEY,
        PROVIDERHUB_CONFIG=str(tmp / "none.toml"),
    )
    gateway = Gateway(tmp, env, command=[sys.executable, "-c", QUIET_SERVE])
    try:
        quiet = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        upstream.script(Reply.error(503, "busy"), Reply.text("Hello"))
        assert quiet.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message
        upstream.script(Reply.text("Hi", " there"))
        stream = quiet.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hi there"

        _, _, body = gateway.request("GET", "/metrics")
        attempts = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in body.decode().splitlines()
            if line.startswith("providerhub_provider_attempts_total{")
        }
        assert attempts == {
            'providerhub_provider_attempts_total{provider="gravityengine",outcome="ok"}': 2,
            'providerhub_provider_attempts_total{provider="gravityengine",'
            'outcome="ProviderHTTPError (retrying)"}': 1,
        }
        # The server counted them without turning the router's INFO records back on.
        assert "outcome=" not in gateway.log()
    finally:
        assert gateway.stop() == 0


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in:\n{text}")


# -- the error table ---------------------------------------------------------------------------


def _error(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = doc["error"]
    return error


def test_400_for_bad_json_and_bad_messages(gateway: Gateway, client: openai.OpenAI) -> None:
    status, _, body = gateway.request("POST", "/v1/chat/completions", b"{not json", auth())
    assert status == 400 and "not valid JSON" in _error(body)["message"]
    with pytest.raises(openai.BadRequestError, match="content"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user"}])  # type: ignore[list-item, typeddict-item]
    # Routing arguments are not chat parameters: the client may not pick the upstream key.
    status, _, body = gateway.request(
        "POST", "/v1/chat/completions", chat_body(auth="mine"), auth()
    )
    assert status == 400 and _error(body)["param"] == "auth"


def test_401_without_a_key_or_with_a_wrong_one(gateway: Gateway) -> None:
    status, _, body = gateway.request("POST", "/v1/chat/completions", chat_body())
    assert status == 401 and _error(body)["code"] == "invalid_api_key"
    wrong = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="incorrect API key"):
        wrong.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_404_for_an_unknown_model_names_close_ones(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match=re.escape(f"did you mean {MODEL!r}")) as caught:
        client.chat.completions.create(model="gpt-3.5-turbo-16", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_413_for_a_body_over_the_cap_declared_or_chunked(gateway: Gateway) -> None:
    big = chat_body(padding="x" * MAX_BODY)
    status, _, body = gateway.request("POST", "/v1/chat/completions", big, auth())
    assert status == 413 and _error(body)["code"] == "request_too_large"

    conn = gateway.connection()  # no Content-Length: counted as it arrives
    try:
        conn.putrequest("POST", "/v1/chat/completions")
        for name, value in {**auth(), "Transfer-Encoding": "chunked"}.items():
            conn.putheader(name, value)
        conn.endheaders()
        for start in range(0, len(big), 16384):
            piece = big[start : start + 16384]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_429_for_a_key_over_its_rpm_and_for_a_rate_limited_upstream(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    began = time.monotonic()
    statuses = [
        gateway.request("POST", "/v1/chat/completions", chat_body(), auth(CI_KEY))[0]
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    limited = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CI_KEY, max_retries=0)
    with pytest.raises(openai.RateLimitError, match="'ci'") as caught:
        limited.chat.completions.create(model=MODEL, messages=MESSAGES)
    # A sliding minute: the next request may go once the first of the three leaves it,
    # no sooner than 60 s less the time the test took since it went.
    took = time.monotonic() - began
    assert 60 - took <= int(caught.value.response.headers["retry-after"]) <= 60

    # A Retry-After past the hub's retry_after_max: not waited for, handed on.
    upstream.script(Reply.error(429, "slow down", retry_after="120"))
    status, headers, body = gateway.request("POST", "/v1/chat/completions", chat_body(), auth())
    assert status == 429 and headers["retry-after"] == "120"
    assert _error(body)["type"] == "rate_limit_error"


def test_502_when_the_upstream_fails_and_its_credential_never_shows(
    gateway: Gateway, client: openai.OpenAI, upstream: OpenAIServer
) -> None:
    def echo(request: Any) -> str:  # an upstream that echoes the credential it got
        return json.dumps({"error": {"message": "bad: " + request.headers["Authorization"]}})

    upstream.script(Reply(status=409, body=echo, content_type="application/json"))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-providerhub-provider"] == "gravityengine"
    assert UPSTREAM_KEY not in caught.value.response.text
    assert "gravityengine" in caught.value.message

    # A request the upstream refuses as invalid is the client's to fix: a 400, not a 502.
    upstream.script(Reply(status=400, body=echo, content_type="application/json"))
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert refused.value.status_code == 400
    assert refused.value.response.headers["x-providerhub-provider"] == "gravityengine"
    assert refused.value.response.json()["error"]["type"] == "invalid_request_error"
    assert UPSTREAM_KEY not in refused.value.response.text

    # An answer that holds the credential has it taken out, in a document and in a stream.
    upstream.script(Reply.text(f"key={UPSTREAM_KEY}"), Reply.text("key=", UPSTREAM_KEY))
    status, _, body = gateway.request("POST", "/v1/chat/completions", chat_body(), auth())
    assert status == 200 and UPSTREAM_KEY.encode() not in body and b"***" in body
    status, _, body = gateway.request(
        "POST", "/v1/chat/completions", chat_body(stream=True), auth()
    )
    assert status == 200 and UPSTREAM_KEY.encode() not in body and b"***" in body
    assert UPSTREAM_KEY not in gateway.log()


def test_a_failure_mid_stream_is_an_error_event(
    client: openai.OpenAI, upstream: OpenAIServer
) -> None:
    upstream.script(Reply.text("a", "b", "c", fault="error_event", after=1))
    pieces = []
    with pytest.raises(openai.APIError, match="mid-answer"):
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pieces.append(chunk.choices[0].delta.content or "")
    assert "".join(pieces) == "a"


def test_503_at_once_past_the_concurrency_cap(gateway: Gateway, upstream: OpenAIServer) -> None:
    release = threading.Event()
    upstream.script(*[Reply.text("a", "b", wait=release, after=1) for _ in range(MAX_CONCURRENCY)])
    held = []
    try:
        for _ in range(MAX_CONCURRENCY):
            conn = gateway.connection()
            conn.request("POST", "/v1/chat/completions", chat_body(stream=True), auth())
            response = conn.getresponse()
            assert response.status == 200
            assert response.readline().startswith(b"data: ")  # the stream is under way
            held.append((conn, response))
        status, headers, body = gateway.request("POST", "/v1/chat/completions", chat_body(), auth())
        assert status == 503 and headers["retry-after"] == "1"
        assert _error(body)["code"] == "over_capacity"
        assert gateway.request("GET", "/healthz")[0] == 200  # only completions count
    finally:
        release.set()
    for conn, response in held:
        assert response.read().endswith(b"data: [DONE]\n\n")
        conn.close()
    assert gateway.request("POST", "/v1/chat/completions", chat_body(), auth())[0] == 200


# -- lifecycle ---------------------------------------------------------------------------------


def test_a_client_disconnect_closes_the_upstream_stream_at_once(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    gateway.request("POST", "/v1/chat/completions", chat_body(stream=True), auth())
    threads = _idle_threads(gateway)
    sockets = gateway.sockets()

    upstream.script(Reply.text(*["piece"] * 200, chunk_delay=0.02))
    conn = gateway.connection()
    conn.request("POST", "/v1/chat/completions", chat_body(stream=True), auth())
    response = conn.getresponse()
    assert response.readline().startswith(b"data: ")
    serving = threading.active_count()  # the upstream's handler thread among them
    open_now = gateway.sockets()  # the client's and the upstream's among them
    conn.close()  # mid-stream

    # The upstream's handler finds its socket closed at its next write, well before the
    # 4 s its 200 pieces would take.
    assert poll(lambda: threading.active_count() == serving - 1, timeout=1.5)
    assert poll(lambda: gateway.sockets() <= min(sockets, open_now - 2), timeout=1.5)
    assert poll(lambda: gateway.threads() <= threads, timeout=1.5), gateway.threads()
    _, _, body = gateway.request("GET", "/metrics")
    assert 'route="/v1/chat/completions",status="499"' in body.decode()


def _idle_threads(gateway: Gateway) -> int:
    # The async API's worker thread ends once its job is done: the fewest seen in a moment.
    seen = [gateway.threads()]
    poll(lambda: seen.append(gateway.threads()) and False, timeout=0.2)
    return min(seen)


def test_400_when_no_provider_takes_what_the_request_asks(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    asked = len(upstream.requests)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": [image]}]})
    status, headers, answer = gateway.request("POST", "/v1/chat/completions", body.encode(), auth())
    # Gravityengine takes no images: the client can change the request, retrying cannot.
    assert status == 400 and "retry-after" not in headers
    assert _error(answer)["code"] == "model_not_supported"
    assert "supports_vision" in _error(answer)["message"]
    assert len(upstream.requests) == asked
    status, _, answer = gateway.request("GET", "/v1/nothing-here")
    assert status == 404 and _error(answer)["code"] == "not_found"


def test_without_cors_origins_no_origin_is_allowed(gateway: Gateway) -> None:
    # CORS is off by default: a preflight is a method the route does not serve, and no
    # answer tells a browser its page may read it.
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    status, headers, _ = gateway.request("OPTIONS", "/v1/chat/completions", headers=preflight)
    assert status == 405 and headers["allow"] == "POST"
    assert "access-control-allow-origin" not in headers
    status, headers, _ = gateway.request("GET", "/healthz", headers={"Origin": "https://a.b"})
    assert status == 200 and "access-control-allow-origin" not in headers
