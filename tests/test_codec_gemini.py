"""The Gemini codec on its own: requests encoded and answers decoded from bytes, with no
server, no socket and no clock. The plugin's tests (plugins/gemini/tests) drive the same
codec through a hub against a stand-in that Google's own SDK also reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

import providerhub
from providerhub.types import Finish, ToolCallDelta, Usage

from ._internals import GEMINI, Call, Request

HI = [{"role": "user", "content": "Hi"}]
ENDPOINT = "https://generativelanguage.example/v1beta/models"
URL = ENDPOINT + "/gemini-2.5-flash:streamGenerateContent?alt=sse"
KEY = "AIza-codec-test-credential"


def _call(messages: Any = HI, stream: bool = False, structured: bool = True, **params: Any) -> Call:
    return Call(
        "gemini",
        ENDPOINT,
        "gemini-2.5-flash",
        messages,
        stream,
        params,
        auth=KEY,
        structured=structured,
    )


def _encode(messages: Any = HI, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(GEMINI.encode(_call(messages, **params)).body)
    return body


def _request(stream: bool = True, structured: bool = True) -> Request:
    return GEMINI.encode(_call(stream=stream, structured=structured))


def _event(doc: dict[str, Any]) -> bytes:
    # Google's servers end each event's lines with CRLF.
    return b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\r\n\r\n"


def _chunk(*parts: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", **extra}


USAGE = {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 13}
RECORDED = b"".join(
    [
        _event(_chunk({"text": "pondering", "thought": True})),
        _event(_chunk({"text": "Hé"}, usageMetadata={"promptTokenCount": 4})),
        _event(_chunk({"text": " wörld 🌍"})),
        _event(_chunk({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}})),
        _event(
            _chunk(
                {"text": ""},
                finish="STOP",
                usageMetadata={**USAGE, "thoughtsTokenCount": 3},
            )
        ),
    ]
)


def _decode(chunks: list[bytes], **options: Any) -> list[Any]:
    decoder = GEMINI.decoder(_request(**options), URL)
    pieces: list[Any] = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
        if decoder.done:
            break
    return pieces + decoder.end()


def _shape(pieces: list[Any]) -> list[Any]:
    """The pieces, with each tool call's generated id checked and taken out."""
    shown = []
    for piece in pieces:
        if isinstance(piece, ToolCallDelta):
            assert piece.id is not None and piece.id.startswith("call_")
            assert piece.function is not None
            shown.append(("call", piece.index, piece.function.name, piece.function.arguments))
        else:
            shown.append(piece)
    return shown


EXPECTED = [
    "Hé",
    " wörld 🌍",
    ("call", 0, "get_weather", '{"city": "Oslo"}'),
    Finish("tool_calls"),
    Usage(4, 9, 13, reasoning_tokens=3),
]


def test_a_recorded_stream_split_at_every_byte_gives_the_same_pieces() -> None:
    assert _shape(_decode([RECORDED])) == EXPECTED
    for cut in range(1, len(RECORDED)):
        assert _shape(_decode([RECORDED[:cut], RECORDED[cut:]])) == EXPECTED, cut
    assert _shape(_decode([RECORDED[i : i + 1] for i in range(len(RECORDED))])) == EXPECTED
    assert _decode([RECORDED], structured=False) == ["Hé", " wörld 🌍"]


def test_tool_calls_get_ids_unique_to_each_call() -> None:
    two = _event(
        _chunk(
            {"functionCall": {"name": "a", "args": {}}},
            {"functionCall": {"name": "b"}},
            {"functionCall": {"name": "c", "args": {"x": 1}, "id": "given-by-gemini"}},
            finish="STOP",
        )
    )
    calls = [p for p in _decode([two]) + _decode([two]) if isinstance(p, ToolCallDelta)]
    ids = [c.id for c in calls]
    assert len(set(ids)) == 5  # the generated ones unique across answers too
    assert ids[2] == ids[5] == "given-by-gemini"
    assert [c.index for c in calls[:3]] == [0, 1, 2]
    assert [c.function.arguments for c in calls[:3] if c.function] == ["{}", "{}", '{"x": 1}']


def test_a_stream_that_ends_without_a_finish_reason_is_interrupted() -> None:
    cut = RECORDED[: RECORDED.rindex(b"data:")]
    decoder = GEMINI.decoder(_request(), URL)
    assert decoder.feed(cut)[:2] == ["Hé", " wörld 🌍"]
    assert decoder.started
    with pytest.raises(providerhub.StreamInterruptedError, match="before a finishReason"):
        decoder.end()
    with pytest.raises(providerhub.StreamInterruptedError):
        GEMINI.decoder(_request(), URL).end()  # an empty body too


def test_an_error_event_mid_stream_comes_after_the_pieces_before_it() -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    decoder = GEMINI.decoder(_request(), URL)
    assert decoder.feed(_event(_chunk({"text": "Hi"})) + _event(error)) == ["Hi"]
    assert decoder.done
    with pytest.raises(providerhub.StreamInterruptedError, match="UNAVAILABLE: The model is"):
        decoder.end()
    with pytest.raises(providerhub.StreamInterruptedError):
        GEMINI.decoder(_request(), URL).feed(_event(error))


