"""Structured completions: the OpenAI-shaped objects, tool-call normalization, and the
assembly of a provider's pieces into completions and chunks."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import providerhub
from providerhub import Client, StructuredAnswerError
from providerhub.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Finish,
    FunctionDelta,
    ToolCallDelta,
    Usage,
)

from ._internals import Assembler, Chunker, ToolCallStream, completion_id, tool_calls_of


def concatenated(deltas: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What a user following the OpenAI docs gets: calls by index, id/name from the first
    fragment that has them, arguments concatenated."""
    stream = ToolCallStream()
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        for fragment in stream.feed(delta):
            doc = fragment.to_dict()
            call = calls.setdefault(doc["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] += doc.get("id", "")
            function = doc.get("function", {})
            call["name"] += function.get("name", "")
            call["arguments"] += function.get("arguments", "")
    return [calls[i] for i in sorted(calls)]


def frag(**fields: Any) -> dict[str, Any]:
    return {"tool_calls": [fields]}


OPENAI = [
    frag(index=0, id="call_a", type="function", function={"name": "weather", "arguments": ""}),
    frag(index=0, function={"arguments": '{"city":'}),
    frag(index=0, function={"arguments": ' "Oslo"}'}),
    frag(index=1, id="call_b", type="function", function={"name": "time", "arguments": "{}"}),
]
LLAMA_CPP = [  # id and name repeated in every fragment
    frag(index=0, id="call_a", type="function", function={"name": "weather", "arguments": ""}),
    frag(
        index=0, id="call_a", type="function", function={"name": "weather", "arguments": '{"city":'}
    ),
    frag(
        index=0, id="call_a", type="function", function={"name": "weather", "arguments": ' "Oslo"}'}
    ),
    frag(index=1, id="call_b", type="function", function={"name": "time", "arguments": "{}"}),
]
OLLAMA = [  # every call at index 0, each whole, arguments as an object
    frag(index=0, id="call_a", function={"name": "weather", "arguments": {"city": "Oslo"}}),
    frag(index=0, id="call_b", function={"name": "time", "arguments": {}}),
]
NO_INDEX = [
    frag(id="call_a", type="function", function={"name": "weather", "arguments": '{"city":'}),
    frag(function={"arguments": ' "Oslo"}'}),
    frag(id="call_b", type="function", function={"name": "time", "arguments": "{}"}),
]
LEGACY_BESIDE = [  # function_call sent next to tool_calls: the tool calls win
    {
        **frag(index=0, id="call_a", function={"name": "weather", "arguments": '{"city": "Oslo"}'}),
        "function_call": {"name": "weather", "arguments": '{"city": "Oslo"}'},
    },
    {
        **frag(index=1, id="call_b", function={"name": "time", "arguments": "{}"}),
        "function_call": {"name": "time", "arguments": "{}"},
    },
]


@pytest.mark.parametrize(
    "deltas",
    [OPENAI, LLAMA_CPP, OLLAMA, NO_INDEX, LEGACY_BESIDE],
    ids=["openai", "llama.cpp", "ollama", "no-index", "legacy-beside"],
)
def test_every_server_shape_concatenates_to_valid_calls(deltas: list[dict[str, Any]]) -> None:
    calls = concatenated(deltas)
    assert [c["name"] for c in calls] == ["weather", "time"]
    assert [c["id"] for c in calls] == ["call_a", "call_b"]
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Oslo"}, {}]


def test_id_type_and_name_come_once_in_the_first_fragment() -> None:
    stream = ToolCallStream()
    out = [f for d in LLAMA_CPP for f in stream.feed(d)]
    firsts = [f for f in out if f.id is not None]
    assert [(f.index, f.id, f.type) for f in firsts] == [
        (0, "call_a", "function"),
        (1, "call_b", "function"),
    ]
    names = [f.function.name for f in out if f.function and f.function.name]
    assert names == ["weather", "time"]


def test_a_legacy_function_call_alone_is_call_0_with_an_id() -> None:
    calls = concatenated(
        [
            {"function_call": {"name": "weather", "arguments": '{"city"'}},
            {"function_call": {"arguments": ': "Oslo"}'}},
        ]
    )
    assert calls[0]["name"] == "weather"
    assert calls[0]["id"].startswith("call_")
    assert json.loads(calls[0]["arguments"]) == {"city": "Oslo"}


def test_whole_answers_get_ids_and_text_arguments() -> None:
    calls = tool_calls_of(
        {"tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}]}
    )
    assert calls is not None
    assert calls[0].id.startswith("call_") and calls[0].type == "function"
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    assert tool_calls_of({"content": "hi"}) is None
    legacy = tool_calls_of({"function_call": {"name": "f", "arguments": "{}"}})
    assert legacy is not None and legacy[0].function.name == "f"


def test_text_only_pieces_give_stop_and_no_usage() -> None:
    assembler = Assembler()
    for piece in ["Hel", "lo"]:
        assembler.add(piece)
    r = assembler.completion("m", "p")
    assert r.choices[0].message.content == "Hello"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is None
    assert r.provider == "p"


def test_tool_call_pieces_assemble_into_a_completion_that_round_trips() -> None:
    assembler = Assembler()
    pieces = [
        ToolCallDelta(0, "call_a", "function", FunctionDelta("weather", "")),
        ToolCallDelta(0, function=FunctionDelta(arguments='{"city":')),
        ToolCallDelta(0, function=FunctionDelta(arguments=' "Oslo"}')),
        Usage(10, 5, 15),
        Finish("tool_calls"),
    ]
    for piece in pieces:
        assembler.add(piece)
    r = assembler.completion("m", "p")
    message = r.choices[0].message
    assert message.content is None
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.usage == Usage(10, 5, 15)
    doc = r.to_dict()
    assert "provider" not in doc
    assert doc["object"] == "chat.completion"
    assert doc["choices"][0]["message"]["tool_calls"][0]["type"] == "function"
    assert ChatCompletion.from_dict(json.loads(json.dumps(doc))) == r


FORKED_IDS = """
import os
from providerhub._codecs.completions import completion_id
completion_id()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, " ".join(completion_id() for _ in range(100)).encode())
    os._exit(0)
os.close(write)
with os.fdopen(read, "rb") as pipe:
    child = pipe.read().decode()
os.waitpid(pid, 0)
print(child)
print(" ".join(completion_id() for _ in range(100)))
"""
"""A fresh, single-threaded process that forks: the child's ids, then the parent's."""


def test_completion_ids_are_openai_shaped_unique_and_new_in_a_forked_child() -> None:
    ids = [completion_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"chatcmpl-[0-9a-f]{24}", i) for i in ids)
    if not hasattr(os, "fork"):
        return
    # A forked worker (a server's) must not repeat the ids its parent goes on giving.
    out = subprocess.run(
        [sys.executable, "-c", FORKED_IDS], capture_output=True, text=True, timeout=30, check=True
    )
    child, parent = (line.split() for line in out.stdout.splitlines())
    assert len(child) == len(parent) == 100
    assert {i[:21] for i in child}.isdisjoint({i[:21] for i in parent})  # a prefix of its own


def test_chunks_follow_openai_and_end_with_usage_when_asked() -> None:
    chunker = Chunker("m", include_usage=True)
    chunks = []
    for piece in [
        "Hi",
        ToolCallDelta(0, "call_a", "function", FunctionDelta("f", "{}")),
        Usage(1, 2, 3),
    ]:
        chunks += chunker.feed(piece)
    chunks += chunker.end()
    docs = [json.loads(json.dumps(c.to_dict())) for c in chunks]
    assert docs[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert docs[1]["choices"][0]["delta"]["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": "{}",
    }
    assert docs[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert docs[-1]["choices"] == [] and docs[-1]["usage"]["total_tokens"] == 3
    assert len({d["id"] for d in docs}) == 1
    assert all(d["object"] == "chat.completion.chunk" for d in docs)
    assert [ChatCompletionChunk.from_dict(d) for d in docs] == chunks


def test_with_include_usage_but_no_usage_reported_there_is_no_usage_chunk() -> None:
    # llama.cpp's server ignores include_usage: no counts of None are made up for it.
    chunker = Chunker("m", include_usage=True)
    chunks = chunker.feed("Hi") + chunker.end()
    assert [len(c.choices) for c in chunks] == [1, 1]
    assert all(c.usage is None for c in chunks)


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    chunker = Chunker("m")
    chunks = chunker.feed("Hi") + chunker.feed(Usage(1, 2, 3)) + chunker.end()
    assert [c.choices[0].finish_reason for c in chunks] == [None, "stop"]
    assert all(c.usage is None for c in chunks)


# -- the client, over a hub -------------------------------------------------------------


TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
HI = [{"role": "user", "content": "Weather in Oslo?"}]


class Structured:
    """A provider that yields text, then a tool call in fragments, usage and a finish."""

    url = "http://127.0.0.1:9"
    model = ["m"]
    supports_stream = True
    needs_auth = False
    supports_tools = True
    honors_timeout = True

    def __init__(self, *pieces: Any) -> None:
        self.pieces = pieces or (
            "Let me look.",
            ToolCallDelta(0, "call_1", "function", FunctionDelta("weather", '{"city":')),
            ToolCallDelta(0, function=FunctionDelta(arguments=' "Oslo"}')),
            Usage(7, 3, 10),
            Finish("tool_calls"),
        )

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        yield from self.pieces


class TextOnly:
    url = "http://127.0.0.1:9"
    model = ["m"]
    supports_stream = True
    needs_auth = False
    honors_timeout = True

    def _create_completion(self, model: str, messages: list[Any], stream: bool) -> Iterator[str]:
        yield "Hel"
        yield "lo"


def test_the_client_returns_tool_calls_usage_and_the_provider(
    hub: providerhub.Hub,
) -> None:
    hub.register(Structured(), name="structured")
    r = Client(hub).chat.completions.create(model="m", messages=HI, tools=TOOLS)
    assert r.provider == "structured"
    message = r.choices[0].message
    assert message.content == "Let me look."
    assert message.tool_calls is not None
    assert (message.tool_calls[0].id, message.tool_calls[0].function.name) == ("call_1", "weather")
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.usage is not None and r.usage.total_tokens == 10


def test_the_client_streams_chunks_with_usage_last(hub: providerhub.Hub) -> None:
    hub.register(Structured(), name="structured")
    chunks = list(
        Client(hub).chat.completions.create(
            model="m",
            messages=HI,
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Let me look."
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function is not None
    )
    assert json.loads(arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage == Usage(7, 3, 10)
    assert all(c.provider == "structured" for c in chunks)


def test_a_text_only_provider_stops_with_stop_and_no_usage(hub: providerhub.Hub) -> None:
    hub.register(TextOnly(), name="plain")
    r = Client(hub).chat.completions.create(model="m", messages=HI)
    assert (r.choices[0].message.content, r.choices[0].finish_reason, r.usage) == (
        "Hello",
        "stop",
        None,
    )


def test_tools_skip_a_provider_that_cannot_take_them(hub: providerhub.Hub) -> None:
    hub.register(TextOnly(), name="plain")
    with pytest.raises(providerhub.NoProviderError) as info:
        Client(hub).chat.completions.create(model="m", messages=HI, tools=TOOLS)
    assert "plain: cannot serve this request: it does not take tools" in str(info.value)
    assert "(no supports_tools)" in str(info.value)


def test_a_refusal_for_want_of_a_capability_names_the_setting_that_turns_it_on(
    hub: providerhub.Hub,
) -> None:
    configurable = TextOnly()
    configurable.capability_settings = {  # type: ignore[attr-defined]
        "supports_tools": "set tools = true in its [endpoints.plain] table"
    }
    hub.register(configurable, name="plain")
    odd = TextOnly()
    odd.capability_settings = ["not a mapping"]  # type: ignore[attr-defined]
    hub.register(odd, name="odd")
    with pytest.raises(providerhub.NoProviderError) as info:
        Client(hub).chat.completions.create(model="m", messages=HI, tools=TOOLS)
    assert info.value.reasons == {
        "plain": "cannot serve this request: it does not take tools (supports_tools is off: "
        "set tools = true in its [endpoints.plain] table)",
        "odd": "cannot serve this request: it does not take tools (no supports_tools)",
    }


def test_create_says_what_to_use_instead_of_dropping_tool_calls(hub: providerhub.Hub) -> None:
    hub.register(Structured(), name="structured")
    with pytest.raises(StructuredAnswerError) as info:
        hub.create("m", HI, tools=TOOLS)
    assert "chat.completions.create" in str(info.value)
    assert info.value.completion.choices[0].message.tool_calls is not None
    stream = hub.create("m", HI, tools=TOOLS, stream=True)
    assert next(stream) == "Let me look."
    with pytest.raises(StructuredAnswerError):
        next(stream)


def test_text_answers_from_a_structured_provider_still_come_as_text(hub: providerhub.Hub) -> None:
    hub.register(Structured("Hi", Usage(1, 1, 2), Finish("length")), name="structured")
    assert hub.create("m", HI) == "Hi"
    assert list(hub.create("m", HI, stream=True)) == ["Hi"]
    r = Client(hub).chat.completions.create(model="m", messages=HI)
    assert r.choices[0].finish_reason == "length"


def test_the_async_client_is_the_same_with_await(hub: providerhub.Hub) -> None:
    hub.register(Structured(), name="structured")
    client = providerhub.AsyncClient(hub)

    async def run() -> tuple[Any, list[Any]]:
        whole = await client.chat.completions.create(model="m", messages=HI, tools=TOOLS)
        stream = await client.chat.completions.create(
            model="m", messages=HI, tools=TOOLS, stream=True
        )
        return whole, [chunk async for chunk in stream]

    whole, chunks = asyncio.run(run())
    assert whole.choices[0].message.tool_calls[0].function.name == "weather"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
