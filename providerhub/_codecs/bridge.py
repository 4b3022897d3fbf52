"""What the dialects clients speak to the gateway share (:mod:`responses`,
:mod:`anthropic_gateway`), with no I/O: a request read into the chat completion it asks
for (:class:`BridgedRequest`), JSON written compact, and a streamed chat chunk read into
the pieces an event writer turns into its own events (:class:`ChunkEvents`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import InvalidRequestError

__all__ = [
    "BridgedRequest",
    "ChatAnswer",
    "ChunkEvents",
    "Dumps",
    "ToolCall",
    "cached_tokens",
    "compact",
    "read_answer",
    "read_stream",
]

Dumps = Callable[[Any], bytes]
"""How an event writer writes JSON (the gateway passes its fastest)."""


def compact(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, the events' default."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def read_stream(doc: Mapping[str, Any], chat: dict[str, Any], refusal: str) -> None:
    """Make ``chat`` a stream when the request ``doc`` asks for one, with its usage asked
    for (the dialects' last events carry it, and a chat stream gives it only when asked);
    :class:`InvalidRequestError` (``refusal``) for a ``stream`` that is not a bool."""
    stream = doc.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequestError(refusal, param="stream")
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}


@dataclass
class BridgedRequest:
    """A client's request read: the chat completion to make (``chat``, with ``model``,
    ``messages`` and ``stream``); a dialect adds what its answer needs."""

    chat: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.chat["model"])

    @property
    def stream(self) -> bool:
        return bool(self.chat.get("stream"))


class ToolCall(NamedTuple):
    """A tool call of a chat answer: its chat id (None when the answer gave none), its
    function's name and its JSON arguments ("" when they are missing)."""

    id: str | None
    name: str
    arguments: str


class ChatAnswer(NamedTuple):
    """A whole chat completion's first choice, as the document writers read it."""

    text: Any
    """The message's content (None or "" for none)."""
    calls: list[ToolCall]
    finish: str | None


def read_answer(completion: Mapping[str, Any]) -> ChatAnswer:
    """The first choice of the chat completion ``completion`` (its JSON form)."""
    choices = completion.get("choices") or [{}]
    message = choices[0].get("message") or {}
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        calls.append(
            ToolCall(call.get("id"), function.get("name") or "", function.get("arguments") or "")
        )
    return ChatAnswer(message.get("content"), calls, choices[0].get("finish_reason"))


def cached_tokens(usage: Mapping[str, Any]) -> int:
    """The prompt tokens a chat ``usage`` says were read from the provider's cache."""
    return (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0


class ChunkEvents:
    """The reading of a streamed chat completion that the event writers share: each chunk
    (its JSON form) gives its first choice's text to :meth:`text` and its tool-call
    fragments to ``_call``, and keeps its usage (as sent) and finish reason for the
    writer's ``finish``."""

    _usage: Mapping[str, Any] | None
    _finish: str | None

    def text(self, delta: str) -> bytes:
        """The events of ``delta``, a piece of the answer's text."""
        raise NotImplementedError

    def _call(self, call: Mapping[str, Any]) -> bytes:
        """The events of a tool-call fragment ``call`` (chat's streamed form)."""
        raise NotImplementedError

    def chunk(self, chunk: Mapping[str, Any]) -> bytes:
        """The events of a chat completion chunk ``chunk`` (its JSON form): its text and
        tool-call fragments; its usage and finish reason are kept for the end."""
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        out = b""
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # the first choice is the answer, as for chat
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self.text(delta["content"])
            for call in delta.get("tool_calls") or ():
                out += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out
