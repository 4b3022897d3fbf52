"""The objects of a structured completion, in the shape of the openai SDK's.

:class:`ChatCompletion` is a whole answer, :class:`ChatCompletionChunk` one piece of a
streamed one; their parts are plain dataclasses with attribute access, as in the SDK::

    r.choices[0].message.content                    # str, or None when only tools are called
    r.choices[0].message.tool_calls[0].function.name
    r.choices[0].finish_reason                      # "stop", "length", "tool_calls", ...
    r.usage.total_tokens                            # r.usage is None when the provider
                                                    # does not say
    r.to_dict()                                     # the JSON the OpenAI API would send

:class:`CreateEmbeddingResponse` is what ``client.embeddings.create(...)`` returns:
``r.data[i].embedding`` (a list of floats, or with ``encoding_format="base64"`` the
base64 text of little-endian float32s), ``r.data[i].index``, ``r.model`` and ``r.usage``.

``provider`` (on completions and chunks) names the provider that answered. It is not part
of OpenAI's JSON, so :meth:`ChatCompletion.to_dict` leaves it out, and equality ignores it.

A provider may yield four of these classes besides text (see
:mod:`providerhub.plugin`): :class:`ToolCallDelta` for a fragment of a tool call,
:class:`Usage` for token counts, :class:`Finish` for the reason the answer stopped, and
:class:`Reasoning` for a piece of the model's reasoning, which reaches the client as
``reasoning_content`` (the field vLLM and DeepSeek send), never as ``content``. A codec
that passes a provider's answer through to a client of the same dialect (the gateway's
``/v1/messages`` in front of Anthropic's API) yields :class:`Verbatim` bytes besides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "Choice",
    "ChunkChoice",
    "CreateEmbeddingResponse",
    "Delta",
    "Embedding",
    "EmbeddingUsage",
    "Finish",
    "Function",
    "FunctionDelta",
    "Message",
    "Piece",
    "Reasoning",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "Verbatim",
]


def _drop_none(items: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in items.items() if v is not None}


@dataclass
class Usage:
    """Token counts, as the provider reported them.

    ``cached_tokens`` are the prompt's tokens read from the provider's prompt cache and
    ``cache_creation_tokens`` those written to it (Anthropic's), both counted in
    ``prompt_tokens`` too; ``reasoning_tokens`` are the answer's reasoning (thinking)
    tokens, counted in ``completion_tokens`` too, as OpenAI counts them. Each is None
    when the provider did not say."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_tokens: int | None = None

    @property
    def tokens(self) -> int:
        """The tokens the answer cost: ``total_tokens``, or the sum of the other two when
        the provider left it out (what a ``tpm`` limit counts)."""
        if self.total_tokens is not None:
            return self.total_tokens
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's ``usage`` object: the details (``prompt_tokens_details``,
        ``completion_tokens_details``) only when the provider gave them."""
        doc: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens is not None or self.cache_creation_tokens is not None:
            doc["prompt_tokens_details"] = _drop_none(
                {
                    "cached_tokens": self.cached_tokens,
                    "cache_creation_tokens": self.cache_creation_tokens,
                }
            )
        if self.reasoning_tokens is not None:
            doc["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Usage:
        prompt = doc.get("prompt_tokens_details")
        completion = doc.get("completion_tokens_details")
        prompt = prompt if isinstance(prompt, dict) else {}
        completion = completion if isinstance(completion, dict) else {}
        return cls(
            doc.get("prompt_tokens"),
            doc.get("completion_tokens"),
            doc.get("total_tokens"),
            prompt.get("cached_tokens"),
            completion.get("reasoning_tokens"),
            prompt.get("cache_creation_tokens"),
        )


@dataclass
class Finish:
    """Why the answer stopped: ``"stop"``, ``"length"``, ``"tool_calls"``,
    ``"content_filter"``, or what else the provider said. Yielded by a provider; the
    client reads it into ``finish_reason``."""

    reason: str


@dataclass
class Reasoning:
    """A piece of the model's reasoning (Anthropic's thinking blocks), kept apart from
    the answer's text: the client reads it into ``message.reasoning_content``, or a
    chunk's ``delta.reasoning_content``, as vLLM and DeepSeek send it. A text-only
    answer (``create()`` without the client) leaves it out."""

    text: str


@dataclass
class Function:
    """The function a tool call calls: its ``name``, and its ``arguments`` as JSON text."""

    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class ToolCall:
    """One tool call of a whole answer."""

    id: str
    function: Function
    type: str = "function"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "function": self.function.to_dict()}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ToolCall:
        fn = doc.get("function") or {}
        return cls(
            doc["id"], Function(fn.get("name", ""), fn.get("arguments", "")), doc.get("type", "")
        )


@dataclass
class FunctionDelta:
    """A fragment of a tool call's function: the ``name`` (in the call's first fragment
    only) and a piece of the ``arguments`` text."""

    name: str | None = None
    arguments: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"name": self.name, "arguments": self.arguments})


@dataclass
class ToolCallDelta:
    """A fragment of a streamed tool call. Calls are told apart by ``index``; ``id``,
    ``type`` and the function's name come once, in a call's first fragment, and the
    ``arguments`` text arrives in pieces to be concatenated."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = _drop_none({"index": self.index, "id": self.id, "type": self.type})
        if self.function is not None:
            doc["function"] = self.function.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ToolCallDelta:
        fn = doc.get("function")
        return cls(
            doc["index"],
            doc.get("id"),
            doc.get("type"),
            None if fn is None else FunctionDelta(fn.get("name"), fn.get("arguments")),
        )


