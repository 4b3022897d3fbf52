"""The Anthropic plugin against a real local stand-in of the Messages API
(:class:`providerhub.testing.AnthropicServer`): through ``create``, ``acreate`` and the
``Client``, the request bodies it sends for each translation rule, the answers it gives
back, and each failure as a typed error naming it."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import pytest

import providerhub
import providerhub_anthropic as plugin
from providerhub.testing import AnthropicReply, AnthropicServer, check_provider

KEY = "sk-ant-test-0123456789abcdef"  # the stand-in's key (conftest.py)
MODEL = "claude-sonnet-5-5"
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "toolu_01A", "name": "get_weather", "arguments": {"city": "Oslo"}}
USAGE = {
    "input_tokens": 20,
    "cache_creation_input_tokens": 5,
    "cache_read_input_tokens": 3,
    "output_tokens": 9,
}


def sockets() -> int:
    """Open sockets of this process (client and in-process server sides alike)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed between the listing and the look
    return count


def threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def test_the_declaration_and_its_entry_point() -> None:
    with providerhub.Hub() as hub:
        provider = hub.providers["anthropic"]
    assert provider.obj is plugin.provider
    assert provider.distribution == "providerhub-anthropic"
    assert plugin.provider.endpoint == "https://api.anthropic.com/v1/messages"
    assert plugin.provider.codec == "anthropic-messages"
    assert provider.capabilities["supports_tools"] and provider.capabilities["supports_vision"]
    assert provider.needs_auth and plugin.provider.api_key_env == "ANTHROPIC_API_KEY"
    assert {"claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-4-5"} <= set(
        plugin.provider.model
    )


