"""A local stand-in for Google's Gemini API (``generateContent``): real HTTP on 127.0.0.1,
one thread per connection, the REST API as Google's public reference describes it, and
scripted replies and faults.

What it checks and answers, as the real service does: the key in ``x-goog-api-key`` (or
the ``key`` query parameter), a wrong one refused with HTTP 400 ``API_KEY_INVALID`` and a
missing one with HTTP 403; the request body's fields (an unknown one is HTTP 400
``INVALID_ARGUMENT``, ``Unknown name``, as Google's strict JSON parsing answers); answers
as ``GenerateContentResponse`` documents, and streams (``:streamGenerateContent?alt=sse``)
as Server-Sent Events whose lines end with CRLF. The tests drive it with Google's own SDK
(``google-genai``) too, so a stand-in that drifts from what the SDK reads fails there.
"""

from __future__ import annotations

import json
import re
import selectors
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._server import RecordedRequest, _HTTPServer

__all__ = ["GEMINI_FAULTS", "GeminiReply", "GeminiServer"]

GEMINI_FAULTS = ("reset", "stall", "cut", "error_event")
"""What a :class:`GeminiReply` can do wrong: ``reset`` the connection, ``stall`` for
``delay`` seconds, ``cut`` a stream short (its body ends cleanly without a
``finishReason``), or send an ``error_event``; ``after`` chunks, or before the headers
when ``after`` is None."""

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""The ``google.rpc.Code`` names Google's error bodies give for HTTP statuses."""

_PATH = re.compile(r"/v1(?:beta)?/models/([^/:]+):(generateContent|streamGenerateContent)\Z")
_LIST = re.compile(r"/v1(?:beta)?/models/?\Z")


@dataclass
class GeminiReply:
    """What the stand-in does for one request.

    By default it answers as Gemini does: an event stream, one chunk per item of
    ``chunks``, for ``:streamGenerateContent?alt=sse``; one ``GenerateContentResponse``
    otherwise. ``chunks=None`` echoes the last user text. ``tool_calls`` are
    ``{"name": ..., "args": {...}}`` (with an optional ``"id"``), sent as ``functionCall``
    parts in one chunk after the text; ``thoughts`` go first, as ``thought`` parts.
    ``finish_reason`` is Gemini's (``STOP``, ``MAX_TOKENS``, ``SAFETY``, ...); ``blocked``
    answers a blocked prompt (``promptFeedback.blockReason``) instead. ``usage`` is
    ``usageMetadata`` (by default counted from the chunks). ``body`` replaces all of that
    with a raw body of ``content_type``; ``status`` and ``headers`` go out as given.
    ``byte_by_byte`` writes a stream one byte per write."""

    chunks: Sequence[str] | None = None
    tool_calls: Sequence[Mapping[str, Any]] = ()
    thoughts: Sequence[str] = ()
    finish_reason: str = "STOP"
    blocked: str | None = None
    usage: Mapping[str, int] | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    content_type: str | None = None
    fault: str | None = None
    after: int | None = 0
    delay: float = 0.0
    byte_by_byte: bool = False

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in GEMINI_FAULTS:
            raise ValueError(f"fault must be one of {', '.join(GEMINI_FAULTS)}")

    @classmethod
    def text(cls, *chunks: str, **options: Any) -> GeminiReply:
        """Answer with these pieces of text."""
        return cls(chunks=list(chunks), **options)

    @classmethod
    def tools(cls, *calls: Mapping[str, Any], **options: Any) -> GeminiReply:
        """Answer with these function calls (and the text of ``chunks=``, if any)."""
        options.setdefault("chunks", [])
        return cls(tool_calls=list(calls), **options)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "error",
        *,
        status_name: str | None = None,
        reason: str | None = None,
        retry_delay: str | None = None,
        retry_after: str | None = None,
    ) -> GeminiReply:
        """An HTTP error status with Google's error body, ``{"error": {"code",
        "message", "status", "details"}}``: ``reason`` adds an ``ErrorInfo`` (like
        ``API_KEY_INVALID``), ``retry_delay`` a ``RetryInfo`` (like ``"37s"``), and
        ``retry_after`` a ``Retry-After`` header."""
        details = []
        if reason is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reason,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        if retry_delay is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            )
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = _error_body(status, message, status_name, details)
        return cls(status=status, headers=headers, body=body, content_type=_JSON)


