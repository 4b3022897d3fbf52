"""Model lists: the request that asks a service which models it serves, and the reading of
its answer, one entry per wire dialect, keyed as the codecs are (``openai-chat``,
``anthropic-messages``, ``gemini``). No I/O: ``providerhub models --refresh``
(:mod:`providerhub._discovery`) sends the requests and reads the bodies.

- ``openai-chat``: ``GET {url}/v1/models`` (beside the provider's chat path: a path ending
  in ``/chat/completions`` has its models at ``/models`` in its place), the key as
  ``Authorization: Bearer``; the names are ``data[].id`` (a bare array, as some servers
  answer, is taken too), on one page.
- ``anthropic-messages``: ``GET {url}/v1/models?limit=1000``, the key in ``x-api-key``
  with ``anthropic-version``; ``data[].id``, paged by ``has_more`` and ``after_id`` (the
  page's ``last_id``).
- ``gemini``: ``GET {url}/v1beta/models?pageSize=1000``, the key in ``x-goog-api-key``
  (never in the URL); ``models[].name`` without its ``models/`` prefix, only those whose
  ``supportedGenerationMethods`` holds ``generateContent``, paged by ``nextPageToken``
  and ``pageToken``.

A dialect another plugin brings is one more entry of :data:`LISTS` under its codec key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

__all__ = [
    "LISTS",
    "MAX_BODY_BYTES",
    "MAX_PAGES",
    "ListRequest",
    "ModelList",
    "Page",
    "error_message",
]

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The longest page read: OpenRouter's list of some 300 models, with their descriptions,
is about 1 MiB."""

MAX_PAGES = 100
"""The most pages asked of one service, against a cursor that never ends."""


class ListRequest(NamedTuple):
    """A GET to send: its ``url`` and ``headers`` (the key among them)."""

    url: str
    headers: dict[str, str]


class Page(NamedTuple):
    """One answer: the model names it holds, and the cursor of the next page (None on the
    last)."""

    models: list[str]
    next: str | None


class ModelList(NamedTuple):
    """How one dialect lists its models: the list's ``path`` under the base URL (or, when
    ``beside_chat`` is true, in the place of a chat path's ``/chat/completions``), the
    header the key goes in after ``key_scheme``, the ``headers`` always sent, the
    ``query`` of every page, the query parameter carrying the next page's cursor
    (``cursor``), and ``read``, which takes the parsed JSON document of a page."""

    path: str
    key_header: str
    key_scheme: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    cursor: str | None
    read: Callable[[Any], Page]
    beside_chat: bool = False

    def request(
        self,
        base_url: str,
        key: str | None,
        *,
        chat_path: str | None = None,
        key_header: str | None = None,
        key_scheme: str | None = None,
        headers: Mapping[str, str] | None = None,
        cursor: str | None = None,
    ) -> ListRequest:
        """The request for the page after ``cursor`` (the first without one) of the
        service at ``base_url``: ``key`` goes in ``key_header`` after ``key_scheme``
        (the dialect's own by default: a declaration that names its own header is
        followed), with ``headers`` (a declaration's) over the dialect's."""
        query = dict(self.query)
        if cursor is not None and self.cursor is not None:
            query[self.cursor] = cursor
        path = self._path(chat_path)
        address = base_url.rstrip("/") + path
        if query:
            address += ("&" if "?" in path else "?") + urlencode(query)
        sent = {"Accept": "application/json", **self.headers, **(headers or {})}
        if key is not None:
            scheme = self.key_scheme if key_scheme is None else key_scheme
            sent[key_header or self.key_header] = f"{scheme} {key}" if scheme else key
        return ListRequest(address, sent)

    def _path(self, chat_path: str | None) -> str:
        if not self.beside_chat or not chat_path:
            return self.path
        parts = urlsplit(chat_path)
        if not parts.path.endswith("/chat/completions"):
            return self.path
        path = parts.path.removesuffix("/chat/completions") + "/models"
        return f"{path}?{parts.query}" if parts.query else path

    def parse(self, body: bytes) -> Page:
        """The page ``body`` holds; :class:`ValueError`, saying what is wrong, for a body
        that is not this dialect's list."""
        try:
            document = json.loads(body)
        except ValueError:
            raise ValueError("the answer is not JSON") from None
        return self.read(document)


def _names(items: Any, field: str, where: str) -> list[str]:
    if not isinstance(items, list):
        raise ValueError(f"the answer has no {where} list")
    names = []
    for item in items:
        name = item.get(field) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"an item of {where} has no {field}")
        names.append(name.strip())
    return names


def _openai_page(document: Any) -> Page:
    items = document.get("data") if isinstance(document, dict) else document
    return Page(_names(items, "id", "data"), None)


def _anthropic_page(document: Any) -> Page:
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    names = _names(document.get("data"), "id", "data")
    last = document.get("last_id") or (names[-1] if names else None)
    more = document.get("has_more") is True and isinstance(last, str)
    return Page(names, last if more else None)


def _gemini_page(document: Any) -> Page:
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    items = document.get("models", [])
    names = []
    for item, name in zip(items, _names(items, "name", "models")):
        methods = item.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" in methods:
            names.append(name.removeprefix("models/"))
    token = document.get("nextPageToken")
    return Page(names, token if isinstance(token, str) and token else None)


LISTS: dict[str, ModelList] = {
    "openai-chat": ModelList(
        "/v1/models", "Authorization", "Bearer", {}, {}, None, _openai_page, beside_chat=True
    ),
    "anthropic-messages": ModelList(
        "/v1/models",
        "x-api-key",
        "",
        {"anthropic-version": "2023-06-01"},
        {"limit": "1000"},
        "after_id",
        _anthropic_page,
    ),
    "gemini": ModelList(
        "/v1beta/models", "x-goog-api-key", "", {}, {"pageSize": "1000"}, "pageToken", _gemini_page
    ),
}
"""The model list of each codec key."""


def error_message(body: bytes) -> str:
    """The message of an error body (``{"error": {"message": ...}}``, as OpenAI, Anthropic
    and Gemini all answer), else the body itself as text."""
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else body.decode("utf-8", "replace")
