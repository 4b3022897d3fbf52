"""The Gemini plugin through providerhub (create, acreate, Client) against the local
stand-in for Gemini's REST API: what it sends, what it gives back, and each failure typed.
test_sdk.py drives the same stand-in with Google's own SDK."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from typing import Any

import pytest

import providerhub
import providerhub_gemini
from providerhub.testing import GeminiReply, GeminiServer, Reply, check_provider

KEY = "AIza-test-key-for-the-stand-in"  # the stand-in's, as conftest.py gives it
MODEL = "gemini-2.5-flash"
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 1}},
            "required": ["city"],
        },
    },
}
USAGE = {
    "promptTokenCount": 11,
    "candidatesTokenCount": 7,
    "thoughtsTokenCount": 5,
    "totalTokenCount": 23,
}


def _sockets() -> int:
    """Open sockets of this process, the stand-in's and the client's alike."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed while we looked
    return count


def _settle(threads: int, sockets: int) -> bool:
    """Whether the thread and socket counts came back to what they were (the stand-in's
    connection threads end once their clients close)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if threading.active_count() <= threads and _sockets() <= sockets:
            return True
        time.sleep(0.01)
    return False


def test_installed_through_its_entry_point_with_its_declaration() -> None:
    with providerhub.Hub() as hub:
        provider = hub.providers["gemini"]
        assert provider.distribution == "providerhub-gemini"
        assert provider.capabilities["supports_tools"] is True
        assert provider.capabilities["supports_vision"] is True
        assert provider.capabilities["supports_stream"] is True
        assert set(providerhub_gemini.MODELS) <= set(hub.models())
    declared = providerhub_gemini.provider
    assert declared.endpoint == "https://generativelanguage.googleapis.com/v1beta/models"
    assert (declared.key_header, declared.key_scheme) == ("x-goog-api-key", "")
    assert declared.api_key_env == "GEMINI_API_KEY"


def test_create_sends_to_generate_content_with_the_key_in_a_header_only(
    pointed: GeminiServer,
) -> None:
    pointed.script(GeminiReply.text("Hello", " there"))
    # The default hub, which loads the installed plugin through its entry point.
    assert providerhub.create(MODEL, HI) == "Hello there"
    [request] = pointed.requests
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert "Authorization" not in request.headers
    assert request.json() == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_the_providerhub_key_variable_comes_before_gemini_api_key(
    hub: providerhub.Hub, pointed: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-the-wrong-one")
    monkeypatch.setenv("PROVIDERHUB_GEMINI_API_KEY", KEY)
    assert hub.create(MODEL, HI)
    assert pointed.requests[-1].headers["x-goog-api-key"] == KEY
    monkeypatch.delenv("PROVIDERHUB_GEMINI_API_KEY")
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(providerhub.NoProviderError):
        hub.create(MODEL, HI)  # the router skips a provider whose key is missing
    with pytest.raises(providerhub.InvalidRequestError, match="GEMINI_API_KEY"):
        list(hub.providers["gemini"].complete(MODEL, HI, False))
    assert len(pointed.requests) == 1


def test_a_stream_yields_each_chunk_and_asks_for_sse(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    threads, sockets = threading.active_count(), _sockets()
    pointed.script(
        GeminiReply.text("Hel", "lo, ", "wörld 😀", thoughts=["thinking..."]),
        GeminiReply.text("a", "b", "c"),
    )
    assert list(hub.create(MODEL, HI, stream=True)) == ["Hel", "lo, ", "wörld 😀"]
    assert pointed.requests[-1].path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    stream = hub.create(MODEL, HI, stream=True)
    assert next(stream) == "a"
    stream.close()  # a stream dropped mid-answer closes its response too
    hub.close()
    assert _settle(threads, sockets)


def test_a_stream_sent_one_byte_at_a_time_gives_the_same_text(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    texts = ["Hé", " ✓ ", "🎉", ' "quoted"\n']
    pointed.script(GeminiReply.text(*texts, byte_by_byte=True))
    assert "".join(hub.create(MODEL, HI, stream=True)) == "".join(texts)
    pointed.script(GeminiReply.text(*texts, byte_by_byte=True))
    assert hub.create(MODEL, HI) == "".join(texts)


def test_asyncio_whole_and_streamed(hub: providerhub.Hub, pointed: GeminiServer) -> None:
    pointed.script(
        GeminiReply.text("as", "ync"),
        GeminiReply.text("a", "b", "c"),
        GeminiReply.text("by", "te ✓", byte_by_byte=True),
    )

    async def main() -> tuple[str, list[str], str]:
        whole = await hub.acreate(MODEL, HI)
        pieces = [piece async for piece in hub.acreate(MODEL, HI, stream=True)]
        bytewise = "".join([piece async for piece in hub.acreate(MODEL, HI, stream=True)])
        return whole, pieces, bytewise

    assert asyncio.run(main()) == ("async", ["a", "b", "c"], "byte ✓")
    assert [r.path.split(":")[-1] for r in pointed.requests] == [
        "generateContent",
        "streamGenerateContent?alt=sse",
        "streamGenerateContent?alt=sse",
    ]
    assert all(KEY not in r.path for r in pointed.requests)


def test_tool_calls_get_ids_usage_and_the_finish_reason(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    client = providerhub.Client(hub)
    calls = [
        {"name": "get_weather", "args": {"city": "Oslo"}},
        {"name": "get_weather", "args": {"city": "Bergen"}},
    ]
    pointed.script(GeminiReply.tools(*calls, usage=USAGE))
    r = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    got = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls]
    assert got == [("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Bergen"})]
    ids = [c.id for c in message.tool_calls]
    assert all(i.startswith("call_") for i in ids) and len(set(ids)) == 2
    # Completion tokens count the thoughts too, as OpenAI's count reasoning tokens.
    assert r.usage is not None
    assert r.usage.to_dict() == {
        "prompt_tokens": 11,
        "completion_tokens": 12,
        "total_tokens": 23,
        "completion_tokens_details": {"reasoning_tokens": 5},
    }

    pointed.script(GeminiReply.tools(*calls, usage=USAGE))
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            tools=[WEATHER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c for chunk in chunks for ch in chunk.choices for c in ch.delta.tool_calls or ()]
    streamed = [d.id for d in deltas if d.id]
    assert len(streamed) == 2 and set(streamed).isdisjoint(ids)
    assert [ch.finish_reason for chunk in chunks for ch in chunk.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 23


def test_a_tool_result_goes_back_as_a_function_response_with_the_name(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    client = providerhub.Client(hub)
    pointed.script(GeminiReply.tools({"name": "get_weather", "args": {"city": "Oslo"}}))
    first = client.chat.completions.create(model=MODEL, messages=HI, tools=[WEATHER])
    [call] = first.choices[0].message.tool_calls or []
    messages = [
        *HI,
        first.choices[0].message.to_dict(),
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 3}'},
    ]
    pointed.script(GeminiReply.text("3 degrees."))
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "3 degrees."
    assert second.choices[0].finish_reason == "stop"
    contents = pointed.requests[-1].json()["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"celsius": 3}}}],
        },
    ]

    stray = [*messages[:2], {"role": "tool", "tool_call_id": "call_unknown", "content": "3"}]
    stray[1] = {"role": "assistant", "content": "no calls here"}
    sent = len(pointed.requests)
    with pytest.raises(providerhub.InvalidRequestError, match="matches no tool call"):
        client.chat.completions.create(model=MODEL, messages=stray)
    assert len(pointed.requests) == sent  # refused before sending


@pytest.mark.parametrize(
    ("reply", "finish"),
    [
        (GeminiReply.text("cut off", finish_reason="MAX_TOKENS"), "length"),
        (GeminiReply.text("", finish_reason="SAFETY"), "content_filter"),
        (GeminiReply.text("seen before", finish_reason="RECITATION"), "content_filter"),
        (GeminiReply(blocked="PROHIBITED_CONTENT"), "content_filter"),
        (GeminiReply.text("done"), "stop"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons(
    hub: providerhub.Hub, pointed: GeminiServer, reply: GeminiReply, finish: str, stream: bool
) -> None:
    pointed.script(reply)
    client = providerhub.Client(hub)
    if stream:
        chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
        reasons = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
        assert reasons == [finish]
    else:
        r = client.chat.completions.create(model=MODEL, messages=HI)
        assert r.choices[0].finish_reason == finish


def test_503_and_429_are_transient_and_retried(pointed: GeminiServer) -> None:
    with providerhub.Hub(load_entrypoints=False, retries=2) as hub:
        hub.register_plugin(providerhub_gemini, name="gemini")
        pointed.script(
            GeminiReply.error(503, "The model is overloaded. Please try again later."),
            GeminiReply.error(429, "Resource has been exhausted", retry_delay="0.05s"),
            GeminiReply.text("third time"),
        )
        started = time.monotonic()
        assert hub.create(MODEL, HI) == "third time"
        assert time.monotonic() - started >= 0.05  # the RetryInfo delay was waited out
    assert len(pointed.requests) == 3


def test_each_error_is_typed(pointed: GeminiServer) -> None:
    def fails(reply: GeminiReply) -> providerhub.ProviderError:
        pointed.script(reply)
        # A hub each, so that no failure sends the provider to cool down for the next.
        with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
            hub.register_plugin(providerhub_gemini, name="gemini")
            with pytest.raises(providerhub.ProviderError) as info:
                hub.create(MODEL, HI)
        assert info.value.provider == "gemini"
        return info.value

    limited = fails(GeminiReply.error(429, "Quota exceeded", retry_delay="37s"))
    assert isinstance(limited, providerhub.RateLimitError) and limited.retry_after == 37
    assert "RESOURCE_EXHAUSTED: Quota exceeded" in str(limited)
    header = fails(GeminiReply.error(429, "Quota", retry_delay="37s", retry_after="4"))
    assert isinstance(header, providerhub.RateLimitError) and header.retry_after == 4
    busy = fails(GeminiReply.error(503, "overloaded"))
    assert isinstance(busy, providerhub.ProviderHTTPError) and busy.transient
    refused = fails(GeminiReply.error(400, "Invalid value at 'generation_config'"))
    assert isinstance(refused, providerhub.ProviderHTTPError)
    assert refused.request_refused and not refused.transient
    for status in (401, 403):
        denied = fails(GeminiReply.error(status, "denied"))
        assert isinstance(denied, providerhub.AuthenticationError)
    place = fails(
        GeminiReply.error(400, "User location is not supported", status_name="FAILED_PRECONDITION")
    )
    assert not place.request_refused
    broken = fails(GeminiReply(body="<html>oops</html>", content_type="text/html"))
    assert isinstance(broken, providerhub.ProviderResponseError)


def test_a_wrong_key_is_an_authentication_error_that_does_not_show_it(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    wrong = "AIza-a-wrong-key-0123456789"
    with pytest.raises(providerhub.AuthenticationError) as info:
        hub.create(MODEL, HI, auth={"gemini": wrong})
    assert info.value.status_code == 400  # Gemini's answer to a key it does not know
    assert "API key not valid" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(vars(info.value))
    assert pointed.requests[-1].headers["x-goog-api-key"] == wrong


def test_a_stream_that_ends_without_a_finish_reason_is_interrupted(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    pointed.script(GeminiReply.text("a", "b", "c", fault="cut", after=2))
    got: list[str] = []
    with pytest.raises(providerhub.StreamInterruptedError, match="before a finishReason"):
        for piece in hub.create(MODEL, HI, stream=True):
            got.append(piece)
    assert got == ["a", "b"]
    pointed.script(GeminiReply.text("a", "b", fault="error_event", after=1))
    with pytest.raises(providerhub.StreamInterruptedError, match="UNAVAILABLE"):
        list(hub.create(MODEL, HI, stream=True))


def test_the_key_is_never_in_a_url_the_stand_in_saw(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    pointed.script(GeminiReply.text("x"), GeminiReply.text("y"), GeminiReply.error(429))
    hub.create(MODEL, HI)
    list(hub.create(MODEL, HI, stream=True))
    with pytest.raises(providerhub.RateLimitError):
        hub.create(MODEL, HI)
    assert len(pointed.requests) == 3
    for request in pointed.requests:
        assert KEY not in request.path and "key=" not in request.path
        assert request.headers["x-goog-api-key"] == KEY


def test_passes_the_conformance_check(pointed: GeminiServer) -> None:
    report = check_provider(providerhub_gemini.provider, openai_compatible=False, auth=KEY)
    assert report.name == "gemini"
    assert {"contract", "params", "non-stream", "stream", "credentials", "logs"} <= set(
        report.passed
    )


def test_every_translation_rule_in_the_body_sent(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Answer in French."},
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather there?"},
                {"type": "image_url", "image_url": {"url": image}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        {"role": "tool", "tool_call_id": "call_a", "content": '{"sky": "clear"}'},
    ]
    timer = {"type": "function", "function": {"name": "get_time"}}
    hub.create(
        MODEL,
        messages,
        tools=[WEATHER, timer],
        tool_choice="required",
        max_tokens=64,
        temperature=0.3,
        top_p=0.8,
        stop=["\n\n"],
        seed=1,
        response_format={"type": "json_object"},
        reasoning_effort="medium",
        n=1,
        user="someone",
    )
    assert pointed.requests[-1].json() == {
        "systemInstruction": {"parts": [{"text": "Answer in French."}, {"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather there?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                    {"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}},
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "The weather in a city",
                        "parametersJsonSchema": WEATHER["function"]["parameters"],  # type: ignore[index]
                    },
                    {"name": "get_time"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "maxOutputTokens": 64,
            "temperature": 0.3,
            "topP": 0.8,
            "seed": 1,
            "stopSequences": ["\n\n"],
            "responseMimeType": "application/json",
            "thinkingConfig": {"thinkingBudget": 8192},
        },
    }
    hub.create(
        MODEL,
        HI,
        tools=[WEATHER, timer],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert pointed.requests[-1].json()["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }
    for choice, mode in [("auto", "AUTO"), ("none", "NONE")]:
        hub.create(MODEL, HI, tools=[WEATHER], tool_choice=choice)
        assert pointed.requests[-1].json()["toolConfig"]["functionCallingConfig"] == {"mode": mode}


def test_what_gemini_cannot_take_is_refused_before_sending(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    url_image = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
        }
    ]
    with pytest.raises(providerhub.InvalidRequestError, match="does not fetch image urls"):
        hub.create(MODEL, url_image)
    with pytest.raises(providerhub.InvalidRequestError, match="logit_bias"):
        hub.create(MODEL, HI, logit_bias={"1": 2})
    with pytest.raises(providerhub.InvalidRequestError, match="model name"):
        list(hub.providers["gemini"].complete("../../files", HI, False))
    assert pointed.requests == []


def test_the_stand_in_reads_a_plain_reply_in_gemini_terms(
    hub: providerhub.Hub, pointed: GeminiServer
) -> None:
    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    pointed.script(Reply.text("plain", " reply", usage=usage))
    r = providerhub.Client(hub).chat.completions.create(model=MODEL, messages=HI)
    assert r.choices[0].message.content == "plain reply"
    assert r.usage is not None and r.usage.to_dict() == usage
