"""Checks on the caller's input, made before any provider is asked.

Messages are OpenAI's chat messages, in every shape the Chat Completions API takes: string
content or a list of content parts (``text``, ``image_url``, ``input_audio``, ``file``, and
an assistant's ``refusal``), the ``system`` and ``developer`` roles, assistant messages that
call tools (``tool_calls``, with ``content`` null) and ``tool`` messages answering them.
A message that passes goes on to the provider as the caller wrote it.

An embeddings request's ``input`` is what OpenAI's embeddings take: a string, a list of
strings, a list of token ids, or a list of such lists (:func:`validate_embedding_input`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ._options import check_parameters
from .errors import InvalidRequestError

__all__ = [
    "EMBEDDING_FORMATS",
    "MAX_DEPTH",
    "MAX_EMBEDDING_INPUTS",
    "PART_TYPES",
    "ROLES",
    "did_you_mean",
    "validate_embedding_input",
    "validate_embedding_options",
    "validate_messages",
    "validate_model",
    "validate_parameters",
]

MAX_DEPTH = 64
"""How many levels of lists and objects a message, or a parameter's value, may nest:
``{"a": [1]}`` is two. Deeper is refused before anything is sent, rather than left to fail
(or exhaust the stack) in the JSON encoder."""

MAX_EMBEDDING_INPUTS = 2048
"""The most inputs one embeddings request may hold, as OpenAI's API allows."""

EMBEDDING_FORMATS = ("float", "base64")
"""The ``encoding_format`` values of an embeddings request."""

_CONTAINERS = (dict, list, tuple)  # what the JSON encoder nests into

ROLES = ("system", "developer", "user", "assistant", "tool")

PART_TYPES: dict[str, tuple[str, ...]] = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}
"""The content part types each role may send."""

# What each part type must hold: its payload key, and the fields a mapping payload needs
# (a str payload, for text and refusal, needs none).
_PART_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("text", ()),
    "refusal": ("refusal", ()),
    "image_url": ("image_url", ("url",)),
    "input_audio": ("input_audio", ("data", "format")),
    "file": ("file", ()),
}


def validate_model(model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            f"model must be a non-empty string such as 'gpt-3.5-turbo-16k', not {model!r}",
            param="model",
        )
    return model


def validate_messages(messages: object) -> list[dict[str, Any]]:
    """Return ``messages`` as a list of dicts (other mappings copied into dicts), or raise
    :class:`InvalidRequestError` (its ``param`` ``"messages"``) naming the first message
    that is wrong and what is wrong with it."""
    try:
        return _checked_messages(messages)
    except InvalidRequestError as exc:
        exc.param = "messages"
        raise


