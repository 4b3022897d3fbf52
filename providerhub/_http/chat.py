"""Chat completions from any OpenAI-compatible endpoint: the request, real streaming, and
every failure as a typed error naming the provider.

A provider for such an endpoint is a few lines::

    url = "https://example.invalid"
    model = ["some-model"]
    supports_stream = True
    needs_auth = False

    def _create_completion(model, messages, stream, **kwargs):
        yield from chat_completion(
            "example", url + "/v1/chat/completions", model, messages, stream, **kwargs
        )
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._codecs.base import DEFAULT_MAX_BODY_BYTES, Call, Codec
from .._codecs.openai_chat import CHAT_PARAMETERS, CODEC
from .._codecs.sse import DEFAULT_MAX_EVENT_BYTES
from .._timeout import TimeoutLike, to_timeout
from .._transports import sync as transport
from ..types import Piece
from ._exchange import exchange

if TYPE_CHECKING:
    import requests

__all__ = ["CHAT_PARAMETERS", "chat_completion"]


def chat_completion(
    provider: str,
    endpoint: str,
    model: str,
    messages: list[Any],
    stream: bool,
    *,
    defaults: Mapping[str, Any] | None = None,
    auth: str | None = None,
    timeout: TimeoutLike = None,
    session: requests.Session | None = None,
    headers: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    credential_variable: str | None = None,
    structured: bool = False,
    extra_parameters: Collection[str] = (),
    codec: Codec = CODEC,
    **params: Any,
) -> Iterator[Piece]:
    """POST a chat completion to ``endpoint`` and yield the answer's text.

    With ``structured`` true it yields the answer's structured pieces too
    (:mod:`providerhub.types`): its tool calls as OpenAI streams them, whatever the server
    sent (see :mod:`providerhub._codecs.toolcalls`), its usage and its finish reason; a provider
    that yields from it, as the bundled plugins do, passes them on to the client. Without
    it, text only, as before there were pieces.

    With ``stream`` true the request asks for Server-Sent Events and yields each non-empty
    content delta as it arrives; a server that answers with one JSON document instead gets
    that document's content yielded once. With ``stream`` false it yields
    ``choices[0].message.content`` once. Asked for several choices (``n``), it follows
    the first, the choice with index 0, and leaves the others out.

    ``defaults`` are body fields the caller's ``params`` override; ``params`` must be
    standard OpenAI chat parameters (:data:`CHAT_PARAMETERS`), or named in
    ``extra_parameters`` (the fields beyond OpenAI's that the endpoint takes: vLLM's and
    llama.cpp's ``top_k``, ``min_p``, ``chat_template_kwargs``, ...), that JSON can carry,
    or :class:`InvalidRequestError` names the stray one before anything is sent. The
    keyword-only arguments are the provider's options, which its plugin sets: the hub
    refuses each of their names in a caller's parameters. ``auth`` is
    sent as ``Authorization: Bearer``; ``credential_variable`` is the environment variable
    an authentication error tells the user to set (``PROVIDERHUB_<NAME>_API_KEY`` by
    default). ``timeout`` bounds connecting, each read and, with a total, the whole call,
    however slowly the answer arrives. Redirects are followed only within the endpoint's
    origin (see :func:`providerhub._transports.sync.post`). Failures raise the typed errors of
    :mod:`providerhub.errors`, naming ``provider``, with no credential in their messages.

    ``codec`` is the wire dialect (:class:`providerhub._codecs.base.Codec`): OpenAI's chat
    completions by default; another codec encodes the same OpenAI-shaped call in its own
    dialect and decodes its answers into the same pieces, and checks ``params`` against
    the parameters it can translate.
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
    http = session if session is not None else transport.default_session()
    return exchange(codec, request, to_timeout(timeout), transport.RequestsTransport(http))
