"""Chat completions from any OpenAI-compatible endpoint, asyncio-native: the exchange of
:func:`providerhub._http.chat.chat_completion` over an ``aiohttp.ClientSession``.

Everything but the waiting is the synchronous helper's own code: the request (checked,
encoded, its headers and secrets), the event reader, the document reader, tool-call
normalization, and the typed errors (:mod:`providerhub._transports.sync`). The event reader is
a plain generator; this module hands it the body's chunks as they arrive (an
:class:`_Inbox`), so both paths read events with the same loop and the synchronous one
pays nothing for it.

A provider for such an endpoint adds an asyncio-native twin to its completion function::

    async def _acreate_completion(model, messages, stream, **kwargs):
        async for piece in achat_completion(
            "example", url + "/v1/chat/completions", model, messages, stream, **kwargs
        ):
            yield piece
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._codecs.sse import DEFAULT_MAX_EVENT_BYTES
from .._timeout import Timeout, TimeoutLike, to_timeout
from .._transports import aio as atransport
from .._transports import sync as transport
from ..types import Piece
from .chat import (
    MORE,
    _document_pieces,
    _event_pieces,
    _More,
    _request,
)

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
    max_body_bytes: int = transport.DEFAULT_MAX_BODY_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    credential_variable: str | None = None,
    structured: bool = False,
    extra_parameters: Collection[str] = (),
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
    request = _request(
        provider,
        endpoint,
        model,
        messages,
        stream,
        defaults,
        auth,
        headers,
        params,
        extra_parameters,
    )
    limits = to_timeout(timeout)
    return _exchange(
        provider,
        endpoint,
        request.payload,
        request.headers,
        stream,
        secrets=request.secrets,
        limits=limits,
        session=session,
        max_body_bytes=max_body_bytes,
        max_event_bytes=max_event_bytes,
        credential_variable=credential_variable,
        structured=structured,
    )


async def _exchange(
    provider: str,
    endpoint: str,
    payload: bytes,
    headers: dict[str, str],
    stream: bool,
    *,
    secrets: list[str | None],
    limits: Timeout,
    session: aiohttp.ClientSession | None,
    max_body_bytes: int,
    max_event_bytes: int,
    credential_variable: str | None,
    structured: bool,
) -> AsyncIterator[Piece]:
    deadline = None if limits.total is None else time.monotonic() + limits.total
    translation = transport.Translation(provider, endpoint, secrets, deadline=deadline)
    own = None
    if session is None:
        with translation:
            own = session = atransport.new_session()
    try:
        with translation:
            response = await atransport.post(
                session, provider, endpoint, payload, headers, limits, deadline
            )
        translation.url = str(response.url)
        try:
            with translation:
                if response.status >= 400:
                    raise await atransport.error_for_status(
                        provider, response, secrets, credential_variable=credential_variable
                    )
                content_type = transport.media_type(response.headers.get("Content-Type"))
                if stream and content_type == "text/event-stream":
                    async for piece in _events(provider, response, translation, max_event_bytes):
                        if structured or type(piece) is str:
                            yield piece
                    await atransport.settle(response)
                else:
                    translation.started = True  # a connection that breaks now breaks mid-answer
                    raw = await atransport.read_body(response, max_body_bytes, provider)
                    pieces = _document_pieces(
                        provider, raw, response.status, content_type, str(response.url), secrets
                    )
                    for piece in pieces:
                        if structured or type(piece) is str:
                            yield piece
        finally:
            # After a whole body aiohttp has pooled the connection already, and this does
            # nothing; otherwise (a failure, a cancellation, an early close) it closes it.
            response.close()
    finally:
        if own is not None:
            await own.close()


class _Inbox(Iterator["bytes | _More"]):
    """The chunks of a body for :func:`~providerhub._http.chat._event_pieces`, handed
    over one at a time: the chunk put in :attr:`chunk`, else ``MORE`` (none yet); an
    empty chunk is the body's end."""

    __slots__ = ("chunk",)

    def __init__(self) -> None:
        self.chunk: bytes | None = None

    def __next__(self) -> bytes | _More:
        chunk = self.chunk
        if chunk is None:
            return MORE
        self.chunk = None
        if not chunk:
            raise StopIteration
        return chunk


async def _events(
    provider: str,
    response: aiohttp.ClientResponse,
    translation: transport.Translation,
    max_event_bytes: int,
) -> AsyncIterator[Piece]:
    """The pieces of an event stream, read by the synchronous helper's event reader,
    which is handed each chunk as it arrives.

    Until the first piece is out, the body is read one HTTP chunk at a time
    (``readchunk``): a server that sends its first events and the rest at once would
    otherwise have every event parsed before the first is passed on, which is the time
    to the first token. After it, all that is in at once (``readany``), the cheaper way
    through a long stream."""
    inbox = _Inbox()
    pieces = _event_pieces(
        provider, inbox, transport.safe_url(str(response.url)), translation, max_event_bytes
    )
    content = response.content
    first = True
    try:
        while True:
            for piece in pieces:
                if piece is MORE:
                    break
                first = False
                yield piece
            else:
                return  # [DONE], or the end of the body
            if first:
                data, chunk_end = await content.readchunk()
                while not data and chunk_end:  # an empty HTTP chunk, not the body's end
                    data, chunk_end = await content.readchunk()
                inbox.chunk = data
            else:
                inbox.chunk = await content.readany()
    finally:
        pieces.close()