@dataclass(frozen=True)
class _Asked:
    """What a request asked for: the model, whether a stream, and its body."""

    model: str
    stream: bool
    body: dict[str, Any]


class GeminiServer:
    """Serves Gemini's ``POST /v1beta/models/{model}:generateContent`` and
    ``:streamGenerateContent?alt=sse`` on 127.0.0.1, and ``GET /v1beta/models`` (the list
    of :attr:`models`, in pages).

    ::

        with GeminiServer(api_key="test-key") as server:
            server.script(GeminiReply.error(503), GeminiReply.text("Hel", "lo"))
            ...  # point a provider, or google-genai's http_options.base_url, at server.url

    ``api_key`` is the key it takes (None: any key, or none). Replies queued with
    :meth:`script` are used in order, one per request that passes the key and body
    checks; then ``responder`` (if set) or ``default`` answers. Every request is kept in
    :attr:`requests`.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None
    ) -> None:
        self.api_key = api_key
        self.models: list[str] = ["gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-004"]
        """What ``GET /v1beta/models`` lists (``models/`` before each); the embedding model
        does not generate content, as in the real list."""
        self.page_size = 50
        """The most models one page lists, before a ``nextPageToken``."""
        self.default = GeminiReply()
        self.responder: Callable[[int, RecordedRequest], GeminiReply] | None = None
        """When set, answers every request not scripted: called with the request's number
        (1 for the first) and the request."""
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        """Errors met while answering, such as clients that hung up mid-answer."""
        self._queue: deque[GeminiReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.owner = self  # type: ignore[assignment]  # what _HTTPServer keeps errors in
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket]

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``: the ``PROVIDERHUB_GEMINI_URL``, or
        google-genai's ``base_url``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def pending(self) -> int:
        """How many scripted replies are still waiting for a request."""
        with self._lock:
            return len(self._queue)

    def script(self, *replies: GeminiReply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    def start(self) -> GeminiServer:
        if self._thread is None:
            self._wake = socket.socketpair()
            self._thread = threading.Thread(
                target=self._serve, name="providerhub-gemini-server", daemon=True
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
        # As OpenAIServer's: sleeps until a client connects or stop() wakes it.
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._httpd and not self._stopping.is_set():
                        self._httpd.handle_request()

    def __enter__(self) -> GeminiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            return len(self.requests)

    def _next_reply(self, number: int, request: RecordedRequest) -> GeminiReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(number, request)
        return self.default


_JSON = "application/json; charset=UTF-8"


def _error_body(
    status: int, message: str, status_name: str | None = None, details: Sequence[Any] = ()
) -> str:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": status_name or STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}, indent=2)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as OpenAIServer's: no 40 ms delayed-ACK waits
    server: _HTTPServer

    @property
    def owner(self) -> GeminiServer:
        found: GeminiServer = self.server.owner  # type: ignore[assignment]
        return found

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`GeminiServer.requests` instead of a log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        recorded = RecordedRequest(
            "POST", self.path, dict(self.headers.items()), raw, self.client_address[:2]
        )
        number = self.owner._record(recorded)
        asked = self._checked(recorded, raw)
        if asked is not None:
            self._answer(self.owner._next_reply(number, recorded), asked)

    def do_GET(self) -> None:
        recorded = RecordedRequest("GET", self.path, dict(self.headers.items()), b"")
        self.owner._record(recorded)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not _LIST.match(parts.path):
            self._error(404, f"Requested entity was not found: {parts.path}", "NOT_FOUND")
            return
        if not self._key_passes(query):
            return
        owner = self.owner
        asked = query.get("pageSize")
        size = min(int(asked[0]), owner.page_size) if asked else owner.page_size
        start = int((query.get("pageToken") or ["0"])[0] or 0)
        page = owner.models[start : start + size]
        doc: dict[str, Any] = {"models": [_model_info(name) for name in page]}
        if start + size < len(owner.models):
            doc["nextPageToken"] = str(start + size)
        self._send(200, json.dumps(doc, indent=2).encode(), _JSON, {})

    def _checked(self, recorded: RecordedRequest, raw: bytes) -> _Asked | None:
        """The request, or None once it was refused as the real service refuses it."""
        parts = urlsplit(recorded.path)
        query = parse_qs(parts.query)
        found = _PATH.match(parts.path)
        if found is None:
            self._error(404, f"Requested entity was not found: {parts.path}", "NOT_FOUND")
            return None
        if not self._key_passes(query):
            return None
        stream = found.group(2) == "streamGenerateContent"
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "Invalid JSON payload received.")
            return None
        problem = _body_problem(body)
        if problem is not None:
            self._error(400, problem)
            return None
        # Without alt=sse, a stream is a JSON array; the codec and the SDK ask for SSE.
        sse = stream and query.get("alt") == ["sse"]
        return _Asked(unquote(found.group(1)), sse, body)

    def _key_passes(self, query: Mapping[str, list[str]]) -> bool:
        """Whether the request's key is the one the stand-in takes; if not, it answered
        as the real service does."""
        keys = query.get("key") or []
        key: str | None = self.headers.get("x-goog-api-key") or (keys[0] if keys else None)
        expected = self.owner.api_key
        if expected is not None and key is None:
            self._error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.",
            )
            return False
        if expected is not None and key != expected:
            self._send(
                400,
                _error_body(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"},
                        }
                    ],
                ).encode(),
                _JSON,
                {},
            )
            return False
        return True

    def _answer(self, reply: GeminiReply, asked: _Asked) -> None:
        stopping = self.owner._stopping
        if reply.fault is not None and reply.after is None:
            if reply.fault == "reset":
                self._reset()
                return
            if reply.fault == "stall":
                stopping.wait(reply.delay)
        if reply.body is not None:
            raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
            ctype = reply.content_type or "application/octet-stream"
            self._send(reply.status, raw, ctype, reply.headers)
            return
        chunks = _chunks(reply, asked)
        if asked.stream:
            self._stream(reply, chunks)
            return
        whole = _merged(chunks)
        self._send(reply.status, json.dumps(whole, indent=2).encode(), _JSON, reply.headers)

    def _stream(self, reply: GeminiReply, chunks: list[dict[str, Any]]) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Disposition", "attachment")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        for index, chunk in enumerate(chunks):
            if reply.fault is not None and reply.after == index and self._fault(reply):
                return
            # Google's servers end each line of an event with CRLF.
            data = f"data: {json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()
            if reply.byte_by_byte:
                for at in range(len(data)):
                    self._write_chunk(data[at : at + 1])
            else:
                self._write_chunk(data)
        self._write_chunk(b"")

    def _fault(self, reply: GeminiReply) -> bool:
        """Do the reply's fault mid-stream; True when the stream must end here."""
        if reply.fault == "reset":
            self._reset()
            return True
        if reply.fault == "stall":
            self.owner._stopping.wait(reply.delay)
            return False
        if reply.fault == "error_event":
            error = _error_body(503, "The model is overloaded. Please try again later.")
            self._write_chunk(f"data: {json.dumps(json.loads(error))}\r\n\r\n".encode())
        self._write_chunk(b"")  # "cut": the body ends cleanly, short of its finishReason
        return True

    def _error(self, status: int, message: str, status_name: str | None = None) -> None:
        self._send(status, _error_body(status, message, status_name).encode(), _JSON, {})

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
            self.close_connection = True


