"""The OpenAI embeddings dialect (``POST /v1/embeddings``) as a codec: no I/O.

:data:`CODEC` encodes a :class:`~providerhub._codecs.base.Call` whose ``params`` hold
``input`` (and ``dimensions``, ``user``) into the request, and decodes the answer, one
JSON document, into one piece: a :class:`~providerhub.types.CreateEmbeddingResponse`.
Vectors are asked for as floats, which every OpenAI-compatible server sends; a server
that sends base64 anyway is read too. :func:`to_base64` and :func:`from_base64` are
OpenAI's ``encoding_format="base64"``: the little-endian float32s of a vector.

:func:`result_of` checks what any provider's ``_create_embedding`` returned (this
codec's answer, such an object built by hand, or the JSON document of one) against the
request: one vector per input, each a list of numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from array import array
from collections.abc import Mapping
from typing import Any

from .._redaction import excerpt, safe_url
from ..errors import InvalidRequestError, ProviderError, ProviderResponseError
from ..types import CreateEmbeddingResponse, Embedding, EmbeddingUsage, Piece
from .base import (
    Call,
    Request,
    StreamDecoder,
    call_status_error,
    check_auth,
    extra_parameters,
    json_request,
    read_document,
    request_headers,
    stray_parameter,
)
from .openai_chat import error_message

__all__ = [
    "CODEC",
    "EMBEDDING_PARAMETERS",
    "OpenAIEmbeddings",
    "check_parameters",
    "from_base64",
    "input_count",
    "result_of",
    "to_base64",
    "vector_of",
]

EMBEDDING_PARAMETERS = frozenset({"input", "dimensions", "user", "encoding_format"})
"""The request fields of OpenAI's embeddings besides ``model``."""


