from __future__ import annotations

from collections.abc import Iterator

import pytest

import providerhub
import providerhub_gravityengine
from providerhub.testing import OpenAIServer


@pytest.fixture(autouse=True)
def _clean_environment(providerhub_clean_env: None) -> None:
    """No test sees the developer's own providerhub settings or configuration file."""


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
