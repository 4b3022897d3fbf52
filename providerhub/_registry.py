"""The registry: a hub's providers by name and by model, and its aliases.

The hub fills it (from plugins and by hand); the router only reads it, through the few
methods below, so routing depends on what a registry answers and not on how a hub keeps it.

Embedding models are kept apart from chat models: a provider's ``embedding_models`` are
looked up only by an embeddings call (``embeddings=True``) and its ``model`` only by a
chat completion, so a name may stand for a chat model at one provider and an embedding
model at another, and neither call is ever sent to a provider for the other kind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from ._provider import Provider
from .errors import ConfigurationError, PluginError

__all__ = ["Registry"]


class Registry:
    """Providers by (case-insensitive) name, in registration order; the providers serving
    each model, in routing order; and aliases, each standing for a model."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self._by_name: dict[str, Provider] = {}  # lower-cased name -> provider
        self._by_model: dict[str, list[Provider]] = {}
        self._by_embedding_model: dict[str, list[Provider]] = {}
        self._aliases: dict[str, str] = dict(aliases or {})
        self._lock = threading.Lock()

    # -- reading, for the router ---------------------------------------------------------

    def lookup(self, name: str) -> Provider | None:
        """The provider named ``name`` in any case, or None."""
        return self._by_name.get(name.lower())

    def serving(self, model: str, *, embeddings: bool = False) -> list[Provider]:
        """The providers that list ``model``, in routing order (possibly none); with
        ``embeddings``, those that list it among their ``embedding_models``."""
        return (self._by_embedding_model if embeddings else self._by_model).get(model, [])

    def models(self, *, embeddings: bool = False) -> list[str]:
        """Every model some provider lists (with ``embeddings``, every embedding model)."""
        return list(self._by_embedding_model if embeddings else self._by_model)

    def unalias(self, name: str) -> str:
        """The model ``name`` stands for when it is an alias, else ``name``."""
        return self._aliases.get(name, name)

    @property
    def providers(self) -> Mapping[str, Provider]:
        """Providers by name, in registration order; lookups ignore case."""
        return _ProviderView(self._by_name)

    @property
    def aliases(self) -> Mapping[str, str]:
        """Aliases and the models they stand for (read-only)."""
        return MappingProxyType(self._aliases)

    def by_model(self, *, embeddings: bool = False) -> dict[str, list[str]]:
        """Every model (with ``embeddings``, every embedding model), with the names of the
        providers that list it, in routing order."""
        found = self._by_embedding_model if embeddings else self._by_model
        return {m: [p.name for p in ps] for m, ps in sorted(found.items())}

    # -- changing, for the hub -----------------------------------------------------------

    def add(self, provider: Provider) -> None:
        """Add ``provider``; :class:`PluginError` when its name is taken."""
        with self._lock:
            existing = self._by_name.get(provider.name.lower())
            if existing is not None:
                origin = existing.distribution or existing.plugin or "hub.register"
                raise PluginError(
                    f"a provider named {existing.name!r} is already registered (from "
                    f"{origin}); this one was not registered: register it under another "
                    "name, or unregister the first"
                )
            self._by_name[provider.name.lower()] = provider
            for model in provider.model:
                self._by_model.setdefault(model, []).append(provider)
            for model in provider.embedding_models:
                self._by_embedding_model.setdefault(model, []).append(provider)

    def remove(self, name: str) -> Provider:
        """Remove the provider named ``name`` and return it."""
        with self._lock:
            provider = self._by_name.pop(name.lower(), None)
            if provider is None:
                raise ConfigurationError(f"no provider named {name!r} is registered")
            for models, by_model in (
                (provider.model, self._by_model),
                (provider.embedding_models, self._by_embedding_model),
            ):
                for model in models:
                    left = [p for p in by_model.get(model, []) if p is not provider]
                    if left:
                        by_model[model] = left
                    else:
                        by_model.pop(model, None)
        return provider

    def set_alias(self, alias: str, model: str) -> None:
        """Let ``alias`` stand for ``model``; refused when a provider serves ``alias``
        itself, since the alias would hide that model."""
        for label, value in (("alias", alias), ("model", model)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{label} must be a non-empty string, not {value!r}")
        if alias == model:
            raise ConfigurationError(f"{alias!r} cannot be an alias of itself")
        if self.serving(alias) or self.serving(alias, embeddings=True):
            raise ConfigurationError(
                f"{alias!r} is a model a provider serves; an alias of that name would hide it"
            )
        self._aliases[alias] = model

    def drop_alias(self, alias: str) -> None:
        if self._aliases.pop(alias, None) is None:
            raise ConfigurationError(f"no alias {alias!r}")


class _ProviderView(Mapping[str, Provider]):
    """The registry seen by name: keys as registered, lookups in any case."""

    __slots__ = ("_by_key",)

    def __init__(self, by_key: dict[str, Provider]) -> None:
        self._by_key = by_key

    def __getitem__(self, name: str) -> Provider:
        return self._by_key[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_key

    def __iter__(self) -> Iterator[str]:
        return (p.name for p in list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"<providers {list(self)!r}>"
