"""The catalog of OpenAI-compatible services and local servers: a preset becomes a provider
when its variable is set, routed to a real local server standing in for the service; the
others are offered, with the variables that would activate them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

import providerhub
from providerhub.plugin import Price
from providerhub.testing import OpenAIServer, RecordedRequest, Reply
from providerhub_openai_compatible.presets import PRESETS
from providerhub_openai_compatible.provider import EndpointProvider

HI = [{"role": "user", "content": "Hi"}]
KEY = "gsk-test-4f1c9e2a7b"

WriteConfig = Callable[[str], Path]  # the conftest's fixture

SERVICES = {
    "openai": "https://api.openai.com",
    "groq": "https://api.groq.com/openai",
    "mistral": "https://api.mistral.ai",
    "deepseek": "https://api.deepseek.com",
    "together": "https://api.together.xyz",
    "fireworks": "https://api.fireworks.ai/inference",
    "openrouter": "https://openrouter.ai/api",
    "xai": "https://api.x.ai",
    "cerebras": "https://api.cerebras.ai",
}
LOCAL = {
    "ollama": "http://localhost:11434",
    "lmstudio": "http://localhost:1234",
    "vllm": "http://localhost:8000",
    "llamacpp": "http://localhost:8080",
}


@pytest.fixture
def keyed(server: OpenAIServer) -> OpenAIServer:
    """The local server answering only requests that carry ``Authorization: Bearer KEY``,
    as the services do."""

    def answer(number: int, request: RecordedRequest) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return Reply.error(401, "Invalid API Key")
        return Reply.text("hi from ", "groq")

    server.responder = answer
    return server


@pytest.fixture
def hubs() -> Iterator[Callable[[], providerhub.Hub]]:
    made: list[providerhub.Hub] = []

    def make() -> providerhub.Hub:
        made.append(providerhub.Hub(retries=0))
        return made[-1]

    yield make
    for hub in made:
        hub.close()


def test_the_catalog_has_the_services_and_local_servers_at_their_urls() -> None:
    assert {name: p.url for name, p in PRESETS.items()} == {**SERVICES, **LOCAL}
    for name in SERVICES:
        assert PRESETS[name].key_env == f"{name.upper()}_API_KEY"
        assert PRESETS[name].models
    for name in LOCAL:
        assert PRESETS[name].key_env is None


def test_the_groq_key_alone_routes_a_groq_model(
    monkeypatch: pytest.MonkeyPatch, keyed: OpenAIServer, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", KEY)
    monkeypatch.setenv("PROVIDERHUB_GROQ_URL", keyed.url)  # the service's stand-in
    hub = hubs()
    assert [p.name for p in hub.route("llama-3.3-70b-versatile")] == ["groq"]
    assert hub.create("llama-3.3-70b-versatile", HI) == "hi from groq"
    with hub.create("llama-3.1-8b-instant", HI, stream=True) as pieces:
        assert "".join(pieces) == "hi from groq"
    first = keyed.requests[0]
    assert first.path == "/v1/chat/completions"
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert first.json()["model"] == "llama-3.3-70b-versatile"
    groq = hub.providers["groq"]
    assert groq.needs_auth and groq.capabilities["supports_tools"]
    assert KEY not in repr(groq.obj) and KEY not in repr(hub)
    # The other services have no key: not registered, never tried, but offered.
    assert [p for p in hub.providers if p in PRESETS] == ["groq"]
    offered = {a.name: a for a in hub.available}
    assert set(offered) == set(PRESETS) - {"groq"}
    assert offered["openai"].activate == ("PROVIDERHUB_OPENAI_API_KEY", "OPENAI_API_KEY")
    with pytest.raises(providerhub.ModelNotFoundError):
        hub.route("gpt-4o-mini")


def test_a_wrong_key_is_the_service_refusing_it(
    monkeypatch: pytest.MonkeyPatch, keyed: OpenAIServer, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", "gsk-wrong-key-0000")
    monkeypatch.setenv("PROVIDERHUB_GROQ_URL", keyed.url)
    with pytest.raises(providerhub.AuthenticationError) as caught:
        hubs().create("llama-3.3-70b-versatile", HI)
    assert caught.value.provider == "groq"
    assert "PROVIDERHUB_GROQ_API_KEY" in str(caught.value)
    assert "gsk-wrong-key-0000" not in str(caught.value)


def test_the_services_own_key_variable_activates_it_too(
    monkeypatch: pytest.MonkeyPatch, keyed: OpenAIServer, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    monkeypatch.setenv("PROVIDERHUB_GROQ_URL", keyed.url)
    assert hubs().create("openai/gpt-oss-120b", HI) == "hi from groq"
    assert keyed.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


def test_without_a_variable_no_preset_is_registered(
    hubs: Callable[[], providerhub.Hub],
) -> None:
    hub = hubs()
    assert not [p for p in hub.providers if p in PRESETS]
    assert [a.name for a in hub.available] == list(PRESETS)
    ollama = next(a for a in hub.available if a.name == "ollama")
    assert ollama.activate == ("PROVIDERHUB_OLLAMA_URL",)
    assert ollama.url == "http://localhost:11434"
    assert ollama.plugin == "openai-compatible"


def test_a_local_server_is_active_once_its_url_is_set(
    monkeypatch: pytest.MonkeyPatch, server: OpenAIServer, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("PROVIDERHUB_OLLAMA_URL", server.url + "/")
    hub = hubs()
    ollama = hub.providers["ollama"]
    assert not ollama.needs_auth
    assert ollama.capabilities["supports_vision"]
    assert "answering as llama3.2" in hub.create("llama3.2", HI)
    assert server.requests[-1].path == "/v1/chat/completions"
    assert "Authorization" not in server.requests[-1].headers


def test_models_variable_adds_to_a_preset(
    monkeypatch: pytest.MonkeyPatch, keyed: OpenAIServer, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", KEY)
    monkeypatch.setenv("PROVIDERHUB_GROQ_URL", keyed.url)
    monkeypatch.setenv("PROVIDERHUB_GROQ_MODELS", "moonshotai/kimi-k2-instruct")
    assert hubs().create("moonshotai/kimi-k2-instruct", HI) == "hi from groq"


def test_capabilities_follow_the_service(
    monkeypatch: pytest.MonkeyPatch, hubs: Callable[[], providerhub.Hub]
) -> None:
    for name in ("deepseek", "openai"):
        monkeypatch.setenv(f"PROVIDERHUB_{name.upper()}_API_KEY", KEY)
    hub = hubs()
    assert hub.providers["openai"].capabilities["supports_vision"]
    assert hub.providers["openai"].capabilities["supports_json_schema"]
    deepseek = hub.providers["deepseek"].capabilities
    assert deepseek["supports_tools"] and not deepseek["supports_vision"]
    image = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
        }
    ]
    with pytest.raises(providerhub.NoProviderError, match="vision"):
        hub.create("deepseek-chat", image)


def test_an_entry_of_the_file_replaces_the_preset_of_its_name(
    monkeypatch: pytest.MonkeyPatch,
    server: OpenAIServer,
    write_config: WriteConfig,
    hubs: Callable[[], providerhub.Hub],
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", KEY)
    write_config(f'[endpoints.Groq]\nurl = "{server.url}"\nmodels = ["my-groq-model"]\n')
    hub = hubs()
    groq = hub.providers["groq"]
    assert groq.name == "Groq" and groq.model == ("my-groq-model",)
    assert groq.obj.source != "the catalog"
    with pytest.raises(providerhub.ModelNotFoundError):
        hub.route("llama-3.3-70b-versatile")
    assert "groq" not in {a.name for a in hub.available}
    assert hub.create("my-groq-model", HI)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


def test_a_bad_entry_of_the_file_does_not_fall_back_to_the_preset(
    monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig, hubs: Callable[[], providerhub.Hub]
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", KEY)
    path = write_config('[endpoints.groq]\nurl = "https://api.groq.com/openai"\n')
    hub = hubs()
    assert "groq" not in hub.providers
    [error] = [e for e in hub.plugin_errors if e.name == "openai-compatible"]
    assert f"{path}: [endpoints.groq] models: missing" in error.error


@pytest.mark.slow  # the command line in a subprocess
def test_providers_shows_the_catalog_and_what_activates_each(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVIDERHUB_")}
    env.update(PROVIDERHUB_CONFIG=str(tmp_path / "none.toml"), PROVIDERHUB_XAI_API_KEY=KEY)
    env.pop("GROQ_API_KEY", None)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "providerhub", "providers", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert KEY not in done.stdout + done.stderr
        return done.stdout

    (tmp_path / "none.toml").touch()
    text = run()
    assert "xai  [providerhub-openai-compatible 0.1.0]  working, streams, needs auth" in text
    section = text[text.index("available, not active") :]
    assert "  groq        https://api.groq.com/openai" in section
    assert "PROVIDERHUB_GROQ_API_KEY or GROQ_API_KEY\n" in section
    assert "  llamacpp    http://localhost:8080" in section
    assert "xai " not in section
    doc = json.loads(run("--json"))
    available = {a["name"]: a for a in doc["available"]}
    assert available["ollama"]["activate"] == ["PROVIDERHUB_OLLAMA_URL"]
    assert available["groq"]["distribution"] == "providerhub-openai-compatible"
    assert "xai" not in available


def test_the_openai_and_groq_presets_carry_their_list_prices() -> None:
    from providerhub_openai_compatible.presets import PRESETS

    openai_preset = PRESETS["openai"]
    assert openai_preset.prices["gpt-4o"] == Price(input=2.5, output=10, cached_input=1.25)
    assert set(openai_preset.prices) == set(openai_preset.models)
    assert EndpointProvider(openai_preset.endpoint()).prices["o4-mini"] == Price(1.1, 4.4, 0.275)
    assert PRESETS["groq"].prices["llama-3.1-8b-instant"] == Price(0.05, 0.08)
    assert not PRESETS["mistral"].prices  # not known for sure: none rather than a guess
