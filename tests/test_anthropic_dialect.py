"""The Messages dialect the gateway serves, checked against the anthropic SDK: the requests
it reads, and the messages and event streams it writes, which the SDK must parse (its
models validate the documents; its stream helper, which rebuilds the message from the
events and parses each tool's input, reads them from a real local HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.errors import InvalidRequestError

from ._internals import anthropic_gateway as dialect
from ._support import ReplayServer

anthropic = pytest.importorskip("anthropic")

USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 9,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 5},
}
WEATHER = {
    "name": "weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def chunk(
    content: str | None = None, *, calls: Any = None, finish: str | None = None
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if calls is not None:
        delta["tool_calls"] = calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m-upstream",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


# -- requests --------------------------------------------------------------------------------


def test_a_conversation_with_tools_becomes_chat_messages() -> None:
    request = dialect.chat_request(
        {
            "model": "claude-x",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather here? "},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "text", "text": "Looking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "weather",
                            "input": {"city": "Oslo"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "weather",
                            "input": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "cold"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "is_error": True,
                            "content": [{"type": "text", "text": "no data"}],
                        },
                        {"type": "text", "text": "And?"},
                    ],
                },
            ],
            "tools": [WEATHER],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "stop_sequences": ["END"],
            "top_k": 5,
            "metadata": {"user_id": "u1"},
            "stream": True,
        }
    )
    assert request.chat == {
        "model": "claude-x",
        "max_tokens": 300,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here? "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": "Looking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "cold"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
            {"role": "user", "content": "And?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "parameters": WEATHER["input_schema"],
                    "description": "The weather in a city",
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "stop": ["END"],
        "user": "u1",
    }
    assert request.original["top_k"] == 5  # kept for a provider that speaks Messages


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            "max_tokens",
            "Field required",
        ),
        (
            {"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]},
            "max_tokens",
            "at least 1",
        ),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages", "non-empty"),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "frequency_penalty": 1,
            },
            "frequency_penalty",
            "Extra inputs",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]},
            "messages",
            "user or assistant",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools",
            "Anthropic runs itself",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "tool_choice": {"type": "sometimes"},
            },
            "tool_choice",
            "auto",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}],
            },
            "messages",
            "'document' block",
        ),
    ],
)
def test_what_cannot_be_bridged_is_refused_naming_the_field(
    body: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        dialect.chat_request(body)
    assert caught.value.param == param
    assert words in str(caught.value)


# -- whole answers ---------------------------------------------------------------------------


def test_text_and_tool_calls_are_one_message_stopped_for_the_tool() -> None:
    request = dialect.chat_request(
        {"model": "claude-x", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
    )
    completion = {
        "id": "c",
        "model": "m-upstream",
        "choices": [
            {
                "index": 0,
                # Some upstreams say "stop" after calling a tool; a client must see tool_use.
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "Looking.",
                    "tool_calls": [
                        {
                            "id": "call_7",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
            }
        ],
        "usage": USAGE,
    }
    message = anthropic.types.Message.model_validate(dialect.message_document(completion, request))
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.type == "text" and text.text == "Looking."
    assert (tool.type, tool.id, tool.name, tool.input) == (
        "tool_use",
        "call_7",
        "weather",
        {"city": "Oslo"},
    )
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (15, 5, 9)


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_finish_reasons_map_to_stop_reasons(finish: str, reason: str) -> None:
    request = dialect.chat_request(
        {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}
    )
    completion = {
        "model": "m",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"content": "x"}}],
    }
    doc = dialect.message_document(completion, request)
    assert anthropic.types.Message.model_validate(doc).stop_reason == reason


def test_errors_have_anthropics_shape_and_types() -> None:
    assert dialect.error_document(404, "no such model") == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "no such model"},
    }
    assert [dialect.error_type(s) for s in (400, 401, 403, 429, 500, 502, 503, 529)] == [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "rate_limit_error",
        "api_error",
        "api_error",
        "overloaded_error",
        "overloaded_error",
    ]


def test_the_token_count_grows_with_the_text_and_counts_images() -> None:
    def count(content: Any) -> int:
        return dialect.count_tokens(
            dialect.chat_request(
                {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": content}]}
            )
        )

    assert count("a" * 400) == 100 + 4
    image = {"type": "image", "source": {"type": "url", "url": "https://x.invalid/a.png"}}
    assert count([{"type": "text", "text": "a" * 40}, image]) == 10 + 4 + 1600


# -- streams, read by the SDK from a real server ----------------------------------------------


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


def client_for(server: ReplayServer) -> Any:
    return anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0)


ASK = {"model": "claude-x", "max_tokens": 99, "messages": [{"role": "user", "content": "hi"}]}


def test_a_stream_with_text_and_tool_use_is_rebuilt_by_the_sdk(
    replay: ReplayServer,
) -> None:
    events = dialect.MessageEvents(dialect.chat_request({**ASK, "stream": True}))
    body = events.start()
    body += events.chunk(chunk("Let me "))
    body += events.text("look.")
    body += events.chunk(
        chunk(
            calls=[
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        )
    )
    body += events.chunk(chunk(calls=[{"index": 0, "function": {"arguments": '{"city":'}}]))
    body += events.chunk(chunk(calls=[{"index": 0, "function": {"arguments": '"Oslo"}'}}]))
    body += events.chunk(
        chunk(
            calls=[
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "time", "arguments": "{}"},
                }
            ]
        )
    )
    body += events.chunk(chunk(finish="tool_calls"))
    body += events.chunk({"choices": [], "usage": USAGE})
    replay.body = body + events.finish()
    client = client_for(replay)
    with client.messages.stream(**ASK) as stream:
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        message = stream.get_final_message()
    assert kinds == [
        ("message_start", None),
        ("content_block_start", None),
        ("content_block_delta", "text_delta"),
        ("text", None),
        ("content_block_delta", "text_delta"),
        ("text", None),
        ("content_block_stop", None),
        ("content_block_start", None),
        ("content_block_delta", "input_json_delta"),
        ("input_json", None),
        ("content_block_delta", "input_json_delta"),
        ("input_json", None),
        ("content_block_stop", None),
        ("content_block_start", None),
        ("content_block_delta", "input_json_delta"),
        ("input_json", None),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me look."
    assert (message.content[1].id, message.content[1].input) == ("call_a", {"city": "Oslo"})
    assert (message.content[2].name, message.content[2].input) == ("time", {})
    assert message.usage.output_tokens == 9 and message.usage.cache_read_input_tokens == 5


def test_raw_events_are_the_sdks_known_events_and_a_break_raises(
    replay: ReplayServer,
) -> None:
    events = dialect.MessageEvents(dialect.chat_request({**ASK, "stream": True}))
    replay.body = events.start() + events.text("par") + events.fail(503, "the provider broke")
    client = client_for(replay)
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client.messages.create(**ASK, stream=True):
            seen.append(event)
    assert [e.type for e in seen] == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "the provider broke"},
    }
    known = anthropic.types.RawMessageStreamEvent.__args__[0].__args__
    assert all(isinstance(event, known) for event in seen)