# -- what a request may hold ---------------------------------------------------------------

# The fields of the REST reference's GenerateContentRequest and of the types in it; the
# real service refuses any other ("Invalid JSON payload received. Unknown name").
_FIELDS: dict[str, frozenset[str]] = {
    "request": frozenset(
        {
            "model",
            "contents",
            "systemInstruction",
            "tools",
            "toolConfig",
            "safetySettings",
            "generationConfig",
            "cachedContent",
            "labels",
        }
    ),
    "content": frozenset({"role", "parts"}),
    "part": frozenset(
        {
            "text",
            "inlineData",
            "fileData",
            "functionCall",
            "functionResponse",
            "executableCode",
            "codeExecutionResult",
            "thought",
            "thoughtSignature",
            "videoMetadata",
            "partMetadata",
            "mediaResolution",
        }
    ),
    "tool": frozenset(
        {
            "functionDeclarations",
            "googleSearch",
            "googleSearchRetrieval",
            "codeExecution",
            "urlContext",
            "fileSearch",
            "googleMaps",
            "computerUse",
        }
    ),
    "functionDeclaration": frozenset(
        {
            "name",
            "description",
            "behavior",
            "parameters",
            "parametersJsonSchema",
            "response",
            "responseJsonSchema",
        }
    ),
    "generationConfig": frozenset(
        {
            "stopSequences",
            "responseMimeType",
            "responseSchema",
            "responseJsonSchema",
            "responseModalities",
            "candidateCount",
            "maxOutputTokens",
            "temperature",
            "topP",
            "topK",
            "seed",
            "presencePenalty",
            "frequencyPenalty",
            "responseLogprobs",
            "logprobs",
            "enableEnhancedCivicAnswers",
            "speechConfig",
            "thinkingConfig",
            "imageConfig",
            "mediaResolution",
        }
    ),
    "functionCallingConfig": frozenset({"mode", "allowedFunctionNames"}),
}
_ROLES = ("user", "model", "function")
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")


