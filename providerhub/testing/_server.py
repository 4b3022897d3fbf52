"""A local OpenAI-compatible chat completions and embeddings server: real HTTP on
127.0.0.1, one thread per connection, real streaming, and scripted replies and faults."""

from __future__ import annotations

import base64
import hashlib
import json
import selectors
import socket
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DIALECTS",
    "EMBEDDING_DIMENSIONS",
    "FAULTS",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "vector_for",
]

EMBEDDING_DIMENSIONS = 8
"""How many values the server's vectors have when the request gives no ``dimensions``."""


def vector_for(text: str, model: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The vector the server answers for the input ``text`` (token ids as their numbers
    joined by spaces) by ``model``: made from a hash of both, so the same input always
    gets the same vector and two inputs different ones; each value is a multiple of
    1/128 in [-1, 1), which a float32 holds exactly (base64 round trips are exact)."""
    seed = f"{model}\0{text}".encode()
    raw = b""
    counter = 0
    while len(raw) < dimensions:
        raw += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return [(b - 128) / 128 for b in raw[:dimensions]]


FAULTS = ("reset", "stall", "cut", "error_event")
"""What a :class:`Reply` can do wrong: ``reset`` the connection, ``stall`` for ``delay``
seconds, ``cut`` the stream short (no finish_reason, no ``[DONE]``), or send an
``error_event``; ``after`` events, or before the headers when ``after`` is None."""


DIALECTS = ("openai", "llama.cpp", "ollama", "no-index", "legacy")
"""How a :class:`Reply` streams its tool calls: as OpenAI does (``openai``: id, type and
name in a call's first fragment, then pieces of the arguments, calls told apart by
``index``); repeating the id and name in every fragment (``llama.cpp``); each call whole,
every one at index 0, arguments as a JSON object (``ollama``); without ``index``
(``no-index``); or with a legacy ``function_call`` beside each ``tool_calls`` (``legacy``).
"""


@dataclass
class Reply:
    """What the server does for one request.

    By default it answers in the protocol the request asked for: Server-Sent Events, one
    event per item of ``chunks``, for ``"stream": true``; one JSON document otherwise.
    ``chunks=None`` echoes the last user message. ``body`` replaces all of that with a raw
    body of ``content_type`` (or a function of the request that returns one); ``status``
    and ``headers`` go out as given.
    """

    chunks: Sequence[str] | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | Callable[[RecordedRequest], bytes | str] | None = None
    content_type: str | None = None
    fault: str | None = None
    after: int | None = 0
    delay: float = 0.0
    chunk_delay: float = 0.0
    wait: threading.Event | None = None
    """Stream ``after`` events, then hold the rest until this event is set."""
    json_for_stream: bool = False
    """Answer a stream request with one JSON document, as some servers do."""
    tool_calls: Sequence[Mapping[str, Any]] = ()
    """Tool calls to answer with: ``{"name": ..., "arguments": {...} or "json text"}``,
    with an optional ``"id"`` (one is made up when absent)."""
    finish_reason: str | None = None
    """The finish reason sent; by default ``"tool_calls"`` when there are tool calls,
    else ``"stop"``."""
    usage: Mapping[str, Any] | None = None
    """Token usage (with OpenAI's ``prompt_tokens_details`` and
    ``completion_tokens_details`` if given): sent in a document, and in a stream asked for with
    ``stream_options={"include_usage": true}`` as a last chunk with empty ``choices``."""
    dialect: str = "openai"
    """How tool calls are streamed: one of :data:`DIALECTS`."""

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, not {self.fault!r}")
        if self.dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}")

    @property
    def finish(self) -> str:
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    @classmethod
    def tools(cls, *calls: Mapping[str, Any], **options: Any) -> Reply:
        """Answer with these tool calls (and the text of ``chunks=``, if any)."""
        options.setdefault("chunks", [])
        return cls(tool_calls=list(calls), **options)

    @classmethod
    def text(cls, *chunks: str, **options: Any) -> Reply:
        """Answer with these pieces of text."""
        return cls(chunks=list(chunks), **options)

    @classmethod
    def error(cls, status: int, message: str = "error", *, retry_after: str | None = None) -> Reply:
        """An HTTP error status with an OpenAI-style JSON error body."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = json.dumps({"error": {"message": message, "type": "server_error"}})
        return cls(status=status, headers=headers, body=body, content_type="application/json")

    @classmethod
    def html(cls, status: int = 200) -> Reply:
        """An HTML page, as a bot-protection challenge answers."""
        page = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>" + (
            "Checking your browser before accessing the site.</body></html>"
        )
        return cls(status=status, body=page, content_type="text/html; charset=utf-8")


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received; ``client`` is the (host, port) it came from, which
    tells whether two requests shared one connection."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    client: tuple[str, int] = ("", 0)

    def json(self) -> Any:
        return json.loads(self.body)


