"""``create()``'s face of the routing loop: :func:`complete`, :func:`collect`, and
:class:`Stream`, the iterator a streamed ``create()`` gives.

How candidates are chosen, and what the loop decides, is :mod:`providerhub._routing.plan`'s
(its names are here too, for the hub and the client); the loop is
:mod:`providerhub._routing._sync`, generated from the asyncio source
:mod:`providerhub._routing._async`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from .._provider import Provider
from ._sync import collect, complete, stream
from .plan import Answer

# The hub's, the client's and the server's names for the routing, kept where they were.
from .plan import Auth as Auth
from .plan import Call as Call
from .plan import ProviderChoice as ProviderChoice
from .plan import RetryPolicy as RetryPolicy
from .plan import check_auth as check_auth
from .plan import observe_attempts as observe_attempts
from .plan import plan as plan
from .plan import resolve as resolve

__all__ = ["Stream", "collect", "complete"]


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
