"""The gateway's client dialects, as their own SDKs see them: ``/v1/responses`` driven by
the openai SDK and ``/v1/messages`` by the anthropic SDK, unchanged, against a real
``providerhub serve`` over an OpenAI-format upstream and an Anthropic-format one (the
local stand-ins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.testing import AnthropicReply, AnthropicServer, OpenAIServer, Reply

from ._gateway import Gateway, clean_environment

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")
pytest.importorskip("providerhub_anthropic")

KEY = "sk-client-dialects"
UPSTREAM_KEY = "sk-upstream-SECRET-7373"
CLAUDE_KEY = "sk-ant-upstream-SECRET-8383"
MODEL = "gpt-3.5-turbo-16k"
CLAUDE = "claude-sonnet-5-5"
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
CALL = {"id": "call_w1", "name": "weather", "arguments": {"city": "Oslo"}}
RESPONSES_TOOL = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
MESSAGES_TOOL = {
    "name": "weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def claude_upstream() -> Iterator[AnthropicServer]:
    with AnthropicServer(api_key=CLAUDE_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    upstream: OpenAIServer,
    claude_upstream: AnthropicServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    env = clean_environment(
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_GRAVITYENGINE_API_KEY=UPSTREAM_KEY,
        PROVIDERHUB_ANTHROPIC_URL=claude_upstream.url,
        PROVIDERHUB_ANTHROPIC_API_KEY=CLAUDE_KEY,
        PROVIDERHUB_SERVER_API_KEYS=KEY,
    )
    gw = Gateway(tmp_path_factory.mktemp("dialects"), env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log() and CLAUDE_KEY not in gw.log()


@pytest.fixture
def oai(gateway: Gateway) -> Any:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0)


@pytest.fixture
def claude(gateway: Gateway) -> Any:
    return anthropic.Anthropic(base_url=gateway.url, api_key=KEY, max_retries=0)


# -- /v1/responses ---------------------------------------------------------------------------


def test_responses_create_answers_with_text_and_usage(oai: Any, upstream: OpenAIServer) -> None:
    upstream.script(Reply(chunks=["Hello ", "there."], usage=USAGE))
    response = oai.responses.create(model=MODEL, instructions="Be kind.", input="Hi")
    assert response.status == "completed"
    assert response.output_text == "Hello there."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 5)
    sent = upstream.requests[-1].json()
    assert sent["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]


def test_responses_stream_with_a_function_call_and_its_output_round_trip(
    oai: Any, upstream: OpenAIServer
) -> None:
    upstream.script(Reply(chunks=["Checking."], tool_calls=[CALL], usage=USAGE))
    with oai.responses.stream(model=MODEL, input="Weather?", tools=[RESPONSES_TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    call = next(item for item in final.output if item.type == "function_call")
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "call_w1",
        "weather",
        {"city": "Oslo"},
    )
    assert final.usage is not None and final.usage.total_tokens == 17

    upstream.script(Reply(chunks=["It is cold."]))
    again = oai.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "-3 C"},
        ],
        tools=[RESPONSES_TOOL],
    )
    assert again.output_text == "It is cold."
    sent = upstream.requests[-1].json()["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_w1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "-3 C"}


def test_responses_refuse_stored_state_with_a_400_saying_what_to_send(
    oai: Any, upstream: OpenAIServer
) -> None:
    before = len(upstream.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model=MODEL, input="Hi", previous_response_id="resp_123")
    assert caught.value.body["param"] == "previous_response_id"
    assert "send the whole conversation" in caught.value.body["message"]
    assert len(upstream.requests) == before


def test_an_upstream_refusal_is_an_openai_shaped_error_with_nothing_internal(
    oai: Any, upstream: OpenAIServer
) -> None:
    # A refusal, not a failure: nothing here cools the provider for the other tests.
    upstream.script(Reply(status=400, body='{"error": {"message": "bad at 10.0.0.7"}}'))
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model=MODEL, input="Hi")
    assert caught.value.status_code == 400
    assert "10.0.0.7" not in json.dumps(caught.value.body)
    assert upstream.url not in json.dumps(caught.value.body)


# -- /v1/messages ----------------------------------------------------------------------------


def test_messages_create_answers_in_anthropics_shape(claude: Any, upstream: OpenAIServer) -> None:
    upstream.script(Reply(chunks=["Hi ", "back."], usage=USAGE))
    message = claude.messages.create(
        model=MODEL,
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hi back."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 5)
    assert upstream.requests[-1].json()["max_tokens"] == 50


def test_messages_stream_with_tool_use_and_a_tool_result_round_trip(
    claude: Any, upstream: OpenAIServer
) -> None:
    upstream.script(Reply(chunks=["Let me check."], tool_calls=[CALL], usage=USAGE))
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    with claude.messages.stream(
        model=MODEL, max_tokens=100, messages=ask, tools=[MESSAGES_TOOL]
    ) as stream:
        kinds = [event.type for event in stream if event.type not in ("text", "input_json")]
        message = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.text == "Let me check."
    assert (tool.type, tool.id, tool.name, tool.input) == (
        "tool_use",
        "call_w1",
        "weather",
        {"city": "Oslo"},
    )

    upstream.script(Reply(chunks=["Cold."]))
    answer = claude.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[MESSAGES_TOOL],
        messages=[
            *ask,
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "-3 C"}],
            },
        ],
    )
    assert answer.content[0].text == "Cold."
    sent = upstream.requests[-1].json()["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w1", "content": "-3 C"}


def test_messages_errors_are_anthropic_errors(
    claude: Any, gateway: Gateway, upstream: OpenAIServer
) -> None:
    before = len(upstream.requests)
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["type"] == "error"
    assert missing.value.body["error"]["type"] == "not_found_error"
    # The SDK itself insists on max_tokens; another client may not.
    status, _, data = gateway.request(
        "POST",
        "/v1/messages",
        json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}).encode(),
        {"x-api-key": KEY, "content-type": "application/json"},
    )
    bad = json.loads(data)
    assert status == 400 and bad["type"] == "error"
    assert bad["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in bad["error"]["message"]
    stranger = anthropic.Anthropic(base_url=claude.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert len(upstream.requests) == before


def test_anthropic_headers_are_accepted_and_unknown_betas_ignored(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    upstream.script(Reply(chunks=["ok"]))
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    status, _, data = gateway.request(
        "POST",
        "/v1/messages",
        json.dumps(body).encode(),
        {
            "x-api-key": KEY,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "some-future-beta-2099-01-01,another",
            "content-type": "application/json",
        },
    )
    assert status == 200, data
    assert json.loads(data)["content"][0]["text"] == "ok"


def test_count_tokens_estimates_without_calling_a_provider(
    claude: Any, upstream: OpenAIServer
) -> None:
    before = len(upstream.requests)
    short = claude.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    long = claude.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "word " * 400}]
    )
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens == 500 + 4
    assert len(upstream.requests) == before


def test_the_routes_are_counted_by_name(gateway: Gateway) -> None:
    status, _, data = gateway.request("GET", "/metrics")
    text = data.decode()
    assert 'route="/v1/responses"' in text
    assert 'route="/v1/messages"' in text
    status, headers, _ = gateway.request("GET", "/v1/messages")
    assert status == 405 and headers["allow"] == "POST"


# -- over an Anthropic-format upstream ----------------------------------------------------------


def test_messages_over_the_anthropic_plugin_stream_event_by_event(
    claude: Any, claude_upstream: AnthropicServer
) -> None:
    claude_upstream.script(
        AnthropicReply(
            chunks=["Let me ", "check."],
            tool_calls=[CALL],
            usage={"input_tokens": 30, "output_tokens": 8},
        )
    )
    with claude.messages.stream(
        model=CLAUDE,
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[MESSAGES_TOOL],
    ) as stream:
        events = [
            (e.type, getattr(e, "index", None), getattr(getattr(e, "delta", None), "type", None))
            for e in stream
            if e.type not in ("text", "input_json")
        ]
        message = stream.get_final_message()
    deltas = [e for e in events if e[0] == "content_block_delta"]
    assert events[0] == ("message_start", None, None)
    assert events[-2:] == [("message_delta", None, None), ("message_stop", None, None)]
    blocks = [e for e in events if e[0] in ("content_block_start", "content_block_stop")]
    assert blocks == [
        ("content_block_start", 0, None),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_stop", 1, None),
    ]
    assert {d[2] for d in deltas if d[1] == 0} == {"text_delta"}
    assert {d[2] for d in deltas if d[1] == 1} == {"input_json_delta"}
    assert message.stop_reason == "tool_use"
    assert message.content[0].text == "Let me check."
    assert (message.content[1].name, message.content[1].input) == ("weather", {"city": "Oslo"})
    assert message.usage.output_tokens == 8
    sent = claude_upstream.requests[-1].json()
    assert sent["max_tokens"] == 200
    assert sent["tools"][0]["input_schema"] == MESSAGES_TOOL["input_schema"]


def test_responses_over_the_anthropic_plugin(oai: Any, claude_upstream: AnthropicServer) -> None:
    claude_upstream.script(AnthropicReply(chunks=["Bonjour."]))
    response = oai.responses.create(model=CLAUDE, input="Say hello in French", max_output_tokens=30)
    assert response.output_text == "Bonjour."
    assert response.status == "completed"
    assert claude_upstream.requests[-1].json()["max_tokens"] == 30


def test_messages_to_the_anthropic_plugin_pass_through_with_thinking_and_cache_control(
    claude: Any, gateway: Gateway, claude_upstream: AnthropicServer
) -> None:
    system = [{"type": "text", "text": "Long rules.", "cache_control": {"type": "ephemeral"}}]
    ask = {
        "model": CLAUDE,
        "max_tokens": 2048,
        "system": system,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Think, then answer."}],
        "extra_body": {"top_k": 7},  # a field this SDK no longer names, passed on too
    }
    claude_upstream.script(AnthropicReply(chunks=["Done."], thinking=["Let me ", "think."]))
    with claude.messages.stream(**ask, extra_headers={"anthropic-beta": "future-2099"}) as s:
        message = s.get_final_message()
    thinking, text = message.content
    assert (thinking.type, thinking.thinking, thinking.signature) == (
        "thinking",
        "Let me think.",
        "c2ln",
    )
    assert text.text == "Done."
    sent = claude_upstream.requests[-1]
    body = sent.json()
    # The client's request as it sent it: no round trip through the OpenAI shape.
    assert body["system"] == system
    assert body["thinking"] == ask["thinking"] and body["top_k"] == 7
    assert body["messages"] == ask["messages"] and body["stream"] is True
    assert sent.headers["anthropic-beta"] == "future-2099"
    assert sent.headers["x-api-key"] == CLAUDE_KEY

    claude_upstream.script(AnthropicReply(chunks=["Again."], thinking=["Hm."]))
    whole = claude.messages.create(
        **{
            **ask,
            "messages": [
                *ask["messages"],
                {"role": "assistant", "content": [b.model_dump() for b in message.content]},
                {"role": "user", "content": "And now?"},
            ],
        }
    )
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert whole.content[0].signature == "c2ln"
    # The thinking block, signature and all, went back to the provider as the client sent it.
    assert claude_upstream.requests[-1].json()["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Let me think.",
        "signature": "c2ln",
    }


def test_a_pass_through_retries_an_overloaded_provider_before_the_answer_begins(
    claude: Any, claude_upstream: AnthropicServer
) -> None:
    before = len(claude_upstream.requests)
    claude_upstream.script(
        AnthropicReply.error(529, "Overloaded", error_type="overloaded_error"),
        AnthropicReply(chunks=["Fine now."]),
    )
    with claude.messages.stream(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Fine now."
    assert len(claude_upstream.requests) == before + 2


@pytest.mark.parametrize("route", ["/v1/messages", "/v1/responses"])
def test_hostile_bodies_are_refused_in_the_routes_own_shape_before_any_upstream(
    gateway: Gateway, upstream: OpenAIServer, claude_upstream: AnthropicServer, route: str
) -> None:
    before = len(upstream.requests), len(claude_upstream.requests)
    auth = {"x-api-key": KEY, "content-type": "application/json"}
    deep = b'{"model": "m", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    bodies = [b"{not json", b"[1, 2]", deep, b'{"model": 7}']
    for body in bodies:
        status, _, data = gateway.request("POST", route, body, auth)
        doc = json.loads(data)
        assert status == 400, (body[:20], data)
        if route == "/v1/messages":
            assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
        else:
            assert doc["error"]["type"] == "invalid_request_error"
        assert upstream.url not in data.decode() and claude_upstream.url not in data.decode()
    # Past the body cap (16 MiB by default): 413, in the route's shape too.
    status, _, data = gateway.request("POST", route, b"x" * (17 * 1024 * 1024), auth)
    assert status == 413
    if route == "/v1/messages":
        assert json.loads(data)["error"]["type"] == "request_too_large"
    assert (len(upstream.requests), len(claude_upstream.requests)) == before
