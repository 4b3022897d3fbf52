from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import providerhub
from providerhub.plugin import chat_completion
from providerhub.testing import OpenAIServer

from ._internals import ROLES, validate_messages


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ("Hi", "must be a list"),
        (None, "must be a list"),
        ([], "is empty"),
        (["Hi"], "messages[0] must be a mapping"),
        ([{"content": "Hi"}], "messages[0] has role None"),
        ([{"role": "robot", "content": "Hi"}], "messages[0] has role 'robot'"),
        (
            [{"role": "user", "content": "a"}, {"role": "user"}],
            "messages[1] (user) must have 'content'",
        ),
        ([{"role": "user", "content": 3}], "not int"),
        ([{"role": "user", "content": "a", 1: "x"}], "non-string key"),
        ([{"role": "user", "content": []}], "empty list of content parts"),
        ([{"role": "user", "content": ["Hi"]}], "content[0] must be a mapping"),
        ([{"role": "user", "content": [{"type": "video"}]}], "has type 'video'"),
        ([{"role": "system", "content": [{"type": "image_url"}]}], "may be text"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], "string 'text'"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "image_url.url"),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}],
            "input_audio.format",
        ),
        ([{"role": "user", "content": [{"type": "file", "file": {}}]}], "file.file_data"),
        ([{"role": "assistant", "content": None}], "only an assistant message with tool_calls"),
        ([{"role": "tool", "content": "42"}], "must have 'tool_call_id'"),
        (
            [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]}],
            "tool_calls[0] must be of type 'function'",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
                }
            ],
            "function.arguments",
        ),
    ],
)
def test_bad_messages_are_refused_naming_the_message_and_the_fault(
    messages: Any, says: str
) -> None:
    with pytest.raises(providerhub.InvalidRequestError) as info:
        validate_messages(messages)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


HI = [{"role": "user", "content": "Hi"}]
EVERY_SHAPE: list[dict[str, Any]] = [
    {"role": "developer", "content": "Answer briefly."},
    {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in these?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
            },
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
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
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot."}]},
    {"role": "user", "content": "Thanks"},
]


class Capable:
    """An OpenAI-compatible provider that takes tools, images, files and audio."""

    url = ""
    model = ["omni"]
    supports_stream = True
    needs_auth = False
    supports_tools = True
    supports_vision = True
    supports_audio = True
    honors_timeout = True

    def __init__(self, server: OpenAIServer) -> None:
        self.url = server.url

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        endpoint = self.url + "/v1/chat/completions"
        yield from chat_completion("capable", endpoint, model, messages, stream, **kwargs)


def test_every_openai_message_shape_passes_and_is_forwarded_unchanged(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    assert validate_messages(EVERY_SHAPE) == EVERY_SHAPE
    hub.register(Capable(server), name="capable")
    assert hub.create("omni", EVERY_SHAPE).endswith("You said: Thanks")
    assert server.requests[0].json()["messages"] == EVERY_SHAPE


def test_a_request_goes_only_to_providers_with_the_capabilities_it_needs(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    image = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}],
        }
    ]
    with pytest.raises(providerhub.NoProviderError) as info:
        gravity_hub.create("gpt-3.5-turbo-16k", image)
    assert "gravityengine: cannot serve this request: it does not take image" in str(info.value)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    with pytest.raises(providerhub.NoProviderError) as info:
        gravity_hub.create("gpt-3.5-turbo-16k", HI, response_format=schema)
    assert "json_schema" in str(info.value)
    assert server.requests == []


def test_bad_input_never_reaches_the_network(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    good = [{"role": "user", "content": "Hi"}]
    cases: list[dict[str, Any]] = [
        {"model": "gpt-3.5-turbo-16k", "messages": [{"role": "user"}]},
        {"model": "", "messages": good},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "stream": "yes"},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "timeout": -1},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "auth": 42},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "provider": 7},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "temprature": 0.1},
        {"model": "gpt-3.5-turbo-16k", "messages": good, "stream": True, "bogus": 1},
    ]
    for case in cases:
        with pytest.raises(providerhub.InvalidRequestError):
            result = gravity_hub.create(**case)
            list(result)  # a stream reports its stray parameter on the first piece
    assert server.requests == []


def test_an_unknown_parameter_is_named_with_a_suggestion(gravity_hub: providerhub.Hub) -> None:
    with pytest.raises(providerhub.InvalidRequestError) as info:
        gravity_hub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "x"}], temprature=1)
    assert "'temprature'" in str(info.value)
    assert "did you mean 'temperature'" in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from([*ROLES, "robot", ""]) | json_values,
        "content": st.text(max_size=10) | json_values,
    },
)


@given(st.one_of(json_values, st.lists(message_like | json_values, max_size=4)))
def test_random_values_pass_validation_only_when_valid(value: Any) -> None:
    # Random content is a string or never a well-formed list of parts; a tool message
    # needs the id of the call it answers.
    valid = (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict)
            and m.get("role") in ROLES
            and isinstance(m.get("content"), str)
            and (m.get("role") != "tool" or bool(m.get("tool_call_id")))
            for m in value
        )
    )
    try:
        checked = validate_messages(value)
    except providerhub.InvalidRequestError:
        assert not valid
    else:
        assert valid
        assert checked == value
