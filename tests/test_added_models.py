"""``PROVIDERHUB_<NAME>_MODELS`` adds model names to any provider: a declaration, a module of
the seed's contract, a plugin's provider; the router, the listings, ``check`` and the
gateway's ``/v1/models`` see them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub.plugin import HTTPProvider
from providerhub.testing import OpenAIServer

from ._internals import cli, run_checks

HI = [{"role": "user", "content": "Hi"}]


def acme(url: str) -> HTTPProvider:
    return HTTPProvider(name="acme", url=url, models=["acme-large"])


class Seedling:
    """A provider of the seed's contract: attributes and a completion function."""

    url = "http://127.0.0.1:9"
    model = ["seed-1"]
    supports_stream = False
    needs_auth = False

    def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
        yield f"{model} says hi"


def test_names_are_trimmed_and_empties_and_repeats_dropped(
    monkeypatch: pytest.MonkeyPatch, server: OpenAIServer
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ACME_MODELS", " acme-new , ,acme-next,acme-new,acme-large, ")
    with providerhub.Hub(load_entrypoints=False) as hub:
        provider = hub.register(acme(server.url))
        assert provider.model == ("acme-large", "acme-new", "acme-next")
        assert [provider.origin(m) for m in provider.model] == ["plugin", "env", "env"]
        assert hub.models()["acme-next"] == ["acme"]
        assert [p.name for p in hub.route("acme-new")] == ["acme"]
        assert "answering as acme-new" in hub.create("acme-new", HI)
    assert server.requests[-1].json()["model"] == "acme-new"


def test_a_seed_contract_module_gets_added_models_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDERHUB_SEEDLING_MODELS", "seed-2")
    with providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Seedling(), name="seedling")
        assert hub.create("seed-2", HI) == "seed-2 says hi"
        assert hub.create("seed-1", HI) == "seed-1 says hi"


def test_without_the_variable_nothing_is_added(server: OpenAIServer) -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        provider = hub.register(acme(server.url))
        assert provider.model == ("acme-large",)
        assert provider.added == {}
        with pytest.raises(providerhub.ModelNotFoundError):
            hub.route("acme-new")


@pytest.mark.parametrize("value", ["gpt 4o", "a,b c", "a,\tb\tc"])
def test_a_name_with_a_space_is_refused_when_the_hub_is_built(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ACME_MODELS", value)
    with pytest.raises(providerhub.ConfigurationError) as caught:
        providerhub.Hub(load_entrypoints=False)
    message = str(caught.value)
    assert "PROVIDERHUB_ACME_MODELS" in message
    assert "separated by commas" in message


def test_the_variable_of_a_provider_registered_later_is_read_then(
    monkeypatch: pytest.MonkeyPatch, server: OpenAIServer
) -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        monkeypatch.setenv("PROVIDERHUB_ACME_MODELS", "bad name")
        with pytest.raises(providerhub.ConfigurationError, match="PROVIDERHUB_ACME_MODELS"):
            hub.register(acme(server.url))
        assert "acme" not in hub.providers


@pytest.fixture
def endpoint_config(tmp_path: Path, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration file with one endpoint, for the openai-compatible plugin."""
    path = tmp_path / "config.toml"
    path.write_text(f'[endpoints.local]\nurl = "{server.url}"\nmodels = ["llama3.2"]\n')
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(path))
    monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "gravityengine")
    return path


@pytest.fixture
def default_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line's default hub, built afresh for the test and dropped after it."""
    from ._internals import hub_module as _hub

    monkeypatch.setattr(_hub, "_default_hub", None)
    yield
    if _hub._default_hub is not None:
        _hub._default_hub.close()


def test_a_plugin_endpoint_is_listed_and_checked_with_its_added_models(
    monkeypatch: pytest.MonkeyPatch,
    endpoint_config: Path,
    server: OpenAIServer,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("providerhub_openai_compatible")
    monkeypatch.setenv("PROVIDERHUB_LOCAL_MODELS", "qwen2.5")
    assert cli.main(["models"]) == 0
    printed = capsys.readouterr().out
    # Columns as wide as the longest model name of every installed plugin.
    assert re.search(r"^llama3\.2 +local$", printed, re.MULTILINE)
    assert re.search(r"^qwen2\.5 +local \(env\)$", printed, re.MULTILINE)
    assert "(env): added by the provider's PROVIDERHUB_<NAME>_MODELS" in printed
    assert cli.main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"model": "qwen2.5", "providers": ["local"], "origins": {"local": "env"}} in doc[
        "models"
    ]
    assert cli.main(["providers"]) == 0
    assert "  models: llama3.2, qwen2.5 (env)\n" in capsys.readouterr().out
    hub = providerhub.get_hub()
    results = run_checks(hub, models=["qwen2.5"], timeout=10)
    assert [(r.provider, r.model, r.status) for r in results] == [("local", "qwen2.5", "ok")]
    assert server.requests[-1].json()["model"] == "qwen2.5"


@pytest.mark.slow  # a providerhub serve process
def test_the_gateway_lists_added_models(
    tmp_path: Path, endpoint_config: Path, server: OpenAIServer
) -> None:
    pytest.importorskip("uvicorn")
    pytest.importorskip("aiohttp")
    pytest.importorskip("providerhub_openai_compatible")
    from ._gateway import Gateway, clean_environment

    env = clean_environment(
        PROVIDERHUB_CONFIG=str(endpoint_config),
        PROVIDERHUB_DISABLE_PLUGINS="gravityengine",
        PROVIDERHUB_LOCAL_MODELS="qwen2.5,phi4",
    )
    gateway = Gateway(tmp_path, env)
    try:
        status, _, body = gateway.request("GET", "/v1/models")
        assert status == 200
        assert sorted(m["id"] for m in json.loads(body)["data"]) == ["llama3.2", "phi4", "qwen2.5"]
        status, _, body = gateway.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": "phi4", "messages": HI}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200, body
        assert server.requests[-1].json()["model"] == "phi4"
    finally:
        assert gateway.stop() == 0
