"""Template: an OpenAI-compatible chat completions service, as a providerhub plugin.

Copy this plugin to start your own (see the README): rename it, then describe your
service in :data:`provider`. The declaration is all a plugin for an HTTP endpoint of a
dialect providerhub knows needs: providerhub makes the calls, sync and asyncio,
streaming, with retries and typed errors. For a service that is not such an endpoint,
:mod:`providerhub_template.custom` shows a provider written to the module contract.
"""

from __future__ import annotations

from providerhub.plugin import Credential, HTTPProvider, Register, hookimpl

NAME = "template"
"""The provider's name: the ``<NAME>`` of ``PROVIDERHUB_<NAME>_URL`` and
``PROVIDERHUB_<NAME>_API_KEY``."""

provider = HTTPProvider(
    name=NAME,
    url="https://api.example.invalid",  # the base URL; PROVIDERHUB_TEMPLATE_URL overrides it
    # path="/v1/chat/completions",  # where its chat completions live (the codec's default)
    models=["template-model"],
    codec="openai-chat",  # the wire dialect: OpenAI's chat completions
    capabilities=["stream", "tools"],  # Server-Sent Events; takes tools= (see the README)
    # The key: auth=, else PROVIDERHUB_TEMPLATE_API_KEY, sent as Authorization: Bearer.
    # Credential(env="ACME_API_KEY") reads your service's own variable too;
    # Credential(header="x-api-key", scheme="") sends the key alone in another header.
    credential=Credential(),
    # rpm=60,  # optional rate limits, requests and tokens per minute: the router counts
    # tpm=90_000,  # them (across every process when the hub shares its state in Redis)
    # defaults={"temperature": 0.7},  # body fields sent unless the caller passes its own
    # extra_parameters=["top_k"],  # parameters beyond OpenAI's that the service takes
    # headers={"X-Team": "search"},  # sent with every request (never the key)
    # embedding_models=["template-embed"],  # embedding models, posted to {url}/v1/embeddings
    # embedding_codec="openai-embeddings",  # or "gemini-embeddings" (batchEmbedContents)
)


@hookimpl
def register_providers(register: Register) -> None:
    """Register the declaration; a plugin may register several."""
    register(provider)
