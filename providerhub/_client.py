"""A client in the openai SDK's shape, over a hub: ``client.chat.completions.create()``
gives a :class:`~providerhub.types.ChatCompletion`, or with ``stream=True`` its chunks.

Porting openai SDK code is one line::

    client = providerhub.Client()          # was: client = openai.OpenAI()
    r = client.chat.completions.create(model="gpt-3.5-turbo-16k", messages=messages)

Routing, fallback, retries and errors are those of :meth:`providerhub.Hub.create`, whose
routing arguments (``provider``, ``auth``, ``timeout``, ``retries``) ``create`` takes too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ._codecs.completions import Assembler, Chunker
from .types import ChatCompletion, ChatCompletionChunk

if TYPE_CHECKING:
    from urllib3.util import Retry

    from ._hub import Hub
    from ._routing.router import Auth, ProviderChoice, Stream
    from ._routing.threaded import AsyncStream
    from ._timeout import TimeoutLike

__all__ = ["AsyncChunkStream", "AsyncClient", "ChunkStream", "Client"]

C = TypeVar("C")


def _routing(
    provider: ProviderChoice, auth: Auth, timeout: TimeoutLike, retries: int | Retry | None
) -> dict[str, Any]:
    """The routing arguments of ``create``, as the hub's ``_prepare`` takes them."""
    return {"provider": provider, "auth": auth, "timeout": timeout, "retries": retries}


def _include_usage(params: Mapping[str, Any]) -> bool:
    options = params.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


class ChunkStream(Iterator[ChatCompletionChunk]):
    """The chunks of a streamed completion, as the openai SDK's ``Stream`` gives them.
    ``provider`` names the provider that answers, once the first chunk is in; ``close()``
    (or ``with``) stops it and closes the connection."""

    def __init__(self, stream: Stream, chunker: Chunker) -> None:
        self._stream = stream
        self._chunker = chunker
        self._chunks = self._run()

    @property
    def provider(self) -> str | None:
        return self._stream.provider

    def _run(self) -> Iterator[ChatCompletionChunk]:
        chunker = self._chunker
        for piece in self._stream:
            chunker.provider = self._stream.provider
            yield from chunker.feed(piece)
        chunker.provider = self._stream.provider
        yield from chunker.end()

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunks)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncChunkStream(AsyncIterator[ChatCompletionChunk]):
    """:class:`ChunkStream` for ``async for``; ``aclose()`` (or ``async with``) stops it."""

    def __init__(self, stream: AsyncStream, chunker: Chunker) -> None:
        self._stream = stream
        self._chunker = chunker
        self._ready: list[ChatCompletionChunk] = []
        self._ended = False

    @property
    def provider(self) -> str | None:
        return self._stream.provider

    def __aiter__(self) -> AsyncChunkStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._ended = True
                self._chunker.provider = self._stream.provider
                self._ready.extend(self._chunker.end())
                continue
            self._chunker.provider = self._stream.provider
            self._ready.extend(self._chunker.feed(piece))
        return self._ready.pop(0)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> AsyncChunkStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Namespace(Generic[C]):
    """``client.chat`` holds ``completions``, as in the openai SDK."""

    def __init__(self, completions: C) -> None:
        self.completions = completions


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChunkStream: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion | ChunkStream: ...

    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion | ChunkStream:
        """A completion of ``messages`` by ``model``; with ``stream=True`` its chunks.

        ``params`` are OpenAI chat parameters (``tools``, ``tool_choice``,
        ``response_format``, ``stream_options``, ``temperature``, ...), sent on to the
        provider. A request with ``tools`` goes only to providers that declare
        ``supports_tools``."""
        routing = _routing(provider, auth, timeout, retries)
        hub = self._client.hub
        call, candidates = hub._prepare(
            model, messages, stream=stream, kwargs=params, structured=True, **routing
        )
        from ._routing import router as _router

        if stream:
            chunker = Chunker(call.model, include_usage=_include_usage(params))
            return ChunkStream(_router.Stream(call, candidates), chunker)
        assembler = Assembler()
        served_by = _router.collect(call, candidates, assembler.add)
        return assembler.completion(call.model, served_by)


class AsyncCompletions:
    """``client.chat.completions`` of an :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> AsyncChunkStream: ...

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion | AsyncChunkStream: ...

    async def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **params: Any,
    ) -> ChatCompletion | AsyncChunkStream:
        """:meth:`Completions.create`, awaited; with ``stream=True`` the chunks come with
        ``async for``. Cancelling the task closes the HTTP response."""
        routing = _routing(provider, auth, timeout, retries)
        hub = self._client.hub
        call, candidates = hub._prepare(
            model, messages, stream=stream, kwargs=params, structured=True, **routing
        )
        if stream:
            chunker = Chunker(call.model, include_usage=_include_usage(params))
            return AsyncChunkStream(hub._astream(call, candidates), chunker)
        assembler = Assembler()
        served_by = await hub._acollect(call, candidates, assembler.add)
        return assembler.completion(call.model, served_by)


class _OverHub:
    """A client's hub: the one given, else the default hub, looked up on first use."""

    def __init__(self, hub: Hub | None) -> None:
        self._hub = hub

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            from ._hub import get_hub

            self._hub = get_hub()
        return self._hub


class Client(_OverHub):
    """An OpenAI-shaped client over ``hub`` (by default the default hub,
    :func:`providerhub.get_hub`)."""

    def __init__(self, hub: Hub | None = None) -> None:
        super().__init__(hub)
        self.chat: _Namespace[Completions] = _Namespace(Completions(self))


class AsyncClient(_OverHub):
    """:class:`Client` for asyncio: ``await client.chat.completions.create(...)``."""

    def __init__(self, hub: Hub | None = None) -> None:
        super().__init__(hub)
        self.chat: _Namespace[AsyncCompletions] = _Namespace(AsyncCompletions(self))
