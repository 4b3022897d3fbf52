"""Gravityengine: an OpenAI-compatible chat completions service, as a providerhub plugin.

The module keeps the shape of the seed's provider module (``url``, ``model``,
``supports_stream``, ``needs_auth``, ``_create_completion``, ``params``), so it can be read,
and called, as one. The HTTP work is providerhub's shared OpenAI-compatible helper.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

from providerhub.plugin import (
    Piece,
    achat_completion,
    base_url,
    chat_completion,
    credential,
    hookimpl,
    render_params,
)

NAME = "gravityengine"
PATH = "/api/openai/v1/chat/completions"
DEFAULTS = {"temperature": 0.7, "presence_penalty": 0}
"""Body fields sent unless the caller passes its own."""

url = "https://gpt4.gravityengine.cc"
model = ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"]
supports_stream = True
needs_auth = False
working = True
supports_tools = True  # its models (gpt-3.5-turbo-0613 on) call functions
supports_vision = False
supports_json_schema = False
yields_pieces = True  # structured=True goes on to chat_completion in kwargs
honors_timeout = True  # providerhub's transport keeps the router's timeouts


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
    ``PROVIDERHUB_GRAVITYENGINE_API_KEY`` is used when set.
    """
    auth = credential(NAME, kwargs.pop("auth", None))
    base = base_url(NAME, url)
    yield from chat_completion(
        NAME,
        base + PATH,
        model,
        messages,
        stream,
        defaults=DEFAULTS,
        auth=auth,
        **kwargs,
    )


async def _acreate_completion(
    model: str, messages: list[Any], stream: bool, **kwargs: Any
) -> AsyncIterator[Piece]:
    """:func:`_create_completion` for asyncio, over aiohttp (``providerhub[server]``): the
    async API calls it on the event loop, with an ``aiohttp.ClientSession`` as
    ``session``."""
    auth = credential(NAME, kwargs.pop("auth", None))
    base = base_url(NAME, url)
    async for piece in achat_completion(
        NAME,
        base + PATH,
        model,
        messages,
        stream,
        defaults=DEFAULTS,
        auth=auth,
        **kwargs,
    ):
        yield piece


params = render_params(NAME, _create_completion)


@hookimpl
def register_providers(register: Any) -> None:
    register(sys.modules[__name__], name=NAME)
