"""Template: an OpenAI-compatible chat completions service, as a providerhub plugin.

Copy this plugin to start your own (see the README): rename it, then set ``NAME``, ``url``,
``PATH`` and ``model`` for your service. The module follows the provider contract (``url``,
``model``, ``supports_stream``, ``needs_auth``, ``_create_completion``), and the HTTP work
is providerhub's shared OpenAI-compatible helper.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from providerhub.plugin import (
    Piece,
    achat_completion,
    base_url,
    chat_completion,
    credential,
    render_params,
)

NAME = "template"
"""The provider's name: the entry point's name in pyproject.toml, and the ``<NAME>`` of
``PROVIDERHUB_<NAME>_URL`` and ``PROVIDERHUB_<NAME>_API_KEY``."""
PATH = "/v1/chat/completions"
"""Where the service's chat completions live, under ``url``."""

url = "https://api.example.invalid"
model = ["template-model"]
supports_stream = True
needs_auth = True
working = True
supports_tools = True  # the service takes tools= and answers with tool calls
yields_pieces = True  # structured=True goes on to chat_completion in kwargs
honors_timeout = True  # providerhub's transport keeps the router's timeouts
# rpm = 60  # optional rate limits, requests and tokens per minute: the router counts them
# tpm = 90_000  # (across every process when the hub shares its state through Redis)


def _create_completion(
    model: str,
    messages: list,  # type: ignore[type-arg]  # the contract's signature, which params shows
    stream: bool,
    **kwargs: Any,
) -> Iterator[Piece]:
    """Yield the answer: each content delta as it arrives when ``stream`` is true, the whole
    ``choices[0].message.content`` otherwise.

    ``kwargs`` are OpenAI chat parameters (``temperature``, ``max_tokens``, ...) and what the
    router passes: ``auth``, ``timeout`` and ``session``. Without ``auth``, the
    credential in ``PROVIDERHUB_<NAME>_API_KEY`` is used when set.
    """
    auth = credential(NAME, kwargs.pop("auth", None))
    base = base_url(NAME, url)
    yield from chat_completion(NAME, base + PATH, model, messages, stream, auth=auth, **kwargs)


async def _acreate_completion(
    model: str, messages: list[Any], stream: bool, **kwargs: Any
) -> AsyncIterator[Piece]:
    """:func:`_create_completion` for asyncio (optional): the async API calls it on the
    event loop rather than the synchronous one on a worker thread. Delete it if your
    service needs a client of its own; the async API then uses the thread pool."""
    auth = credential(NAME, kwargs.pop("auth", None))
    base = base_url(NAME, url)
    async for piece in achat_completion(
        NAME, base + PATH, model, messages, stream, auth=auth, **kwargs
    ):
        yield piece


params = render_params(NAME, _create_completion)
