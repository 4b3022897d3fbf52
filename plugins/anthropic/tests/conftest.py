from __future__ import annotations

from collections.abc import Iterator

import pytest

import providerhub
import providerhub_anthropic
from providerhub.testing import AnthropicServer

KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_environment(providerhub_clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own providerhub settings, configuration file or
    Anthropic key."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def hub(server: AnthropicServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[providerhub.Hub]:
    """A hub holding only the Anthropic plugin, pointed at the stand-in with its key; no
    retries, so each failure shows as the stand-in gave it."""
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", server.url)
    monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_API_KEY", KEY)
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        h.register_plugin(providerhub_anthropic, name="anthropic")
        yield h