def _camel(name: str) -> str:
    """A field's JSON name: Google's parsers take the proto's snake_case name too."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _unknown(kind: str, doc: Any, where: str) -> str | None:
    if not isinstance(doc, dict):
        return f"Invalid value at '{where}': not an object"
    for name in doc:
        if _camel(name) not in _FIELDS[kind]:
            at = f"at '{where}' " if where else ""
            return f'Invalid JSON payload received. Unknown name "{name}" {at}: Cannot find field.'
    return None


def _get(doc: Mapping[str, Any], name: str) -> Any:
    """A field by its JSON name or its snake_case one."""
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    return doc.get(name, doc.get(snake))


def _body_problem(body: Any) -> str | None:
    """What the real service would refuse in a request body, or None."""
    problem = _unknown("request", body, "")
    if problem:
        return problem
    contents = _get(body, "contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    system = _get(body, "systemInstruction")
    turns = list(enumerate(contents)) + ([(-1, system)] if system is not None else [])
    for number, content in turns:
        where = f"contents[{number}]" if number >= 0 else "system_instruction"
        problem = _unknown("content", content, where)
        if problem:
            return problem
        role = content.get("role")
        if number >= 0 and role is not None and role not in _ROLES:
            return f"Please use a valid role: {', '.join(_ROLES)}."
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
        for index, part in enumerate(parts):
            problem = _unknown("part", part, f"{where}.parts[{index}]")
            if problem:
                return problem
            if not any(k in part for k in _FIELDS["part"] - {"thought", "thoughtSignature"}):
                return f"* GenerateContentRequest.{where}.parts[{index}].data: required oneof"
    for index, tool in enumerate(_get(body, "tools") or ()):
        problem = _unknown("tool", tool, f"tools[{index}]")
        if problem:
            return problem
        for number, declaration in enumerate(_get(tool, "functionDeclarations") or ()):
            where = f"tools[{index}].function_declarations[{number}]"
            problem = _unknown("functionDeclaration", declaration, where)
            if problem:
                return problem
            if not isinstance(declaration.get("name"), str):
                return f"* GenerateContentRequest.{where}.name: Name cannot be empty."
    config = _get(_get(body, "toolConfig") or {}, "functionCallingConfig")
    if config is not None:
        problem = _unknown("functionCallingConfig", config, "tool_config.function_calling_config")
        if problem:
            return problem
        if config.get("mode", "AUTO") not in _MODES:
            return f"Invalid value at 'tool_config.function_calling_config.mode': {config['mode']}"
    generation = _get(body, "generationConfig")
    if generation is not None:
        return _unknown("generationConfig", generation, "generation_config")
    return None


# -- what it answers -----------------------------------------------------------------------


def _said(body: Mapping[str, Any]) -> str:
    """The text of the last user turn."""
    for content in reversed(_get(body, "contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            texts = [p["text"] for p in content.get("parts", ()) if isinstance(p.get("text"), str)]
            if texts:
                return " ".join(texts)
    return ""


def _chunks(reply: GeminiReply, asked: _Asked) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` chunks of a reply, as a stream sends them."""
    model = asked.model
    meta = {"modelVersion": model, "responseId": "local-gemini-response"}
    if reply.blocked is not None:
        usage = dict(reply.usage or {"promptTokenCount": 8, "totalTokenCount": 8})
        block = {"blockReason": reply.blocked}
        return [{"promptFeedback": block, "usageMetadata": usage, **meta}]
    texts = list(reply.chunks) if reply.chunks is not None else _echo(_said(asked.body), model)
    prompt = 8
    answer = len(texts) + 2 * len(reply.tool_calls)
    usage = dict(
        reply.usage
        or {
            "promptTokenCount": prompt,
            "candidatesTokenCount": answer,
            "totalTokenCount": prompt + answer,
        }
    )
    parts: list[list[dict[str, Any]]] = [[{"text": t, "thought": True}] for t in reply.thoughts]
    parts += [[{"text": text}] for text in texts]
    if reply.tool_calls:
        parts.append([{"functionCall": _function_call(call)} for call in reply.tool_calls])
    if not parts:
        parts = [[{"text": ""}]]
    chunks = []
    for index, chunk_parts in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"parts": chunk_parts, "role": "model"}}
        last = index == len(parts) - 1
        if last and reply.finish_reason:
            candidate["finishReason"] = reply.finish_reason
        candidate["index"] = 0
        running = usage if last else {"promptTokenCount": usage.get("promptTokenCount", prompt)}
        chunks.append({"candidates": [candidate], "usageMetadata": running, **meta})
    return chunks


