from __future__ import annotations

from collections.abc import Iterator

import pytest

import providerhub
import providerhub_gemini
from providerhub.testing import GeminiServer

KEY = "AIza-test-key-for-the-stand-in"


@pytest.fixture(autouse=True)
def _clean_environment(providerhub_clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own providerhub settings, nor their Gemini key."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[GeminiServer]:
    with GeminiServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def pointed(server: GeminiServer, monkeypatch: pytest.MonkeyPatch) -> GeminiServer:
    """The stand-in, with ``PROVIDERHUB_GEMINI_URL`` and ``GEMINI_API_KEY`` naming it."""
    monkeypatch.setenv("PROVIDERHUB_GEMINI_URL", server.url)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    return server


@pytest.fixture
def hub(pointed: GeminiServer) -> Iterator[providerhub.Hub]:
    """A hub holding only Gemini, pointed at the stand-in; no retries, so each failure
    shows as the stand-in gave it."""
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        h.register_plugin(providerhub_gemini, name="gemini")
        yield h
