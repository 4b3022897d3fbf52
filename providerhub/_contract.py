"""The module contract every provider follows, written down as a typed ``Protocol``.

The contract is the one of the seed's Gravityengine module: a module (or any object) with a
few attributes and a generator ``_create_completion``. A module that follows it needs no
providerhub import at all; the hub wraps it in a :class:`providerhub.Provider`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CAPABILITIES",
    "EMBEDDINGS",
    "REQUIRED_FIELDS",
    "ProviderModule",
    "missing_fields",
    "required_capabilities",
]


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
    # introspection), and so are the capability fields of :data:`CAPABILITIES` (default
    # False: a provider that does not declare one is text-only), the rate limits ``rpm``
    # and ``tpm`` (``int``: requests and tokens per minute), ``capability_settings`` (a
    # mapping of capability field to the setting that turns it on, e.g.
    # ``{"supports_vision": "set vision = true in its [endpoints.local] table"}``, which
    # the router names when it leaves the provider out for want of it), and the asyncio-native
    # ``_acreate_completion`` (see docs/writing-providers.md), and the embeddings of
    # :data:`EMBEDDINGS` (``embedding_models``, ``_create_embedding``,
    # ``_acreate_embedding``). A Protocol cannot mark
    # attributes optional, so they are documented on :class:`providerhub.Provider` and read
    # with ``getattr``.

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        """Yield the answer's text: piece by piece as it arrives when ``stream`` is true,
        at least once otherwise. Besides ``str``, a provider may yield the structured
        pieces of :mod:`providerhub.types` (``ToolCallDelta``, ``Usage``, ``Finish``).

        ``messages`` are OpenAI-style ``{"role": ..., "content": ...}`` mappings, already
        validated. ``kwargs`` hold the caller's extra parameters, plus what the router adds:
        ``auth`` (the credential, when one is at hand), ``timeout`` (a
        :class:`providerhub.Timeout`, usable as a ``requests`` timeout), ``session``
        (the hub's pooled ``requests.Session``, when the provider uses HTTP through
        providerhub) and, to a provider that declares ``yields_pieces = True``,
        ``structured=True``: a provider that forwards its ``kwargs`` to
        :func:`providerhub.plugin.chat_completion` then passes on tool calls, usage and the
        finish reason, and called directly, without it, yields text only, as the seed's
        modules did. The caller's parameters never hold one of the router's names nor an
        option of the shared helper (``headers``, ``max_body_bytes``, ...): the hub
        refuses those (see :func:`providerhub.plugin.provider_options`).
        """
        ...


CAPABILITIES: dict[str, str] = {
    "supports_tools": "takes tools= and answers with tool calls",
    "supports_vision": "takes image_url and file content parts",
    "supports_audio": "takes input_audio content parts",
    "supports_json_schema": 'takes response_format={"type": "json_schema", ...}',
}
"""The optional capability fields, each False unless the provider declares it True, and
what a provider that declares it can do."""

EMBEDDINGS: dict[str, str] = {
    "embedding_models": "list[str]: the embedding models it serves (none by default); "
    "routed among the providers that list them, apart from the chat models of 'model'",
    "_create_embedding": "(model, input, **kwargs) -> an OpenAI embeddings document, or "
    "a providerhub.types.CreateEmbeddingResponse: one vector per input, in their order; "
    "required when embedding_models lists any",
    "_acreate_embedding": "its asyncio-native twin (async def), called on the event loop "
    "by the async client when present",
}
"""The optional fields of a provider that serves embeddings. ``input`` is a string, a
list of strings, a list of token ids or a list of such lists; ``kwargs`` hold the
caller's ``dimensions`` and ``user`` when given, and what the router adds (``auth``,
``timeout``, ``session``), as for ``_create_completion``. Vectors are always asked for,
and returned, as floats: the client encodes them as base64 when asked to."""

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
    for optional in ("working", "yields_pieces", *CAPABILITIES):
        value = getattr(obj, optional, False)
        if not isinstance(value, bool):
            problems.append(f"{optional!r} is {type(value).__name__}")
    if not callable(getattr(obj, "_create_completion", None)):
        problems.append("no callable '_create_completion'")
    native = getattr(obj, "_acreate_completion", None)
    if native is not None and not callable(native):
        problems.append("'_acreate_completion' is not callable")
    return problems + _embedding_problems(obj)


def _embedding_problems(obj: object) -> list[str]:
    """What ``obj`` gets wrong of the optional fields of :data:`EMBEDDINGS`."""
    problems = []
    models = getattr(obj, "embedding_models", None)
    if models is not None:
        if not isinstance(models, (list, tuple)):
            problems.append(f"'embedding_models' is {type(models).__name__}")
        elif not all(isinstance(m, str) for m in models):
            problems.append("'embedding_models' holds a non-string")
        elif models and not callable(getattr(obj, "_create_embedding", None)):
            problems.append(
                "'embedding_models' is set but there is no callable '_create_embedding'"
            )
    native = getattr(obj, "_acreate_embedding", None)
    if native is not None and not callable(native):
        problems.append("'_acreate_embedding' is not callable")
    return problems


_VISION_PARTS = frozenset({"image_url", "file"})


def required_capabilities(messages: list[dict[str, Any]], params: dict[str, Any]) -> frozenset[str]:
    """The capability fields a request needs of its provider: ``supports_tools`` for
    ``tools`` (or a conversation that already holds tool calls), ``supports_vision`` and
    ``supports_audio`` for such content parts, ``supports_json_schema`` for a
    ``response_format`` of type ``json_schema``."""
    needs = set()
    if params.get("tools") or params.get("functions"):
        needs.add("supports_tools")
    response_format = params.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        needs.add("supports_json_schema")
    for message in messages:
        content = message.get("content")
        if type(content) is list:
            for part in content:
                kind = part.get("type")
                if kind in _VISION_PARTS:
                    needs.add("supports_vision")
                elif kind == "input_audio":
                    needs.add("supports_audio")
        if message.get("tool_calls") or message.get("role") == "tool":
            needs.add("supports_tools")
    return frozenset(needs)
