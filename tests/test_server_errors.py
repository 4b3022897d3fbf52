"""What a client of providerhub serve is told when a provider fails, against a real server
process over upstreams of the test's own (one that answers 500 with a revealing body,
one that hangs, a port nobody listens on): the provider's name, the kind of failure and
what to do, never the upstream's address or words, which the server's log has, redacted,
under the request's id; the server's upstream deadline, and a refusal for want of a
capability naming the setting that turns it on."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providerhub.testing import OpenAIServer, RecordedRequest, Reply

from ._gateway import Gateway, clean_environment
from ._redis import free_port

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

UPSTREAM_KEY = "sk-upstream-SECRET-9191"
INTERNAL = "db-7.internal:5432"
"""What the failing upstream tells of its insides, which no client may see."""
DEADLINE = 1


def _reply(number: int, request: RecordedRequest) -> Reply:
    model = request.json().get("model")
    if model == "failing-model":
        # The upstream's words, its internal address and the credential it was sent.
        message = f"cannot reach {INTERNAL} for {request.headers.get('Authorization')}"
        return Reply.error(500, message)
    if model == "hung-model":
        return Reply(fault="stall", after=None, delay=5)
    if model == "hung-stream-model":
        return Reply.text("Hel", "lo", fault="stall", after=1, delay=5)
    return Reply.text("Hello")


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        server.responder = _reply
        yield server


@pytest.fixture(scope="module")
def dead_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture(scope="module")
def gateway(
    upstream: OpenAIServer, dead_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("errors")
    config = tmp / "config.toml"
    config.write_text(
        f"""
[endpoints.local]
url = "{upstream.url}"
models = ["failing-model"]
api_key_env = "LOCAL_UPSTREAM_KEY"

[endpoints.slow]
url = "{upstream.url}"
models = ["hung-model"]

[endpoints.stalled]
url = "{upstream.url}"
models = ["hung-stream-model"]

[endpoints.blind]
url = "{upstream.url}"
models = ["blind-model"]

[endpoints.gone]
url = "http://127.0.0.1:{dead_port}"
models = ["gone-model"]

[endpoints.pair1]
url = "http://127.0.0.1:{dead_port}"
models = ["pair-model"]

[endpoints.pair2]
url = "http://127.0.0.1:{dead_port}/v2"
models = ["pair-model"]

[endpoints.keyless]
url = "{upstream.url}"
models = ["keyless-model"]
api_key_env = "UNSET_UPSTREAM_KEY"

[endpoints.plain]
url = "{upstream.url}"
models = ["plain-model"]
stream = false
""",
        encoding="utf-8",
    )
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_DISABLE_PLUGINS="gravityengine",  # only the endpoints of the file
        LOCAL_UPSTREAM_KEY=UPSTREAM_KEY,
        PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT=str(DEADLINE),
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log()


def _chat(gateway: Gateway, model: str, **fields: Any) -> tuple[int, dict[str, str], bytes]:
    messages = fields.pop("messages", [{"role": "user", "content": "Hi"}])
    body = json.dumps({"model": model, "messages": messages, **fields}).encode()
    return gateway.request(
        "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"}
    )


def _error(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = doc["error"]
    return error


def _internal(upstream: OpenAIServer, dead_port: int) -> list[str]:
    """Everything a client must not see: the upstreams' addresses, and their words."""
    return [
        upstream.url.split("://", 1)[1].split("/", 1)[0],  # its host:port
        f"127.0.0.1:{dead_port}",
        INTERNAL,
        "cannot reach",
        UPSTREAM_KEY,
        "http://",
    ]


def _shown(headers: dict[str, str], body: bytes) -> str:
    return json.dumps(headers) + body.decode()


def _logged(gateway: Gateway, request_id: str) -> str:
    lines = [line for line in gateway.log().splitlines() if f"request_id={request_id} " in line]
    assert len(lines) == 1, gateway.log()
    return lines[0]


def test_an_upstream_error_names_the_provider_and_status_and_the_log_has_its_words(
    gateway: Gateway, upstream: OpenAIServer, dead_port: int
) -> None:
    status, headers, body = _chat(gateway, "failing-model")
    assert status == 502 and headers["x-providerhub-provider"] == "local"
    error = _error(body)
    assert error["code"] == "upstream_failed"
    assert error["message"].startswith("local failed (HTTP 500): retry later")
    request_id = headers["x-request-id"]
    assert f"request id {request_id}" in error["message"]
    shown = _shown(headers, body)
    for secret in _internal(upstream, dead_port):
        assert secret not in shown
    # The operator finds it all by the request id: the upstream's address and words, and
    # the credential it echoed taken out.
    line = _logged(gateway, request_id)
    assert "status=502 ProviderHTTPError" in line
    assert f"{upstream.url}/v1/chat/completions" in line and INTERNAL in line
    assert "Bearer ***" in line and UPSTREAM_KEY not in line


