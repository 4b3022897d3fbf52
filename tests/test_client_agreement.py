"""The client against the openai SDK, both talking to the same local server: the same
answers, the same tool calls, usage and stops, in documents and in streams; and the same
calls whatever dialect of tool-call streaming the server speaks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import providerhub
from providerhub import Client
from providerhub.plugin import chat_completion
from providerhub.testing import DIALECTS, OpenAIServer, Reply

# The server extra's and the SDK's packages; the Python 3.9 run of .ci/run installs the
# core's tests only.
openai = pytest.importorskip("openai")

MODEL = "local-model"
HI = [{"role": "user", "content": "Weather in Oslo and the time?"}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
CALLS = (
    {"id": "call_w", "name": "get_weather", "arguments": {"city": "Oslo"}},
    {"id": "call_t", "name": "get_time", "arguments": {"zone": "CET"}},
)
USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}


class Local:
    """Any OpenAI-compatible endpoint, on the test server."""

    model = [MODEL]
    supports_stream = True
    needs_auth = False
    supports_tools = True
    yields_pieces = True
    honors_timeout = True

    def __init__(self, server: OpenAIServer) -> None:
        self.url = server.url

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        yield from chat_completion(
            "local", self.url + "/v1/chat/completions", model, messages, stream, **kwargs
        )


@pytest.fixture
def both(hub: providerhub.Hub, server: OpenAIServer) -> tuple[Client, openai.OpenAI]:
    hub.register(Local(server), name="local")
    sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    return Client(hub), sdk


def whole(answer: Any) -> dict[str, Any]:
    """What a user reads of a whole answer."""
    choice = answer.choices[0]
    calls = choice.message.tool_calls or []
    return {
        "content": choice.message.content,
        "finish": choice.finish_reason,
        "calls": [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in calls],
        "usage": None
        if answer.usage is None
        else (
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
            answer.usage.total_tokens,
        ),
    }


def streamed(chunks: Any) -> dict[str, Any]:
    """What a user gets by concatenating deltas as the OpenAI docs say."""
    text, calls, finish, usage = "", {}, None, None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = (
                chunk.usage.prompt_tokens,
                chunk.usage.completion_tokens,
                chunk.usage.total_tokens,
            )
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "type": "", "name": "", "args": ""})
                entry["id"] += call.id or ""
                entry["type"] += call.type or ""
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["args"] += call.function.arguments or ""
    return {
        "content": text,
        "finish": finish,
        "calls": [
            (c["id"], c["type"], c["name"], json.loads(c["args"])) for _, c in sorted(calls.items())
        ],
        "usage": usage,
    }


REPLIES = {
    "text": lambda: Reply.text("It is", " sunny.", usage=USAGE),
    "tool calls": lambda: Reply.tools(*CALLS, usage=USAGE),
    "text and a tool call": lambda: Reply.tools(CALLS[0], chunks=["Let me check."], usage=USAGE),
    "length": lambda: Reply.text("It is", " su", finish_reason="length", usage=USAGE),
}


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_documents_agree_with_the_openai_sdk(
    both: tuple[Client, openai.OpenAI], server: OpenAIServer, name: str
) -> None:
    client, sdk = both
    server.script(REPLIES[name](), REPLIES[name]())
    ours = client.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS)
    theirs = sdk.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS)  # type: ignore[arg-type]
    assert whole(ours) == whole(theirs)
    assert ours.provider == "local"
    assert (
        json.loads(json.dumps(ours.to_dict()))["choices"][0]["finish_reason"]
        == whole(theirs)["finish"]
    )


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_streams_agree_with_the_openai_sdk(
    both: tuple[Client, openai.OpenAI], server: OpenAIServer, name: str
) -> None:
    client, sdk = both
    server.script(REPLIES[name](), REPLIES[name]())
    options = {"include_usage": True}
    ours = list(
        client.chat.completions.create(
            model=MODEL, messages=HI, tools=TOOLS, stream=True, stream_options=options
        )
    )
    theirs = list(
        sdk.chat.completions.create(  # type: ignore[call-overload]
            model=MODEL, messages=HI, tools=TOOLS, stream=True, stream_options=options
        )
    )
    assert streamed(ours) == streamed(theirs)
    assert ours[-1].choices == [] and ours[-1].usage is not None


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "openai"])
def test_every_dialect_reaches_the_caller_as_openai_streams_it(
    both: tuple[Client, openai.OpenAI], server: OpenAIServer, dialect: str
) -> None:
    client, _ = both
    server.script(Reply.tools(*CALLS, dialect=dialect), Reply.tools(*CALLS))
    got = streamed(
        client.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS, stream=True)
    )
    want = streamed(
        client.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS, stream=True)
    )
    assert got == want
    assert [c[2] for c in got["calls"]] == ["get_weather", "get_time"]


def test_the_openai_sdk_parses_our_to_dict(
    both: tuple[Client, openai.OpenAI], server: OpenAIServer
) -> None:
    client, _ = both
    server.script(Reply.tools(*CALLS, usage=USAGE))
    ours = client.chat.completions.create(model=MODEL, messages=HI, tools=TOOLS)
    parsed = openai.types.chat.ChatCompletion.model_validate(ours.to_dict())
    assert whole(parsed) == whole(ours)


def test_the_tools_reach_the_server_with_tool_choice(
    both: tuple[Client, openai.OpenAI], server: OpenAIServer
) -> None:
    client, _ = both
    server.script(Reply.tools(CALLS[0]))
    client.chat.completions.create(
        model=MODEL,
        messages=HI,
        tools=TOOLS,
        tool_choice="auto",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    body = server.requests[0].json()
    assert (body["tools"], body["tool_choice"], body["parallel_tool_calls"]) == (
        TOOLS,
        "auto",
        False,
    )
    assert body["response_format"] == {"type": "json_object"}
