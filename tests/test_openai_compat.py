"""The shared OpenAI-compatible helper, called directly as a plugin calls it."""

from __future__ import annotations

import pytest

import providerhub
from providerhub.openai_compat import chat_completion
from providerhub.testing import OpenAIServer, Reply

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
