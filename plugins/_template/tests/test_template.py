"""The template plugin as installed, against a real local OpenAI-compatible server: run
``pip install -e ".[test]"`` first.

The fixtures ``providerhub_hub``, ``openai_server`` and ``register_provider`` come from
providerhub's pytest plugin, which pytest loads by itself once providerhub is installed.
"""

from __future__ import annotations

import pytest

import providerhub
import providerhub_template as plugin
from providerhub.plugin import url_variable
from providerhub.testing import OpenAIServer, Reply, check_provider
from providerhub.testing.pytest_plugin import RegisterProvider

HI = [{"role": "user", "content": "Hi"}]
MODEL = plugin.model[0]


def installed() -> providerhub.Provider:
    """The plugin's provider as installed: registered under its entry point's name."""
    with providerhub.Hub() as hub:
        found = [p for p in hub.providers.values() if p.obj is plugin]
    assert found, "the plugin is not installed: run pip install -e . first"
    return found[0]


def test_installed_through_its_entry_point() -> None:
    provider = installed()
    assert provider.name == plugin.NAME  # the entry point's name is the module's NAME
    assert provider.distribution == "providerhub-template"


def test_follows_the_provider_contract(openai_server: OpenAIServer) -> None:
    report = check_provider(installed(), server=openai_server)
    assert report.openai_compatible
    assert "stream" in report.passed


def test_routes_a_streamed_chat_with_its_credential(
    providerhub_hub: providerhub.Hub,
    register_provider: RegisterProvider,
    openai_server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(url_variable(plugin.NAME), openai_server.url)
    register_provider(plugin, name=plugin.NAME)
    openai_server.script(Reply.text("Hel", "lo"))
    stream = providerhub_hub.create(MODEL, HI, stream=True, auth={plugin.NAME: "sk-test-key"})
    assert list(stream) == ["Hel", "lo"]
    [request] = openai_server.requests
    assert request.path == plugin.PATH
    assert request.headers["Authorization"] == "Bearer sk-test-key"
    assert request.json()["messages"] == HI