def test_finish_reasons_map_to_openai_ones() -> None:
    cases = {
        "STOP": "stop",
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "PROHIBITED_CONTENT": "content_filter",
        "BLOCKLIST": "content_filter",
        "SPII": "content_filter",
        "MALFORMED_FUNCTION_CALL": "malformed_function_call",
    }
    for gemini, openai in cases.items():
        assert _decode([_event(_chunk({"text": "x"}, finish=gemini))])[-1] == Finish(openai)
        body = json.dumps(_chunk({"text": "x"}, finish=gemini)).encode()
        decoded = GEMINI.decode(_request(False), URL, 200, "application/json", body)
        assert decoded[-1] == Finish(openai)
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE}
    assert GEMINI.decode(
        _request(False), URL, 200, "application/json", json.dumps(blocked).encode()
    ) == [
        Usage(4, 6, 13),
        Finish("content_filter"),
    ]
    assert _decode([_event(blocked)]) == [Finish("content_filter"), Usage(4, 6, 13)]


def test_a_whole_answer_and_what_is_not_one() -> None:
    doc = _chunk(
        {"text": "thinking", "thought": True},
        {"text": "Hello"},
        {"functionCall": {"name": "f", "args": {"a": [1]}}},
        finish="STOP",
        usageMetadata=USAGE,
    )
    pieces = GEMINI.decode(_request(False), URL, 200, "application/json", json.dumps(doc).encode())
    assert _shape(pieces) == [
        "Hello",
        ("call", 0, "f", '{"a": [1]}'),
        Usage(4, 6, 13),
        Finish("tool_calls"),
    ]
    text_only = GEMINI.decode(
        _request(False, structured=False), URL, 200, "application/json", json.dumps(doc).encode()
    )
    assert text_only == ["Hello"]
    # A stream answered as JSON: Gemini's array of responses.
    array = json.dumps([_chunk({"text": "a"}), _chunk({"text": "b"}, finish="STOP")]).encode()
    assert GEMINI.decode(_request(), URL, 200, "application/json", array) == [
        "a",
        "b",
        Finish("stop"),
    ]
    for body, match in [
        (b"<html>sign in</html>", "HTML"),
        (b"not json", "not JSON"),
        (b'{"candidates": []}', "no candidates"),
        (b'{"error": {"message": "boom", "status": "INTERNAL"}}', "INTERNAL: boom"),
    ]:
        with pytest.raises(providerhub.ProviderResponseError, match=match):
            GEMINI.decode(_request(False), URL, 200, "application/json", body)


def _error(status: int, body: Any, headers: dict[str, str] | None = None) -> Exception:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return GEMINI.error(_request(False), URL, status, "Reason", headers or {}, raw)