def _checked_messages(messages: object) -> list[dict[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, (list, tuple)):
        raise InvalidRequestError(
            "messages must be a list of {'role': ..., 'content': ...} mappings, "
            f"not {type(messages).__name__}; for one prompt pass "
            "[{'role': 'user', 'content': prompt}]"
        )
    if not messages:
        raise InvalidRequestError("messages is empty: give at least one message")
    checked = []
    nested: list[int] = []  # the messages holding lists or objects, whose depth is checked
    for index, message in enumerate(messages):
        if type(message) is not dict:
            if not isinstance(message, Mapping):
                raise InvalidRequestError(
                    f"messages[{index}] must be a mapping with 'role' and 'content', "
                    f"not {type(message).__name__}"
                )
            message = dict(message)
        role = message.get("role")
        if role not in ROLES or not isinstance(role, str):
            raise InvalidRequestError(
                f"messages[{index}] has role {role!r}; it must be one of {', '.join(ROLES)}"
            )
        holds = False
        for key, value in message.items():
            if not isinstance(key, str):
                raise InvalidRequestError(f"messages[{index}] has a non-string key {key!r}")
            if isinstance(value, _CONTAINERS):
                holds = True
        if holds:
            nested.append(index)
        content = message.get("content")
        if type(content) is not str:  # the common case needs no more checks
            _check_content(f"messages[{index}] ({role})", role, message, content)
        if role == "tool":
            _check_tool_message(f"messages[{index}] (tool)", message)
        elif role == "assistant" and message.get("tool_calls") is not None:
            _check_tool_calls(f"messages[{index}] (assistant)", message["tool_calls"])
        # The caller's own dicts go on as they are: nothing downstream changes them.
        checked.append(message)
    # One pass over those messages (their list is one more level), then the one too deep
    # is found to be named.
    if nested and _nests_deeper([checked[i] for i in nested], MAX_DEPTH + 1):
        for index in nested:
            _check_depth(f"messages[{index}]", checked[index], "messages")
    return checked


def validate_parameters(params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidRequestError` for a parameter the caller may not pass (a
    provider option, see :mod:`providerhub._options`) or whose value nests deeper than
    :data:`MAX_DEPTH`."""
    check_parameters(params)
    for name, value in params.items():
        if isinstance(value, _CONTAINERS):
            _check_depth(f"the parameter {name!r}", value, name)


def _check_depth(what: str, value: object, param: str) -> None:
    """Raise :class:`InvalidRequestError` (naming ``param``) when lists and objects nest in
    ``value`` more than :data:`MAX_DEPTH` levels deep."""
    if _nests_deeper(value, MAX_DEPTH):
        raise InvalidRequestError(
            f"{what} nests lists and objects deeper than {MAX_DEPTH} levels (or holds "
            f"itself); providerhub sends at most {MAX_DEPTH}",
            param=param,
        )


def _nests_deeper(value: object, limit: int) -> bool:
    """Whether lists, tuples and dicts nest in ``value`` (itself one) more than ``limit``
    levels deep. Level by level, with no recursion, so that a value of any depth (or one
    that holds itself, followed ``limit`` levels) is measured without exhausting the
    stack, in one pass over the value."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, _CONTAINERS)
        ]
        if not level:
            return False
    return True


def _check_content(where: str, role: str, message: dict[str, Any], content: object) -> None:
    if content is None:
        if role == "assistant" and (
            message.get("tool_calls") is not None or message.get("function_call") is not None
        ):
            return  # an assistant turn that only called tools
        raise InvalidRequestError(
            f"{where} must have 'content' (a string or a list of content parts); only an "
            "assistant message with tool_calls may have content null"
        )
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{where} must have string 'content' or a list of content parts, "
            f"not {type(content).__name__}"
        )
    if not content:
        raise InvalidRequestError(f"{where} has an empty list of content parts")
    allowed = PART_TYPES[role]
    for number, part in enumerate(content):
        _check_part(f"{where} content[{number}]", allowed, part)


def _check_part(where: str, allowed: tuple[str, ...], part: object) -> None:
    if not isinstance(part, Mapping):
        raise InvalidRequestError(
            f"{where} must be a mapping with a 'type', not {type(part).__name__}"
        )
    kind = part.get("type")
    if kind not in allowed or not isinstance(kind, str):
        raise InvalidRequestError(
            f"{where} has type {kind!r}; this role's parts may be {', '.join(allowed)}"
        )
    key, needs = _PART_FIELDS[kind]
    payload = part.get(key)
    if not needs and kind in ("text", "refusal"):
        if not isinstance(payload, str):
            raise InvalidRequestError(
                f"{where} ({kind}) must have a string {key!r}, not {type(payload).__name__}"
            )
        return
    if not isinstance(payload, Mapping):
        raise InvalidRequestError(
            f"{where} ({kind}) must have a mapping {key!r}, not {type(payload).__name__}"
        )
    for field in needs:
        if not isinstance(payload.get(field), str):
            raise InvalidRequestError(f"{where} ({kind}) must have a string {key}.{field}")
    if kind == "file" and not any(
        isinstance(payload.get(f), str) for f in ("file_data", "file_id")
    ):
        raise InvalidRequestError(f"{where} (file) must have file.file_data or file.file_id")


def _check_tool_message(where: str, message: dict[str, Any]) -> None:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(
            f"{where} must have 'tool_call_id', the id of the tool call it answers"
        )


def _check_tool_calls(where: str, calls: object) -> None:
    if not isinstance(calls, list):
        raise InvalidRequestError(f"{where} must have a list of tool_calls")
    for number, call in enumerate(calls):
        spot = f"{where} tool_calls[{number}]"
        if not isinstance(call, Mapping) or not isinstance(call.get("id"), str):
            raise InvalidRequestError(f"{spot} must be a mapping with a string 'id'")
        function = call.get("function")
        if call.get("type", "function") != "function" or not isinstance(function, Mapping):
            raise InvalidRequestError(f"{spot} must be of type 'function' with a 'function'")
        for field in ("name", "arguments"):
            if not isinstance(function.get(field), str):
                raise InvalidRequestError(f"{spot} must have a string function.{field}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The tip an error message gives for a misspelt ``word``: ``"; did you mean 'x'?"``
    naming the one of ``choices`` closest to it, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def validate_embedding_input(value: object) -> str | list[Any]:
    """``input`` of an embeddings request, checked: a non-empty string, or a non-empty
    list (at most :data:`MAX_EMBEDDING_INPUTS` items) of non-empty strings, of token ids
    (whole numbers >= 0), or of non-empty lists of token ids."""
    fix = (
        "input must be a non-empty string, or a list of non-empty strings (or of token "
        "ids, or of lists of token ids)"
    )
    if isinstance(value, str):
        if not value:
            raise InvalidRequestError(f"{fix}; it is an empty string", param="input")
        return value
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise InvalidRequestError(f"{fix}, not {type(value).__name__}", param="input")
    if not value:
        raise InvalidRequestError(f"{fix}; it is an empty list", param="input")
    if len(value) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequestError(
            f"input holds {len(value)} items, more than the {MAX_EMBEDDING_INPUTS} one request "
            "may hold: send them in several requests",
            param="input",
        )
    first = value[0]
    if _is_token(first):
        if not all(_is_token(t) for t in value):
            raise InvalidRequestError(
                f"{fix}; a list of token ids holds something else", param="input"
            )
        return value
    for number, item in enumerate(value):
        if isinstance(item, str):
            ok = bool(item)
        elif isinstance(item, (list, tuple)):
            ok = bool(item) and all(_is_token(t) for t in item)
        else:
            ok = False
        if not ok or type(item) is not type(first):
            raise InvalidRequestError(
                f"{fix}; item {number} is {_shown_item(item)}, not like item 0", param="input"
            )
    return [list(item) if isinstance(item, tuple) else item for item in value]


def _is_token(value: object) -> bool:
    return type(value) is int and value >= 0


def _shown_item(item: object) -> str:
    if isinstance(item, str):
        return "an empty string" if not item else "a string"
    if isinstance(item, (list, tuple)):
        return "a list that is empty or holds more than token ids"
    return type(item).__name__


def validate_embedding_options(
    encoding_format: object, dimensions: object, user: object
) -> dict[str, Any]:
    """The options of an embeddings request, checked: ``encoding_format`` one of
    :data:`EMBEDDING_FORMATS`, ``dimensions`` a whole number >= 1 or None, ``user`` a
    string or None. Returns the fields the provider is sent (``dimensions``, ``user``,
    when given): the format is the client's, which always asks for floats."""
    if encoding_format not in EMBEDDING_FORMATS:
        raise InvalidRequestError(
            f"encoding_format must be 'float' or 'base64', not {encoding_format!r}",
            param="encoding_format",
        )
    sent: dict[str, Any] = {}
    if dimensions is not None:
        if type(dimensions) is not int or dimensions < 1:
            raise InvalidRequestError(
                f"dimensions must be a whole number >= 1, not {dimensions!r}", param="dimensions"
            )
        sent["dimensions"] = dimensions
    if user is not None:
        if not isinstance(user, str):
            raise InvalidRequestError(
                f"user must be a string, not {type(user).__name__}", param="user"
            )
        sent["user"] = user
    return sent
