# Generated from providerhub/_routing/_async.py by scripts/unasync.py: do not edit it.
# Edit the source and run the script; scripts/unasync.py --check says if this is current.
"""The routing loop, written once: each candidate in turn, the breaker's claim on it, its
attempts and their retries, the fallback to the next, and the answer, whole or streamed.

The asyncio module, :mod:`providerhub._routing._async`, is the source. The synchronous
one, :mod:`providerhub._routing._sync`, the loop of ``create()``, is generated from it by
``scripts/unasync.py``, which takes the ``async`` and the awaiting out and gives each
asyncio name its synchronous twin; ``scripts/unasync.py --check`` (run by
``scripts/check.py``, and by a test) fails when that file is stale. What is decided
rather than waited for (which providers, what an attempt is given, whether a failure is
retried and after how long, how an answer ends, the error when every candidate failed) is
:class:`~providerhub._routing.plan.Call`'s; the few steps that wait differently
are :mod:`providerhub._routing._io`'s.

A candidate that fails before any text reached the caller makes way for the next; once
text has reached the caller, a failure is raised. A call is stopped by closing its stream,
or, on an event loop, by cancelling its task: the provider's pieces are closed (a worker
thread's attempt is aborted, its socket shut down), the claim is given back, and nothing
more is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator

from .._codecs.completions import Assembler, is_piece
from .._provider import Provider
from .._state.health import Claim
from .._state.limits import Limiter
from ..errors import InvalidRequestError, ProviderError
from ..types import Piece, Usage
from . import _io
from .plan import Answer, Attempt, Call, all_failed, non_string, not_text, text_of

__all__ = ["claim", "collect", "complete", "start", "stream"]

Begun = tuple[int, Provider, Iterator[Piece], Piece, Attempt]
"""A candidate that gave its first piece: the index of the next candidate, the provider,
the rest of its pieces, that piece, and the attempt."""


def claim(call: Call, p: Provider, *, early: bool = False) -> Claim | None:
    """The breaker's leave to ask ``p``, counted against its rate limit, or None, with the
    reason in :attr:`Call.refused <providerhub._routing.plan.Call.refused>`. ``early``
    asks even while ``p`` cools down, once (see :meth:`start`)."""
    granted = call.health.acquire(p.name)
    if granted is None and early:
        granted = call.health.acquire(p.name, early=True)
        if granted is not None and not granted.probe:
            call.once.add(p.name)
    if granted is None:
        call.refuse_cooling(p)
        return None
    limits = p.limits
    if limits:
        # Counted only once the breaker let the call through: a refused call takes no
        # place in the window.
        wait = call.limiter.take(p.limit_key, limits)
        if wait:
            call.refuse_at_limit(p, granted, wait)
            return None
    if call.strategy is not None:
        return call.strategy.claimed(p.name, granted)
    return granted


def start(
    call: Call, p: Provider, *, early: bool = False
) -> tuple[Iterator[Piece], Piece, Attempt] | None:
    """Call ``p``, retrying transient failures, until it gives its first piece: text that
    is not empty, or a structured piece (or it ends without one). Returns the rest of its
    pieces, that first piece, and the attempt, whose claim the caller settles
    (``call.finish``, ``call.failed``) and releases. Raises the last failure, a
    :class:`ProviderError` naming ``p``.

    None, with the reason in ``call.refused``, when the breaker turns ``p`` away: it is
    cooling down, or another call is probing it. ``early`` asks it even while it cools
    down, once, with no retry, for a call that has no one else to ask
    (``call.try_soonest``).
    """
    granted = claim(call, p, early=early)
    if granted is None:
        return None
    try:
        return _attempts(call, p, granted)
    except BaseException:
        # Failures are counted as they happen; whatever ends the call here (its last
        # failure, an invalid request, a cancellation) gives back a probe that was not
        # settled, so the next call probes.
        granted.release()
        raise


def _attempts(call: Call, p: Provider, granted: Claim) -> tuple[Iterator[Piece], Piece, Attempt]:
    session = _io.session(call, p)
    retry = call.policy.retries
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        pieces: Iterator[Piece] | None = None
        secret = None
        # Raised before anything is sent, so not the provider's failure: the breaker is
        # left alone (start gives the claim back).
        limits = call.attempt_timeout(p)
        try:
            secret = p.credential(call.auth)
            extra = call.provider_kwargs(p, limits, secret, session)
            pieces = _io.ask(call, p, extra)
            if p.limits.tpm is not None:
                pieces = _counted(pieces, call.limiter, p)
            if not p.honors_timeout:
                pieces = _io.watched(pieces, p.name, limits.read, call.deadline)
            first: Piece = ""
            for first in pieces:
                if type(first) is not str:
                    if not is_piece(first):
                        raise non_string(p, first)
                    break
                if first:
                    break
        except InvalidRequestError:
            _io.close_pieces(pieces)
            raise
        except Exception as exc:
            _io.close_pieces(pieces)
            err, after, retry = call.failure_wait(p, granted, exc, secret, retry)
            if after is not None and p.limits and call.limiter.take(p.limit_key, p.limits):
                after = None  # a retry is one more request, and the limit has no room for it
            wait, retry = call.retry_or_raise(p, err, after, retry, attempt, started)
            _io.sleep(wait)
            continue
        except BaseException:
            _io.close_pieces(pieces)
            raise
        if call.strategy is not None:
            call.strategy.answered(p.name, time.perf_counter() - started)
        return pieces, first, Attempt(attempt, started, granted)


def _counted(pieces: Iterator[Piece], limiter: Limiter, p: Provider) -> Iterator[Piece]:
    """``pieces``, counting the tokens of the usage they report against ``p``'s ``tpm``."""
    try:
        for piece in pieces:
            if type(piece) is Usage:
                limiter.spend(p.limit_key, piece.tokens, p.limits)
            yield piece
    finally:
        _io.close_pieces(pieces)


