"""The dialects clients speak to the gateway besides chat completions: each a route, how
its requests become a chat completion, and how the answer and the errors go back.

``/v1/responses`` is OpenAI's Responses API and ``/v1/messages`` Anthropic's Messages API,
translated by the sans-IO modules :mod:`providerhub._codecs.responses` and
:mod:`providerhub._codecs.anthropic_gateway`; the app (``_app.py``) runs them through the
same admission (keys, limits, body caps, concurrency) and the same router as
``/v1/chat/completions``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .._codecs import anthropic_gateway as messages
from .._codecs import responses
from ._errors import Failure

__all__ = ["COUNT_TOKENS", "DIALECTS", "Dialect", "Events", "Read"]

Dumps = Callable[[Any], bytes]


class Read(Protocol):
    """A request read: the chat completion it asks for."""

    @property
    def chat(self) -> dict[str, Any]: ...

    @property
    def model(self) -> str: ...

    @property
    def stream(self) -> bool: ...


class Events(Protocol):
    """A streamed answer's events in the client's dialect (see
    :class:`providerhub._codecs.responses.ResponseEvents`)."""

    def start(self) -> bytes: ...

    def text(self, delta: str) -> bytes: ...

    def chunk(self, chunk: Mapping[str, Any]) -> bytes: ...

    def finish(self) -> bytes: ...


class Dialect(Protocol):
    """What the app needs of a client dialect."""

    route: str
    """The path it is served at, and its ``route`` label in ``/metrics``."""

    def read(self, doc: Any) -> Read:
        """The request in the JSON ``doc``, or
        :class:`~providerhub.errors.InvalidRequestError` naming the field at fault."""
        ...

    def document(self, completion: Mapping[str, Any], read: Read) -> dict[str, Any]:
        """The whole answer for ``completion`` (a chat completion's JSON)."""
        ...

    def events(self, read: Read, model: str | None, dumps: Dumps) -> Events:
        """The writer of a streamed answer's events."""
        ...

    def broken(self, events: Events, failure: Failure) -> bytes:
        """The event that ends a stream broken after it began."""
        ...

    def error(self, failure: Failure) -> dict[str, Any]:
        """An error answer's body in the dialect's shape."""
        ...


class _Responses:
    route = "/v1/responses"

    def read(self, doc: Any) -> Read:
        return responses.chat_request(doc)

    def document(self, completion: Mapping[str, Any], read: Read) -> dict[str, Any]:
        assert isinstance(read, responses.ResponsesRequest)
        return responses.response_document(completion, read)

    def events(self, read: Read, model: str | None, dumps: Dumps) -> Events:
        assert isinstance(read, responses.ResponsesRequest)
        return responses.ResponseEvents(read, model=model, dumps=dumps)

    def broken(self, events: Events, failure: Failure) -> bytes:
        assert isinstance(events, responses.ResponseEvents)
        return events.fail(failure.code or failure.type, failure.message)

    def error(self, failure: Failure) -> dict[str, Any]:
        return failure.body()


class _Messages:
    route = "/v1/messages"

    def read(self, doc: Any) -> Read:
        return messages.chat_request(doc)

    def document(self, completion: Mapping[str, Any], read: Read) -> dict[str, Any]:
        assert isinstance(read, messages.MessagesRequest)
        return messages.message_document(completion, read)

    def events(self, read: Read, model: str | None, dumps: Dumps) -> Events:
        assert isinstance(read, messages.MessagesRequest)
        return messages.MessageEvents(read, model=model, dumps=dumps)

    def broken(self, events: Events, failure: Failure) -> bytes:
        assert isinstance(events, messages.MessageEvents)
        return events.fail(failure.status, failure.message)

    def error(self, failure: Failure) -> dict[str, Any]:
        return messages.error_document(failure.status, failure.message)


DIALECTS: dict[str, Dialect] = {d.route: d for d in (_Responses(), _Messages())}
"""The client dialects by the path they are served at."""

COUNT_TOKENS = "/v1/messages/count_tokens"
"""Anthropic's token count, an estimate (see
:func:`providerhub._codecs.anthropic_gateway.count_tokens`)."""
