"""Tool calls as OpenAI's conventions have them, whatever an OpenAI-compatible server sent.

The convention: in a stream, a call's ``id``, ``type`` and function name come once, in its
first fragment; its ``arguments`` arrive in pieces; calls are told apart by ``index``,
counted from 0. Real servers stray from it, and :class:`ToolCallStream` puts each stray
back:

- llama.cpp's server repeats the id and the name in every fragment: a fragment whose id is
  known continues that call, and a name already given is not given again;
- Ollama gives every call index 0: a new id, or another name, starts a new call;
- some servers omit ``index``: a fragment without one continues the latest call;
- some send the legacy ``function_call`` next to ``tool_calls``: it is read only from a
  server that never sends ``tool_calls``, as the call at index 0.

A call that arrives without an id gets one, since a ``tool`` message must name the call it
answers. Whole answers (documents) go through :func:`tool_calls_of`, with the same rules.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..types import Function, FunctionDelta, ToolCall, ToolCallDelta

__all__ = ["ToolCallStream", "new_call_id", "tool_calls_of"]


def new_call_id() -> str:
    """An id for a call the server sent without one, in OpenAI's form."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _arguments_text(arguments: object) -> str:
    # Some servers send arguments as a JSON object rather than as its text.
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


class _Call:
    __slots__ = ("id", "index", "name", "raw_index", "started")

    def __init__(self, index: int, raw_index: object, call_id: str | None) -> None:
        self.index = index
        self.raw_index = raw_index
        self.id = call_id
        self.name: str | None = None
        self.started = False  # its first fragment (id, type, name) has gone out


class ToolCallStream:
    """Turns the ``tool_calls`` (or ``function_call``) of each streamed delta into
    :class:`~providerhub.types.ToolCallDelta` fragments that follow the convention."""

    __slots__ = ("_by_id", "_by_raw_index", "_calls", "_saw_tool_calls")

    def __init__(self) -> None:
        self._calls: list[_Call] = []
        self._by_id: dict[str, _Call] = {}
        self._by_raw_index: dict[object, _Call] = {}
        self._saw_tool_calls = False

    @property
    def count(self) -> int:
        """How many calls the stream has held so far."""
        return len(self._calls)

    def feed(self, delta: dict[str, Any]) -> list[ToolCallDelta]:
        """The fragments in ``delta``, one of OpenAI's ``choices[i].delta`` objects."""
        raw = delta.get("tool_calls")
        if raw:
            self._saw_tool_calls = True
            if not isinstance(raw, list):
                raise ValueError("tool_calls is not a list")
            return [self._fragment(item) for item in raw]
        legacy = delta.get("function_call")
        if legacy and not self._saw_tool_calls:
            if not isinstance(legacy, dict):
                raise ValueError("function_call is not an object")
            return [self._fragment({"index": 0, "function": legacy}, legacy=True)]
        return []

    def _fragment(self, item: Any, *, legacy: bool = False) -> ToolCallDelta:
        if not isinstance(item, dict):
            raise ValueError("a tool call fragment is not an object")
        function = item.get("function") or {}
        if not isinstance(function, dict):
            raise ValueError("a tool call's function is not an object")
        call_id = item.get("id") or None
        name = function.get("name") or None
        call = self._call_for(item.get("index"), call_id, name, legacy)
        first = not call.started
        if first:
            call.started = True
            if call.id is None:
                call.id = new_call_id()
        if name and call.name is None:
            call.name = name
            name_out: str | None = name
        else:
            name_out = None  # given once, even when the server repeats it
        return ToolCallDelta(
            index=call.index,
            id=call.id if first else None,
            type="function" if first else None,
            function=FunctionDelta(
                name=name_out, arguments=_arguments_text(function.get("arguments"))
            ),
        )

    def _call_for(
        self, raw_index: object, call_id: str | None, name: str | None, legacy: bool
    ) -> _Call:
        if call_id is not None and call_id in self._by_id:
            return self._by_id[call_id]
        known = self._by_raw_index.get(raw_index) if raw_index is not None else None
        if known is None and raw_index is None and self._calls:
            known = self._calls[-1]
        if known is not None and not legacy:
            # Ollama numbers every call 0: a new id, or a second name, is another call.
            starts_another = (call_id is not None and known.id is not None) or (
                name is not None and known.name is not None and name != known.name
            )
            if not starts_another:
                if call_id is not None and known.id is None:
                    known.id = call_id
                    self._by_id[call_id] = known
                return known
        elif known is not None:
            return known
        call = _Call(len(self._calls), raw_index, call_id)
        self._calls.append(call)
        if call_id is not None:
            self._by_id[call_id] = call
        self._by_raw_index[raw_index] = call
        return call


def tool_calls_of(message: dict[str, Any]) -> list[ToolCall] | None:
    """The tool calls of a whole answer's ``message``, each with an id and type; the
    legacy ``function_call`` when there are no ``tool_calls``. None when there are none."""
    raw = message.get("tool_calls")
    if raw:
        if not isinstance(raw, list):
            raise ValueError("tool_calls is not a list")
    elif isinstance(message.get("function_call"), dict):
        raw = [{"function": message["function_call"]}]
    else:
        return None
    calls = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("function") or {}, dict):
            raise ValueError("a tool call is not an object with a function")
        function = item.get("function") or {}
        calls.append(
            ToolCall(
                id=item.get("id") or new_call_id(),
                function=Function(
                    name=str(function.get("name") or ""),
                    arguments=_arguments_text(function.get("arguments")),
                ),
                type=item.get("type") or "function",
            )
        )
    return calls
