"""The exchange of one request: send what the codec encoded over a transport, feed the
codec the answer's bytes as they arrive, and turn what either raises into a typed error.

``_aexchange.py`` is the one source of the exchange, over an asyncio transport;
``_exchange.py``, over ``requests``, is generated from it by ``scripts/unasync.py``. The
codec (:mod:`providerhub._codecs`) does no I/O and the transport
(:mod:`providerhub._transports.aio`) keeps every deadline; this module only moves bytes
between them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from time import monotonic

from .._codecs.base import Codec, Request
from .._timeout import Timeout
from .._transports.aio import AsyncTransport
from .._transports.errors import Translation
from .._transports.sync import ERROR_BODY_BYTES
from ..types import Piece

__all__ = ["aexchange"]


async def aexchange(
    codec: Codec, request: Request, limits: Timeout, transport: AsyncTransport
) -> AsyncIterator[Piece]:
    """The pieces of the answer to ``request`` (encoded by ``codec``), sent over
    ``transport`` within ``limits``: the codec decodes, the transport keeps every
    deadline, and what either raises leaves as a typed error
    (:class:`~providerhub._transports.errors.Translation`).

    A generator, so that the caller checks its arguments eagerly (encoding) and nothing
    touches the network until the first piece is asked for. Closing it (``aclose()``, a
    cancellation) closes the response; the connection goes back to the pool only after
    a whole answer."""
    provider = request.call.provider
    deadline = None if limits.total is None else monotonic() + limits.total
    translation = Translation(provider, request.url, request.secrets, deadline=deadline)
    with translation:
        response = await transport.send(
            provider, request.method, request.url, request.headers, request.body, limits, deadline
        )
    try:
        url = translation.url = response.url
        with translation:
            status = response.status
            if status >= 400:
                try:
                    body = await response.read(ERROR_BODY_BYTES)
                except Exception:
                    body = b""  # the excerpt is a courtesy; the status alone is the error
                raise codec.error(request, url, status, response.reason, response.headers, body)
            content_type = response.headers.get("Content-Type")
            if not codec.streams(request, content_type):
                translation.started = True  # a connection that breaks now breaks mid-answer
                body = await response.read(request.call.max_body_bytes + 1)
                for piece in codec.decode(request, url, status, content_type, body):
                    yield piece
                return
            decoder = codec.decoder(request, url)
            feed = decoder.feed
            try:
                async for chunk in response.chunks():
                    for piece in feed(chunk):
                        yield piece
                    if decoder.done:
                        break
                for piece in decoder.end():
                    yield piece
            except Exception:
                translation.started = decoder.started
                raise
            if decoder.done:
                await response.release()
    finally:
        response.close()
