from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import providerhub
import providerhub_gravityengine
from providerhub.testing import OpenAIServer


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's own providerhub settings or configuration file."""
    for key in list(os.environ):
        if key.startswith("PROVIDERHUB_"):
            monkeypatch.delenv(key)
    empty = tmp_path_factory.getbasetemp() / "empty-config.toml"
    empty.touch()
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(empty))


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def hub(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[providerhub.Hub]:
    """A hub holding only Gravityengine, pointed at the local server; no retries, so each
    failure shows as the server gave it."""
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        h.register_plugin(providerhub_gravityengine, name="gravityengine")
        yield h
