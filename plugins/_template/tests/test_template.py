"""The template plugin as installed, against a real local OpenAI-compatible server: run
``pip install -e ".[test]"`` first.

The fixtures ``providerhub_hub``, ``openai_server`` and ``register_provider`` come from
providerhub's pytest plugin, which pytest loads by itself once providerhub is installed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import providerhub
import providerhub_template as plugin
from providerhub.plugin import url_variable
from providerhub.testing import OpenAIServer, Reply, check_provider
from providerhub.testing.pytest_plugin import RegisterProvider
from providerhub_template import custom

HI = [{"role": "user", "content": "Hi"}]
MODEL = plugin.provider.model[0]


def installed() -> providerhub.Provider:
    """The plugin's provider as installed: registered by its entry point's plugin."""
    with providerhub.Hub() as hub:
        found = [p for p in hub.providers.values() if p.obj is plugin.provider]
    assert found, "the plugin is not installed: run pip install -e . first"
    return found[0]


def test_installed_through_its_entry_point() -> None:
    provider = installed()
    assert provider.name == plugin.NAME  # the declaration's name
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
    register_provider(plugin.provider)
    openai_server.script(Reply.text("Hel", "lo"))
    stream = providerhub_hub.create(MODEL, HI, stream=True, auth={plugin.NAME: "sk-test-key"})
    assert list(stream) == ["Hel", "lo"]
    [request] = openai_server.requests
    assert request.path == plugin.provider.path
    assert request.headers["Authorization"] == "Bearer sk-test-key"
    assert request.json()["messages"] == HI


# -- the module written to the contract ------------------------------------------------------


class GenerateService(ThreadingHTTPServer):
    """The made-up service of :mod:`providerhub_template.custom` on 127.0.0.1: answers each
    ``POST /generate`` with the next of ``answers``, and keeps the bodies it was sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GenerateHandler)
        self.answers: list[bytes] = []
        self.bodies: list[Any] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _GenerateHandler(BaseHTTPRequestHandler):
    server: GenerateService

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append((self.path, json.loads(self.rfile.read(length))))
        answer = self.server.answers.pop(0) if self.server.answers else b'{"text": "OK"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[GenerateService]:
    srv = GenerateService()
    worker = threading.Thread(target=srv.serve_forever, daemon=True)
    worker.start()
    monkeypatch.setenv(url_variable(custom.NAME), srv.url)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        worker.join()


def test_the_custom_module_follows_the_provider_contract(service: GenerateService) -> None:
    report = check_provider(custom, name=custom.NAME, openai_compatible=False)
    assert "non-stream" in report.passed
    assert service.bodies[0][0] == "/generate"


def test_the_custom_module_is_routed_to(
    providerhub_hub: providerhub.Hub,
    register_provider: RegisterProvider,
    service: GenerateService,
) -> None:
    register_provider(custom, name=custom.NAME)
    service.answers = [b'{"text": "Hello"}', b'{"no": "text"}']
    assert providerhub_hub.create(custom.model[0], HI) == "Hello"
    assert service.bodies == [("/generate", {"model": custom.model[0], "prompt": "Hi"})]
    with pytest.raises(providerhub.ProviderResponseError, match="without a text field"):
        providerhub_hub.create(custom.model[0], HI)