def _started(
    call: Call, candidates: list[Provider], index: int, errors: dict[str, ProviderError]
) -> Begun:
    """The first candidate from ``index`` on that the breaker lets through and that gives
    its first piece. A failure before the first piece goes into ``errors``, as the
    caller's failures after it do; when no candidate is left, the call's error is raised
    (one failure, :class:`~providerhub.errors.AllProvidersFailedError`, or why none was
    asked). With ``call.try_soonest``, the last candidate is asked even while it cools
    down when no other was."""
    last = len(candidates) - 1
    while index <= last:
        p = candidates[index]
        early = call.try_soonest and index == last and not errors
        index += 1
        try:
            begun = start(call, p, early=early)
        except ProviderError as err:
            errors[p.name] = err
            continue
        if begun is not None:
            pieces, first, attempt = begun
            return index, p, pieces, first, attempt
    raise all_failed(call, errors)


def complete(call: Call, candidates: list[Provider]) -> str:
    """The whole text of the first candidate that gives an answer. Raises
    :class:`~providerhub.errors.StructuredAnswerError` when the answer holds tool calls,
    which text cannot carry."""
    assembler = Assembler()
    return text_of(call, assembler, collect(call, candidates, assembler.add))


def collect(call: Call, candidates: list[Provider], sink: Callable[[Piece], None]) -> str:
    """Hand every piece of the first candidate that gives a whole answer to ``sink``, and
    return that candidate's name. Nothing has reached the caller until it returns (``sink``
    keeps what it is given until then), so a failure at any point makes way for the next
    candidate."""
    errors: dict[str, ProviderError] = {}
    index = 0
    while True:
        index, p, pieces, first, attempt = _started(call, candidates, index, errors)
        try:
            answer = [first]
            try:
                for piece in pieces:
                    if type(piece) is not str and not is_piece(piece):
                        raise non_string(p, piece)
                    answer.append(piece)
            except InvalidRequestError:
                raise
            except Exception as exc:
                errors[p.name] = call.failed(p, exc, attempt)
                continue
            finally:
                _io.close_pieces(pieces)
            call.finish(p, attempt)
            for piece in answer:
                sink(piece)
            return p.name
        finally:
            attempt.claim.release()  # see start: a probe not settled is given back


def stream(call: Call, candidates: list[Provider], answer: Answer) -> Generator[Piece, None, None]:
    """The pieces of the first candidate that gives its first piece, as they arrive: its
    text, and its structured pieces for a call made for the client (``call.structured``);
    a text stream raises :class:`~providerhub.errors.StructuredAnswerError` at its end
    when the answer held tool calls. ``answer.provider`` names the candidate once it
    began. Closing the generator (or cancelling its task) closes the provider's pieces."""
    errors: dict[str, ProviderError] = {}
    index = 0
    while True:
        index, p, pieces, piece, attempt = _started(call, candidates, index, errors)
        answer.provider = p.name
        held: Assembler | None = None  # a text stream's structured pieces
        next_piece = pieces.__next__
        try:
            try:
                while True:
                    if type(piece) is str:
                        if piece:
                            yield piece
                    elif not is_piece(piece):
                        raise non_string(p, piece)
                    elif call.structured:
                        yield piece  # the client's stream takes them
                    else:
                        held = held or Assembler()
                        held.add(piece)
                    try:
                        piece = next_piece()
                    except StopIteration:
                        break
            except _io.CLOSED:
                call.finish(p, attempt, "closed")
                raise
            except InvalidRequestError:
                raise
            except Exception as exc:
                raise call.failed(p, exc, attempt) from None
            finally:
                _io.close_pieces(pieces)
            call.finish(p, attempt)
            if held is not None and held.has_tool_calls:
                raise not_text(call, held, p.name)
            return
        finally:
            attempt.claim.release()  # see start: a probe not settled is given back
