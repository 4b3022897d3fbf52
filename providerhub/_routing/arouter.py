"""The router's attempt and fallback loops in asyncio, for providers with an asyncio-native
completion function (``_acreate_completion``): no worker thread, no buffer between the
provider and the caller.

The decisions are :class:`providerhub._routing.router.Call`'s, the same for both loops: the
breaker's claim (:meth:`~providerhub._routing.router.Call.aclaim`, which awaits a shared state
rather than block the loop), what an attempt is given
(:meth:`~providerhub._routing.router.Call.provider_kwargs`, with the attempt's timeout), what a
failure is and whether to retry it (:meth:`~providerhub._routing.router.Call.attempt_failed`, in
its two halves, the rate limit's say on a retry awaited between them),
how an answer ends (:meth:`~providerhub._routing.router.Call.failed`,
:meth:`~providerhub._routing.router.Call.finish`) and the error when every candidate failed.
Only the waiting differs: ``await`` for a provider's pieces, ``asyncio.sleep`` for a
backoff, and cancellation is the task's: a ``CancelledError`` closes the provider's
generator (and its HTTP response) and gives back the breaker's probe, as ``close()``
does in the synchronous loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from .._codecs.completions import Assembler, is_piece
from .._provider import Provider
from .._state.health import Claim
from ..errors import InvalidRequestError, ProviderError, ProviderTimeoutError
from ..types import Piece, Usage
from . import router
from .threaded import AsyncStream

__all__ = ["NativeStream", "collect", "complete", "native"]


def native(candidates: list[Provider]) -> bool:
    """Whether the asyncio-native path can serve a call to ``candidates``: each has an
    ``_acreate_completion``, and aiohttp (``providerhub[server]``) is installed."""
    return all(p.native for p in candidates) and _aiohttp_installed()


_installed: list[bool] = []


def _aiohttp_installed() -> bool:
    if not _installed:
        import importlib.util

        _installed.append(importlib.util.find_spec("aiohttp") is not None)
    return _installed[0]


async def start(
    call: router.Call, p: Provider, *, early: bool = False
) -> tuple[AsyncIterator[Piece], Piece, router.Attempt] | None:
    """:meth:`providerhub._routing.router.Call.start` for an asyncio-native provider."""
    claim = await call.aclaim(p, early=early)
    if claim is None:
        return None
    try:
        return await _attempts(call, p, claim)
    except BaseException:
        claim.release()  # see Call.start: a probe not settled is given back
        raise


async def _attempts(
    call: router.Call, p: Provider, claim: Claim
) -> tuple[AsyncIterator[Piece], Piece, router.Attempt]:
    if call.asession is None:
        raise RuntimeError("an asyncio-native call needs the hub's session (Call.asession)")
    session = await call.asession()
    retry = call.policy.retries
    attempt = 0
    while True:
        attempt += 1
        started = time.perf_counter()
        pieces: AsyncIterator[Piece] | None = None
        secret = None
        limits = call.attempt_timeout(p)  # raised before anything is sent: not counted
        try:
            secret = p.credential(call.auth)
            extra = call.provider_kwargs(p, limits, secret, session)
            pieces = p.acomplete(call.model, call.messages, call.stream, **call.kwargs, **extra)
            if p.limits.tpm is not None:
                pieces = _counted(pieces, call, p)
            if not p.honors_timeout:
                pieces = _watched(pieces, p.name, limits.read, call.deadline)
            first: Piece = ""
            async for first in pieces:
                if type(first) is not str:
                    if not is_piece(first):
                        raise router._non_string(p, first)
                    break
                if first:
                    break
        except InvalidRequestError:
            await _aclose(pieces)
            raise
        except Exception as exc:
            await _aclose(pieces)
            err, after, retry = call.failure_wait(p, claim, exc, secret, retry)
            if after is not None and p.limits and await call.limiter.atake(p.limit_key, p.limits):
                after = None  # see Call.attempt_failed
            wait, retry = call.retry_or_raise(p, err, after, retry, attempt, started)
            await asyncio.sleep(wait)
            continue
        except BaseException:
            await _aclose(pieces)
            raise
        return pieces, first, router.Attempt(attempt, started, claim)


async def _counted(
    pieces: AsyncIterator[Piece], call: router.Call, p: Provider
) -> AsyncIterator[Piece]:
    """:meth:`providerhub._routing.router.Call.counted`, for an async iterator."""
    try:
        async for piece in pieces:
            if type(piece) is Usage:
                call.limiter.spend(p.limit_key, piece.tokens, p.limits)
            yield piece
    finally:
        await _aclose(pieces)


async def complete(call: router.Call, candidates: list[Provider]) -> str:
    """:func:`providerhub._routing.router.complete`, asyncio-native."""
    assembler = Assembler()
    return router.text_of(call, assembler, await collect(call, candidates, assembler.add))


async def collect(
    call: router.Call, candidates: list[Provider], sink: Callable[[Piece], None]
) -> str:
    """:func:`providerhub._routing.router.collect`, asyncio-native."""
    errors: dict[str, ProviderError] = {}
    last = len(candidates) - 1
    for index, p in enumerate(candidates):
        try:
            started = await start(call, p, early=call.try_soonest and index == last and not errors)
        except ProviderError as err:
            errors[p.name] = err
            continue
        if started is None:
            continue
        pieces, first, attempt = started
        try:
            answer = [first]
            try:
                async for piece in pieces:
                    if type(piece) is not str and not is_piece(piece):
                        raise router._non_string(p, piece)
                    answer.append(piece)
            except InvalidRequestError:
                raise
            except Exception as exc:
                errors[p.name] = call.failed(p, exc, attempt)
                continue
            finally:
                await _aclose(pieces)
            call.finish(p, attempt)
            for piece in answer:
                sink(piece)
            return p.name
        finally:
            attempt.claim.release()  # see Call.start: a probe not settled is given back
    raise router._failed(call, errors)


async def _stream(
    call: router.Call, candidates: list[Provider], answer: router._Answer
) -> AsyncGenerator[Any, None]:
    """:func:`providerhub._routing.router._stream`, asyncio-native."""
    errors: dict[str, ProviderError] = {}
    last = len(candidates) - 1
    for index, p in enumerate(candidates):
        try:
            started = await start(call, p, early=call.try_soonest and index == last and not errors)
        except ProviderError as err:
            errors[p.name] = err
            continue
        if started is None:
            continue
        pieces, piece, attempt = started
        answer.provider = p.name
        held: Assembler | None = None  # a text stream's structured pieces
        next_piece = pieces.__anext__
        try:
            try:
                while True:
                    if type(piece) is str:
                        if piece:
                            yield piece
                    elif not is_piece(piece):
                        raise router._non_string(p, piece)
                    elif call.structured:
                        yield piece  # the client's stream takes them
                    else:
                        held = held or Assembler()
                        held.add(piece)
                    try:
                        piece = await next_piece()
                    except StopAsyncIteration:
                        break
            except (GeneratorExit, asyncio.CancelledError):
                call.finish(p, attempt, "closed")
                raise
            except InvalidRequestError:
                raise
            except Exception as exc:
                raise call.failed(p, exc, attempt) from None
            finally:
                await _aclose(pieces)
            call.finish(p, attempt)
            if held is not None and held.has_tool_calls:
                raise router._not_text(call, held, p.name)
            return
        finally:
            attempt.claim.release()  # see Call.start: a probe not settled is given back
    raise router._failed(call, errors)


class NativeStream(AsyncStream):
    """An :class:`~providerhub._routing.threaded.AsyncStream` served on the event loop itself.

    Closing it (:meth:`aclose`, ``async with``) closes the provider's generator and its
    HTTP response before it returns; cancelling the task that reads it does so at once;
    a stream left with ``break`` and dropped is closed by asyncio's finalizer of async
    generators, on the loop, a moment later."""

    def __init__(self, call: router.Call, candidates: list[Provider]) -> None:
        self._answer = router._Answer()
        self._pieces = _stream(call, candidates, self._answer)
        self._finished = False

    @property
    def provider(self) -> str | None:
        return self._answer.provider

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            return await self._pieces.__anext__()
        except BaseException:
            self._finished = True
            raise

    async def aclose(self) -> None:
        """Stop the stream: its connection is closed and its claim given back."""
        self._finished = True
        await self._pieces.aclose()

    def __del__(self) -> None:
        # Nothing to do here: a generator that started is closed by asyncio's finalizer,
        # one that never started holds nothing.
        return


async def _aclose(pieces: AsyncIterator[Piece] | None) -> None:
    aclose = getattr(pieces, "aclose", None)  # a provider may return any async iterator
    if aclose is not None:
        await aclose()


async def _watched(
    pieces: AsyncIterator[Piece], provider: str, read: float, deadline: float | None
) -> AsyncGenerator[Piece, None]:
    """``pieces`` of a provider that does not keep its timeouts, each awaited no longer
    than ``read`` seconds, nor past ``deadline``: the watchdog of the synchronous path
    (:mod:`providerhub._routing.watchdog`), which asyncio makes a timeout on each await."""
    try:
        while True:
            wait = read
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            try:
                piece = await asyncio.wait_for(pieces.__anext__(), max(wait, 0.0))
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise ProviderTimeoutError(
                    provider,
                    f"gave nothing for {max(wait, 0.0):.1f} s",
                    hint="the provider may be hanging; raise timeout= or try another provider",
                ) from None
            yield piece
    finally:
        await _aclose(pieces)
