"""Google's Gemini API as a providerhub plugin: a declaration of the ``gemini`` codec.

:data:`provider` is a :class:`providerhub.plugin.HTTPProvider`: providerhub sends each
call to ``POST {url}/v1beta/models/{model}:generateContent`` (or
``:streamGenerateContent?alt=sse`` for a stream), translating the OpenAI-shaped request
and answer both ways (see ``docs/gemini.md``). The key is the call's ``auth=``, else
``PROVIDERHUB_GEMINI_API_KEY``, else ``GEMINI_API_KEY`` (the variable Google's own tools
read), and goes in the ``x-goog-api-key`` header, never in the url.
"""

from __future__ import annotations

from providerhub.plugin import Credential, HTTPProvider, Register, hookimpl

NAME = "gemini"
"""The provider's name: the ``<NAME>`` of ``PROVIDERHUB_GEMINI_URL`` and
``PROVIDERHUB_GEMINI_API_KEY``."""

MODELS = [
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
]
"""The models routed to Gemini: the current stable ones that answer ``generateContent``
with text, tools and images."""

provider = HTTPProvider(
    name=NAME,
    url="https://generativelanguage.googleapis.com",  # PROVIDERHUB_GEMINI_URL overrides it
    models=MODELS,
    codec="gemini",  # path /v1beta/models; the model and the action follow it
    # response_format's json_schema goes on as generationConfig.responseJsonSchema.
    capabilities=["stream", "tools", "vision", "json_schema"],
    credential=Credential(env="GEMINI_API_KEY", header="x-goog-api-key", scheme=""),
)


@hookimpl
def register_providers(register: Register) -> None:
    """Register the declaration."""
    register(provider)
