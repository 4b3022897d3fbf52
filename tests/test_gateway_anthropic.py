"""Claude through the gateway: the openai SDK, unchanged, asks a real ``providerhub serve``
for a model the Anthropic plugin serves, against the local stand-in of the Messages API
(:class:`providerhub.testing.AnthropicServer`), and gets text, tool calls, usage and
reasoning in OpenAI's shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from providerhub.testing import AnthropicReply, AnthropicServer

from ._gateway import Gateway, clean_environment

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")
pytest.importorskip("providerhub_anthropic")

pytestmark = pytest.mark.slow  # starts a server process

CLIENT_KEY = "sk-client-anthropic-gateway"
UPSTREAM_KEY = "sk-ant-upstream-SECRET-5151"
MODEL = "claude-sonnet-5-5"
HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {"id": "toolu_01Gw", "name": "get_weather", "arguments": {"city": "Oslo"}}
USAGE = {"input_tokens": 12, "cache_read_input_tokens": 4, "output_tokens": 6}


@pytest.fixture(scope="module")
def upstream() -> Iterator[AnthropicServer]:
    with AnthropicServer(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    upstream: AnthropicServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway-anthropic")
    (tmp / "config.toml").write_text("", encoding="utf-8")
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(tmp / "config.toml"),
        PROVIDERHUB_ANTHROPIC_URL=upstream.url,
        PROVIDERHUB_ANTHROPIC_API_KEY=UPSTREAM_KEY,
        PROVIDERHUB_SERVER_API_KEYS=CLIENT_KEY,
    )
    env.pop("ANTHROPIC_API_KEY", None)
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log()


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def test_text_and_usage_through_the_gateway(
    client: openai.OpenAI, upstream: AnthropicServer
) -> None:
    upstream.script(AnthropicReply.text("Hello", " from Claude", usage=USAGE))
    r = client.chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    assert r.choices[0].message.content == "Hello from Claude"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (16, 6, 22)
    sent = upstream.requests[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == UPSTREAM_KEY
    assert sent.json()["system"] == "Be brief." and sent.json()["max_tokens"] == 4096


def test_tool_calls_and_a_tool_result_through_the_gateway(
    client: openai.OpenAI, upstream: AnthropicServer
) -> None:
    upstream.script(AnthropicReply.tools(CALL, chunks=["Checking."], usage=USAGE))
    r = client.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS)  # type: ignore[arg-type]
    message = r.choices[0].message
    assert message.content == "Checking." and r.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    [call] = message.tool_calls
    assert (call.id, call.function.name) == ("toolu_01Gw", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert r.usage is not None and r.usage.total_tokens == 22

    upstream.script(AnthropicReply.text("Sunny."))
    follow = [
        *HI,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "21 °C, sunny"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=follow, tools=TOOLS)  # type: ignore[arg-type]
    assert r.choices[0].message.content == "Sunny."
    turns = upstream.requests[-1].json()["messages"]
    assert turns[1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_01Gw",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert turns[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Gw", "content": "21 °C, sunny"}
        ],
    }


def test_a_stream_of_text_tool_calls_reasoning_and_usage(
    client: openai.OpenAI, upstream: AnthropicServer
) -> None:
    upstream.script(
        AnthropicReply.tools(CALL, chunks=["Let me ", "look ✓"], thinking=["Hm"], usage=USAGE)
    )
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Let me look ✓"
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Hm"
    calls = [t for d in deltas for t in d.tool_calls or []]
    assert [t.id for t in calls if t.id] == ["toolu_01Gw"]
    assert json.loads("".join(t.function.arguments or "" for t in calls if t.function)) == {
        "city": "Oslo"
    }
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 22
    assert upstream.requests[-1].json()["stream"] is True
