from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import providerhub
from providerhub.testing import OpenAIServer
from providerhub_openai_compatible.presets import PRESETS

WriteConfig = Callable[[str], Path]
MakeHub = Callable[..., providerhub.Hub]  # (config text, **hub options)


@pytest.fixture(autouse=True)
def _clean_environment(providerhub_clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own providerhub settings, nor their configuration
    file: ``PROVIDERHUB_CONFIG`` names an empty file until a test writes its own; nor
    their services' keys (``OPENAI_API_KEY``, ...), which activate the catalog's presets."""
    for preset in PRESETS.values():
        if preset.key_env is not None:
            monkeypatch.delenv(preset.key_env, raising=False)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteConfig:
    """Write TOML text to ``config.toml`` in the test's directory and point
    ``PROVIDERHUB_CONFIG`` at it; returns the file's path."""

    def write(text: str) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("PROVIDERHUB_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def make_hub(write_config: WriteConfig) -> Iterator[MakeHub]:
    """Write a configuration file, then build a hub with every installed plugin (this one
    through its real entry point) and no retries, so each failure shows as the server gave
    it; ``make_hub(text, **options)`` passes other options to the hub."""
    hubs: list[providerhub.Hub] = []

    def make(text: str, **options: Any) -> providerhub.Hub:
        write_config(text)
        hub = providerhub.Hub(retries=0, **options)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.close()


@pytest.fixture
def hub(make_hub: MakeHub, server: OpenAIServer) -> providerhub.Hub:
    """A hub whose configuration has the endpoint ``local`` (serving ``local-llama`` and
    ``local-qwen``) pointed at the local server."""
    return make_hub(
        f"""
        [endpoints.local]
        url = "{server.url}"
        models = ["local-llama", "local-qwen"]
        """
    )