class OpenAIServer:
    """Serves ``POST <any path ending in /chat/completions>`` on 127.0.0.1, and ``POST
    <any path ending in /embeddings>``: vectors of :func:`vector_for` (floats, or base64
    for ``"encoding_format": "base64"``), ``dimensions`` long (8 by default), with usage
    counting one token per word. A scripted reply with a ``body`` (an error, say) or a
    fault before the headers applies to either.

    ::

        with OpenAIServer() as server:
            server.script(Reply.error(503), Reply.text("Hel", "lo"))
            ...  # point a provider at server.url

    Replies queued with :meth:`script` are used in order, one per request; then
    ``responder`` (if set) or ``default`` answers. Every request is kept in
    :attr:`requests`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default = Reply()
        self.responder: Callable[[int, RecordedRequest], Reply] | None = None
        """When set, answers every request not scripted: called with the request's number
        (1 for the first) and the request."""
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        """Errors met while answering, such as clients that hung up mid-answer."""
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket]  # stop() wakes _serve() through it

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pending(self) -> int:
        """How many scripted replies are still waiting for a request."""
        with self._lock:
            return len(self._queue)

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> OpenAIServer:
        if self._thread is None:
            self._wake = socket.socketpair()
            self._thread = threading.Thread(
                target=self._serve, name="providerhub-test-server", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled replies are cut short."""
        self._stopping.set()
        if self._thread is not None:
            self._wake[1].send(b"x")
            self._thread.join(timeout=5)
            self._thread = None
            for end in self._wake:
                end.close()
        self._httpd.server_close()

    def _serve(self) -> None:
        # Not serve_forever(): it notices shutdown() only when its poll interval is up,
        # which made every test that stops a server wait for it. This loop sleeps until a
        # client connects or stop() writes to the wake-up socket.
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._httpd and not self._stopping.is_set():
                        self._httpd.handle_request()  # ready: accepts without waiting

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _keep(self, request: RecordedRequest) -> None:
        """Keep a request that is answered without a scripted reply (refused, or a list)."""
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
            number = len(self.requests)
        if self.responder is not None:
            return self.responder(number, request)
        return self.default


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's backlog of 5 drops the SYNs of a 6th and later client connecting at
    # once, which the kernel resends a whole second later: tests that race a dozen calls.
    request_queue_size = 128
    owner: OpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer is what fault tests do on purpose; keep the
        # error for the test to read instead of printing a traceback.
        exc = sys.exc_info()[1]
        if exc is not None:
            self.owner.errors.append(exc)


