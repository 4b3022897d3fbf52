"""Google's Gemini API (``generateContent``) as a codec: no I/O.

:data:`CODEC` encodes the OpenAI-shaped :class:`~providerhub._codecs.base.Call` into
``POST {endpoint}/{model}:generateContent``, or ``:streamGenerateContent?alt=sse`` for a
stream, where ``endpoint`` is the base url and the declared path (``/v1beta/models``).
The key goes in the ``x-goog-api-key`` header, never in the url. The translation:

- ``system`` and ``developer`` messages become ``systemInstruction`` (their texts in
  order), ``assistant`` turns role ``model``, their ``tool_calls`` ``functionCall`` parts
  (the arguments parsed to ``args``), and ``tool`` messages ``functionResponse`` parts
  carrying the name of the function, found from the assistant turn that called it
  (consecutive ones in one turn); text parts become ``text`` parts, ``image_url`` data
  URIs ``inlineData`` and Files API URIs ``fileData`` (other urls are refused: Gemini
  does not fetch them);
- ``tools`` become ``functionDeclarations`` whose ``parametersJsonSchema`` is the JSON
  schema as given (no keyword is dropped), ``tool_choice`` becomes
  ``toolConfig.functionCallingConfig`` (``auto`` AUTO, ``none`` NONE, ``required`` ANY,
  a named function ANY with ``allowedFunctionNames``), and ``max_tokens`` (or
  ``max_completion_tokens``), ``temperature``, ``top_p``, ``stop``, ``seed``,
  ``presence_penalty``, ``frequency_penalty``, ``response_format`` and
  ``reasoning_effort`` (a ``thinkingConfig.thinkingBudget``) fields of
  ``generationConfig``.

Answers come back as the pieces of :mod:`providerhub.types`: text (never a ``thought``
part), each ``functionCall`` as a whole tool call with an id (Gemini's when it sends one,
else a new one), the usage of ``usageMetadata`` and the finish reason (``STOP`` is
``stop``, or ``tool_calls`` when the answer called functions; ``MAX_TOKENS`` is
``length``; ``SAFETY``, ``RECITATION``, ``BLOCKLIST``, ``PROHIBITED_CONTENT``, ``SPII``
and a blocked prompt are ``content_filter``). Gemini's streams have no end marker: one
that ends without a ``finishReason`` raises
:class:`~providerhub.errors.StreamInterruptedError`. Error bodies are Google's
``{"error": {"code", "message", "status", "details"}}``: a 429's ``RetryInfo`` delay
counts as its ``Retry-After``, and a 400 ``API_KEY_INVALID`` is an
:class:`~providerhub.errors.AuthenticationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import quote

from .. import _settings as settings
from .._redaction import excerpt, safe_url
from ..errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderResponseError,
)
from ..types import Finish, FunctionDelta, Piece, ToolCallDelta, Usage
from .base import (
    Call,
    Request,
    call_status_error,
    check_auth,
    extra_parameters,
    json_request,
    media_type,
    read_document,
    request_headers,
    stray_parameter,
    text_only,
)
from .eventstream import EventStreamDecoder
from .toolcalls import new_call_id

__all__ = [
    "CODEC",
    "FINISH_REASONS",
    "GEMINI_PARAMETERS",
    "REASONING_BUDGETS",
    "Gemini",
    "GeminiStreamDecoder",
]

GEMINI_PARAMETERS = frozenset(
    {
        "frequency_penalty",
        "max_completion_tokens",
        "max_tokens",
        "n",
        "parallel_tool_calls",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "stop",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "user",
    }
)
"""The OpenAI chat parameters the codec takes. Four have nothing to send: ``stream_options``
(Gemini always sends the usage), ``n`` (1 only), ``parallel_tool_calls`` (True only: Gemini
may always call several) and ``user`` (Gemini has no field for it); the others are
translated."""

REASONING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}
"""``reasoning_effort`` as ``thinkingConfig.thinkingBudget``, the tokens a model may think
with, as Google's own OpenAI-compatible endpoint maps it."""

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
"""Gemini's ``finishReason`` values and OpenAI's ``finish_reason`` for them; any other is
passed on in lower case (``malformed_function_call``, ``other``, ...)."""

_GENERATION_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

