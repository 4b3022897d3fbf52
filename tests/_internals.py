"""The tests' one door to providerhub's private modules.

Tests reach internals only through this module, so that moving a private module changes
this file and not the tests. Prefer the public API (``providerhub``, ``providerhub.plugin``,
``providerhub.testing``) in new tests.

Each name is imported when a test first asks for it, so that a test module whose
optional dependency (uvicorn, aiohttp, redis) is missing can still skip itself
(``pytest.importorskip``) before anything needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ANTHROPIC": ("providerhub._codecs.anthropic_messages", "CODEC"),
    "App": ("providerhub.server._app", "App"),
    "Assembler": ("providerhub._codecs.completions", "Assembler"),
    "CODEC": ("providerhub._codecs.openai_chat", "CODEC"),
    "Call": ("providerhub._codecs.base", "Call"),
    "ChatStreamDecoder": ("providerhub._codecs.openai_chat", "ChatStreamDecoder"),
    "Chunker": ("providerhub._codecs.completions", "Chunker"),
    "Claim": ("providerhub._state.health", "Claim"),
    "DISCONNECT_EXTENSION": ("providerhub.server._app", "DISCONNECT_EXTENSION"),
    "ENVIRONMENT": ("providerhub._transports.session", "ENVIRONMENT"),
    "Event": ("providerhub._codecs.sse", "Event"),
    "EventTooLargeError": ("providerhub._codecs.sse", "EventTooLargeError"),
    "GEMINI": ("providerhub._codecs.gemini", "CODEC"),
    "GatewayProtocol": ("providerhub.server._protocol", "GatewayProtocol"),
    "Health": ("providerhub._state.health", "Health"),
    "Keys": ("providerhub.server._keys", "Keys"),
    "Limits": ("providerhub._state.limits", "Limits"),
    "MAX_DEPTH": ("providerhub._validation", "MAX_DEPTH"),
    "MAX_TOKENS": ("providerhub._check", "MAX_TOKENS"),
    "MemoryLimiter": ("providerhub._state.limits", "MemoryLimiter"),
    "MODEL_LISTS": ("providerhub._codecs.model_lists", "LISTS"),
    "NO_DEFAULT": ("providerhub._params", "NO_DEFAULT"),
    "NativeStream": ("providerhub._routing.arouter", "NativeStream"),
    "ROLES": ("providerhub._validation", "ROLES"),
    "ROUTER_ARGUMENTS": ("providerhub._options", "ROUTER_ARGUMENTS"),
    "RedisState": ("providerhub._state.redis", "RedisState"),
    "Request": ("providerhub._codecs.base", "Request"),
    "SSEParser": ("providerhub._codecs.sse", "SSEParser"),
    "ToolCallStream": ("providerhub._codecs.toolcalls", "ToolCallStream"),
    "WORKERS": ("providerhub._routing._aio", "WORKERS"),
    "Workers": ("providerhub._routing.pump", "Workers"),
    "_cache": ("providerhub", "_cache"),
    "_config": ("providerhub.server", "_config"),
    "_errors": ("providerhub.server", "_errors"),
    "_access_log": ("providerhub.server", "_access_log"),
    "_otel": ("providerhub.server", "_otel"),
    "_json_loads": ("providerhub._codecs.openai_chat", "_json_loads"),
    "_limits": ("providerhub._state", "limits"),
    "_openai_compat": ("providerhub._http", "chat"),
    "_scan": ("providerhub._speedups", "scan_json"),
    "_session": ("providerhub._transports", "session"),
    "_speedups": ("providerhub", "_speedups"),
    "abortable": ("providerhub._transports", "abortable"),
    "_spend": ("providerhub", "_spend"),
    "anthropic_usage": ("providerhub._codecs.anthropic_messages", "_usage"),
    "gemini_usage": ("providerhub._codecs.gemini", "_usage"),
    "openai_usage": ("providerhub._codecs.openai_chat", "_usage"),
    "responses": ("providerhub._codecs", "responses"),
    "anthropic_gateway": ("providerhub._codecs", "anthropic_gateway"),
    "openai_embeddings": ("providerhub._codecs", "openai_embeddings"),
    "gemini_embeddings": ("providerhub._codecs", "gemini_embeddings"),
    "achat_completion": ("providerhub._http.achat", "achat_completion"),
    "aio": ("providerhub._routing", "_aio"),
    "arouter": ("providerhub._routing", "arouter"),
    "build_parser": ("providerhub._cli", "build_parser"),
    "cache_path": ("providerhub._model_cache", "cache_path"),
    "default_cache_dir": ("providerhub._model_cache", "default_cache_dir"),
    "chat_completion": ("providerhub._http.chat", "chat_completion"),
    "cli": ("providerhub", "_cli"),
    "completion_id": ("providerhub._codecs.completions", "completion_id"),
    "describe": ("providerhub._params", "describe"),
    "environment_reader": ("providerhub._speedups", "environment_reader"),
    "failure_for": ("providerhub.server._errors", "failure_for"),
    "help_texts": ("providerhub._cli", "help_texts"),
    "hub_module": ("providerhub", "_hub"),
    "is_loopback": ("providerhub.server._serve", "is_loopback"),
    "keys_module": ("providerhub.server", "_keys"),
    "lean": ("providerhub._transports", "lean"),
    "provider_options": ("providerhub._options", "provider_options"),
    "redact": ("providerhub._redaction", "redact"),
    "render": ("providerhub._params", "render"),
    "router": ("providerhub._routing", "router"),
    "refresh": ("providerhub._discovery", "refresh"),
    "run_checks": ("providerhub._check", "run_checks"),
    "settings": ("providerhub", "_settings"),
    "tool_calls_of": ("providerhub._codecs.toolcalls", "tool_calls_of"),
    "transport": ("providerhub._transports", "sync"),
    "transports_aio": ("providerhub._transports", "aio"),
    "validate_messages": ("providerhub._validation", "validate_messages"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _WHERE[name]
    except KeyError:
        raise AttributeError(f"tests._internals has no {name!r}: add it to _WHERE") from None
    try:
        value = getattr(importlib.import_module(module), attribute)
    except AttributeError:  # a submodule its package has not imported yet
        value = importlib.import_module(f"{module}.{attribute}")
    globals()[name] = value
    return value