def test_a_refused_connection_is_told_without_the_address(
    gateway: Gateway, upstream: OpenAIServer, dead_port: int
) -> None:
    status, headers, body = _chat(gateway, "gone-model", stream=True)
    assert status == 502
    message = _error(body)["message"]
    assert message.startswith("gone could not be reached (the connection was refused")
    shown = _shown(headers, body)
    for secret in _internal(upstream, dead_port):
        assert secret not in shown
    line = _logged(gateway, headers["x-request-id"])
    assert f"127.0.0.1:{dead_port}" in line and "ProviderConnectionError" in line

    # Every provider of the model failing: each is named, with what happened to it.
    status, headers, body = _chat(gateway, "pair-model")
    assert status == 502
    message = _error(body)["message"]
    assert message.startswith("all 2 providers of the model 'pair-model' failed: pair1 could")
    assert "; pair2 could not be reached" in message
    shown = _shown(headers, body)
    for secret in _internal(upstream, dead_port):
        assert secret not in shown
    assert f"127.0.0.1:{dead_port}/v2" in _logged(gateway, headers["x-request-id"])


def test_a_hung_upstream_ends_at_the_servers_deadline_with_a_message_for_clients(
    gateway: Gateway, upstream: OpenAIServer, dead_port: int
) -> None:
    started = time.perf_counter()
    status, headers, body = _chat(gateway, "hung-model")
    took = time.perf_counter() - started
    assert status == 502 and DEADLINE <= took < 3.5  # not before it, nor at the 5 s stall's end
    message = _error(body)["message"]
    assert message.startswith(
        f"slow did not answer in time (the server's upstream deadline is {DEADLINE} s"
    )
    assert "timeout=" not in message  # the library's hint, not one for a gateway client
    for secret in _internal(upstream, dead_port):
        assert secret not in _shown(headers, body)
    assert "ProviderTimeoutError" in _logged(gateway, headers["x-request-id"])

    # The deadline is the whole answer's: a stream that stalls ends with an error event.
    started = time.perf_counter()
    status, headers, body = _chat(gateway, "hung-stream-model", stream=True)
    took = time.perf_counter() - started
    assert status == 200 and DEADLINE <= took < 3.5
    events = [line[6:] for line in body.decode().splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "Hel"
    event = json.loads(events[-1])
    assert event["error"]["code"] == "upstream_failed" and "[DONE]" not in events
    assert event["error"]["message"].startswith("the stream broke off mid-answer: stalled did not")
    assert "timeout=" not in event["error"]["message"]
    for secret in _internal(upstream, dead_port):
        assert secret not in _shown(headers, body)
    assert "ProviderTimeoutError" in _logged(gateway, headers["x-request-id"])

    # The client cannot lengthen it through the body.
    status, _, body = _chat(gateway, "hung-model", timeout=600)
    assert status == 400 and _error(body)["param"] == "timeout"


def test_an_image_for_an_endpoint_without_vision_names_the_setting(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    asked = len(upstream.requests)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    status, _, body = _chat(gateway, "blind-model", messages=[{"role": "user", "content": [image]}])
    assert status == 400 and _error(body)["code"] == "model_not_supported"
    assert re.search(
        r"blind: cannot serve this request: it does not take image or file parts "
        r"\(supports_vision is off: set vision = true in its \[endpoints\.blind\] table\)",
        _error(body)["message"],
    )
    assert len(upstream.requests) == asked


def test_an_image_for_an_endpoint_without_vision_is_400_while_it_cools_down(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    # local fails with 500: a few calls (each cut at the 1 s deadline) cool it down.
    for _ in range(5):
        status, headers, body = _chat(gateway, "failing-model")
        if status == 503:
            break
    assert status == 503 and _error(body)["code"] == "no_provider_available"
    asked = len(upstream.requests)
    # Its cooldown is no reason for this refusal: no wait would let it take an image, so
    # neither a 503 nor a Retry-After (which the openai SDK would sleep and retry on).
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "user", "content": [image]}]
    status, headers, body = _chat(gateway, "failing-model", messages=messages)
    assert status == 400 and _error(body)["code"] == "model_not_supported"
    assert "retry-after" not in headers
    assert "set vision = true in its [endpoints.local] table" in _error(body)["message"]
    assert len(upstream.requests) == asked


def test_the_deadline_is_a_setting_of_the_file_and_the_environment(tmp_path: Path) -> None:
    from providerhub import ConfigurationError

    from ._internals import _config

    path = tmp_path / "config.toml"
    path.write_text("[server]\nupstream_timeout = 2.5\n", encoding="utf-8")
    settings = _config.load({"PROVIDERHUB_CONFIG": str(path)})
    assert settings.upstream_timeout == 2.5
    limits = settings.upstream_limits()
    assert (limits.connect, limits.read, limits.total) == (2.5, 2.5, 2.5)
    env = {"PROVIDERHUB_CONFIG": str(path), "PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT": "45"}
    limits = _config.load(env).upstream_limits()
    assert (limits.connect, limits.read, limits.total) == (10, 45, 45)  # the env wins
    path.write_text("", encoding="utf-8")
    assert _config.load({"PROVIDERHUB_CONFIG": str(path)}).upstream_timeout == 120
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(ConfigurationError, match="PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT"):
            _config.load({**env, "PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT": bad})


def test_an_unknown_model_is_told_where_the_models_are_listed(gateway: Gateway) -> None:
    status, _, body = _chat(gateway, "no-such-thing")
    assert status == 404 and _error(body)["code"] == "model_not_found"
    assert _error(body)["message"] == (
        "no provider lists the model 'no-such-thing'; GET /v1/models lists the models served here"
    )
    status, _, body = _chat(gateway, "blind-modle")
    assert _error(body)["message"].startswith(
        "no provider lists the model 'blind-modle'; did you mean 'blind-model'"
    )


def test_a_failure_of_the_server_itself_tells_the_client_nothing_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from providerhub import Hub

    from ._internals import _errors

    caplog.set_level(logging.INFO, logger="providerhub.server")
    try:
        raise ConnectionError("Error 111 connecting to redis://:pw-secret@10.0.0.7:6379")
    except ConnectionError as exc:
        with Hub(False) as hub:
            failure = _errors.failure_for(exc, hub, (), request_id="r-1")
            _errors.log_failure(exc, failure, "r-1", ())
    assert (failure.status, failure.code) == (500, "internal_error")
    assert failure.message == "the server failed (the server's log has the details: request id r-1)"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    logged = record.getMessage()
    assert logged.startswith("request_id=r-1 status=500 ConnectionError: Error 111 connecting to")
    assert "10.0.0.7:6379" in logged and "Traceback" in logged
    assert "pw-secret" not in logged


def test_no_provider_reasons_fit_a_gateway_client(gateway: Gateway) -> None:
    """The library's reasons tell a Python caller to pass ``auth=`` or ``stream=False``; a
    gateway client can do neither in the way they say: it is told what fits it."""
    status, _, body = _chat(gateway, "keyless-model")
    error = _error(body)
    assert (status, error["code"]) == (503, "no_provider_available")
    reason = "keyless: needs a credential, which the server's operator has not set"
    assert reason in error["message"]
    assert "auth=" not in error["message"] and "UNSET_UPSTREAM_KEY" not in error["message"]

    status, _, body = _chat(gateway, "plain-model", stream=True)
    error = _error(body)
    assert (status, error["code"]) == (400, "model_not_supported")
    assert 'plain: cannot stream: send "stream": false' in error["message"]
    assert "stream=False" not in error["message"]


def test_an_error_repeats_only_so_much_of_what_the_client_sent(gateway: Gateway) -> None:
    """A model name, a role or a path of tens of KiB is not sent back whole: the answer
    stays small and still says what is wrong."""
    long = "x" * 30_000
    status, _, body = _chat(gateway, "m-" + long)
    assert status == 404 and len(body) < 1_000
    assert "no provider lists the model 'm-xxxx" in _error(body)["message"]

    status, _, body = _chat(gateway, "blind-model", messages=[{"role": long, "content": "Hi"}])
    assert status == 400 and len(body) < 3_000
    assert "has role 'xxxx" in _error(body)["message"]

    status, _, body = gateway.request("GET", "/" + long)
    assert status == 404 and len(body) < 1_000 and "no route /xxxx" in _error(body)["message"]


def test_a_refused_request_names_its_field_in_param(gateway: Gateway) -> None:
    """OpenAI's ``param``: the field at fault, which the openai SDK gives as ``e.param``."""
    deep: Any = "leaf"
    for _ in range(70):
        deep = {"k": deep}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tempurature": 1}, "tempurature"),  # not a parameter the endpoint takes
        ({"metadata": deep}, "metadata"),  # nested past the 64 levels sent
        ({"messages": [{"role": "nobody", "content": "Hi"}]}, "messages"),
        ({"messages": [{"role": "user", "content": deep}]}, "messages"),
    ]
    for fields, param in cases:
        status, _, body = _chat(gateway, "blind-model", **fields)
        error = _error(body)
        assert (status, error["code"], error["param"]) == (400, "invalid_request", param)