class OpenAIEmbeddings:
    """The OpenAI embeddings codec (:class:`~providerhub._codecs.base.Codec`). The call's
    ``messages`` and ``stream`` are not used: embeddings are neither. Another dialect of
    the same call (:mod:`providerhub._codecs.gemini_embeddings`) subclasses it, with its
    own :meth:`encode` and reading of the document."""

    __slots__ = ()

    what = "embeddings"
    """The endpoint an HTTP 404 says is not there."""
    hint = "the url may not be an OpenAI-compatible endpoint"
    """What a url whose answer is not JSON may be."""

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`InvalidRequestError` for a parameter that
        is not an embeddings field (nor among ``extra_parameters``), a missing ``input``,
        an empty credential or a value JSON cannot carry."""
        check_parameters(call)
        if "input" not in call.params:
            raise InvalidRequestError(f"an embeddings request to {call.provider} needs input")
        check_auth(call)
        body = {"model": call.model, **call.params}
        return json_request(call, body, request_headers(False, call.headers, call.auth))

    def streams(self, request: Request, content_type: str | None) -> bool:
        """Never: an embeddings answer is one document."""
        return False

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The answer as one :class:`~providerhub.types.CreateEmbeddingResponse`, or the
        error an HTML page, text that is not JSON, an error document, a document without
        vectors or a body past ``max_body_bytes`` is."""
        # orjson when installed (read_document), as for chat answers: a list of vectors is
        # mostly floats to read, which the standard library reads six times slower.
        doc = self.document(request, url, status, content_type, body)
        try:
            return [_response(doc, request.call.model)]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderResponseError(
                request.call.provider,
                f"answered with JSON that is not an embeddings list ({exc})",
                url=safe_url(url),
                body=excerpt(body[:2000], request.secrets),
                hint="the url may not be an OpenAI-compatible embeddings endpoint",
            ) from None

    def document(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> Any:
        """The JSON document of the answer, or the error an HTML page, text that is not
        JSON, a body past ``max_body_bytes`` or an error document (``error.message``) is."""
        doc = read_document(
            request,
            url,
            status,
            content_type,
            body,
            html_hint="check the url, or use another provider",
            json_hint=self.hint,
        )
        if isinstance(doc, dict) and "error" in doc:
            raise ProviderResponseError(
                request.call.provider,
                "answered with an error",
                url=safe_url(url),
                body=excerpt(error_message(doc) or json.dumps(doc["error"]), request.secrets),
                hint="the service could not make the embeddings",
            )
        return doc

    def decoder(self, request: Request, url: str) -> StreamDecoder:
        # Not reached: streams() is always False.
        raise ProviderResponseError(request.call.provider, "an embeddings answer does not stream")

    def error(
        self,
        request: Request,
        url: str,
        status: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ProviderError:
        """The typed error for an error status (:func:`~providerhub._codecs.base.status_error`),
        showing the body's ``error.message`` when it has one."""
        retry_after = headers.get("Retry-After")
        said = error_message(body)
        return call_status_error(
            request, url, status, reason, retry_after, body, said, what=self.what
        )


CODEC = OpenAIEmbeddings()
"""The codec: it holds no state, one serves every call."""


def to_base64(vector: list[float]) -> str:
    """``vector`` as OpenAI's ``encoding_format="base64"`` sends it: the base64 text of
    its values as little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def from_base64(text: str) -> list[float]:
    """The vector :func:`to_base64` made ``text`` from; ``ValueError`` for text that is
    not base64 of whole float32s."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an embedding is a string that is not base64") from None
    if len(raw) % 4:
        raise ValueError("an embedding in base64 is not a whole number of float32s")
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def check_parameters(call: Call) -> None:
    """:class:`InvalidRequestError` for a parameter of ``call`` that is not an embeddings
    field (:data:`EMBEDDING_PARAMETERS`) nor among its ``extra_parameters``."""
    stray = stray_parameter(call.params, EMBEDDING_PARAMETERS, extra_parameters(call))
    if stray is not None:
        key, tip = stray
        raise InvalidRequestError(
            f"{call.provider} does not take the embeddings parameter {key!r}{tip} "
            f"(it takes: {', '.join(sorted(EMBEDDING_PARAMETERS))})",
            param=key,
        )


def input_count(value: Any) -> int:
    """How many vectors ``input`` asks for: one for a string or one list of tokens, one
    per item of a list of strings or of token lists."""
    if isinstance(value, str) or (isinstance(value, list) and value and type(value[0]) is int):
        return 1
    return len(value) if isinstance(value, list) else 1


def vector_of(value: Any) -> list[float]:
    """``value`` checked to be a vector: a non-empty list of numbers (or OpenAI's base64
    of float32s, decoded); ``ValueError`` otherwise."""
    if isinstance(value, str):
        return from_base64(value)
    if not isinstance(value, list) or not value:
        raise ValueError("an embedding is not a non-empty list of numbers")
    try:
        # Checked in C: a Python loop over each value cost more than reading the answer.
        array("d", value)
    except TypeError:
        found = next(type(v).__name__ for v in value if not isinstance(v, (int, float)))
        raise ValueError(f"an embedding holds {found}, not a number") from None
    return value


def _usage(found: Any) -> EmbeddingUsage:
    if not isinstance(found, Mapping):
        return EmbeddingUsage()
    prompt, total = found.get("prompt_tokens"), found.get("total_tokens")
    prompt = prompt if type(prompt) is int else 0
    return EmbeddingUsage(prompt, total if type(total) is int else prompt)


def _response(doc: Any, model: str) -> CreateEmbeddingResponse:
    """The vectors of an OpenAI embeddings document, in the order of their ``index``."""
    items = doc["data"]
    if not isinstance(items, list):
        raise ValueError("data is not a list")
    data = []
    for number, item in enumerate(items):
        index = item.get("index", number)
        if type(index) is not int:
            raise ValueError("an index is not a whole number")
        data.append(Embedding(vector_of(item["embedding"]), index))
    data.sort(key=lambda e: e.index)
    found = doc.get("model")
    return CreateEmbeddingResponse(
        data, found if isinstance(found, str) and found else model, _usage(doc.get("usage"))
    )


def result_of(
    provider: str, result: Any, model: str, count: int, url: str | None = None
) -> CreateEmbeddingResponse:
    """What a provider's ``_create_embedding`` returned, checked: a
    :class:`~providerhub.types.CreateEmbeddingResponse` (or its JSON document) with one
    vector of numbers per input, indexed 0 to ``count - 1``; else
    :class:`~providerhub.errors.ProviderResponseError` naming ``provider``."""
    try:
        if isinstance(result, CreateEmbeddingResponse):
            response = result
            for item in response.data:
                item.embedding = vector_of(item.embedding)
            response.data.sort(key=lambda e: e.index)
        elif isinstance(result, Mapping):
            response = _response(result, model)
        else:
            raise ValueError(f"it returned {type(result).__name__}")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderResponseError(
            provider,
            f"gave no embeddings list ({exc})",
            url=url,
            hint="a bug in the provider's plugin, or a server that is not OpenAI-compatible",
        ) from None
    indexes = [item.index for item in response.data]
    if indexes != list(range(count)):
        raise ProviderResponseError(
            provider,
            f"gave {len(indexes)} vector(s) for {count} input(s)",
            url=url,
            hint="the service did not embed every input; try another provider",
        )
    return response
