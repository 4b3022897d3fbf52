"""A local stand-in for Google's Gemini API (``generateContent``): real HTTP on 127.0.0.1,
the REST API as Google's public reference describes it, and scripted replies and faults.

It is :class:`~providerhub.testing.OpenAIServer`'s machinery (threads, scripting, the
recorded requests) with a handler that speaks Gemini's dialect, checking and answering as
the real service does: the key in ``x-goog-api-key`` (or the ``key`` query parameter), a
wrong one refused with HTTP 400 ``API_KEY_INVALID`` and a missing one with HTTP 403; the
request body's fields (an unknown one is HTTP 400 ``INVALID_ARGUMENT``, ``Unknown name``,
as Google's strict JSON parsing answers); answers as ``GenerateContentResponse``
documents, streams (``:streamGenerateContent?alt=sse``) as Server-Sent Events whose lines
end with CRLF, and ``GET /v1beta/models`` as its paged list. The tests drive it with
Google's own SDK (``google-genai``) too, so a stand-in that drifts from what the SDK reads
fails there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._server import OpenAIServer, RecordedRequest, Reply, _Handler

__all__ = ["STATUS_NAMES", "GeminiReply", "GeminiServer"]

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
_JSON = "application/json; charset=UTF-8"


@dataclass
class GeminiReply(Reply):
    """What :class:`GeminiServer` does for one request: a :class:`Reply` read in the
    Gemini API's terms.

    By default it answers as Gemini does: an event stream, one chunk per item of
    ``chunks``, for ``:streamGenerateContent?alt=sse``; one ``GenerateContentResponse``
    otherwise (``chunks=None`` echoes the last user text). ``tool_calls`` are
    ``{"name": ..., "arguments": {...}}`` (``"args"`` is read too; with an optional
    ``"id"``), sent as ``functionCall`` parts in one chunk after the text; ``thoughts`` go
    first, as ``thought`` parts. ``finish_reason`` is Gemini's (``STOP`` when None,
    ``MAX_TOKENS``, ``SAFETY``, ...); ``blocked`` answers a blocked prompt
    (``promptFeedback.blockReason``) instead. ``usage`` is ``usageMetadata`` (counted from
    the chunks when None). Faults: ``reset``, ``stall``, ``cut`` (the stream's body ends
    cleanly without a ``finishReason``) and ``error_event`` (an ``error`` event), after
    ``after`` chunks. ``byte_by_byte`` writes a stream one byte per HTTP chunk."""

    thoughts: Sequence[str] = ()
    blocked: str | None = None
    byte_by_byte: bool = False

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
        retry_after: str | None = None,
        status_name: str | None = None,
        reason: str | None = None,
        retry_delay: str | None = None,
    ) -> GeminiReply:
        """An HTTP error status with Google's error body, ``{"error": {"code",
        "message", "status", "details"}}``: ``status_name`` is the ``status``
        (:data:`STATUS_NAMES`' by default), ``reason`` adds an ``ErrorInfo`` (like
        ``API_KEY_INVALID``), ``retry_delay`` a ``RetryInfo`` (like ``"37s"``), and
        ``retry_after`` a ``Retry-After`` header."""
        details = []
        if reason is not None:
            details.append(_error_info(reason))
        if retry_delay is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            )
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = _error_body(status, message, status_name, details)
        return cls(status=status, headers=headers, body=body, content_type=_JSON)


def _as_gemini(reply: Reply) -> GeminiReply:
    """A plain :class:`Reply`, read as a :class:`GeminiReply` would be."""
    if isinstance(reply, GeminiReply):
        return reply
    return GeminiReply(**{f.name: getattr(reply, f.name) for f in fields(Reply)})


@dataclass(frozen=True)
class _Asked:
    """What a request asked for: the model, whether a stream, and its body."""

    model: str
    stream: bool
    body: dict[str, Any]


class GeminiServer(OpenAIServer):
    """Serves Gemini's ``POST /v1beta/models/{model}:generateContent`` and
    ``:streamGenerateContent?alt=sse`` on 127.0.0.1, and ``GET /v1beta/models`` (the list
    of :attr:`models`, in pages).

    ::

        with GeminiServer(api_key="test-key") as server:
            server.script(GeminiReply.error(503), GeminiReply.text("Hel", "lo"))
            ...  # point a provider, or google-genai's http_options.base_url, at server.url

    Scripting, ``responder``, ``default`` and :attr:`requests` are
    :class:`~providerhub.testing.OpenAIServer`'s; a plain :class:`Reply` is read as a
    :class:`GeminiReply` would be. ``api_key`` is the key it takes (None: any key, or
    none). A request refused as the real service refuses it (the key, the path, the body)
    is recorded and takes no scripted reply.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-004"),
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.models = list(models)
        """What ``GET /v1beta/models`` lists (``models/`` before each); the embedding model
        does not generate content, as in the real list."""
        self.page_size = 50
        """The most models one page lists, before a ``nextPageToken``."""
        self.default = GeminiReply()
        self._httpd.RequestHandlerClass = _GeminiHandler

    def __enter__(self) -> GeminiServer:
        self.start()
        return self


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


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


