"""``params``: what a provider's completion function accepts, found by introspection.

The seed built its ``params`` string from ``typing.get_type_hints`` over the positional
parameters, and crashed on an unannotated one. Here an unannotated parameter is shown
without a type, unresolvable annotations fall back to their text, and keyword-only
parameters and ``**kwargs`` follow the positional ones::

    providerhub.providers.gravityengine supports:
        (model: str, messages: list, stream: bool, **kwargs)

(on one line).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["NO_DEFAULT", "Param", "ParamsInfo", "describe", "render"]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
"""The ``default`` of a :class:`Param` that has none."""

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


@dataclass(frozen=True)
class Param:
    """One parameter of a completion function.

    ``kind`` is ``positional``, ``var_positional``, ``keyword`` or ``var_keyword``; ``type``
    is the annotation rendered as text, or None when there is none.
    """

    name: str
    type: str | None
    kind: str
    default: Any = NO_DEFAULT

    def render(self) -> str:
        if self.kind == "var_positional":
            return f"*{self.name}"
        if self.kind == "var_keyword":
            return f"**{self.name}"
        text = self.name if self.type is None else f"{self.name}: {self.type}"
        if self.default is not NO_DEFAULT:
            text += f" = {self.default!r}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form; ``default`` is present only when there is one."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "kind": self.kind}
        if self.default is not NO_DEFAULT:
            default = self.default
            json_ready = default is None or isinstance(default, (str, int, float, bool))
            out["default"] = default if json_ready else repr(default)
        return out


class ParamsInfo(list[Param]):
    """The parameters of a provider's completion function (a list of :class:`Param`),
    with ``capabilities``: its ``supports_stream``, ``needs_auth`` and optional capability
    fields, by name."""

    def __init__(self, params: list[Param], capabilities: dict[str, bool]) -> None:
        super().__init__(params)
        self.capabilities = dict(capabilities)


def describe(func: Callable[..., Any]) -> list[Param]:
    """The parameters of ``func``: positional ones first, then ``*args``, keyword-only
    ones and ``**kwargs``, as Python orders them."""
    signature = inspect.signature(func)
    hints = _type_hints(func)
    params = []
    for p in signature.parameters.values():
        hint = hints.get(p.name, p.annotation)
        type_text = None if hint is inspect.Parameter.empty else _type_name(hint)
        default = NO_DEFAULT if p.default is inspect.Parameter.empty else p.default
        params.append(Param(p.name, type_text, _KINDS[p.kind], default))
    return params


def render(provider_name: str, func: Callable[..., Any]) -> str:
    """The seed's ``params`` line for ``func``, served by provider ``provider_name``."""
    parts = []
    keyword_marker_due = True
    for p in describe(func):
        if p.kind == "var_positional":
            keyword_marker_due = False
        elif p.kind == "keyword" and keyword_marker_due:
            parts.append("*")
            keyword_marker_due = False
        parts.append(p.render())
    return f"providerhub.providers.{provider_name} supports: ({', '.join(parts)})"


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    target = getattr(func, "__func__", func)
    try:
        return typing.get_type_hints(target)
    except Exception:
        # A forward reference that does not resolve, or an object get_type_hints does not
        # know: fall back to the raw annotations, which render as written.
        return dict(getattr(target, "__annotations__", {}) or {})


def _type_name(hint: Any) -> str:
    if isinstance(hint, str):
        return hint
    if isinstance(hint, type) and not getattr(hint, "__args__", None):
        return hint.__name__
    return repr(hint).replace("typing.", "")
