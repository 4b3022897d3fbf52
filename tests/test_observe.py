"""Where the time goes, through a real ``providerhub serve``: the gateway's own time and
time to first token by route in ``/metrics``, the JSON access log (with no message
content and no key in it), and OpenTelemetry spans (printed by the SDK's console
exporter from the server process; read with the in-memory exporter in
``test_otel_spans_in_process``)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub.testing import OpenAIServer, Reply

from . import _internals
from ._gateway import Gateway, clean_environment, poll

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

KEY = "sk-client-observe-key"
UPSTREAM_KEY = "sk-upstream-OBSERVE-9191"
SECRET_TEXT = "the-private-words-of-a-user-4711"
MODEL = "gpt-3.5-turbo-16k"
CHAT = "/v1/chat/completions"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def _config(tmp: Path, extra: str = "") -> Path:
    config = tmp / "config.toml"
    config.write_text(
        "[server]\n"
        f"{extra}"
        "[[server.keys]]\n"
        'name = "team"\n'
        f'sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def gateway(upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    pytest.importorskip("opentelemetry.sdk")
    tmp = tmp_path_factory.mktemp("observe")
    config = _config(tmp, 'access_log = "json"\notel = true\n')
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_GRAVITYENGINE_API_KEY=UPSTREAM_KEY,
        OTEL_TRACES_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="20",
        OTEL_SERVICE_NAME="gateway-under-test",
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in:\n{text}")


def _access_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith('{"time":')]


def _spans(log: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed: one indented JSON document each."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r'^\{\n\s+"name":', log, re.M):
        doc, _ = decoder.raw_decode(log, match.start())
        found.append(doc)
    return found


def test_timings_access_log_and_spans(gateway: Gateway, upstream: OpenAIServer) -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0)
    messages = [{"role": "user", "content": SECRET_TEXT}]
    upstream.script(Reply.text("Hello", usage=USAGE), Reply.text("a", "b", "c", usage=USAGE))
    answer = client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    assert answer.usage is not None and answer.usage.prompt_tokens == 11
    threads, sockets = gateway.threads(), gateway.sockets()  # the pools made by the first call
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": "req-observe-1"},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "abc"
    status, _, _ = gateway.request("POST", CHAT, b"{}", {"authorization": "Bearer wrong"})
    assert status == 401

    status, _, body = gateway.request("GET", "/metrics")
    text = body.decode()
    route = f'route="{CHAT}"'
    assert _metric(text, f"providerhub_server_overhead_seconds_count{{{route}}}") == 3
    assert _metric(text, f"providerhub_server_time_to_first_token_seconds_count{{{route}}}") == 1
    assert "# TYPE providerhub_server_overhead_seconds histogram" in text
    # The gateway's own time is less than the whole request's.
    overhead = _metric(text, f"providerhub_server_overhead_seconds_sum{{{route}}}")
    total = sum(
        _metric(text, f'providerhub_server_request_duration_seconds_sum{{stream="{s}"}}')
        for s in ("true", "false")
    )
    assert 0 < overhead < total

    assert poll(lambda: len(_access_lines(gateway.log())) >= 3)
    lines = _access_lines(gateway.log())
    complete, stream, refused = lines[:3]
    assert complete["key"] == "team" and complete["route"] == CHAT
    assert complete["status"] == 200 and complete["provider"] == "gravityengine"
    assert complete["model"] == MODEL and complete["attempts"] == 1
    assert (complete["input_tokens"], complete["output_tokens"]) == (11, 7)
    assert complete["ttft_ms"] is None and complete["latency_ms"] >= complete["overhead_ms"] > 0
    assert stream["request_id"] == "req-observe-1" and stream["ttft_ms"] > 0
    assert (stream["input_tokens"], stream["output_tokens"]) == (11, 7)
    assert refused["status"] == 401 and refused["key"] is None and refused["provider"] is None

    assert poll(lambda: len(_spans(gateway.log())) >= 2)
    spans = _spans(gateway.log())
    servers = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    # Each answered at its first attempt: one span a request, which says where it went.
    assert [s for s in spans if s["kind"] == "SpanKind.CLIENT"] == []
    assert len(servers) >= 2
    first = servers[0]
    assert first["name"] == f"chat {MODEL}"
    assert first["attributes"]["gen_ai.request.model"] == MODEL
    assert first["attributes"]["gen_ai.usage.input_tokens"] == 11
    assert first["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert first["attributes"]["gen_ai.provider.name"] == "gravityengine"
    assert first["resource"]["attributes"]["service.name"] == "gateway-under-test"
    assert first["attributes"]["server.address"] == "127.0.0.1"
    assert isinstance(first["attributes"]["server.port"], int)

    # Recording made no thread and left no connection open.
    assert poll(lambda: gateway.sockets() <= sockets) and gateway.threads() == threads
    # Neither a message, nor a client's or an upstream's key, anywhere in the server's output.
    log = gateway.log()
    assert SECRET_TEXT not in log and KEY not in log and UPSTREAM_KEY not in log
    assert "wrong" not in log


def test_access_log_line_holds_no_content() -> None:
    """The line is made of the record alone: a record holding content elsewhere (an
    answer with text) still gives none of it."""
    access = _internals._access_log.AccessLog()
    exchange = _internals._access_log.Exchange(time.perf_counter())
    exchange.route, exchange.status, exchange.model = CHAT, 200, MODEL
    exchange.headers = [(b"x-request-id", b"r-1")]
    exchange.answer = providerhub.types.ChatCompletion.from_dict(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": SECRET_TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )
    doc = json.loads(access.line(exchange, 0.01))
    assert SECRET_TEXT not in json.dumps(doc)
    assert doc["request_id"] == "r-1" and doc["output_tokens"] == 7


def test_otel_spans_in_process(upstream: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's in-memory exporter, over the app served by uvicorn in this process: a
    server span per request, a client span per attempt (a retried 503, then an answer)."""
    pytest.importorskip("opentelemetry.sdk")
    import uvicorn
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracing)  # what opentelemetry-instrument would have set
    assert trace.get_tracer_provider() is tracing
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", upstream.url)
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("PROVIDERHUB_CACHE_DIR", "/dev/null")
    hub = providerhub.Hub(retries=1)
    app = _internals.App(hub, _internals._config.ServerSettings(otel=True))
    threads = threading.active_count()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    assert poll(lambda: server.started, 10)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        upstream.script(Reply.error(503, "busy"), Reply.text("hi", usage=USAGE))
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": SECRET_TEXT}],
            extra_headers={"x-request-id": "in-process-1", "traceparent": TRACEPARENT},
        )
    finally:
        server.should_exit = True
        runner.join(10)
    assert not runner.is_alive()
    assert poll(lambda: threading.active_count() <= threads)
    spans = exporter.get_finished_spans()
    (gateway_span,) = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    attempts = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    assert gateway_span.name == f"chat {MODEL}"
    # The client's trace goes on: the same trace id, its span the gateway's parent.
    assert gateway_span.context.trace_id == int(TRACEPARENT.split("-")[1], 16)
    assert gateway_span.parent is not None
    assert gateway_span.parent.span_id == int(TRACEPARENT.split("-")[2], 16)
    attributes = dict(gateway_span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == MODEL
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["http.response.status_code"] == 200
    assert [dict(s.attributes or {})["providerhub.outcome"] for s in attempts] == [
        "ProviderHTTPError (retrying)",
        "ok",
    ]
    assert attempts[0].status.status_code == trace.StatusCode.ERROR
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == gateway_span.context.span_id
        assert gateway_span.start_time <= span.start_time <= span.end_time
        assert span.end_time <= gateway_span.end_time
        assert dict(span.attributes or {})["server.address"] == "127.0.0.1"
    text = repr([dict(s.attributes or {}) for s in spans])
    assert SECRET_TEXT not in text and UPSTREAM_KEY not in text


def test_the_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\naccess_log = "json"\notel = true\n', encoding="utf-8")
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")

    def load(path: Path, **env: str) -> Any:
        return _internals._config.load({"PROVIDERHUB_CONFIG": str(path), **env})

    assert load(empty).access_log == "" and load(empty).otel is False
    assert load(config).access_log == "json" and load(config).otel is True
    on = load(empty, PROVIDERHUB_SERVER_ACCESS_LOG="json", PROVIDERHUB_SERVER_OTEL="1")
    assert on.access_log == "json" and on.otel is True
    off = load(config, PROVIDERHUB_SERVER_ACCESS_LOG="off", PROVIDERHUB_SERVER_OTEL="false")
    assert off.access_log == "" and off.otel is False
    with pytest.raises(providerhub.ConfigurationError, match='must be "json" or "off"'):
        load(empty, PROVIDERHUB_SERVER_ACCESS_LOG="xml")
    with pytest.raises(providerhub.ConfigurationError, match="must be true or false"):
        load(empty, PROVIDERHUB_SERVER_OTEL="maybe")
    config.write_text("[server]\notel = 1\n", encoding="utf-8")
    with pytest.raises(providerhub.ConfigurationError, match="otel must be true or false"):
        load(config)


def test_an_exporter_not_installed_is_named() -> None:
    pytest.importorskip("opentelemetry.sdk")
    with pytest.raises(providerhub.ConfigurationError, match="opentelemetry-exporter-otlp"):
        _internals._otel._exporter("otlp")
    with pytest.raises(providerhub.ConfigurationError, match="'zipkin-nope'"):
        _internals._otel._exporter("zipkin-nope")
