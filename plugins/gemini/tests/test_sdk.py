"""Google's own SDK (google-genai) against the same stand-in the plugin's tests use: it must
read the stand-in's answers, streams and errors into its objects, and the stand-in must take
the requests it sends. A stand-in that drifts from Gemini's real wire format fails here;
and where providerhub and the SDK send the same conversation, their bodies must agree."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import providerhub
import providerhub_gemini
from providerhub.testing import GeminiReply, GeminiServer

genai = pytest.importorskip("google.genai")  # Python 3.11 and later
from google.genai import errors, types  # noqa: E402

KEY = "AIza-test-key-for-the-stand-in"  # the stand-in's, as conftest.py gives it
MODEL = "gemini-2.5-flash"
PNG = "data:image/png;base64,iVBORw=="  # b"\x89PNG", as the SDK encodes it


@pytest.fixture
def sdk(server: GeminiServer) -> Iterator[Any]:
    options = types.HttpOptions(base_url=server.url, api_version="v1beta")
    with genai.Client(api_key=KEY, http_options=options) as client:
        yield client


def test_the_sdk_reads_a_whole_answer(sdk: Any, server: GeminiServer) -> None:
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}
    server.script(GeminiReply.text("Hello", " there", usage=usage, thoughts=["hmm"]))
    r = sdk.models.generate_content(model=MODEL, contents="Hi")
    assert r.text == "Hello there"  # the thought part is not the answer's text
    assert r.candidates[0].content.parts[0].thought is True
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.prompt_token_count == 5
    assert r.usage_metadata.total_token_count == 7
    assert r.model_version == MODEL
    [request] = server.requests
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY


def test_the_sdk_reads_a_stream_even_sent_a_byte_at_a_time(sdk: Any, server: GeminiServer) -> None:
    for byte_by_byte in (False, True):
        server.script(GeminiReply.text("Hé", " wörld", " 🎉", byte_by_byte=byte_by_byte))
        chunks = list(sdk.models.generate_content_stream(model=MODEL, contents="Hi"))
        assert [c.text for c in chunks] == ["Hé", " wörld", " 🎉"]
        assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
        assert chunks[-1].usage_metadata.total_token_count is not None
        assert server.requests[-1].path.endswith(":streamGenerateContent?alt=sse")


def test_the_sdk_reads_function_calls(sdk: Any, server: GeminiServer) -> None:
    server.script(
        GeminiReply.tools(
            {"name": "get_weather", "args": {"city": "Oslo"}},
            {"name": "get_time", "args": {}, "id": "fc-1"},
        )
    )
    r = sdk.models.generate_content(model=MODEL, contents="Weather?")
    calls = r.function_calls
    assert [(c.name, c.args, c.id) for c in calls] == [
        ("get_weather", {"city": "Oslo"}, None),
        ("get_time", {}, "fc-1"),
    ]


@pytest.mark.parametrize(
    ("reply", "code", "status"),
    [
        (GeminiReply.error(429, "Quota exceeded", retry_delay="37s"), 429, "RESOURCE_EXHAUSTED"),
        (GeminiReply.error(503, "The model is overloaded."), 503, "UNAVAILABLE"),
        (GeminiReply.error(400, "Invalid value"), 400, "INVALID_ARGUMENT"),
        (GeminiReply.error(403, "denied"), 403, "PERMISSION_DENIED"),
    ],
)
def test_the_sdk_reads_the_error_bodies(
    sdk: Any, server: GeminiServer, reply: GeminiReply, code: int, status: str
) -> None:
    server.script(reply)
    with pytest.raises(errors.APIError) as info:
        sdk.models.generate_content(model=MODEL, contents="Hi")
    assert (info.value.code, info.value.status) == (code, status)
    if code == 429:
        [retry] = info.value.details["error"]["details"]
        assert retry["retryDelay"] == "37s"


def test_the_sdk_meets_the_stand_ins_key_checks(server: GeminiServer) -> None:
    options = types.HttpOptions(base_url=server.url, api_version="v1beta")
    wrong = genai.Client(api_key="AIza-wrong", http_options=options)
    try:
        with pytest.raises(errors.ClientError) as info:
            wrong.models.generate_content(model=MODEL, contents="Hi")
    finally:
        wrong.close()
    assert info.value.code == 400
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_the_sdk_reads_finish_reasons_and_a_blocked_prompt(sdk: Any, server: GeminiServer) -> None:
    server.script(
        GeminiReply.text("cut", finish_reason="MAX_TOKENS"), GeminiReply(blocked="SAFETY")
    )
    r = sdk.models.generate_content(model=MODEL, contents="Hi")
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    blocked = sdk.models.generate_content(model=MODEL, contents="Hi")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not blocked.candidates


def test_the_stand_in_takes_what_the_sdk_sends(sdk: Any, server: GeminiServer) -> None:
    """Every field of a rich request, as the SDK writes it, passes the stand-in's checks of
    the body: the stand-in is not stricter than the service."""
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        top_k=20,
        seed=3,
        stop_sequences=["END"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_mime_type="application/json",
        response_json_schema={"type": "object"},
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ],
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="get_weather",
                        description="d",
                        parameters_json_schema={"type": "object"},
                    )
                ]
            )
        ],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
    )
    r = sdk.models.generate_content(model=MODEL, contents="Hi", config=config)
    assert r.text  # answered, not refused
    server.script(GeminiReply.text("x"))
    with pytest.raises(errors.ClientError, match="Unknown name"):
        # A field the service does not know is refused, as it refuses it.
        sdk.models.generate_content(
            model=MODEL,
            contents="Hi",
            config=types.GenerateContentConfig(
                http_options=types.HttpOptions(extra_body={"notAField": 1})
            ),
        )


_CAMEL = re.compile(r"_(\w)")


def _camel(doc: Any) -> Any:
    """``doc`` with every key in camelCase: Google's JSON takes both spellings, and the SDK
    writes some fields (``parameters_json_schema``) in snake_case."""
    if isinstance(doc, dict):
        return {
            re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): _camel(v) for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_camel(v) for v in doc]
    return doc


def test_providerhub_and_the_sdk_send_the_same_conversation(
    sdk: Any, pointed: GeminiServer
) -> None:
    """A conversation with an image, a function call and its response, and a tool: the
    body providerhub makes of the OpenAI shape is the one the SDK makes of Gemini's."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    sdk.models.generate_content(
        model=MODEL,
        contents=[
            types.Content(
                role="user",
                parts=[
                    types.Part(text="Weather there?"),
                    types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG")),
                ],
            ),
            types.Content(
                role="model",
                parts=[
                    types.Part(
                        function_call=types.FunctionCall(name="get_weather", args={"city": "Oslo"})
                    )
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            name="get_weather", response={"celsius": 3}
                        )
                    )
                ],
            ),
        ],
        config=types.GenerateContentConfig(
            system_instruction=types.Content(parts=[types.Part(text="Be brief.")]),
            tools=[
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name="get_weather", description="d", parameters_json_schema=schema
                        )
                    ]
                )
            ],
            max_output_tokens=20,
            temperature=0.5,
        ),
    )
    from_sdk = _camel(pointed.requests[-1].json())

    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register_plugin(providerhub_gemini, name="gemini")
        hub.create(
            MODEL,
            [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather there?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw=="},
                        },
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
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"celsius": 3})},
            ],
            tools=[
                {
                    "type": "function",
                    "function": {"name": "get_weather", "description": "d", "parameters": schema},
                }
            ],
            max_tokens=20,
            temperature=0.5,
        )
    ours = pointed.requests[-1].json()
    # The SDK names the system instruction's role, which the service does not need.
    from_sdk["systemInstruction"].pop("role", None)
    assert ours == from_sdk


def test_the_sdk_lists_the_stand_ins_models_page_by_page(sdk: Any, server: GeminiServer) -> None:
    server.models = [f"gemini-test-{n}" for n in range(5)] + ["text-embedding-004"]
    server.page_size = 2
    models = list(sdk.models.list(config={"page_size": 2}))
    assert [m.name for m in models] == [f"models/{name}" for name in server.models]
    assert models[0].supported_actions == ["generateContent", "countTokens"]
    assert models[-1].supported_actions == ["embedContent"]
    assert models[0].output_token_limit == 65536
    pages = [r.path for r in server.requests]
    assert len(pages) == 3 and all(p.startswith("/v1beta/models?") for p in pages)
    assert all(r.headers["x-goog-api-key"] == KEY for r in server.requests)
