"""The shared OpenAI-compatible helper, called directly as a plugin calls it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import providerhub
from providerhub.testing import OpenAIServer, Reply

from ._internals import _json_loads, _scan, chat_completion

HI = [{"role": "user", "content": "Hi"}]


def test_an_auth_error_names_the_variable_the_plugin_reads(server: OpenAIServer) -> None:
    server.script(Reply.error(401), Reply.error(403))
    endpoint = server.url + "/v1/chat/completions"
    with pytest.raises(providerhub.AuthenticationError) as info:
        list(chat_completion("ollama", endpoint, "m", HI, False, credential_variable="OLLAMA_KEY"))
    assert "set OLLAMA_KEY or pass auth={'ollama': ...}" in str(info.value)
    with pytest.raises(providerhub.AuthenticationError) as info:
        list(chat_completion("ollama", endpoint, "m", HI, True))
    assert "set PROVIDERHUB_OLLAMA_API_KEY" in str(info.value)


def test_arguments_are_checked_before_anything_is_sent(server: OpenAIServer) -> None:
    endpoint = server.url + "/v1/chat/completions"
    with pytest.raises(providerhub.InvalidRequestError, match="'temprature'"):
        chat_completion("p", endpoint, "m", HI, False, temprature=1)
    with pytest.raises(providerhub.InvalidRequestError, match="credential"):
        chat_completion("p", endpoint, "m", HI, False, auth="")
    assert server.requests == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.sampled_from(["", " ", "\n\t "]))
def test_the_event_scanner_reads_what_json_loads_reads(value: Any, pad: str) -> None:
    text = pad + json.dumps(value) + pad
    assert _scan(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]", "nul"])
def test_the_event_scanner_raises_json_loads_errors(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        _scan(text)


def test_streams_without_orjson_use_the_standard_library(server: OpenAIServer) -> None:
    # A fresh interpreter where importing orjson fails, as where it is not installed.
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from providerhub._codecs import openai_chat as oc\n"
        "from providerhub._speedups import scan_json\n"
        "from providerhub._http.chat import chat_completion\n"
        "assert oc._json_loads() is scan_json\n"
        f"print(''.join(chat_completion('p', {server.url + '/v1/chat/completions'!r},"
        " 'm', [{'role': 'user', 'content': 'Hi'}], True)))\n"
    )
    server.script(Reply.text("plain", " json"))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "plain json\n"


def test_orjson_parses_events_when_installed() -> None:
    orjson = pytest.importorskip("orjson")
    assert _json_loads() is orjson.loads
