"""Anthropic: Claude through the Messages API (``POST /v1/messages``), as a providerhub
plugin.

The service is declared (:data:`provider`, a :class:`providerhub.plugin.HTTPProvider` of
the ``anthropic-messages`` codec): providerhub translates the OpenAI-shaped call into a
Messages request and the answer back (text, tool calls, usage, finish reasons, thinking
as ``reasoning_content``), sync and asyncio, streaming, with retries and typed errors.
The key is ``auth=``, else ``PROVIDERHUB_ANTHROPIC_API_KEY``, else ``ANTHROPIC_API_KEY``
(the official SDK's variable), sent as ``x-api-key`` with ``anthropic-version:
2023-06-01``; ``PROVIDERHUB_ANTHROPIC_URL`` replaces the base URL.
"""

from __future__ import annotations

from providerhub.plugin import Credential, HTTPProvider, Price, Register, hookimpl

NAME = "anthropic"
"""The provider's name: the ``<NAME>`` of ``PROVIDERHUB_ANTHROPIC_URL`` and
``PROVIDERHUB_ANTHROPIC_API_KEY``."""

MODELS = [
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-haiku-4-5",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5-20251001",
]
"""Claude models the ``anthropic`` SDK 2.10 lists and does not mark deprecated: the
newest of each family, and the 4.x ones by alias and by dated id."""

EXTRA_PARAMETERS = ["top_k", "thinking"]
"""Messages API parameters with no OpenAI name, sent as given: ``top_k``, and
``thinking`` (``{"type": "enabled", "budget_tokens": N}``), whose blocks come back as
``reasoning_content``."""

_OPUS_4_5 = Price(input=5, output=25, cached_input=0.5, cache_write=6.25)
_HAIKU_4_5 = Price(input=1, output=5, cached_input=0.1, cache_write=1.25)

PRICES = {
    "claude-opus-4-5": _OPUS_4_5,
    "claude-opus-4-5-20251101": _OPUS_4_5,
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-haiku-4-5-20251001": _HAIKU_4_5,
}
"""List prices, USD per million tokens, from Anthropic's pricing page
(claude.com/pricing, "API"): input, output, cache reads (a tenth of the input price) and
cache writes of the default five-minute cache (1.25 times it). The models whose price is
not known for sure here are left out: their answers are counted as unpriced until the
configuration file's ``[prices]`` table gives one."""

provider = HTTPProvider(
    name=NAME,
    url="https://api.anthropic.com",
    codec="anthropic-messages",  # path /v1/messages
    models=MODELS,
    capabilities=["stream", "tools", "vision"],
    credential=Credential(env="ANTHROPIC_API_KEY", header="x-api-key", scheme=""),
    extra_parameters=EXTRA_PARAMETERS,
    prices=PRICES,
)


@hookimpl
def register_providers(register: Register) -> None:
    """Register the declaration."""
    register(provider)
