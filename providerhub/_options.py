"""Names that are never request parameters: the options of providers and of the shared
OpenAI-compatible helper, and the routing arguments of ``create()``.

A request parameter (``temperature``, ``tools``, ...) goes to the provider's completion
function as a keyword argument, beside what the router adds (``auth``, ``timeout``,
``session``, ``structured``); the bundled plugins pass their keyword arguments on to
:func:`providerhub.plugin.chat_completion`, which takes its own options as keywords in the
same call: the headers sent, the limits on the answer, the credential's variable, the body
fields sent by default, the endpoint. Those are set by the code that owns them (the
plugin, the operator's configuration, the router), never per call: a caller's
``headers=`` would rewrite the request sent with the operator's credential, and a
``max_body_bytes=`` lift the operator's cap. :func:`provider_options` holds them all, read
from the helpers' signatures, so an option added to the helper later is refused with no
list to update; the hub refuses each of them before any provider is asked, and the gateway
answers 400 for one in a request body.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequestError

__all__ = [
    "REQUEST_FIELDS",
    "ROUTER_ARGUMENTS",
    "ROUTING_ARGUMENTS",
    "check_parameters",
    "not_a_parameter",
    "provider_options",
]

ROUTER_ARGUMENTS = frozenset({"auth", "timeout", "session", "structured"})
"""What the router passes to every attempt
(:meth:`providerhub._routing.router.Call.provider_kwargs`):
the credential, the attempt's timeout, the hub's session, and whether the caller takes
structured pieces."""

ROUTING_ARGUMENTS = ("provider", "auth", "timeout", "retries")
"""Arguments of ``create()`` that are not request parameters: a gateway client may not set
them in the body (``auth`` would let it choose the upstream credential)."""

REQUEST_FIELDS = frozenset({"model", "messages", "stream"})
"""The fields of a request body that are ``create()``'s own arguments, not parameters."""


@functools.cache
def provider_options() -> frozenset[str]:
    """Every name a caller may not pass as a parameter because a provider or the router
    sets it: what the router passes (:data:`ROUTER_ARGUMENTS`), and every named parameter
    of :func:`~providerhub.plugin.chat_completion` and
    :func:`~providerhub.plugin.achat_completion` that is not an OpenAI chat parameter
    (``endpoint``, ``defaults``, ``headers``, ``max_body_bytes``, ``max_event_bytes``,
    ``credential_variable``, ``extra_parameters``, ...), but for the arguments
    ``create()`` takes itself."""
    # Imported here: the helpers are needed only once a call is made, and importing
    # providerhub (or listing its providers) stays free of them.
    from ._http.achat import achat_completion
    from ._http.chat import CHAT_PARAMETERS, chat_completion

    names = set(ROUTER_ARGUMENTS)
    for helper in (chat_completion, achat_completion):
        for parameter in inspect.signature(helper).parameters.values():
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                names.add(parameter.name)
    # create() takes these itself (the helper's ``provider`` is the provider's name, which
    # create()'s pins), so they never reach its keyword arguments.
    return frozenset(names - CHAT_PARAMETERS - REQUEST_FIELDS - {"provider"})


def _refusal(name: str) -> str:
    if name in ROUTER_ARGUMENTS:
        return (
            f"{name!r} is not a request parameter: providerhub's router sets it for each "
            "attempt, not per call"
        )
    return (
        f"{name!r} is not a request parameter: it is a provider option, set by the "
        "provider's plugin or the operator's configuration, not per call"
    )


def check_parameters(params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidRequestError` for the first name in ``params`` (a call's
    keyword arguments) that is a provider option."""
    options = provider_options()
    for name in params:
        if name in options:
            raise InvalidRequestError(_refusal(name), param=name)


def not_a_parameter(name: str) -> str | None:
    """Why the field ``name`` of a request body may not be there, or None when it is a
    field or a parameter a body may carry: a routing argument of ``create()``, or a
    provider option."""
    if name in REQUEST_FIELDS:
        return None
    if name in ROUTING_ARGUMENTS:
        return (
            f"{name!r} is not a chat completions parameter (to pin a provider, "
            "name it in the model: 'provider/model')"
        )
    if name in provider_options():
        return _refusal(name)
    return None
