"""Gravityengine: an OpenAI-compatible chat completions service, as a providerhub plugin.

The service is declared (:data:`provider`, a :class:`providerhub.plugin.HTTPProvider`):
its url, path, models, capabilities and the body fields it sends by default; providerhub
makes the calls, sync and asyncio, streaming, with typed errors. The module keeps the
shape of the seed's provider module (``url``, ``model``, ``supports_stream``,
``needs_auth``, ``_create_completion``, ``params``), read from the declaration, so it can
be read, and called, as one, and it is what the hub registers.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from providerhub.plugin import HTTPProvider, Piece, hookimpl

NAME = "gravityengine"
PATH = "/api/openai/v1/chat/completions"
DEFAULTS = {"temperature": 0.7, "presence_penalty": 0}
"""Body fields sent unless the caller passes its own."""

provider = HTTPProvider(
    name=NAME,
    url="https://gpt4.gravityengine.cc",
    path=PATH,
    models=["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"],
    # Its models (gpt-3.5-turbo-0613 on) call functions. No credential is needed; one
    # given as auth= or PROVIDERHUB_GRAVITYENGINE_API_KEY goes as a Bearer token.
    capabilities=["stream", "tools"],
    defaults=DEFAULTS,
)

# The seed's module shape, from the declaration.
url = provider.url
model = provider.model
supports_stream = provider.supports_stream
needs_auth = provider.needs_auth
working = provider.working
supports_tools = provider.supports_tools
supports_vision = provider.supports_vision
supports_json_schema = provider.supports_json_schema
yields_pieces = provider.yields_pieces  # structured=True goes on to the codec
honors_timeout = provider.honors_timeout  # providerhub's transport keeps the timeouts


def _create_completion(
    model: str,
    messages: list,  # type: ignore[type-arg]  # the seed's signature, which params shows
    stream: bool,
    **kwargs: Any,
) -> Iterator[Piece]:
    """Yield the answer: each content delta as it arrives when ``stream`` is true, the whole
    ``choices[0].message.content`` otherwise.

    ``kwargs`` are OpenAI chat parameters (``temperature``, ``max_tokens``, ...), and what the
    router passes: ``auth``, ``timeout``, ``session``. Without ``auth``,
    ``PROVIDERHUB_GRAVITYENGINE_API_KEY`` is used when set. The module's ``url`` is passed
    on, so a hub that registers the module under another name can point it elsewhere.
    """
    return provider.complete(url, model, messages, stream, **kwargs)


def _acreate_completion(
    model: str, messages: list[Any], stream: bool, **kwargs: Any
) -> AsyncIterator[Piece]:
    """:func:`_create_completion` for asyncio, over aiohttp (``providerhub[server]``): the
    async API calls it on the event loop, with an ``aiohttp.ClientSession`` as
    ``session``."""
    return provider.acomplete(url, model, messages, stream, **kwargs)


params = provider.params


@hookimpl
def register_providers(register: Any) -> None:
    register(sys.modules[__name__], name=NAME)