@dataclass(frozen=True)
class Verbatim:
    """Bytes of a provider's answer passed on as they came, to a client that speaks the
    provider's own dialect (the gateway's ``/v1/messages`` in front of Anthropic's API):
    one event of its stream (its whole frame), or its whole document. Only a codec that
    passes answers through yields them, beside the pieces it watches the answer with."""

    data: bytes


Piece = Union[str, ToolCallDelta, Usage, Finish, Reasoning, "CreateEmbeddingResponse", Verbatim]
"""What a provider's ``_create_completion`` may yield: text, or a structured piece. (An
embeddings answer, a :class:`CreateEmbeddingResponse`, goes through the routing loop as
one piece too.)"""


@dataclass
class Message:
    """The answer's message: ``content`` is None when the model only called tools."""

    content: str | None
    role: str = "assistant"
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    """The model's reasoning, when the provider sent any (see :class:`Reasoning`); not in
    the JSON otherwise."""

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            doc["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        doc["refusal"] = self.refusal
        if self.reasoning_content is not None:
            doc["reasoning_content"] = self.reasoning_content
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Message:
        calls = doc.get("tool_calls")
        return cls(
            doc.get("content"),
            doc.get("role", "assistant"),
            [ToolCall.from_dict(c) for c in calls] if calls else None,
            doc.get("refusal"),
            doc.get("reasoning_content"),
        )


@dataclass
class Choice:
    """One choice of a whole answer (providerhub answers with one, index 0)."""

    index: int
    message: Message
    finish_reason: str | None
    logprobs: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "message": self.message.to_dict(),
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Choice:
        return cls(
            doc.get("index", 0),
            Message.from_dict(doc.get("message") or {}),
            doc.get("finish_reason"),
            doc.get("logprobs"),
        )


@dataclass
class ChatCompletion:
    """A whole answer, as ``client.chat.completions.create(...)`` returns it."""

    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    object: str = "chat.completion"
    system_fingerprint: str | None = None
    provider: str | None = field(default=None, compare=False)
    """The provider that answered; not part of OpenAI's JSON."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document the OpenAI API would send for this answer."""
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice.to_dict() for choice in self.choices],
            "usage": None if self.usage is None else self.usage.to_dict(),
            "system_fingerprint": self.system_fingerprint,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, provider: str | None = None) -> ChatCompletion:
        usage = doc.get("usage")
        return cls(
            doc["id"],
            doc["created"],
            doc["model"],
            [Choice.from_dict(c) for c in doc.get("choices") or []],
            None if usage is None else Usage.from_dict(usage),
            doc.get("object", "chat.completion"),
            doc.get("system_fingerprint"),
            provider,
        )


