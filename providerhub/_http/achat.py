"""Chat completions from any OpenAI-compatible endpoint, asyncio-native: the exchange of
:func:`providerhub._http.chat.chat_completion` over an asyncio transport
(:class:`~providerhub._transports.aio.AsyncTransport`, aiohttp's by default).

The codec (:mod:`providerhub._codecs.openai_chat`) encodes the request and decodes the
answer, fed the body's bytes as they arrive, exactly as on the synchronous path; the
transport keeps every deadline; this module only moves bytes between them.

A provider for such an endpoint adds an asyncio-native twin to its completion function::

    async def _acreate_completion(model, messages, stream, **kwargs):
        async for piece in achat_completion(
            "example", url + "/v1/chat/completions", model, messages, stream, **kwargs
        ):
            yield piece
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any

from .._codecs.base import DEFAULT_MAX_BODY_BYTES, Call, Codec, Request
from .._codecs.openai_chat import CODEC
from .._codecs.sse import DEFAULT_MAX_EVENT_BYTES
from .._timeout import Timeout, TimeoutLike, to_timeout
from .._transports import aio as atransport
from .._transports.errors import Translation
from ..types import Piece
from ._aexchange import aexchange

if TYPE_CHECKING:
    import aiohttp

__all__ = ["achat_completion"]


def achat_completion(
    provider: str,
    endpoint: str,
    model: str,
    messages: list[Any],
    stream: bool,
    *,
    defaults: Mapping[str, Any] | None = None,
    auth: str | None = None,
    timeout: TimeoutLike = None,
    session: aiohttp.ClientSession | None = None,
    headers: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    credential_variable: str | None = None,
    structured: bool = False,
    extra_parameters: Collection[str] = (),
    codec: Codec = CODEC,
    **params: Any,
) -> AsyncIterator[Piece]:
    """:func:`providerhub.plugin.chat_completion` for asyncio: the same arguments, checks,
    request, pieces and typed errors, as an async iterator (``async for``).

    The arguments are checked at the call, before anything is awaited:
    :class:`InvalidRequestError` names what cannot be sent. ``session`` is the
    ``aiohttp.ClientSession`` to send it with (the router passes the hub's, one per event
    loop); without one, a session is opened for the call and closed with it. Cancelling
    the task that reads it, or closing it (``aclose()``, or leaving ``async for`` and
    dropping it), closes the HTTP response; the connection goes back to the pool only
    after a whole answer. Needs aiohttp (``providerhub[server]``).
    """
    request = codec.encode(
        Call(
            provider,
            endpoint,
            model,
            messages,
            stream,
            params,
            defaults=defaults,
            extra_parameters=extra_parameters,
            auth=auth,
            headers=headers,
            credential_variable=credential_variable,
            structured=structured,
            max_body_bytes=max_body_bytes,
            max_event_bytes=max_event_bytes,
        )
    )
    limits = to_timeout(timeout)
    if session is not None:
        return aexchange(codec, request, limits, atransport.transport_for(session))
    return _own_session(codec, request, limits)


async def _own_session(codec: Codec, request: Request, limits: Timeout) -> AsyncIterator[Piece]:
    """:func:`aexchange` over a session of its own, closed with it."""
    with Translation(request.call.provider, request.url, request.secrets):
        session = atransport.new_session()
    try:
        async for piece in aexchange(codec, request, limits, atransport.AiohttpTransport(session)):
            yield piece
    finally:
        await session.close()
