"""Choosing providers for a request, and falling back among them: ``create()``'s face of
the routing loop.

Candidates for a model are the providers that list it, are working, stream when asked to,
and need no credential or have one. The caller's ``provider`` names pin the choice and its
order; otherwise registration order holds. A candidate that fails before any text reached
the caller makes way for the next; once text has reached the caller, a failure is raised,
because continuing elsewhere would mix two answers. A call whose every candidate is
cooling down is refused before anything is sent (:class:`ProvidersCoolingDownError`),
unless the hub says ``when_all_cooling="try-soonest"``.

The choosing and the decisions are :mod:`providerhub._routing.plan`'s; the loop is
:mod:`providerhub._routing._sync`, generated from the asyncio source
:mod:`providerhub._routing._async`. This module adds :class:`Stream`, the iterator a
streamed ``create()`` gives.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from .._provider import Provider
from ._sync import collect, complete, stream
from .plan import (
    Answer,
    Attempt,
    AttemptObserver,
    Auth,
    Call,
    Plan,
    ProviderChoice,
    RetryPolicy,
    check_auth,
    is_transient,
    observe_attempts,
    plan,
    resolve,
    text_of,
)

__all__ = [
    "Attempt",
    "AttemptObserver",
    "Auth",
    "Call",
    "Plan",
    "ProviderChoice",
    "RetryPolicy",
    "Stream",
    "check_auth",
    "collect",
    "complete",
    "is_transient",
    "observe_attempts",
    "plan",
    "resolve",
    "text_of",
]


class Stream(Iterator[str]):
    """The text of a streamed completion, piece by piece as it arrives.

    ``provider`` names the provider that answers, once the first piece is in. Leaving the
    loop early and calling :meth:`close` (or using it as a context manager) closes the
    connection; so does dropping the stream. A call made for the client
    (``call.structured``) yields the structured pieces of :mod:`providerhub.types` too;
    a text stream raises :class:`StructuredAnswerError` at its end when the answer held
    tool calls.
    """

    def __init__(self, call: Call, candidates: list[Provider]) -> None:
        self.model = call.model
        # The generator that does the work holds no reference to the stream (only to the
        # answer), so a stream dropped unfinished is freed, and closed, at once.
        self._answer = Answer()
        self._pieces: Generator[str, None, None] = stream(call, candidates, self._answer)  # type: ignore[assignment]
        self._next = self._pieces.__next__

    def __next__(self) -> str:
        return self._next()

    @property
    def provider(self) -> str | None:
        return self._answer.provider

    def close(self) -> None:
        self._pieces.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped unfinished (a ``break`` out of ``for piece in create(...)``): close the
        # connection and give back the breaker's probe now, not whenever the collector
        # gets to the generator.
        self._pieces.close()