@dataclass
class Delta:
    """What one chunk adds to the message: ``role`` on the first chunk, then pieces of
    ``content`` or fragments of ``tool_calls``."""

    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    """A piece of the model's reasoning (see :class:`Reasoning`)."""

    def to_dict(self) -> dict[str, Any]:
        doc = _drop_none(
            {
                "role": self.role,
                "content": self.content,
                "refusal": self.refusal,
                "reasoning_content": self.reasoning_content,
            }
        )
        if self.tool_calls:
            doc["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Delta:
        calls = doc.get("tool_calls")
        return cls(
            doc.get("role"),
            doc.get("content"),
            [ToolCallDelta.from_dict(c) for c in calls] if calls else None,
            doc.get("refusal"),
            doc.get("reasoning_content"),
        )


@dataclass
class ChunkChoice:
    """One choice of a chunk."""

    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "delta": self.delta.to_dict(),
            "logprobs": self.logprobs,
            "finish_reason": self.finish_reason,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ChunkChoice:
        return cls(
            doc.get("index", 0),
            Delta.from_dict(doc.get("delta") or {}),
            doc.get("finish_reason"),
            doc.get("logprobs"),
        )


@dataclass
class ChatCompletionChunk:
    """One piece of a streamed answer. The last chunk of a stream asked for with
    ``stream_options={"include_usage": True}`` has empty ``choices`` and the ``usage``."""

    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    object: str = "chat.completion.chunk"
    system_fingerprint: str | None = None
    provider: str | None = field(default=None, compare=False)
    """The provider that answered; not part of OpenAI's JSON."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the ``data:`` event the OpenAI API would send for this chunk."""
        doc: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.system_fingerprint,
            "choices": [choice.to_dict() for choice in self.choices],
        }
        if self.usage is not None:
            doc["usage"] = self.usage.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, provider: str | None = None) -> ChatCompletionChunk:
        usage = doc.get("usage")
        return cls(
            doc["id"],
            doc["created"],
            doc["model"],
            [ChunkChoice.from_dict(c) for c in doc.get("choices") or []],
            None if usage is None else Usage.from_dict(usage),
            doc.get("object", "chat.completion.chunk"),
            doc.get("system_fingerprint"),
            provider,
        )


@dataclass
class Embedding:
    """One input's vector: ``embedding`` is a list of floats, or with
    ``encoding_format="base64"`` the base64 text of its little-endian float32s, as OpenAI
    sends it; ``index`` is the input's place in the request."""

    embedding: list[float] | str
    index: int
    object: str = "embedding"

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "index": self.index, "embedding": self.embedding}


@dataclass
class EmbeddingUsage:
    """The tokens an embeddings request cost, as the provider reported them (0 and 0 when
    it did not say)."""

    prompt_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.total_tokens}


@dataclass
class CreateEmbeddingResponse:
    """The vectors of an embeddings request, as ``client.embeddings.create(...)`` returns
    them: one :class:`Embedding` per input, in the order of the inputs. A provider's
    ``_create_embedding`` may return one (or the OpenAI JSON document of one)."""

    data: list[Embedding]
    model: str
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage)
    object: str = "list"
    provider: str | None = field(default=None, compare=False)
    """The provider that answered; not part of OpenAI's JSON."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON document the OpenAI API would send for these vectors."""
        return {
            "object": self.object,
            "data": [item.to_dict() for item in self.data],
            "model": self.model,
            "usage": self.usage.to_dict(),
        }