_EVENT_STREAM = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
"""The head of an OpenAI event stream."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: an answer goes out as its head and then its body (or its events), and
    # with Nagle's algorithm the second write waited for the client's delayed ACK, 40 ms
    # on every request of a kept-alive connection.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`OpenAIServer.requests` instead of a log."""

    def _recorded(self) -> RecordedRequest:
        """The request being handled, its body read (``Content-Length`` bytes)."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return RecordedRequest(
            self.command, self.path, dict(self.headers.items()), body, self.client_address[:2]
        )

    def do_POST(self) -> None:
        owner = self.server.owner
        recorded = self._recorded()
        body = recorded.body
        path = self.path.rstrip("/")
        if not path.endswith(("/chat/completions", "/embeddings")):
            self._send(404, b'{"error": {"message": "not found"}}', "application/json", {})
            owner._next_reply(recorded)
            return
        reply = owner._next_reply(recorded)
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = {}
        if not isinstance(request, dict):
            request = {}
        self._answer(reply, request, recorded)

    def _scripted(self, reply: Reply, recorded: RecordedRequest) -> bool:
        """Do what ``reply`` asks before any answer (a reset, a stall) and send its
        scripted body; True when that answered the request, whatever the dialect."""
        if reply.fault is not None and reply.after is None:
            if reply.fault == "reset":
                self._reset()
                return True
            if reply.fault == "stall":
                self.server.owner._stopping.wait(reply.delay)
        if reply.body is None:
            return False
        content = reply.body(recorded) if callable(reply.body) else reply.body
        raw = content.encode() if isinstance(content, str) else content
        ctype = reply.content_type or "application/octet-stream"
        self._send(reply.status, raw, ctype, reply.headers)
        return True

    def _stream_head(self, reply: Reply, headers: Mapping[str, str]) -> None:
        """Send the head of an event stream: ``reply``'s status, the dialect's
        ``headers``, chunked, then ``reply``'s own headers."""
        self.send_response(reply.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _before_chunk(self, reply: Reply, index: int) -> bool:
        """Do what ``reply`` asks before its chunk number ``index`` of text (its fault,
        its wait, its delay between chunks); True when the stream must end there."""
        if reply.after == index:
            if reply.fault is not None and self._fault(reply):
                return True
            if reply.wait is not None:
                reply.wait.wait(30)
        if reply.chunk_delay:
            self.server.owner._stopping.wait(reply.chunk_delay)
        return False

    def _answer(self, reply: Reply, request: dict[str, Any], recorded: RecordedRequest) -> None:
        if self._scripted(reply, recorded):
            return
        model = str(request.get("model", "unknown-model"))
        if recorded.path.rstrip("/").endswith("/embeddings"):
            self._embeddings(reply, request, model)
            return
        chunks = list(reply.chunks) if reply.chunks is not None else _echo(request, model)
        if request.get("stream") and not reply.json_for_stream:
            options = request.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            self._stream(reply, chunks, model, usage)
            return
        message: dict[str, Any] = {"role": "assistant", "content": "".join(chunks) or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(call, i),
                    "type": "function",
                    "function": {"name": call["name"], "arguments": _arguments(call)},
                }
                for i, call in enumerate(reply.tool_calls)
            ]
        elif message["content"] is None:
            message["content"] = ""
        doc: dict[str, Any] = {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish}],
        }
        if reply.usage is not None:
            doc["usage"] = dict(reply.usage)
        if reply.fault == "cut":
            data = json.dumps(doc).encode()
            self._send(reply.status, data[: len(data) // 2], "application/json", reply.headers)
            return
        self._send(reply.status, json.dumps(doc).encode(), "application/json", reply.headers)

    def _embeddings(self, reply: Reply, request: dict[str, Any], model: str) -> None:
        """Answer an embeddings request as OpenAI does, or its 400 for a bad ``input``."""
        texts = _embedding_texts(request.get("input"))
        dimensions = request.get("dimensions", EMBEDDING_DIMENSIONS)
        if texts is None or type(dimensions) is not int or dimensions < 1:
            error = {
                "error": {
                    "message": "'input' must be a non-empty string or list, and 'dimensions' "
                    "a positive integer",
                    "type": "invalid_request_error",
                    "param": "input" if texts is None else "dimensions",
                    "code": None,
                }
            }
            self._send(400, json.dumps(error).encode(), "application/json", {})
            return
        in_base64 = request.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = vector_for(text, model, dimensions)
            shown: Any = vector
            if in_base64:
                packed = struct.pack(f"<{len(vector)}f", *vector)
                shown = base64.b64encode(packed).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": shown})
        tokens = sum(len(text.split()) for text in texts)
        doc = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        self._send(reply.status, json.dumps(doc).encode(), "application/json", reply.headers)

    def _stream(self, reply: Reply, chunks: list[str], model: str, usage: bool) -> None:
        self._stream_head(reply, _EVENT_STREAM)
        role = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        self._event(json.dumps(role))
        for index, text in enumerate(chunks):
            if self._before_chunk(reply, index):
                return
            delta = {
                "id": "chatcmpl-local",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
            self._event(json.dumps(delta))
        after = reply.after
        if (
            reply.fault is not None
            and after is not None
            and after >= len(chunks)
            and (self._fault(reply))
        ):
            return
        for delta in _tool_call_deltas(reply):
            self._event(json.dumps({"choices": [{"index": 0, "delta": delta}]}))
        last = {"choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish}]}
        self._event(json.dumps(last))
        if usage and reply.usage is not None:
            self._event(json.dumps({"choices": [], "usage": dict(reply.usage)}))
        self._event("[DONE]")
        self._write_chunk(b"")

    def _fault(self, reply: Reply) -> bool:
        """Do the reply's fault mid-stream; True when the stream must end here."""
        if reply.fault == "reset":
            self._reset()
            return True
        if reply.fault == "stall":
            self.server.owner._stopping.wait(reply.delay)
            return False
        if reply.fault == "error_event":
            error = {"error": {"message": "the model failed mid-answer", "type": "server_error"}}
            self._event(json.dumps(error))
            self._write_chunk(b"")
            return True
        # "cut": end the body cleanly, but without finish_reason or [DONE].
        self._write_chunk(b"")
        return True

    def _event(self, data: str) -> None:
        self._write_chunk(f"data: {data}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _send(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: a reset, not a clean end.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            # The reply reset the connection on purpose; there is nothing left to flush.
            self.close_connection = True


def _embedding_texts(value: Any) -> list[str] | None:
    """The texts an embeddings ``input`` holds (token ids as their numbers joined by
    spaces), or None when it is not one."""
    if isinstance(value, str) and value:
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(type(t) is int for t in value):
        return [" ".join(map(str, value))]
    texts = []
    for item in value:
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, list) and item and all(type(t) is int for t in item):
            texts.append(" ".join(map(str, item)))
        else:
            return None
    return texts


def _echo(request: dict[str, Any], model: str) -> list[str]:
    said = ""
    messages = request.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                said = str(message.get("content", ""))
                break
    text = f"This is providerhub's local stand-in server answering as {model}. You said: {said}"
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _call_id(call: Mapping[str, Any], number: int) -> str:
    return str(call.get("id") or f"call_local_{number}")


def _arguments(call: Mapping[str, Any]) -> str:
    arguments = call.get("arguments", {})
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _tool_call_deltas(reply: Reply) -> list[dict[str, Any]]:
    """The deltas that stream ``reply``'s tool calls, in its dialect."""
    deltas: list[dict[str, Any]] = []
    for number, call in enumerate(reply.tool_calls):
        call_id, name, text = _call_id(call, number), call["name"], _arguments(call)
        if reply.dialect == "ollama":
            whole = call.get("arguments", {})
            fn = {"name": name, "arguments": whole if not isinstance(whole, str) else text}
            deltas.append({"tool_calls": [{"id": call_id, "index": 0, "function": fn}]})
            continue
        cut = max(1, len(text) // 2)
        for piece_number, piece in enumerate((text[:cut], text[cut:])):
            item: dict[str, Any] = {"index": number, "function": {"arguments": piece}}
            if piece_number == 0 or reply.dialect == "llama.cpp":
                item.update(id=call_id, type="function")
                item["function"]["name"] = name
            if reply.dialect == "no-index":
                del item["index"]
            delta: dict[str, Any] = {"tool_calls": [item]}
            if reply.dialect == "legacy":
                delta["function_call"] = dict(item["function"])
            deltas.append(delta)
    return deltas
