"""What the bench server sends and what every client must receive, in one place.

The server and the clients both derive the answer from the request's *nonce* (the content of
its last message), so a client's result can be checked for exact equality: a client that
drops, repeats, reorders or mangles a piece, or answers from a cache, fails the check.

A streamed answer of ``n`` pieces is: a role-only chunk (empty content, as OpenAI sends
first), ``n`` content chunks (the first carries the nonce, the others are short words, one in
97 of them non-ASCII), a final chunk with ``finish_reason: "stop"`` and ``data: [DONE]``.
The number of pieces is the request's ``max_tokens``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

MODEL = "gpt-3.5-turbo-16k"
"""The model every figure asks for; Gravityengine serves it."""

PATH = "/api/openai/v1/chat/completions"
"""Where Gravityengine POSTs, below ``PROVIDERHUB_GRAVITYENGINE_URL``."""

DEFAULTS: dict[str, Any] = {"temperature": 0.7, "presence_penalty": 0}
"""The body fields Gravityengine adds; the raw clients send them too, so the bodies match."""

CREATED = 1_700_000_000
DEFAULT_PIECES = 16
MAX_PIECES = 1_000_000

SENTENCE = (
    "Hello! I am a fast local stand-in for an OpenAI-compatible service, answering so "
    "that the benchmark measures the client and not the server. Voilà, a café crème."
)
"""The fixed part of a non-streamed answer."""


def nonce_for(process: int, index: int) -> str:
    """The nonce of request ``index`` of process ``process``: unique within a run."""
    return f"bench-{process}-{index}"


def messages_for(nonce: str) -> list[dict[str, str]]:
    """The ``messages`` of a request carrying ``nonce``."""
    return [{"role": "user", "content": nonce}]


def request_body(nonce: str, *, stream: bool, pieces: int | None = None) -> dict[str, Any]:
    """The body a raw client sends: the same fields, in the same order, as Gravityengine."""
    body: dict[str, Any] = {"model": MODEL, **DEFAULTS, "messages": messages_for(nonce)}
    if pieces is not None:
        body["max_tokens"] = pieces
    if stream:
        body["stream"] = True
    return body


def reply_text(nonce: str) -> str:
    """The content of the non-streamed answer to ``nonce``."""
    return f"[{nonce}] {SENTENCE}"


def word(index: int) -> str:
    """Streamed piece ``index`` (>= 1)."""
    return "café " if index % 97 == 0 else f"w{index} "


def first_piece(nonce: str) -> str:
    """Streamed piece 0, which carries the nonce."""
    return f"[{nonce}] "


@lru_cache(maxsize=16)
def _tail_text(pieces: int) -> str:
    return "".join(word(i) for i in range(1, pieces))


def stream_text(nonce: str, pieces: int) -> str:
    """The whole text of a streamed answer of ``pieces`` pieces to ``nonce``."""
    return first_piece(nonce) + _tail_text(pieces)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def completion_document(nonce: str, model: str) -> bytes:
    """The JSON body of a non-streamed answer, shaped as OpenAI's."""
    text = reply_text(nonce)
    return _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 31, "total_tokens": 40},
        }
    )


def chunk_event(model: str, delta: dict[str, str], finish_reason: str | None = None) -> bytes:
    """One Server-Sent Event holding one ``chat.completion.chunk``, shaped as OpenAI's."""
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    return b"data: " + _dumps(doc) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"


def head_events(nonce: str, model: str) -> list[bytes]:
    """The events that depend on the request: the role chunk and piece 0."""
    return [
        chunk_event(model, {"role": "assistant", "content": ""}),
        chunk_event(model, {"content": first_piece(nonce)}),
    ]


def tail_events(pieces: int, model: str) -> list[bytes]:
    """The events that do not: pieces 1..n-1, the finish chunk and ``[DONE]``."""
    events = [chunk_event(model, {"content": word(i)}) for i in range(1, pieces)]
    events.append(chunk_event(model, {}, "stop"))
    events.append(DONE_EVENT)
    return events


def parse_sse_text(body: bytes) -> tuple[str, int]:
    """The text and the number of non-empty content pieces in a whole SSE body; used to
    check the bare ``http.client`` ceiling loop, outside its timing."""
    pieces: list[str] = []
    for block in body.split(b"\n\n"):
        if not block.startswith(b"data: "):
            continue
        data = block[6:]
        if data == b"[DONE]":
            break
        content = json.loads(data)["choices"][0]["delta"].get("content")
        if content:
            pieces.append(content)
    return "".join(pieces), len(pieces)
