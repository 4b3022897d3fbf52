"""Google's Gemini API as a providerhub plugin: a declaration of the ``gemini`` codec.

:data:`provider` is a :class:`providerhub.plugin.HTTPProvider`: providerhub sends each
call to ``POST {url}/v1beta/models/{model}:generateContent`` (or
``:streamGenerateContent?alt=sse`` for a stream), translating the OpenAI-shaped request
and answer both ways (see ``docs/gemini.md``). The key is the call's ``auth=``, else
``PROVIDERHUB_GEMINI_API_KEY``, else ``GEMINI_API_KEY`` (the variable Google's own tools
read), and goes in the ``x-goog-api-key`` header, never in the url.
"""

from __future__ import annotations

from providerhub.plugin import Credential, HTTPProvider, Price, Register, hookimpl

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

PRICES = {
    "gemini-2.5-flash": Price(input=0.3, output=2.5, cached_input=0.03),
    "gemini-2.5-flash-lite": Price(input=0.1, output=0.4, cached_input=0.01),
    "gemini-2.0-flash": Price(input=0.1, output=0.4, cached_input=0.025),
    "gemini-2.0-flash-lite": Price(input=0.075, output=0.3),
}
"""List prices of the paid tier, USD per million text tokens, from
ai.google.dev/gemini-api/docs/pricing: input, output (thinking tokens are billed as
output, and counted in ``completion_tokens``) and context-cache reads.
``gemini-2.5-pro`` is left out: its price depends on the prompt's length (above 200k
tokens it doubles), which one price per model cannot say; set it in the configuration
file's ``[prices]`` table for the prompts you send."""

provider = HTTPProvider(
    name=NAME,
    url="https://generativelanguage.googleapis.com",  # PROVIDERHUB_GEMINI_URL overrides it
    models=MODELS,
    codec="gemini",  # path /v1beta/models; the model and the action follow it
    # response_format's json_schema goes on as generationConfig.responseJsonSchema.
    capabilities=["stream", "tools", "vision", "json_schema"],
    credential=Credential(env="GEMINI_API_KEY", header="x-goog-api-key", scheme=""),
    prices=PRICES,
)


@hookimpl
def register_providers(register: Register) -> None:
    """Register the declaration."""
    register(provider)