# A model name that is one path segment: nothing that could leave /v1beta/models/.
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[^;,]*)*);base64,(.*)\Z", re.DOTALL)
# Files the Gemini API's Files API holds are named by such a uri (fileData.fileUri); it
# fetches nothing else.
_FILES_API = re.compile(r"https://generativelanguage\.googleapis\.com/[^?#]*/files/[^/?#]+\Z")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class Gemini:
    """The Gemini ``generateContent`` codec (:class:`~providerhub._codecs.base.Codec`)."""

    __slots__ = ()

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`InvalidRequestError` for what cannot be
        sent: a parameter the codec does not translate (nor among ``extra_parameters``),
        a model name that is not one path segment, an empty credential, a message or
        part Gemini has no form for, a ``tool`` message answering no call, or a value JSON
        cannot carry."""
        provider = call.provider
        extra = extra_parameters(call)
        _check_parameters(provider, call.params, extra)
        check_auth(call)
        params = {**(call.defaults or {}), **call.params}
        body = _body(provider, call.messages, params)
        for name in extra:  # top-level fields of Gemini's own (safetySettings, ...)
            if name in params:
                body[name] = params[name]
        action = ":streamGenerateContent?alt=sse" if call.stream else ":generateContent"
        url = f"{call.endpoint}/{_model_segment(provider, call.model)}{action}"
        headers = request_headers(
            call.stream, call.headers, call.auth, auth_header="x-goog-api-key", scheme=""
        )
        return json_request(call, body, headers, url)

    def streams(self, request: Request, content_type: str | None) -> bool:
        """An event stream when one was asked for and the server sends one; a JSON
        answer (Gemini's array of responses, say) is read whole."""
        return request.call.stream and media_type(content_type) == "text/event-stream"

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The pieces of a whole answer (one ``GenerateContentResponse``, or the array
        of them a stream sent as JSON): its text, tool calls, usage and finish reason
        (without ``structured``, text only); the error an HTML page, a body that is not
        JSON, an error document or one past ``max_body_bytes`` is."""
        call = request.call
        doc = read_document(
            request,
            url,
            status,
            content_type,
            body,
            html_hint="check the url: it should be the Gemini API's base url",
            json_hint="the url may not be a Gemini API endpoint",
        )
        shown = safe_url(url)
        reader = _Reader(call.provider, shown, request.secrets)
        pieces: list[Piece] = []
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict) and "error" in item:
                raise ProviderResponseError(
                    call.provider,
                    "answered with an error",
                    url=shown,
                    body=excerpt(_error_said(item) or json.dumps(item), request.secrets),
                    hint="the service could not complete the request",
                )
            if not reader.whole(item):
                raise ProviderResponseError(
                    call.provider,
                    "answered with JSON that has no candidates[0].content",
                    url=shown,
                    body=excerpt(json.dumps(item), request.secrets),
                    hint="the url may not be a Gemini API endpoint",
                )
            pieces += reader.read(item)
        if reader.usage is not None:
            pieces.append(reader.usage)
        if reader.finish is not None:
            pieces.append(reader.finish)
        return text_only(request, pieces)

    def decoder(self, request: Request, url: str) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(request, url)

    def error(
        self,
        request: Request,
        url: str,
        status: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ProviderError:
        """The typed error for an error status (:func:`~providerhub._codecs.base.status_error`),
        showing Google's ``status: message``; a 429's ``RetryInfo.retryDelay`` stands in
        for a missing ``Retry-After``. Two of Google's 400s are not the caller's request:
        ``API_KEY_INVALID`` is an :class:`AuthenticationError`, and
        ``FAILED_PRECONDITION`` (the service is not offered there, billing) is the
        provider's, so the router may try another."""
        call = request.call
        found = _google_error(body)
        said = _error_said(found) if found is not None else None
        retry_after = headers.get("Retry-After") or (
            _retry_delay(found) if found is not None else None
        )
        err = call_status_error(request, url, status, reason, retry_after, body, said)
        if found is None or status != 400:
            return err
        if "API_KEY_INVALID" in _error_reasons(found):
            variable = call.credential_variable or settings.api_key_variable(call.provider)
            return AuthenticationError(
                call.provider,
                err.detail,
                status_code=status,
                url=err.url,
                body=err.body,
                hint=f"the service refused the credential: set {variable} "
                f"or pass auth={{'{call.provider}': ...}}",
            )
        if _error_status(found) == "FAILED_PRECONDITION":
            err.request_refused = False
        return err


CODEC = Gemini()
"""The codec: it holds no state, one serves every call."""


# -- the request ---------------------------------------------------------------------------


def _check_parameters(provider: str, params: Mapping[str, Any], extra: Collection[str]) -> None:
    stray = stray_parameter(params, GEMINI_PARAMETERS, extra)
    if stray is not None:
        key, tip = stray
        raise InvalidRequestError(
            f"{provider} does not take the parameter {key!r}{tip} (Gemini's codec "
            f"translates: {', '.join(sorted(GEMINI_PARAMETERS))}"
            f"{'; and beyond them: ' + ', '.join(sorted(extra)) if extra else ''})",
            param=key,
        )


def _model_segment(provider: str, model: str) -> str:
    """``model`` as the path segment of its url (``models/`` before it is Gemini's
    resource name, and taken off); a name that could leave the path is refused."""
    name = model[len("models/") :] if model.startswith("models/") else model
    if not isinstance(name, str) or not _MODEL.match(name):
        raise InvalidRequestError(
            f"{provider} cannot send the model name {model!r}: a Gemini model name is "
            "letters, digits, '.', '-' and '_', like 'gemini-2.5-flash'"
        )
    return quote(name, safe="")


def _body(provider: str, messages: list[Any], params: Mapping[str, Any]) -> dict[str, Any]:
    system, contents = _contents(provider, messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = params.get("tools")
    names: list[str] = []
    if tools is not None:
        declarations, names = _declarations(provider, tools)
        if declarations:
            body["tools"] = [{"functionDeclarations": declarations}]
    choice = params.get("tool_choice")
    if choice is not None:
        config = _tool_config(provider, choice, names)
        if config is not None:
            body["toolConfig"] = {"functionCallingConfig": config}
    _check_no_ops(provider, params)
    generation = _generation_config(provider, params)
    if generation:
        body["generationConfig"] = generation
    return body


def _refused(provider: str, what: str, fix: str, param: str = "messages") -> InvalidRequestError:
    return InvalidRequestError(f"{provider} (Gemini) cannot send {what}: {fix}", param=param)


def _contents(provider: str, messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``systemInstruction``'s parts, and the ``contents``: the turns of ``messages``."""
    if not isinstance(messages, list):
        raise _refused(provider, "messages that are not a list", "pass a list of messages")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    called: dict[str, str] = {}  # tool call id -> function name, from the assistant turns
    answering = False  # the last turn holds functionResponse parts: the next one joins it
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise _refused(provider, f"{where}", "each message must be a mapping")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += [{"text": text} for text in _texts(provider, where, content)]
            continue
        if role == "tool":
            name = called.get(str(message.get("tool_call_id")))
            if name is None:
                raise _refused(
                    provider,
                    f"{where}, a tool message whose tool_call_id "
                    f"{message.get('tool_call_id')!r} matches no tool call of an earlier "
                    "assistant message",
                    "Gemini names the function a result answers, so each tool message must "
                    "follow the assistant message whose tool_calls hold its id",
                )
            part = {"functionResponse": {"name": name, "response": _response(content)}}
            if answering:
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            answering = True
            continue
        answering = False
        if role == "user":
            contents.append({"role": "user", "parts": _user_parts(provider, where, content)})
        elif role == "assistant":
            parts: list[dict[str, Any]] = [
                {"text": text} for text in _texts(provider, where, content) if text
            ]
            for number, call in enumerate(message.get("tool_calls") or ()):
                name, args = _call_of(provider, f"{where} tool_calls[{number}]", call)
                called[str(call.get("id"))] = name
                parts.append({"functionCall": {"name": name, "args": args}})
            if parts:  # an empty assistant turn says nothing, and Gemini refuses one
                contents.append({"role": "model", "parts": parts})
        else:
            raise _refused(
                provider,
                f"{where} of role {role!r}",
                "its roles are system, developer, user, assistant and tool",
            )
    if not contents:
        raise _refused(
            provider, "a conversation without a user message", "add at least one user message"
        )
    return system, contents


def _texts(provider: str, where: str, content: Any) -> list[str]:
    """The texts of a message whose content may only be text."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        texts = []
        for number, part in enumerate(content):
            if isinstance(part, Mapping) and part.get("type") in ("text", "refusal"):
                text = part.get(part["type"])
                if isinstance(text, str):
                    texts.append(text)
                    continue
            raise _refused(
                provider,
                f"{where} content[{number}]",
                "this role's content is text: a string or text parts",
            )
        return texts
    raise _refused(provider, f"{where}'s content", "content is a string or a list of parts")


def _user_parts(provider: str, where: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list) or not content:
        raise _refused(provider, f"{where}'s content", "content is a string or a list of parts")
    parts = []
    for number, part in enumerate(content):
        spot = f"{where} content[{number}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), Mapping):
            parts.append(_image(provider, spot, part["image_url"].get("url")))
        else:
            raise _refused(
                provider,
                f"{spot} (of type {kind!r})",
                "the Gemini codec translates text and image_url parts",
            )
    return parts


def _image(provider: str, where: str, url: Any) -> dict[str, Any]:
    """An ``image_url``'s part: a base64 data URI inline, a Files API uri by reference."""
    if not isinstance(url, str):
        raise _refused(provider, f"{where}", "image_url.url must be a string")
    found = _DATA_URI.match(url)
    if found:
        return {"inlineData": {"mimeType": found.group(1).lower(), "data": found.group(3)}}
    if _FILES_API.match(url):
        return {"fileData": {"fileUri": url}}
    if url.startswith("data:"):
        raise _refused(
            provider, f"{where}, a data URI that is not base64", "encode the image in base64"
        )
    raise _refused(
        provider,
        f"{where}, an image by url",
        "the Gemini API does not fetch image urls: pass the image as a data URI "
        "(data:image/png;base64,...) or upload it with the Files API and pass its uri",
    )


def _response(content: Any) -> dict[str, Any]:
    """A tool result as ``functionResponse.response``, which must be a JSON object: the
    result itself when it is one, else ``{"output": ...}``, the key Gemini reads a
    function's output from."""
    if isinstance(content, list):
        content = "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping)
        )
    if not isinstance(content, str):
        return {"output": content}
    try:
        value = json.loads(content)
    except ValueError:
        return {"output": content}
    return value if isinstance(value, dict) else {"output": value}


def _call_of(provider: str, where: str, call: Any) -> tuple[str, dict[str, Any]]:
    """An assistant's tool call as a ``functionCall``'s name and ``args``."""
    function = call.get("function") if isinstance(call, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise _refused(provider, where, "a tool call needs function.name")
    arguments = function.get("arguments") if isinstance(function, Mapping) else None
    if arguments is None or arguments == "":
        return name, {}
    if isinstance(arguments, Mapping):
        return name, dict(arguments)
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise _refused(
            provider,
            f"{where}, whose arguments are not a JSON object",
            "Gemini takes a function call's arguments as an object: pass them as its JSON text",
        )
    return name, args


def _declarations(provider: str, tools: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """``tools`` as ``functionDeclarations``, and the functions' names."""
    if not isinstance(tools, list):
        raise _refused(provider, "tools that are not a list", "pass a list of tools", "tools")
    declarations = []
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type", "function") != "function"
            or not isinstance(function, Mapping)
            or not isinstance(function.get("name"), str)
        ):
            raise _refused(
                provider,
                f"tools[{number}]",
                'each tool must be {"type": "function", "function": {"name": ..., '
                '"parameters": {...}}}',
                "tools",
            )
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description") is not None:
            declaration["description"] = function["description"]
        # The schema as given: parametersJsonSchema takes JSON Schema itself, where
        # "parameters" takes only Google's OpenAPI subset.
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations, [d["name"] for d in declarations]


def _tool_config(provider: str, choice: Any, names: list[str]) -> dict[str, Any] | None:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        if choice == "required" and not names:
            raise _refused(
                provider, 'tool_choice "required" without tools', "pass tools=", "tool_choice"
            )
        return {"mode": _TOOL_MODES[choice]} if names else None
    function = choice.get("function") if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise _refused(
            provider,
            f"the tool_choice {choice!r}",
            'it is "auto", "none", "required" or {"type": "function", "function": {"name": ...}}',
            "tool_choice",
        )
    if name not in names:
        raise _refused(
            provider,
            f"a tool_choice naming {name!r}",
            "it must name one of the functions in tools",
            "tool_choice",
        )
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def _check_no_ops(provider: str, params: Mapping[str, Any]) -> None:
    """Refuse the values of the parameters that have nothing to send but their default."""
    n = params.get("n")
    if n is not None and n != 1:
        raise _refused(
            provider, f"n={n!r}", "the codec reads one candidate: ask n times, or leave n", "n"
        )
    if params.get("parallel_tool_calls") is False:
        raise _refused(
            provider,
            "parallel_tool_calls=False",
            "Gemini has no way to ask for one call at a time: leave parallel_tool_calls",
            "parallel_tool_calls",
        )


def _generation_config(provider: str, params: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    effort = params.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in REASONING_BUDGETS:
            raise _refused(
                provider,
                f"reasoning_effort={effort!r}",
                f"it is one of {', '.join(REASONING_BUDGETS)}",
                "reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": REASONING_BUDGETS[effort]}
    limit = params.get("max_completion_tokens")
    if limit is None:
        limit = params.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    for name, field in _GENERATION_FIELDS.items():
        if params.get(name) is not None:
            config[field] = params[name]
    stop = params.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    fmt = params.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind == "json_object":
            config["responseMimeType"] = "application/json"
        elif kind == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
            config["responseMimeType"] = "application/json"
            schema = fmt["json_schema"].get("schema")
            if schema is not None:
                config["responseJsonSchema"] = schema
        elif kind != "text":
            raise _refused(
                provider,
                f"the response_format {fmt!r}",
                'it is {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", '
                '"json_schema": {"schema": {...}}}',
                "response_format",
            )
    return config


# -- the answer ----------------------------------------------------------------------------


class _Reader:
    """The pieces of ``GenerateContentResponse`` documents, one after another (a whole
    answer is one, a stream many): text and tool calls as they come, and the latest usage
    and the finish reason kept for the end."""

    __slots__ = ("_calls", "_provider", "_secrets", "_url", "finish", "started", "usage")

    def __init__(self, provider: str, url: str, secrets: list[str | None]) -> None:
        self._provider = provider
        self._url = url
        self._secrets = secrets
        self._calls = 0
        self.usage: Usage | None = None
        self.finish: Finish | None = None
        self.started = False

    @staticmethod
    def whole(doc: Any) -> bool:
        """Whether ``doc`` is a whole answer: a candidate, or a blocked prompt."""
        if not isinstance(doc, dict):
            return False
        candidates = doc.get("candidates")
        if isinstance(candidates, list) and candidates:
            return True
        feedback = doc.get("promptFeedback")
        return isinstance(feedback, dict) and bool(feedback.get("blockReason"))

    def read(self, doc: Any) -> list[Piece]:
        """The text and tool calls of ``doc``; its usage and finish reason are kept."""
        if not isinstance(doc, dict):
            raise self._malformed(doc)
        pieces: list[Piece] = []
        usage = _usage(doc.get("usageMetadata"))
        if usage is not None:
            self.usage = usage  # each chunk of a stream counts all so far: the last is right
        candidates = doc.get("candidates")
        feedback = doc.get("promptFeedback")
        if not candidates:
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self.finish = Finish("content_filter")  # the prompt was blocked
            return pieces
        candidate = _first_candidate(candidates)
        if candidate is None:
            return pieces  # a chunk of another candidate
        try:
            content = candidate.get("content") or {}
            parts = content.get("parts") or ()
            for part in parts:
                if part.get("thought"):
                    continue  # the model's thinking, never part of the answer
                text = part.get("text")
                if isinstance(text, str):
                    if text:
                        pieces.append(text)
                    continue
                called = part.get("functionCall")
                if isinstance(called, dict):
                    pieces.append(self._tool_call(called))
            reason = candidate.get("finishReason")
        except (AttributeError, TypeError):
            raise self._malformed(doc) from None
        if pieces:
            self.started = True
        if isinstance(reason, str) and reason and reason != "FINISH_REASON_UNSPECIFIED":
            found = FINISH_REASONS.get(reason, reason.lower())
            if found == "stop" and self._calls:
                found = "tool_calls"
            self.finish = Finish(found)
        return pieces

    def _tool_call(self, called: dict[str, Any]) -> ToolCallDelta:
        name = called.get("name")
        args = called.get("args")
        call_id = called.get("id")
        index = self._calls
        self._calls += 1
        return ToolCallDelta(
            index,
            call_id if isinstance(call_id, str) and call_id else new_call_id(),
            "function",
            FunctionDelta(
                str(name or ""), json.dumps(args if args is not None else {}, ensure_ascii=False)
            ),
        )

    def _malformed(self, doc: Any) -> ProviderResponseError:
        return ProviderResponseError(
            self._provider,
            "sent a response whose candidates are malformed",
            url=self._url,
            body=excerpt(json.dumps(doc), self._secrets),
        )


def _first_candidate(candidates: Any) -> Any:
    """The candidate with index 0 (Gemini answers one unless asked for more)."""
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and not candidate.get("index", 0):
            return candidate
    return None


def _usage(found: Any) -> Usage | None:
    """``usageMetadata`` as OpenAI counts it: the prompt's tokens, the answer's (its
    candidates' and its thoughts', as OpenAI counts reasoning tokens in
    ``completion_tokens``) and the total."""
    if not isinstance(found, dict):
        return None
    prompt = found.get("promptTokenCount")
    answer = found.get("candidatesTokenCount")
    thoughts = found.get("thoughtsTokenCount")
    total = found.get("totalTokenCount")
    if type(answer) is int or type(thoughts) is int:
        completion: int | None = (answer if type(answer) is int else 0) + (
            thoughts if type(thoughts) is int else 0
        )
    else:
        completion = None
    counts = (prompt if type(prompt) is int else None, completion)
    if counts == (None, None) and type(total) is not int:
        return None
    cached = found.get("cachedContentTokenCount")  # counted in promptTokenCount too
    return Usage(
        *counts,
        total if type(total) is int else None,
        cached if type(cached) is int else None,
        thoughts if type(thoughts) is int else None,
    )


class GeminiStreamDecoder(EventStreamDecoder):
    """The pieces of a Gemini event stream (``alt=sse``), fed its body's bytes as they
    arrive (:class:`~providerhub._codecs.base.StreamDecoder`): each event a
    ``GenerateContentResponse``, whose text and tool calls are given as they come, its
    finish reason when it comes, and the last usage at the end; without ``structured``,
    text only. The stream has no end marker: it ends with the body, and one that ends
    without a ``finishReason`` raises :class:`StreamInterruptedError`."""

    __slots__ = ("_reader", "_sent_finish")

    def __init__(self, request: Request, url: str) -> None:
        super().__init__(request, url)
        self._reader = _Reader(self._provider, self._url, self._secrets)
        self._sent_finish = False

    @property
    def started(self) -> bool:
        return self._reader.started

    def _event(self, data: str, name: str, pieces: list[Piece]) -> bool:
        doc = self._json(data)
        if isinstance(doc, dict) and "error" in doc:
            said = excerpt(_error_said(doc) or data, self._secrets)
            raise self._interrupted("broke off with an error", said)
        reader = self._reader
        found = reader.read(doc)
        if not self._structured:
            pieces.extend(piece for piece in found if type(piece) is str)
            return False
        pieces.extend(found)
        if reader.finish is not None and not self._sent_finish:
            self._sent_finish = True
            pieces.append(reader.finish)
        return False  # no end marker: the stream ends with the body

    def _ended(self) -> list[Piece]:
        reader = self._reader
        if reader.finish is None:
            raise self._interrupted("ended before a finishReason")
        if self._structured and reader.usage is not None:
            return [reader.usage]
        return []


# -- errors --------------------------------------------------------------------------------


def _google_error(body: bytes | str) -> dict[str, Any] | None:
    """The ``error`` object of a Google error body (``{"error": {...}}``, or an array of
    one such, as a stream asked for without ``alt=sse`` answers), None for another."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    return error if isinstance(error, dict) else None


def _error_said(error: Mapping[str, Any]) -> str | None:
    """``status: message`` of a Google error object (or of a document holding one)."""
    inner = error.get("error")
    if isinstance(inner, Mapping):
        error = inner
    elif isinstance(inner, str):
        return inner
    message = error.get("message")
    status = _error_status(error)
    if not isinstance(message, str):
        return status
    return f"{status}: {message}" if status else message


def _error_status(error: Mapping[str, Any]) -> str | None:
    status = error.get("status")
    return status if isinstance(status, str) and status else None


def _details(error: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, Mapping) and d.get("@type") == kind]


def _error_reasons(error: Mapping[str, Any]) -> set[str]:
    return {str(d.get("reason")) for d in _details(error, _ERROR_INFO)}


def _retry_delay(error: Mapping[str, Any]) -> str | None:
    """``RetryInfo.retryDelay`` (a protobuf Duration in JSON: ``"37s"``, ``"1.5s"``) as
    the seconds a ``Retry-After`` header would give, None when there is none."""
    for detail in _details(error, _RETRY_INFO):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return f"{float(delay[:-1]):g}"
            except ValueError:
                return None
    return None
