"""The module contract every provider follows, written down as a typed ``Protocol``.

The contract is the one of the seed's Gravityengine module: a module (or any object) with a
few attributes and a generator ``_create_completion``. A module that follows it needs no
providerhub import at all; the hub wraps it in a :class:`providerhub.Provider`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = ["REQUIRED_FIELDS", "ProviderModule", "missing_fields"]


@runtime_checkable
class ProviderModule(Protocol):
    """What a provider module or object holds."""

    url: str
    """Base URL of the service, without a trailing slash. ``PROVIDERHUB_<NAME>_URL``
    overrides it."""

    model: list[str]
    """Names of the models this provider serves; the router matches them exactly."""

    supports_stream: bool
    """Whether ``_create_completion(..., stream=True)`` yields text as it arrives."""

    needs_auth: bool
    """Whether a credential is required. The router then passes it as the keyword argument
    ``auth``, and skips the provider when none is at hand."""

    # ``working: bool`` is optional (default True) and ``params: str`` is optional (built by
    # introspection); a Protocol cannot mark attributes optional, so they are documented on
    # :class:`providerhub.Provider` and read with ``getattr``.

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        """Yield the answer's text: piece by piece as it arrives when ``stream`` is true,
        at least once otherwise.

        ``messages`` are OpenAI-style ``{"role": ..., "content": ...}`` mappings, already
        validated. ``kwargs`` hold the caller's extra parameters, plus what the router adds:
        ``auth`` (the credential, when one is at hand), ``timeout`` (a
        :class:`providerhub.Timeout`, usable as a ``requests`` timeout) and ``session``
        (the hub's pooled ``requests.Session``, when the provider uses HTTP through
        providerhub).
        """
        ...


REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "model": (list, tuple),
    "supports_stream": bool,
    "needs_auth": bool,
}


def missing_fields(obj: object) -> list[str]:
    """Describe what ``obj`` lacks or has of the wrong type; empty when it follows the
    contract."""
    problems = []
    for field, kind in REQUIRED_FIELDS.items():
        if not hasattr(obj, field):
            problems.append(f"no {field!r}")
        elif not isinstance(getattr(obj, field), kind):
            problems.append(f"{field!r} is {type(getattr(obj, field)).__name__}")
    models = getattr(obj, "model", None)
    if isinstance(models, (list, tuple)) and not all(isinstance(m, str) for m in models):
        problems.append("'model' holds a non-string")
    working = getattr(obj, "working", True)
    if not isinstance(working, bool):
        problems.append(f"'working' is {type(working).__name__}")
    if not callable(getattr(obj, "_create_completion", None)):
        problems.append("no callable '_create_completion'")
    return problems
