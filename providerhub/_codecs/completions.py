"""OpenAI-shaped completions built from what a provider yields.

A provider yields text (``str``) and, if it can, structured pieces: fragments of tool
calls, token usage, the reason it stopped (:mod:`providerhub.types`). :class:`Assembler`
gathers them into one :class:`~providerhub.types.ChatCompletion`; :class:`Chunker` turns
each into the :class:`~providerhub.types.ChatCompletionChunk` OpenAI would have streamed.
A provider that yields only text (every seed-contract module) gives ``finish_reason``
``"stop"`` and no usage.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from ..types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    CreateEmbeddingResponse,
    Delta,
    Finish,
    Function,
    Message,
    Piece,
    Reasoning,
    ToolCall,
    ToolCallDelta,
    Usage,
    Verbatim,
)

__all__ = ["Assembler", "Chunker", "completion_id", "is_piece"]

_STRUCTURED = (ToolCallDelta, Usage, Finish, Reasoning, CreateEmbeddingResponse, Verbatim)


def is_piece(value: object) -> bool:
    """Whether ``value`` is something a provider may yield: text or a structured piece
    (or the answer of an embeddings call, which the loop carries as one piece)."""
    return type(value) is str or isinstance(value, _STRUCTURED)


def completion_id() -> str:
    """A new id, ``chatcmpl-`` and 24 hex digits (see :func:`new_id`)."""
    return f"chatcmpl-{_id_prefix}{next(_id_count):012x}"


def new_id(prefix: str) -> str:
    """A new id, ``prefix`` and 24 hex digits, unique among this process's and (but for
    a one in 2**48 chance) any other process's: a random prefix per process and a count,
    a fraction of the cost of a ``uuid4`` on every answer."""
    return f"{prefix}{_id_prefix}{next(_id_count):012x}"


def _new_id_prefix() -> None:
    global _id_prefix, _id_count
    _id_prefix = os.urandom(6).hex()
    _id_count = itertools.count()


_id_prefix = ""
_id_count = itertools.count()
_new_id_prefix()
if hasattr(os, "register_at_fork"):
    # A forked worker must not hand out its parent's ids again.
    os.register_at_fork(after_in_child=_new_id_prefix)


class _PendingCall:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class Assembler:
    """Gathers a provider's pieces into one whole answer."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    def add(self, piece: Piece) -> None:
        if type(piece) is str:
            self._text.append(piece)
        elif isinstance(piece, ToolCallDelta):
            call = self._calls.get(piece.index)
            if call is None:
                call = self._calls[piece.index] = _PendingCall()
            if piece.id:
                call.id = piece.id
            if piece.type:
                call.type = piece.type
            if piece.function is not None:
                if piece.function.name:
                    call.name = piece.function.name
                if piece.function.arguments:
                    call.arguments.append(piece.function.arguments)
        elif isinstance(piece, Usage):
            self.usage = piece
        elif isinstance(piece, Finish):
            self.finish_reason = piece.reason
        elif isinstance(piece, Reasoning):
            self._reasoning.append(piece.text)

    @property
    def has_tool_calls(self) -> bool:
        return bool(self._calls)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(c.id, Function(c.name, "".join(c.arguments)), c.type)
            for _, c in sorted(self._calls.items())
        ]

    def completion(self, model: str, provider: str | None) -> ChatCompletion:
        calls = self.tool_calls
        text = self.text
        reason = self.finish_reason or ("tool_calls" if calls else "stop")
        message = Message(
            content=text if text or not calls else None,
            tool_calls=calls or None,
            reasoning_content="".join(self._reasoning) if self._reasoning else None,
        )
        return ChatCompletion(
            id=completion_id(),
            created=int(time.time()),
            model=model,
            choices=[Choice(index=0, message=message, finish_reason=reason)],
            usage=self.usage,
            provider=provider,
        )


class Chunker:
    """Turns a provider's pieces into the chunks OpenAI would stream: a first chunk with
    the role, one per piece of text or tool-call fragment, one with the finish reason, and,
    when ``include_usage`` and the provider reported usage, a last one with empty
    ``choices`` and the usage."""

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.model = model
        self.include_usage = include_usage
        self.provider: str | None = None
        self._id = completion_id()
        self._created = int(time.time())
        self.started = False
        """Whether the first chunk, the one with the role, was made: each piece of text
        from then on makes one :meth:`text_chunk`."""
        self._saw_calls = False
        self._finish: str | None = None
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        """The usage the provider reported (the last of it), whether or not a chunk
        carries it: None until it comes, or when it never does."""
        return self._usage

    def _chunk(
        self, delta: Delta, finish: str | None = None, *, choices: bool = True, **extra: Any
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self._id,
            created=self._created,
            model=self.model,
            choices=[ChunkChoice(0, delta, finish)] if choices else [],
            provider=self.provider,
            **extra,
        )

    def text_chunk(self, text: str) -> ChatCompletionChunk:
        """The chunk of a piece of ``text`` after the first chunk."""
        return self._chunk(Delta(content=text))

    def feed(self, piece: Piece) -> list[ChatCompletionChunk]:
        """The chunks ``piece`` makes (possibly none: usage and the finish reason are
        held for :meth:`end`)."""
        out = []
        if not self.started:
            self.started = True
            first = Delta(role="assistant", content="" if type(piece) is str else None)
            if type(piece) is str:
                first.content = piece
                return [self._chunk(first)]
            out.append(self._chunk(first))
        if type(piece) is str:
            if piece:
                out.append(self.text_chunk(piece))
        elif isinstance(piece, ToolCallDelta):
            self._saw_calls = True
            out.append(self._chunk(Delta(tool_calls=[piece])))
        elif isinstance(piece, Usage):
            self._usage = piece
        elif isinstance(piece, Finish):
            self._finish = piece.reason
        elif isinstance(piece, Reasoning) and piece.text:
            out.append(self._chunk(Delta(reasoning_content=piece.text)))
        return out

    def end(self) -> list[ChatCompletionChunk]:
        """The closing chunks, once the provider's answer is over."""
        out = []
        if not self.started:
            self.started = True
            out.append(self._chunk(Delta(role="assistant", content="")))
        reason = self._finish or ("tool_calls" if self._saw_calls else "stop")
        out.append(self._chunk(Delta(), reason))
        if self.include_usage and self._usage is not None:
            # A provider that did not say gives no usage chunk, as a document gives
            # usage None: counts of None would be no usage at all (the SDK refuses them).
            out.append(self._chunk(Delta(), choices=False, usage=self._usage))
        return out