def _function_call(call: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"name": call["name"], "args": dict(call.get("args") or {})}
    if call.get("id"):
        found["id"] = call["id"]
    return found


def _merged(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The whole answer a non-stream call gets: the chunks' parts in one candidate."""
    chunks = list(chunks)
    last = dict(chunks[-1])
    if "candidates" not in last:
        return last
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    texts: list[dict[str, Any]] = []
    for part in parts:  # consecutive answer texts come as one part, as the service sends
        if set(part) == {"text"} and texts and set(texts[-1]) == {"text"}:
            texts[-1] = {"text": texts[-1]["text"] + part["text"]}
        else:
            texts.append(part)
    candidate = dict(last["candidates"][0])
    candidate["content"] = {"parts": texts, "role": "model"}
    last["candidates"] = [candidate]
    return last


def _model_info(name: str) -> dict[str, Any]:
    """A ``Model`` of the list, as the REST reference describes it."""
    embedding = "embedding" in name
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "description": f"The local stand-in's {name}",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 0 if embedding else 65536,
        "supportedGenerationMethods": (
            ["embedContent"] if embedding else ["generateContent", "countTokens"]
        ),
    }


def _echo(said: str, model: str) -> list[str]:
    text = f"This is providerhub's local Gemini stand-in answering as {model}. You said: {said}"
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
