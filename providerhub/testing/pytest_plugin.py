"""providerhub's pytest plugin: fixtures for testing providers and plugins.

Installing providerhub registers this module with pytest through the ``pytest11`` entry
point ``providerhub``, so any test suite run in the same environment can ask for:

``providerhub_hub``
    A fresh, empty :class:`providerhub.Hub` (``load_entrypoints=False``, ``retries=0``, so
    each failure shows as the server gave it), closed after the test.
``openai_server``
    A running :class:`providerhub.testing.OpenAIServer` on 127.0.0.1, stopped after the
    test. Script replies and faults with its ``script()`` and read what it received in its
    ``requests``.
``providerhub_clean_env``
    Removes every ``PROVIDERHUB_*`` variable for the test, points ``PROVIDERHUB_CONFIG``
    at an empty file and ``PROVIDERHUB_CACHE_DIR`` at an empty directory, so the
    developer's own settings, configuration file and models cache stay out of it (use it
    from an autouse fixture of your conftest to isolate every test).
``register_provider``
    A :class:`RegisterProvider`: ``register_provider(obj, name=None, *, hub=None)``
    registers a provider on ``providerhub_hub`` (or on ``hub``) for this test only and
    returns its :class:`providerhub.Provider`; it is unregistered after the test.

The names are prefixed so they cannot clash with a project's own ``hub`` or ``server``
fixtures. ``pytest -p no:providerhub`` turns the plugin off. The fixtures do nothing until
a test asks for one; pytest's start-up pays for importing providerhub and its testing kit
(:mod:`providerhub.testing`, the package this module is in), no server is started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from providerhub._hub import Hub
from providerhub.testing import OpenAIServer

if TYPE_CHECKING:
    from providerhub._provider import Provider

__all__ = [
    "RegisterProvider",
    "openai_server",
    "providerhub_clean_env",
    "providerhub_hub",
    "register_provider",
]


class RegisterProvider:
    """Registers providers for one test, and unregisters them when it ends.

    Calling it registers ``obj`` (a module or object following the provider contract)
    under ``name`` (by default its ``name`` attribute, or its module's last dotted part),
    on ``hub`` or else on the hub given at construction, and returns the
    :class:`providerhub.Provider`. :meth:`undo` unregisters, newest first, every provider
    it registered that is still registered; the ``register_provider`` fixture calls it
    after the test, so a test that unregistered one itself is fine.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        """The hub providers go to when no ``hub`` is given."""
        self._registered: list[tuple[Hub, Provider]] = []

    def __call__(self, obj: object, name: str | None = None, *, hub: Hub | None = None) -> Provider:
        target = self.hub if hub is None else hub
        provider = target.register(obj, name)
        self._registered.append((target, provider))
        return provider

    def undo(self) -> None:
        """Unregister what was registered, newest first, leaving alone a provider that
        has since been unregistered or replaced by another of the same name."""
        while self._registered:
            hub, provider = self._registered.pop()
            if hub.providers.get(provider.name) is provider:
                hub.unregister(provider.name)


@pytest.fixture
def providerhub_clean_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No ``PROVIDERHUB_*`` variable of the developer's, an empty configuration file in
    ``PROVIDERHUB_CONFIG``, and an empty cache directory in ``PROVIDERHUB_CACHE_DIR`` (so
    the models ``providerhub models --refresh`` cached stay out), for this test; all come
    back after it."""
    for key in list(os.environ):
        if key.startswith("PROVIDERHUB_"):
            monkeypatch.delenv(key)
    empty = tmp_path_factory.getbasetemp() / "providerhub-empty-config.toml"
    empty.touch()
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(empty))
    no_cache = tmp_path_factory.getbasetemp() / "providerhub-empty-cache"
    no_cache.mkdir(exist_ok=True)
    monkeypatch.setenv("PROVIDERHUB_CACHE_DIR", str(no_cache))


@pytest.fixture
def providerhub_hub() -> Iterator[Hub]:
    """A fresh hub with no plugins loaded and no retries, closed after the test."""
    with Hub(load_entrypoints=False, retries=0) as hub:
        yield hub


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running local OpenAI-compatible server (``.url`` is its base URL), stopped after
    the test."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def register_provider(providerhub_hub: Hub) -> Iterator[RegisterProvider]:
    """Register providers for this test only: ``register_provider(obj, name=None, *,
    hub=None)`` returns the :class:`providerhub.Provider`; by default the provider goes on
    ``providerhub_hub``. Each is unregistered after the test."""
    registrar = RegisterProvider(providerhub_hub)
    try:
        yield registrar
    finally:
        registrar.undo()
