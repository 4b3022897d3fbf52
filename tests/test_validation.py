from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import providerhub
from providerhub._validation import ROLES, validate_messages
from providerhub.testing import OpenAIServer


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
            "messages[1] (user) must have string 'content'",
        ),
        ([{"role": "user", "content": 3}], "not int"),
        ([{"role": "user", "content": "a", 1: "x"}], "non-string key"),
    ],
)
def test_bad_messages_are_refused_naming_the_message_and_the_fault(
    messages: Any, says: str
) -> None:
    with pytest.raises(providerhub.InvalidRequestError) as info:
        validate_messages(messages)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


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
    valid = (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
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
