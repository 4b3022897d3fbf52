"""Checks on the caller's input, made before any provider is asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequestError

__all__ = ["ROLES", "validate_messages", "validate_model"]

ROLES = ("system", "user", "assistant", "tool")


def validate_model(model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            f"model must be a non-empty string such as 'gpt-3.5-turbo-16k', not {model!r}"
        )
    return model


def validate_messages(messages: object) -> list[dict[str, Any]]:
    """Return ``messages`` as a list of dicts (other mappings copied into dicts), or raise
    :class:`InvalidRequestError` naming the first message that is wrong and what is wrong
    with it."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, (list, tuple)):
        raise InvalidRequestError(
            "messages must be a list of {'role': ..., 'content': ...} mappings, "
            f"not {type(messages).__name__}; for one prompt pass "
            "[{'role': 'user', 'content': prompt}]"
        )
    if not messages:
        raise InvalidRequestError("messages is empty: give at least one message")
    checked = []
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
        content = message.get("content")
        if not isinstance(content, str):
            raise InvalidRequestError(
                f"messages[{index}] ({role}) must have string 'content', "
                f"not {type(content).__name__}"
            )
        for key in message:
            if not isinstance(key, str):
                raise InvalidRequestError(f"messages[{index}] has a non-string key {key!r}")
        # The caller's own dicts go on as they are: nothing downstream changes them.
        checked.append(message)
    return checked