def test_module_level_create_and_acreate_reach_the_stand_in(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # the SDK's variable is enough
    server.script(AnthropicReply.text("Hello", " there"))
    assert providerhub.create(MODEL, HI) == "Hello there"

    async def main() -> tuple[str, list[str]]:
        server.script(AnthropicReply.text("Hi"), AnthropicReply.text("a", "b", "c"))
        whole = await providerhub.acreate(MODEL, HI)
        pieces = [piece async for piece in providerhub.acreate(MODEL, HI, stream=True)]
        return whole, pieces

    assert asyncio.run(main()) == ("Hi", ["a", "b", "c"])
    first = server.requests[0]
    assert first.path == "/v1/messages"
    assert first.headers["x-api-key"] == KEY and "Authorization" not in first.headers
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.json() == {"model": MODEL, "max_tokens": 4096, "messages": HI}
    assert server.requests[2].json()["stream"] is True


def test_a_stream_arrives_piece_by_piece_and_leaves_nothing_open(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    server.script(AnthropicReply.text("warm", "-up"))
    assert hub.create(MODEL, HI) == "warm-up"  # the pool's connection is made
    before_threads, before_sockets = threads(), sockets()
    server.script(AnthropicReply.text("Hé", " wörld", " 🌍"))
    with hub.create(MODEL, HI, stream=True) as stream:
        assert list(stream) == ["Hé", " wörld", " 🌍"]
    assert sockets() <= before_sockets
    assert {t for t in threads() - before_threads if not t.daemon} == set()


def test_a_stream_sent_a_byte_at_a_time_gives_the_same_answer(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    client = providerhub.Client(hub)
    reply = AnthropicReply.tools(
        CALL, chunks=["Let me ", "look ✓"], thinking=["Hm"], usage=USAGE, split=True
    )
    server.script(reply)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(c.choices[0].delta.reasoning_content or "" for c in chunks if c.choices)
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert (text, reasoning) == ("Let me look ✓", "Hm")
    assert [t.id for t in calls if t.id] == ["toolu_01A"]
    arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.to_dict() == {
        "prompt_tokens": 28,
        "completion_tokens": 9,
        "total_tokens": 37,
        "prompt_tokens_details": {"cached_tokens": 3, "cache_creation_tokens": 5},
    }


def test_the_client_gets_tool_calls_usage_and_finish(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    client = providerhub.Client(hub)
    server.script(AnthropicReply.tools(CALL, chunks=["Checking."], usage=USAGE))
    r = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
    message = r.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls is not None
    [call] = message.tool_calls
    assert (call.id, call.function.name) == ("toolu_01A", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (28, 9)
    assert r.provider == "anthropic"
    for stop, finish in [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")]:
        server.script(AnthropicReply.text("x", stop_reason=stop))
        r = client.chat.completions.create(model=MODEL, messages=HI)
        assert r.choices[0].finish_reason == finish


def test_thinking_is_reasoning_content_and_never_content(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    client = providerhub.Client(hub)
    server.script(AnthropicReply.text("42", thinking=["Six ", "times seven"]))
    r = client.chat.completions.create(
        model=MODEL, messages=HI, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert r.choices[0].message.content == "42"
    assert r.choices[0].message.reasoning_content == "Six times seven"
    assert server.requests[-1].json()["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    # create() gives the text alone.
    server.script(AnthropicReply.text("42", thinking=["Six"]))
    assert hub.create(MODEL, HI) == "42"


def test_a_tool_result_round_trip(hub: providerhub.Hub, server: AnthropicServer) -> None:
    client = providerhub.Client(hub)
    server.script(AnthropicReply.tools(CALL))
    first = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
    assert first.choices[0].message.tool_calls is not None
    messages = [
        *HI,
        first.choices[0].message.to_dict(),
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "Sunny, 21 °C"},
    ]
    server.script(AnthropicReply.text("It is sunny."))
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is sunny."
    sent = server.requests[-1].json()["messages"]
    assert sent == [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "Sunny, 21 °C"}
            ],
        },
    ]


def test_every_translation_rule_reaches_the_wire(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    client = providerhub.Client(hub)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Prefer tools."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://img.example/b.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "b", "arguments": '{"n": 2}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "one"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "two"},
    ]
    server.script(AnthropicReply.text("ok"))
    client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stop=["\n\nHuman:"],
        max_tokens=300,
        temperature=0.2,
        top_p=0.5,
        top_k=40,
    )
    body = server.requests[-1].json()
    assert body == {
        "model": MODEL,
        "max_tokens": 300,
        "system": [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Prefer tools."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/jpeg",
                            "data": "/9j/4AAQ",
                        },
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://img.example/b.png"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}},
                    {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {"n": 2}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "The weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.2,
        "top_p": 0.5,
        "top_k": 40,
    }
    for choice, sent in [("auto", "auto"), ("required", "any"), ("none", "none")]:
        server.script(AnthropicReply.text("ok"))
        client.chat.completions.create(
            model=MODEL, messages=HI, tools=[WEATHER], tool_choice=choice, stop="END"
        )
        body = server.requests[-1].json()
        assert body["tool_choice"] == {"type": sent} and body["stop_sequences"] == ["END"]


def test_what_cannot_be_sent_is_refused_before_any_request(
    hub: providerhub.Hub, server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for params, says in [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"temperature": 1.7}, "between 0 and 1"),
        ({"logprobs": True}, "logprobs"),
    ]:
        with pytest.raises(providerhub.InvalidRequestError, match=says):
            hub.create(MODEL, HI, **params)
    monkeypatch.delenv("PROVIDERHUB_ANTHROPIC_API_KEY")
    with pytest.raises(providerhub.ProviderHubError, match="ANTHROPIC_API_KEY"):
        hub.create(MODEL, HI, provider="anthropic")
    assert server.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_is_an_authentication_error(
    hub: providerhub.Hub, server: AnthropicServer, status: int
) -> None:
    server.script(AnthropicReply.error(status, "invalid x-api-key " + KEY))
    with pytest.raises(providerhub.AuthenticationError) as info:
        hub.create(MODEL, HI)
    error = info.value
    assert error.provider == "anthropic" and error.status_code == status
    assert "PROVIDERHUB_ANTHROPIC_API_KEY" in str(error) and KEY not in str(error)
    assert "request-id req_local_" in str(error)


def test_the_stand_in_refuses_a_wrong_key_as_the_api_does(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    with pytest.raises(providerhub.AuthenticationError, match="authentication_error"):
        hub.create(MODEL, HI, auth={"anthropic": "sk-ant-wrong-key-000"})


def test_429_honours_retry_after(hub: providerhub.Hub, server: AnthropicServer) -> None:
    server.script(AnthropicReply.error(429, "Number of requests exceeded", retry_after="17"))
    with pytest.raises(providerhub.RateLimitError) as info:
        hub.create(MODEL, HI)
    assert info.value.retry_after == 17 and "rate_limit_error" in str(info.value)


@pytest.mark.parametrize("status", [529, 503])
def test_overloaded_is_retried(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", server.url)
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_API_KEY", KEY)
    with providerhub.Hub(load_entrypoints=False, retries=1) as hub:
        hub.register_plugin(plugin, name="anthropic")
        server.script(AnthropicReply.error(status, "Overloaded"), AnthropicReply.text("fine"))
        assert hub.create(MODEL, HI) == "fine"
        assert len(server.requests) == 2
        # A stream whose first event is the error is retried as well: nothing had arrived.
        server.script(AnthropicReply.text("a", fault="error_event", after=0))
        server.script(AnthropicReply.text("b"))
        assert list(hub.create(MODEL, HI, stream=True)) == ["b"]
    assert len(server.requests) == 4


def test_an_error_event_mid_stream_interrupts_it(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    server.script(AnthropicReply.text("a", "b", "c", fault="error_event", after=2))
    got: list[str] = []
    with pytest.raises(providerhub.StreamInterruptedError, match="overloaded_error") as info:
        for piece in hub.create(MODEL, HI, stream=True):
            got.append(piece)
    assert got == ["a", "b"] and info.value.provider == "anthropic"


def test_a_stream_without_message_stop_never_ends_quietly(
    hub: providerhub.Hub, server: AnthropicServer
) -> None:
    server.script(AnthropicReply.text("a", "b", "c", fault="cut", after=2))
    got: list[str] = []
    with pytest.raises(providerhub.StreamInterruptedError, match="message_stop"):
        for piece in hub.create(MODEL, HI, stream=True):
            got.append(piece)
    assert got == ["a", "b"]

    async def main() -> list[str]:
        server.script(AnthropicReply.text("x", "y", fault="cut", after=1))
        return [piece async for piece in hub.acreate(MODEL, HI, stream=True)]

    with pytest.raises(providerhub.StreamInterruptedError):
        asyncio.run(main())


def test_the_async_client_streams_tool_calls(hub: providerhub.Hub, server: AnthropicServer) -> None:
    async def main() -> tuple[list[Any], Any]:
        client = providerhub.AsyncClient(hub)
        server.script(AnthropicReply.tools(CALL, usage=USAGE))
        stream = await client.chat.completions.create(
            model=MODEL, messages=HI, tools=[WEATHER], stream=True
        )
        chunks = [chunk async for chunk in stream]
        server.script(AnthropicReply.tools(CALL, usage=USAGE))
        whole = await client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
        return chunks, whole

    chunks, whole = asyncio.run(main())
    calls = [t for c in chunks for t in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "toolu_01A" and calls[0].function.name == "get_weather"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert whole.choices[0].message.tool_calls[0].id == "toolu_01A"
    assert whole.usage.total_tokens == 37


def test_it_passes_the_conformance_check(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", server.url)
    report = check_provider(plugin.provider, openai_compatible=False, auth=KEY)
    assert report.name == "anthropic" and not report.openai_compatible
    assert {"contract", "params", "non-stream", "stream", "credentials", "logs"} <= set(
        report.passed
    )
    # The check's calls reached the stand-in, the one with the fake key refused there.
    assert any(r.headers.get("x-api-key") == KEY for r in server.requests)
    assert any(r.headers.get("x-api-key") not in (None, KEY) for r in server.requests)


def test_the_async_path_types_the_same_errors(
    server: AnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", server.url)
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_API_KEY", KEY)

    async def main(reply: AnthropicReply) -> BaseException:
        server.script(reply)
        # A hub each: a refused key opens the breaker, which would turn the next away.
        with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
            hub.register_plugin(plugin, name="anthropic")
            try:
                await hub.acreate(MODEL, HI)
            except providerhub.ProviderError as exc:
                return exc
        raise AssertionError("no error")

    limited = asyncio.run(main(AnthropicReply.error(429, "slow", retry_after="11")))
    assert isinstance(limited, providerhub.RateLimitError) and limited.retry_after == 11
    denied = asyncio.run(main(AnthropicReply.error(401, "invalid x-api-key")))
    assert isinstance(denied, providerhub.AuthenticationError)
    overloaded = asyncio.run(main(AnthropicReply.error(529, "Overloaded")))
    assert isinstance(overloaded, providerhub.ProviderHTTPError) and overloaded.transient
    assert "request-id req_local_" in str(overloaded)