def _google(code: int, status: str, message: str, *details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def test_error_statuses_are_typed_as_the_router_needs() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    limited = _error(429, _google(429, "RESOURCE_EXHAUSTED", "Quota exceeded", retry))
    assert isinstance(limited, providerhub.RateLimitError)
    assert limited.transient and limited.retry_after == 37
    assert "RESOURCE_EXHAUSTED: Quota exceeded" in str(limited)
    header = _error(429, _google(429, "RESOURCE_EXHAUSTED", "q", retry), {"Retry-After": "2"})
    assert isinstance(header, providerhub.RateLimitError) and header.retry_after == 2

    busy = _error(503, _google(503, "UNAVAILABLE", "The model is overloaded."))
    assert isinstance(busy, providerhub.ProviderHTTPError)
    assert busy.transient and not busy.request_refused

    refused = _error(400, _google(400, "INVALID_ARGUMENT", "Invalid value at 'contents'"))
    assert isinstance(refused, providerhub.ProviderHTTPError)
    assert refused.request_refused and not refused.transient
    assert not isinstance(refused, providerhub.AuthenticationError)

    key_info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
    bad_key = _error(400, _google(400, "INVALID_ARGUMENT", "API key not valid.", key_info))
    assert isinstance(bad_key, providerhub.AuthenticationError)
    assert not bad_key.request_refused and not bad_key.transient
    assert "PROVIDERHUB_GEMINI_API_KEY" in str(bad_key)

    where = _error(400, _google(400, "FAILED_PRECONDITION", "User location is not supported"))
    assert isinstance(where, providerhub.ProviderHTTPError)
    assert not where.request_refused  # the provider's, so another provider may serve it

    for status in (401, 403):
        denied = _error(status, _google(status, "PERMISSION_DENIED", "denied"))
        assert isinstance(denied, providerhub.AuthenticationError)
    listed = _error(500, [_google(500, "INTERNAL", "listed")])
    assert "INTERNAL: listed" in str(listed) and listed.transient
    assert "not json" in str(_error(502, b"not json"))


def test_encode_builds_the_url_and_sends_the_key_in_a_header_only() -> None:
    request = GEMINI.encode(_call(stream=True))
    assert request.url == ENDPOINT + "/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in request.url and "Authorization" not in request.headers
    assert KEY in request.secrets
    plain = GEMINI.encode(_call()._replace(model="models/gemini-2.5-pro"))
    assert plain.url == ENDPOINT + "/gemini-2.5-pro:generateContent"
    for model in ["../files", "a/b", "gemini?key=x", "gemini#x", "", "a b", "%2e%2e"]:
        with pytest.raises(providerhub.InvalidRequestError, match="model name"):
            GEMINI.encode(_call()._replace(model=model))
    with pytest.raises(providerhub.InvalidRequestError, match="credential"):
        GEMINI.encode(_call()._replace(auth=""))


def test_encode_translates_every_rule() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "pattern": "^[A-Z]"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBORw0K"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
        {"role": "assistant", "content": "3 degrees at noon."},
        {"role": "user", "content": "Thanks"},
    ]
    body = _encode(
        messages,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.3,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
        stream_options={"include_usage": True},
    )
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is this?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                    {"functionCall": {"name": "now", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 3}}},
                    {"functionResponse": {"name": "now", "response": {"output": "noon"}}},
                ],
            },
            {"role": "model", "parts": [{"text": "3 degrees at noon."}]},
            {"role": "user", "parts": [{"text": "Thanks"}]},
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather in a city",
                        "parametersJsonSchema": tools[0]["function"]["parameters"],
                    },
                    {"name": "now"},
                ]
            }
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
        },
        "generationConfig": {
            "maxOutputTokens": 50,
            "temperature": 0.2,
            "topP": 0.9,
            "seed": 7,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.3,
            "stopSequences": ["END"],
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
        },
    }
    for choice, mode in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]:
        config = _encode(tools=tools, tool_choice=choice)["toolConfig"]
        assert config == {"functionCallingConfig": {"mode": mode}}
    assert _encode(max_completion_tokens=9, max_tokens=5)["generationConfig"] == {
        "maxOutputTokens": 9
    }
    assert _encode(stop=["a", "b"])["generationConfig"] == {"stopSequences": ["a", "b"]}
    assert _encode(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in _encode(temperature=None, response_format={"type": "text"})
    files = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": files}}]}]
    assert _encode(image)["contents"][0]["parts"] == [{"fileData": {"fileUri": files}}]


@pytest.mark.parametrize(
    ("messages", "params", "match"),
    [
        (
            [{"role": "tool", "tool_call_id": "call_x", "content": "1"}],
            {},
            "matches no tool call",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}
                    ],
                }
            ],
            {},
            "does not fetch image urls",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                }
            ],
            {},
            "not base64",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
                    ],
                }
            ],
            {},
            "text and image_url parts",
        ),
        ([{"role": "system", "content": "only"}], {}, "without a user message"),
        (
            [
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1]"},
                        }
                    ],
                },
            ],
            {},
            "not a JSON object",
        ),
        (HI, {"logit_bias": {}}, "does not take the parameter 'logit_bias'"),
        (HI, {"temprature": 1}, "did you mean 'temperature'"),
        (HI, {"tool_choice": "required"}, "without tools"),
        (
            HI,
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "must name one of the functions",
        ),
        (HI, {"tools": [{"type": "code_interpreter"}]}, "tools\\[0\\]"),
        (HI, {"response_format": {"type": "xml"}}, "response_format"),
        (HI, {"temperature": float("nan")}, "cannot be sent as JSON"),
    ],
)
def test_what_cannot_be_sent_is_refused_before_sending(
    messages: Any, params: dict[str, Any], match: str
) -> None:
    with pytest.raises(providerhub.InvalidRequestError, match=match):
        GEMINI.encode(_call(messages, **params))


def test_parameters_with_nothing_to_send_take_their_defaults_only() -> None:
    assert _encode(n=1, parallel_tool_calls=True, user="u-1", stream_options={}) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]
    }
    assert _encode(reasoning_effort="low")["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 1024}
    }
    assert _encode(reasoning_effort="none")["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 0}
    }
    for params, match in [
        ({"n": 2}, "n=2"),
        ({"parallel_tool_calls": False}, "one call at a time"),
        ({"reasoning_effort": "extreme"}, "one of none, low, medium, high"),
        ({"reasoning_effort": ["low"]}, "reasoning_effort"),
    ]:
        with pytest.raises(providerhub.InvalidRequestError, match=match):
            GEMINI.encode(_call(**params))


def test_extra_parameters_and_defaults() -> None:
    call = _call()._replace(
        params={"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}], "temperature": 1},
        extra_parameters="safetySettings",  # one name, as a string
        defaults={"temperature": 0.5, "top_p": 0.3},
    )
    body = json.loads(GEMINI.encode(call).body)
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT"}]
    assert body["generationConfig"] == {"temperature": 1, "topP": 0.3}