class _GeminiHandler(_Handler):
    @property
    def owner(self) -> GeminiServer:
        found = self.server.owner
        assert isinstance(found, GeminiServer)
        return found

    _refusing: RecordedRequest | None = None
    """A request being checked: kept (:meth:`_keep_refused`) before a refusal goes out, so
    that a client that reads the refusal finds the request recorded."""

    def do_POST(self) -> None:
        recorded = self._refusing = self._recorded()
        asked = self._checked(recorded, recorded.body)
        self._refusing = None
        if asked is None:
            return
        reply = _as_gemini(self.owner._next_reply(recorded))
        self._answer_gemini(reply, asked, recorded)

    def do_GET(self) -> None:
        self.owner._keep(self._recorded())  # a list takes no scripted reply either
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
            message = "API key not valid. Please pass a valid API key."
            body = _error_body(400, message, details=[_error_info("API_KEY_INVALID")])
            self._keep_refused()
            self._send(400, body.encode(), _JSON, {})
            return False
        return True

    def _answer_gemini(self, reply: GeminiReply, asked: _Asked, recorded: RecordedRequest) -> None:
        if self._scripted(reply, recorded):
            return
        chunks = _chunks(reply, asked)
        if asked.stream:
            self._stream_gemini(reply, chunks)
            return
        whole = _merged(chunks)
        self._send(reply.status, json.dumps(whole, indent=2).encode(), _JSON, reply.headers)

    def _stream_gemini(self, reply: GeminiReply, chunks: list[dict[str, Any]]) -> None:
        head = {"Content-Type": "text/event-stream", "Content-Disposition": "attachment"}
        self._stream_head(reply, head)
        for index, chunk in enumerate(chunks):
            if reply.fault is not None and reply.after == index and self._gemini_fault(reply):
                return
            # Google's servers end each line of an event with CRLF.
            data = f"data: {json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()
            if reply.byte_by_byte:
                for at in range(len(data)):
                    self._write_chunk(data[at : at + 1])
            else:
                self._write_chunk(data)
        self._write_chunk(b"")

    def _gemini_fault(self, reply: GeminiReply) -> bool:
        """Do the reply's fault mid-stream; True when the stream must end here."""
        if reply.fault == "error_event":
            error = json.loads(_error_body(503, "The model is overloaded. Please try again later."))
            self._write_chunk(f"data: {json.dumps(error)}\r\n\r\n".encode())
            self._write_chunk(b"")
            return True
        # reset and stall as OpenAIServer does them; cut: the body ends cleanly, short
        # of its finishReason.
        return self._fault(reply)

    def _error(self, status: int, message: str, status_name: str | None = None) -> None:
        self._keep_refused()
        self._send(status, _error_body(status, message, status_name).encode(), _JSON, {})

    def _keep_refused(self) -> None:
        refused, self._refusing = self._refusing, None
        if refused is not None:
            self.owner._keep(refused)


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
    given = _usage_metadata(reply.usage)
    if reply.blocked is not None:
        usage = given or {"promptTokenCount": 8, "totalTokenCount": 8}
        block = {"blockReason": reply.blocked}
        return [{"promptFeedback": block, "usageMetadata": usage, **meta}]
    texts = list(reply.chunks) if reply.chunks is not None else _echo(_said(asked.body), model)
    prompt = 8
    answer = len(texts) + 2 * len(reply.tool_calls)
    usage = given or {
        "promptTokenCount": prompt,
        "candidatesTokenCount": answer,
        "totalTokenCount": prompt + answer,
    }
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
        if last:
            candidate["finishReason"] = reply.finish_reason or "STOP"
        candidate["index"] = 0
        running = usage if last else {"promptTokenCount": usage.get("promptTokenCount", prompt)}
        chunks.append({"candidates": [candidate], "usageMetadata": running, **meta})
    return chunks


_OPENAI_USAGE = {
    "prompt_tokens": "promptTokenCount",
    "completion_tokens": "candidatesTokenCount",
    "total_tokens": "totalTokenCount",
}


def _usage_metadata(usage: Mapping[str, int] | None) -> dict[str, int] | None:
    """A reply's ``usage`` as ``usageMetadata``: Gemini's counts as given, a plain
    :class:`Reply`'s OpenAI ones renamed."""
    if not usage:
        return None
    return {_OPENAI_USAGE.get(key, key): value for key, value in usage.items()}


def _function_call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("arguments", call.get("args")) or {}
    if isinstance(args, str):
        args = json.loads(args)
    found: dict[str, Any] = {"name": call["name"], "args": dict(args)}
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
