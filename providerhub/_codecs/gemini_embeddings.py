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

from typing import Any
from urllib.parse import quote

from .._redaction import excerpt, safe_url
from ..errors import InvalidRequestError, ProviderResponseError
from ..types import CreateEmbeddingResponse, Embedding, Piece
from .base import Call, Request, check_auth, json_request, request_headers
from .openai_embeddings import OpenAIEmbeddings, check_parameters, vector_of

__all__ = ["CODEC", "GeminiEmbeddings"]


class GeminiEmbeddings(OpenAIEmbeddings):
    """The Gemini ``batchEmbedContents`` codec (:class:`~providerhub._codecs.base.Codec`):
    the OpenAI one's answers and errors (Google's ``error.message``), with its own request
    and vectors."""

    __slots__ = ()

    what = "batchEmbedContents"
    hint = "the url may not be Gemini's API"

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`InvalidRequestError` for what Gemini
        cannot take: token ids, a parameter that is not an embeddings field, an empty
        credential, a value JSON cannot carry."""
        check_parameters(call)
        params = call.params
        given = params.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidRequestError(
                f"{call.provider} (Gemini) embeds text only: give input as a string or a list "
                "of strings, not token ids",
                param="input",
            )
        check_auth(call)
        name = call.model.removeprefix("models/")
        one: dict[str, Any] = {"model": f"models/{name}"}
        if params.get("dimensions") is not None:
            one["outputDimensionality"] = params["dimensions"]
        body = {"requests": [{**one, "content": {"parts": [{"text": t}]}} for t in texts]}
        endpoint = call.endpoint.replace("{model}", quote(name, safe=""))
        return json_request(call, body, request_headers(False, call.headers, call.auth), endpoint)

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The answer as one :class:`~providerhub.types.CreateEmbeddingResponse`, or the
        error an HTML page, text that is not JSON, an error document or a document
        without ``embeddings`` is."""
        doc = self.document(request, url, status, content_type, body)
        try:
            data = [
                Embedding(vector_of(item["values"]), i) for i, item in enumerate(doc["embeddings"])
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ProviderResponseError(
                request.call.provider,
                f"answered with something that is not Gemini's embeddings ({exc})",
                url=safe_url(url),
                body=excerpt(body[:2000], request.secrets) or "(empty body)",
                hint=self.hint,
            ) from None
        return [CreateEmbeddingResponse(data, request.call.model)]


CODEC = GeminiEmbeddings()
"""The codec: it holds no state, one serves every call."""
