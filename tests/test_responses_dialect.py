"""The Responses dialect's translation, checked against the openai SDK: the requests it
reads, and the documents and event streams it writes, which the SDK must parse (its
models validate the documents; its stream helper, which refuses items completed out of
order, reads the events from a real local HTTP server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.errors import InvalidRequestError

from ._internals import responses
from ._support import ReplayServer

openai = pytest.importorskip("openai")


def chunk(
    content: str | None = None, *, calls: Any = None, finish: str | None = None, usage: Any = None
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
        "usage": usage,
    }


USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


# -- requests --------------------------------------------------------------------------------


def test_a_string_input_with_instructions_is_a_system_and_a_user_message() -> None:
    request = responses.chat_request(
        {"model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 50}
    )
    assert request.chat == {
        "model": "m",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 50,
    }
    assert not request.stream


def test_items_become_chat_messages_with_calls_grouped_in_one_assistant_turn() -> None:
    request = responses.chat_request(
        {
            "model": "m",
            "stream": True,
            "input": [
                {"role": "developer", "content": "rules"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "look at "},
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,AA==",
                            "detail": "low",
                        },
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "weather",
                    "arguments": '{"city":"Oslo"}',
                },
                {
                    "type": "function_call",
                    "call_id": "c2",
                    "name": "weather",
                    "arguments": '{"city":"Rome"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": "cold"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "warm"}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "reasoning": {"effort": "low"},
            "store": True,
        }
    )
    chat = request.chat
    assert chat["messages"] == [
        {"role": "system", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look at "},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA==", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "cold"},
        {"role": "tool", "tool_call_id": "c2", "content": "warm"},
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "The weather in a city",
                "parameters": WEATHER["parameters"],
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert "store" not in chat


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (
            {"model": "m", "input": "hi", "previous_response_id": "resp_1"},
            "previous_response_id",
            "send the whole conversation",
        ),
        ({"model": "m", "input": "hi", "conversation": "conv_1"}, "conversation", "stores no"),
        ({"model": "m", "input": "hi", "frequency_penalty": 1}, "frequency_penalty", "not a field"),
        ({"model": "m", "input": []}, "input", "non-empty list"),
        ({"input": "hi"}, "model", "model name"),
        ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "tools", "function"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input", "stored"),
        ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input", "role"),
        (
            {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input",
            "call_id",
        ),
        ({"model": "m", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "auto"),
        ({"model": "m", "input": "hi", "stream": "yes"}, "stream", "true or false"),
        ({"model": "m", "input": "hi", "background": True}, "background", "background"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input",
            "input_file",
        ),
    ],
)
def test_what_cannot_be_bridged_is_refused_naming_the_field(
    body: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        responses.chat_request(body)
    assert caught.value.param == param
    assert words in str(caught.value)


# -- whole answers ---------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m-upstream",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        "usage": {**USAGE, "prompt_tokens_details": {"cached_tokens": 3}},
    }


def test_a_whole_answer_is_a_response_the_sdk_parses() -> None:
    request = responses.chat_request(
        {"model": "m", "input": "hi", "tools": [WEATHER], "metadata": {"k": "v"}}
    )
    doc = responses.response_document(
        completion(
            {
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "tool_calls",
        ),
        request,
    )
    parsed = openai.types.responses.Response.model_validate(json.loads(json.dumps(doc)))
    assert parsed.status == "completed" and parsed.model == "m-upstream"
    assert parsed.output_text == "Let me look."
    message, call = parsed.output
    assert message.type == "message" and message.content[0].text == "Let me look."
    assert (call.type, call.call_id, call.name) == ("function_call", "call_9", "weather")
    assert json.loads(call.arguments) == {"city": "Oslo"}
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (11, 7)
    assert parsed.usage.input_tokens_details.cached_tokens == 3
    assert parsed.metadata == {"k": "v"} and parsed.tools[0].name == "weather"


def test_an_answer_cut_at_its_length_is_incomplete() -> None:
    request = responses.chat_request({"model": "m", "input": "hi", "max_output_tokens": 5})
    doc = responses.response_document(completion({"content": "Once upon"}, "length"), request)
    parsed = openai.types.responses.Response.model_validate(doc)
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == "max_output_tokens"
    assert parsed.max_output_tokens == 5


# -- streams, read by the SDK from a real server ----------------------------------------------


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


def stream_of(request: Any, chunks: list[dict[str, Any] | str]) -> bytes:
    events = responses.ResponseEvents(request)
    out = events.start()
    for item in chunks:
        out += events.text(item) if isinstance(item, str) else events.chunk(item)
    return out + events.finish()


def client_for(server: ReplayServer) -> Any:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def test_a_streamed_answer_with_text_and_calls_is_read_whole_by_the_sdk_helper(
    replay: ReplayServer,
) -> None:
    request = responses.chat_request(
        {"model": "m", "input": "hi", "stream": True, "tools": [WEATHER]}
    )
    replay.body = stream_of(
        request,
        [
            chunk("Let "),
            "me look.",
            chunk(
                calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"ci'},
                    }
                ]
            ),
            chunk(calls=[{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]),
            chunk(
                calls=[
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    }
                ]
            ),
            chunk(finish="tool_calls"),
            chunk(usage=USAGE) | {"choices": []},
        ],
    )
    client = client_for(replay)
    with client.responses.stream(model="m", input="hi", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "Let me look."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("call_a", {"city": "Oslo"}),
        ("call_b", {"city": "Rome"}),
    ]
    assert final.usage is not None and final.usage.total_tokens == 18
    assert final.model == "m-upstream"


def test_raw_events_parse_as_known_sdk_events_with_rising_sequence_numbers(
    replay: ReplayServer,
) -> None:
    request = responses.chat_request({"model": "m", "input": "hi", "stream": True})
    replay.body = stream_of(request, ["Hel", "lo", chunk(finish="length")])
    events = list(client_for(replay).responses.create(model="m", input="hi", stream=True))
    known = openai.types.responses.ResponseStreamEvent.__args__  # the union's members
    assert all(isinstance(event, known) for event in events)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].response.output[0].content[0].text == "Hello"


def test_a_stream_that_breaks_ends_with_response_failed_in_the_gateways_words() -> None:
    request = responses.chat_request({"model": "m", "input": "hi", "stream": True})
    events = responses.ResponseEvents(request)
    body = events.start() + events.text("par") + events.fail("server_error", "the upstream broke")
    last = body.split(b"\n\n")[-2]
    assert last.startswith(b"event: response.failed\ndata: ")
    doc = json.loads(last.split(b"data: ", 1)[1])
    parsed = openai.types.responses.ResponseFailedEvent.model_validate(doc)
    assert parsed.response.status == "failed"
    assert parsed.response.error is not None
    assert parsed.response.error.message == "the upstream broke"
    assert b"response.completed" not in body
