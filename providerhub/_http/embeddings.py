"""Embeddings from any OpenAI-compatible endpoint (``POST {url}/v1/embeddings``): the
exchange of :mod:`providerhub._http._aexchange` driven with the embeddings codec
(:mod:`providerhub._codecs.openai_embeddings`, or another of the same call, such as
:mod:`providerhub._codecs.gemini_embeddings`), over ``requests`` or over an asyncio
transport, as chat completions are. The answer is one piece, a
:class:`~providerhub.types.CreateEmbeddingResponse`, returned whole.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from .._codecs.base import DEFAULT_MAX_BODY_BYTES, Call, Codec, Request
from .._codecs.openai_embeddings import CODEC
from .._timeout import TimeoutLike, to_timeout
from .._transports import aio as atransport
from .._transports import sync as transport
from ..errors import ProviderResponseError
from ..types import CreateEmbeddingResponse, Piece
from ._aexchange import aexchange
from ._exchange import exchange
from .achat import _own_session

if TYPE_CHECKING:
    import aiohttp
    import requests

__all__ = ["acreate_embedding", "create_embedding"]


def _encoded(
    provider: str,
    endpoint: str,
    model: str,
    input: Any,
    *,
    auth: str | None = None,
    headers: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    credential_variable: str | None = None,
    extra_parameters: Collection[str] = (),
    codec: Codec = CODEC,
    **params: Any,
) -> tuple[Codec, Request]:
    """The codec and its request for ``input``: checked before anything is sent."""
    call = Call(
        provider,
        endpoint,
        model,
        [],
        False,
        {"input": input, **params},
        extra_parameters=extra_parameters,
        auth=auth,
        headers=headers,
        credential_variable=credential_variable,
        max_body_bytes=max_body_bytes,
    )
    return codec, codec.encode(call)


def _only(provider: str, pieces: list[Piece]) -> CreateEmbeddingResponse:
    for piece in pieces:
        if isinstance(piece, CreateEmbeddingResponse):
            return piece
    raise ProviderResponseError(provider, "gave no embeddings")  # not reached: decode gives one


def create_embedding(
    provider: str,
    endpoint: str,
    model: str,
    input: Any,
    *,
    timeout: TimeoutLike = None,
    session: requests.Session | None = None,
    **options: Any,
) -> CreateEmbeddingResponse:
    """POST an embeddings request for ``input`` to ``endpoint`` and return its vectors.

    ``options`` are ``auth``, ``headers``, ``max_body_bytes``, ``credential_variable`` and
    ``extra_parameters``, as for :func:`providerhub.plugin.chat_completion`; ``codec``, the
    dialect (OpenAI's embeddings by default); and OpenAI's other embeddings fields
    (``dimensions``, ``user``), or those named in ``extra_parameters``. Failures raise the
    typed errors of :mod:`providerhub.errors`, naming ``provider``, with no credential in
    their messages.
    """
    codec, request = _encoded(provider, endpoint, model, input, **options)
    http = session if session is not None else transport.default_session()
    pieces = exchange(codec, request, to_timeout(timeout), transport.RequestsTransport(http))
    return _only(provider, list(pieces))


async def acreate_embedding(
    provider: str,
    endpoint: str,
    model: str,
    input: Any,
    *,
    timeout: TimeoutLike = None,
    session: aiohttp.ClientSession | None = None,
    **options: Any,
) -> CreateEmbeddingResponse:
    """:func:`create_embedding` for asyncio, over ``session`` (an
    ``aiohttp.ClientSession``; without one, a session of its own, closed with the call).
    Cancelling the task closes the HTTP response."""
    codec, request = _encoded(provider, endpoint, model, input, **options)
    limits = to_timeout(timeout)
    if session is not None:
        pieces = aexchange(codec, request, limits, atransport.transport_for(session))
    else:
        pieces = _own_session(codec, request, limits)
    return _only(provider, [piece async for piece in pieces])
