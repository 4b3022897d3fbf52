"""A client in the openai SDK's shape, over a hub: ``client.chat.completions.create()``
gives a :class:`~providerhub.types.ChatCompletion`, or with ``stream=True`` its chunks.

Porting openai SDK code is one line::

    client = providerhub.Client()          # was: client = openai.OpenAI()
    r = client.chat.completions.create(model="gpt-3.5-turbo-16k", messages=messages)

Routing, fallback, retries and errors are those of :meth:`providerhub.Hub.create`, whose
routing arguments (``provider``, ``auth``, ``timeout``, ``retries``) ``create`` takes too.

``client.embeddings.create(model=, input=)`` gives a
:class:`~providerhub.types.CreateEmbeddingResponse`, routed the same way among the
providers that list ``model`` in their ``embedding_models``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._codecs.completions import Assembler, Chunker
from ._codecs.openai_embeddings import to_base64
from ._hub import Hub, get_hub, signed
from ._routing import router as _router
from .types import ChatCompletion, ChatCompletionChunk, CreateEmbeddingResponse, Piece, Usage

if TYPE_CHECKING:
    from ._api import CreateCompletion, CreateEmbedding
    from ._provider import Provider
    from ._routing.arouter import AsyncStream
    from ._routing.router import Call, Stream

__all__ = [
    "AsyncChunkStream",
    "AsyncClient",
    "AsyncEmbeddings",
    "ChunkStream",
    "Client",
    "Embeddings",
]

C = TypeVar("C")


def _prepare(hub: Hub, request: dict[str, Any]) -> tuple[Call, list[Provider]]:
    """The hub's checked call and candidates for ``request``, the arguments of ``create``;
    the call gives structured pieces, which the client assembles."""
    call, candidates = hub._prepare(**request)
    call.structured = True
    return call, candidates


def _chunker(call: Call) -> Chunker:
    """The chunker of a streamed ``call``, which ends with a usage chunk when the request's
    ``stream_options`` ask for one."""
    options = call.kwargs.get("stream_options")
    include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    return Chunker(call.model, include_usage=include_usage)


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
        # The loop's generator itself: one awaited layer per piece, not two.
        self._next = stream.next_piece
        self._chunker = chunker
        self._ready: list[ChatCompletionChunk] = []  # made by one piece, not yet given
        self._ended = False

    @property
    def provider(self) -> str | None:
        return self._stream.provider

    @property
    def usage(self) -> Usage | None:
        """The usage the provider reported, once the stream has ended (whether or not
        ``stream_options`` asked for a chunk of it); None when it did not say."""
        return self._chunker.usage

    def __aiter__(self) -> AsyncChunkStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._ready:
            return self._ready.pop(0)
        chunker = self._chunker
        while not self._ended:
            try:
                piece = await self._next()
            except StopAsyncIteration:
                self._ended = True
                chunker.provider = self._stream.provider
                chunks = chunker.end()
            else:
                chunker.provider = self._stream.provider
                chunks = chunker.feed(piece)
            if chunks:
                # Nearly always one chunk a piece: given at once, with no list kept.
                if len(chunks) > 1:
                    self._ready.extend(chunks[1:])
                return chunks[0]
        raise StopAsyncIteration

    async def anext_text(self) -> ChatCompletionChunk | str:
        """:meth:`__anext__` for a reader that encodes the chunks itself (the gateway): a
        chunk that would carry nothing but a piece of text, after the first chunk, comes
        as that text, which :meth:`text_chunk` would make the chunk; no chunk is built
        for it."""
        chunker = self._chunker
        if not self._ready and not self._ended and chunker.started:
            try:
                piece = await self._next()
            except StopAsyncIteration:
                self._ended = True
                chunker.provider = self._stream.provider
                self._ready.extend(chunker.end())
            else:
                if type(piece) is str and piece:
                    return piece
                chunker.provider = self._stream.provider
                self._ready.extend(chunker.feed(piece))
        return await self.__anext__()

    def text_chunk(self, text: str) -> ChatCompletionChunk:
        """The chunk that a piece of ``text`` from :meth:`anext_text` stands for."""
        self._chunker.provider = self._stream.provider
        return self._chunker.text_chunk(text)

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

    def _create(self, **request: Any) -> ChatCompletion | ChunkStream:
        """A completion of ``messages`` by ``model``; with ``stream=True`` its chunks.

        ``params`` are OpenAI chat parameters (``tools``, ``tool_choice``,
        ``response_format``, ``stream_options``, ``temperature``, ...), sent on to the
        provider. A request with ``tools`` goes only to providers that declare
        ``supports_tools``."""
        call, candidates = _prepare(self._client.hub, request)
        if call.stream:
            return ChunkStream(_router.Stream(call, candidates), _chunker(call))
        assembler = Assembler()
        served_by = _router.collect(call, candidates, assembler.add)
        return assembler.completion(call.model, served_by)

    create: CreateCompletion[ChatCompletion, ChunkStream] = signed(
        _create, Hub._prepare, "create", keywords=True
    )


class AsyncCompletions:
    """``client.chat.completions`` of an :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _create(self, **request: Any) -> ChatCompletion | AsyncChunkStream:
        """:meth:`Completions.create`, awaited; with ``stream=True`` the chunks come with
        ``async for``. Cancelling the task closes the HTTP response."""
        hub = self._client.hub
        call, candidates = _prepare(hub, request)
        if call.stream:
            return AsyncChunkStream(hub._astream(call, candidates), _chunker(call))
        assembler = Assembler()
        served_by = await hub._acollect(call, candidates, assembler.add)
        return assembler.completion(call.model, served_by)

    create: CreateCompletion[
        Coroutine[Any, Any, ChatCompletion], Coroutine[Any, Any, AsyncChunkStream]
    ] = signed(_create, Hub._prepare, "create", keywords=True)


