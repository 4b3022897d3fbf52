"""Gemini through the gateway: a real ``providerhub serve`` process whose Gemini plugin
points at the local Gemini stand-in, driven with the openai SDK, unchanged. The SDK gets
text, tool calls with ids and usage, whole and streamed, from a model it knows only by
name; the stand-in gets Gemini's own requests, with the gateway's key, never the client's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.testing import GeminiReply, GeminiServer

from ._gateway import Gateway, clean_environment

# The server extra's and the SDK's packages; the Python 3.9 run of .ci/run installs the
# core's tests only.
openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")
pytest.importorskip("providerhub_gemini")

pytestmark = pytest.mark.slow  # a server process

CLIENT_KEY = "sk-client-key-for-gemini"
UPSTREAM_KEY = "AIza-upstream-SECRET-4242"
MODEL = "gemini-2.5-flash"
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}


@pytest.fixture(scope="module")
def upstream() -> Iterator[GeminiServer]:
    with GeminiServer(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: GeminiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway-gemini")
    config = tmp / "config.toml"
    config.write_text("", encoding="utf-8")
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_GEMINI_URL=upstream.url,
        PROVIDERHUB_GEMINI_API_KEY=UPSTREAM_KEY,
        PROVIDERHUB_SERVER_API_KEYS=CLIENT_KEY,
    )
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(name, None)
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log()


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def test_text_and_usage(client: openai.OpenAI, upstream: GeminiServer) -> None:
    upstream.script(GeminiReply.text("Hello", " from", " Gemini", usage=USAGE))
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI)
    r = raw.parse()
    assert raw.headers["x-providerhub-provider"] == "gemini"
    assert r.choices[0].message.content == "Hello from Gemini"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (9, 4, 13)
    request = upstream.requests[-1]
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == UPSTREAM_KEY
    assert CLIENT_KEY not in json.dumps(dict(request.headers))
    assert request.json()["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_a_stream_with_usage(client: openai.OpenAI, upstream: GeminiServer) -> None:
    upstream.script(GeminiReply.text("Hé", " ✓", " 🎉", usage=USAGE))
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)
    assert text == "Hé ✓ 🎉"
    assert [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 13
    assert upstream.requests[-1].path.endswith(":streamGenerateContent?alt=sse")


def test_tool_calls_and_their_results(client: openai.OpenAI, upstream: GeminiServer) -> None:
    upstream.script(
        GeminiReply.tools(
            {"name": "get_weather", "args": {"city": "Oslo"}},
            {"name": "get_weather", "args": {"city": "Rome"}},
            usage=USAGE,
        )
    )
    r = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])  # type: ignore[list-item]
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls]
    assert calls == [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})]
    ids = [c.id for c in message.tool_calls]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    assert r.usage is not None and r.usage.total_tokens == 13
    sent = upstream.requests[-1].json()
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "parametersJsonSchema": WEATHER["function"]["parameters"]}  # type: ignore[index]
            ]
        }
    ]

    # The results go back by id; Gemini gets them by name.
    upstream.script(GeminiReply.text("Cold in Oslo, warm in Rome."))
    messages: list[Any] = [
        *HI,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": ids[1], "content": '{"celsius": 24}'},
        {"role": "tool", "tool_call_id": ids[0], "content": "2 degrees"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert answer.choices[0].message.content == "Cold in Oslo, warm in Rome."
    assert upstream.requests[-1].json()["contents"][-1] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"celsius": 24}}},
            {"functionResponse": {"name": "get_weather", "response": {"output": "2 degrees"}}},
        ],
    }


def test_streamed_tool_calls(client: openai.OpenAI, upstream: GeminiServer) -> None:
    upstream.script(GeminiReply.tools({"name": "get_weather", "args": {"city": "Oslo"}}))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [d for chunk in chunks for c in chunk.choices for d in c.delta.tool_calls or ()]
    assert [d.id is not None and d.id.startswith("call_") for d in deltas] == [True]
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments or "") == {"city": "Oslo"}
    reasons = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert reasons == ["tool_calls"]
    assert chunks[-1].usage is not None


def test_errors_reach_the_sdk_as_openai_errors(
    client: openai.OpenAI, upstream: GeminiServer
) -> None:
    upstream.script(GeminiReply.error(400, "Invalid value at 'generation_config.top_p'"))
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=HI, top_p=7)
    assert "gemini" in str(refused.value)
    upstream.script(GeminiReply.error(429, "Quota exceeded", retry_delay="120s"))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert limited.value.response.headers["retry-after"] == "120"
