"""Gemini's embeddings (``POST /v1/models/{model}:batchEmbedContents``, the path the
google-genai SDK posts to) as a codec: no I/O.

:data:`CODEC` encodes the same call as :mod:`providerhub._codecs.openai_embeddings`
(``params`` holding ``input``, and ``dimensions``, ``user``) in Gemini's dialect: one
request per text, each ``{"model": "models/<model>", "content": {"parts": [{"text":
...}]}}`` (with ``outputDimensionality`` for ``dimensions``), at the endpoint whose
``{model}`` it fills in. The answer, ``{"embeddings": [{"values": [...]}, ...]}``, in the
order of the requests, becomes one :class:`~providerhub.types.CreateEmbeddingResponse`.
Gemini reports no usage for it (0 and 0), takes no ``user`` (left out: it names the end
user for abuse tracking, and asks nothing of the model) and embeds text only, not token
ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .._redaction import excerpt, safe_url
from ..errors import InvalidRequestError, ProviderError, ProviderResponseError
from ..types import CreateEmbeddingResponse, Embedding, Piece
from .base import Call, Request, StreamDecoder, body_too_large, media_type, status_error
from .openai_chat import _document_loads as document_loads
from .openai_chat import _encode as to_json
from .openai_chat import _request_headers as request_headers
from .openai_chat import _secrets as request_secrets
from .openai_chat import error_message
from .openai_embeddings import EMBEDDING_PARAMETERS, vector_of

__all__ = ["CODEC", "GeminiEmbeddings"]


class GeminiEmbeddings:
    """The Gemini ``batchEmbedContents`` codec (:class:`~providerhub._codecs.base.Codec`)."""

    __slots__ = ()

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`InvalidRequestError` for what Gemini
        cannot take: token ids, a parameter that is not an embeddings field, an empty
        credential, a value JSON cannot carry."""
        provider = call.provider
        params = call.params
        for key in params:
            if key not in EMBEDDING_PARAMETERS and key not in call.extra_parameters:
                raise InvalidRequestError(
                    f"{provider} does not take the embeddings parameter {key!r} (it takes: "
                    f"{', '.join(sorted(EMBEDDING_PARAMETERS))})",
                    param=key,
                )
        given = params.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError(
                f"{provider} (Gemini) embeds text only: give input as a string or a list of "
                "strings, not token ids",
                param="input",
            )
        auth = call.auth
        if auth is not None and (not isinstance(auth, str) or not auth):
            raise InvalidRequestError(f"the credential for {provider} must be a non-empty string")
        name = call.model.removeprefix("models/")
        one: dict[str, Any] = {"model": f"models/{name}"}
        if params.get("dimensions") is not None:
            one["outputDimensionality"] = params["dimensions"]
        body = {"requests": [{**one, "content": {"parts": [{"text": t}]}} for t in texts]}
        endpoint = call.endpoint.replace("{model}", quote(name, safe=""))
        return Request(
            "POST",
            endpoint,
            request_headers(False, call.headers, auth),
            to_json(provider, body),
            request_secrets(auth, call.headers, endpoint),
            call,
        )

    def streams(self, request: Request, content_type: str | None) -> bool:
        """Never: the answer is one document."""
        return False

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The answer as one :class:`~providerhub.types.CreateEmbeddingResponse`, or the
        error an HTML page, text that is not JSON, an error document or a document
        without ``embeddings`` is."""
        call = request.call
        provider = call.provider
        if len(body) > call.max_body_bytes:
            raise body_too_large(provider, url, call.max_body_bytes)
        shown = safe_url(url)
        try:
            if media_type(content_type) == "text/html" or body.lstrip()[:1] == b"<":
                raise ValueError("an HTML page")
            doc = document_loads()(body)
            if isinstance(doc, dict) and "error" in doc:
                message = error_message(doc) or json.dumps(doc["error"])
                raise ProviderResponseError(
                    provider,
                    "answered with an error",
                    url=shown,
                    body=excerpt(message, request.secrets),
                    hint="the service could not make the embeddings",
                )
            data = []
            for index, item in enumerate(doc["embeddings"]):
                data.append(Embedding(vector_of(item["values"]), index))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderResponseError(
                provider,
                f"answered with something that is not Gemini's embeddings ({exc})",
                url=shown,
                body=excerpt(body[:2000], request.secrets) or "(empty body)",
                hint="the url may not be Gemini's API",
            ) from None
        return [CreateEmbeddingResponse(data, call.model)]

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
        """The typed error for an error status, showing Google's ``error.message``."""
        found = error_message(body)
        return status_error(
            request.call.provider,
            status,
            reason,
            url,
            headers.get("Retry-After"),
            found if found is not None else body,
            request.secrets,
            credential_variable=request.call.credential_variable,
            what="batchEmbedContents",
        )


CODEC = GeminiEmbeddings()
"""The codec: it holds no state, one serves every call."""