class _Vectors:
    """The sink of an embeddings call: keeps the provider's answer, then gives it in the
    format asked for."""

    __slots__ = ("encoding_format", "response")

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.encoding_format = request.get("encoding_format", "float")
        """The format asked for: ``"float"``, or ``"base64"``."""
        self.response: CreateEmbeddingResponse | None = None

    def add(self, piece: Piece) -> None:
        if isinstance(piece, CreateEmbeddingResponse):
            self.response = piece

    def answer(self, call: Call, served_by: str) -> CreateEmbeddingResponse:
        response = self.response
        assert response is not None  # the provider's pieces were checked: it gave one
        if self.encoding_format == "base64":
            for item in response.data:
                if not isinstance(item.embedding, str):
                    item.embedding = to_base64(item.embedding)
        response.model = call.model
        response.provider = served_by
        return response


class Embeddings:
    """``client.embeddings``, as in the openai SDK."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _create(self, **request: Any) -> CreateEmbeddingResponse:
        """The vectors of ``input`` (a string, a list of strings, a list of token ids or a
        list of such lists) by the embedding model ``model``: one
        :class:`~providerhub.types.Embedding` per input, in their order.
        ``encoding_format`` is ``"float"`` (lists of floats) or ``"base64"`` (the base64
        text of little-endian float32s, as OpenAI sends); ``dimensions`` and ``user`` are
        passed on. Bad input raises :class:`~providerhub.errors.InvalidRequestError`
        before any provider is asked; routing, retries, fallback, cooldowns and rate
        limits are those of a chat completion (the routing arguments too)."""
        call, candidates = self._client.hub._prepare_embeddings(**request)
        vectors = _Vectors(request)
        return vectors.answer(call, _router.collect(call, candidates, vectors.add))

    create: CreateEmbedding[CreateEmbeddingResponse] = signed(
        _create, Hub._prepare_embeddings, "create", keywords=True
    )


class AsyncEmbeddings:
    """``client.embeddings`` of an :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _create(self, **request: Any) -> CreateEmbeddingResponse:
        """:meth:`Embeddings.create`, awaited. Cancelling the task closes the HTTP
        response."""
        hub = self._client.hub
        call, candidates = hub._prepare_embeddings(**request)
        vectors = _Vectors(request)
        return vectors.answer(call, await hub._acollect(call, candidates, vectors.add))

    create: CreateEmbedding[Coroutine[Any, Any, CreateEmbeddingResponse]] = signed(
        _create, Hub._prepare_embeddings, "create", keywords=True
    )


class _OverHub:
    """A client's hub: the one given, else the default hub, looked up on first use."""

    def __init__(self, hub: Hub | None) -> None:
        self._hub = hub

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = get_hub()
        return self._hub


class Client(_OverHub):
    """An OpenAI-shaped client over ``hub`` (by default the default hub,
    :func:`providerhub.get_hub`)."""

    def __init__(self, hub: Hub | None = None) -> None:
        super().__init__(hub)
        self.chat: _Namespace[Completions] = _Namespace(Completions(self))
        self.embeddings = Embeddings(self)


class AsyncClient(_OverHub):
    """:class:`Client` for asyncio: ``await client.chat.completions.create(...)``."""

    def __init__(self, hub: Hub | None = None) -> None:
        super().__init__(hub)
        self.chat: _Namespace[AsyncCompletions] = _Namespace(AsyncCompletions(self))
        self.embeddings = AsyncEmbeddings(self)
