"""The stand-in checked against the official ``anthropic`` SDK: the SDK, pointed at
:class:`providerhub.testing.AnthropicServer`, must parse its answers into the objects the
real API gives it (messages, streams of text and tool use, errors as its exception
classes). The plugin's tests trust the stand-in; these keep it honest. Skipped where the
SDK is not installed (Python 3.9, which it does not support)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.testing import AnthropicReply, AnthropicServer

anthropic = pytest.importorskip("anthropic")

KEY = "sk-ant-test-0123456789abcdef"  # the stand-in's key (conftest.py)
MODEL = "claude-sonnet-5-5"
HI = [{"role": "user", "content": "Hi"}]
TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = {"id": "toolu_01A", "name": "get_weather", "arguments": {"city": "Oslo"}}


@pytest.fixture
def client(server: AnthropicServer) -> Iterator[Any]:
    with anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0) as sdk:
        yield sdk


def test_the_sdk_parses_a_message(client: Any, server: AnthropicServer) -> None:
    server.script(AnthropicReply.text("Hello", " there", thinking=["Hm"]))
    message = client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    assert isinstance(message, anthropic.types.Message)
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Hm" and message.content[1].text == "Hello there"
    assert message.stop_reason == "end_turn" and message.model == MODEL
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 2
    assert message._request_id.startswith("req_local_")
    # The SDK's own request passes the stand-in's checks: its headers are the API's.
    # The SDK 2.x sends its key as a Bearer token and a later API version than the
    # plugin's (x-api-key, 2023-06-01); the stand-in, like the API, takes both.
    [request] = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["anthropic-version"] >= "2023-06-01"


def test_the_sdk_parses_tool_use(client: Any, server: AnthropicServer) -> None:
    server.script(AnthropicReply.tools(CALL, usage={"input_tokens": 7, "output_tokens": 3}))
    message = client.messages.create(model=MODEL, max_tokens=100, messages=HI, tools=[TOOL])
    [block] = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert (block.id, block.name, block.input) == ("toolu_01A", "get_weather", {"city": "Oslo"})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)


def test_the_sdk_streams_text_and_tool_use(client: Any, server: AnthropicServer) -> None:
    server.script(
        AnthropicReply.tools(CALL, chunks=["Let me ", "check ✓"], thinking=["Think", "ing"])
    )
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HI, tools=[TOOL]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "Let me check ✓"
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].thinking == "Thinking" and final.content[0].signature
    assert final.content[2].input == {"city": "Oslo"} and final.content[2].id == "toolu_01A"
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 3


def test_the_sdk_reads_the_raw_event_grammar(client: Any, server: AnthropicServer) -> None:
    server.script(AnthropicReply.text("a", "b"))
    events = list(client.messages.create(model=MODEL, max_tokens=100, messages=HI, stream=True))
    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]  # the ping in between is passed over by the SDK, as the API documents
    assert isinstance(events[0], anthropic.types.RawMessageStartEvent)
    assert events[2].delta.text == "a" and events[5].delta.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (AnthropicReply.error(529, "Overloaded"), "OverloadedError"),
        (AnthropicReply.error(503, "Overloaded"), "ServiceUnavailableError"),
        (AnthropicReply.error(429, "slow down", retry_after="9"), "RateLimitError"),
        (AnthropicReply.error(401, "invalid x-api-key"), "AuthenticationError"),
        (AnthropicReply.error(403, "not allowed"), "PermissionDeniedError"),
        (AnthropicReply.error(400, "max_tokens: too big"), "BadRequestError"),
        (AnthropicReply.error(500, "oops"), "InternalServerError"),
    ],
)
def test_error_statuses_become_the_sdk_exceptions(
    client: Any, server: AnthropicServer, reply: AnthropicReply, kind: str
) -> None:
    server.script(reply)
    with pytest.raises(getattr(anthropic, kind)) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=HI)
    error = info.value
    assert error.status_code == reply.status
    assert error.body["error"]["type"] == reply.error_type
    assert error.request_id.startswith("req_local_")
    if reply.status == 429:
        assert error.response.headers["retry-after"] == "9"


def test_the_stand_in_refuses_what_the_api_refuses(server: AnthropicServer) -> None:
    wrong = anthropic.Anthropic(api_key="sk-ant-wrong", base_url=server.url, max_retries=0)
    with wrong, pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(model=MODEL, max_tokens=100, messages=HI)
    sdk = anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0)
    with sdk, pytest.raises(anthropic.NotFoundError):
        sdk.messages.count_tokens(model=MODEL, messages=HI)  # not served here
    assert server.pending == 0


def test_the_sdk_lists_the_stand_ins_models(client: Any, server: AnthropicServer) -> None:
    server.models = ["claude-opus-5-5", "claude-haiku-4-5"]
    page = client.models.list()
    assert [model.id for model in page.data] == ["claude-opus-5-5", "claude-haiku-4-5"]
    assert all(model.type == "model" for model in page.data) and not page.has_more


def test_an_error_event_mid_stream_raises_in_the_sdk(client: Any, server: AnthropicServer) -> None:
    server.script(AnthropicReply.text("a", "b", fault="error_event", after=1))
    got = []
    stream = client.messages.stream(model=MODEL, max_tokens=100, messages=HI)
    with pytest.raises(anthropic.APIStatusError) as info, stream as s:
        got.extend(s.text_stream)
    assert got == ["a"] and info.value.body["error"]["type"] == "overloaded_error"


def test_the_async_sdk_streams_from_the_stand_in(server: AnthropicServer) -> None:
    async def main() -> tuple[str, Any]:
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=server.url, max_retries=0) as sdk:
            server.script(AnthropicReply.tools(CALL, chunks=["ok"]))
            async with sdk.messages.stream(
                model=MODEL, max_tokens=100, messages=HI, tools=[TOOL]
            ) as s:
                text = "".join([piece async for piece in s.text_stream])
                return text, await s.get_final_message()

    text, final = asyncio.run(main())
    assert text == "ok" and final.content[1].input == {"city": "Oslo"}
