"""The plugin API: everything a provider plugin imports from providerhub, in one module.

A plugin that imports only from here (and from :mod:`providerhub.testing` in its tests)
keeps working across providerhub's releases; every module whose name starts with an
underscore is internal and may change at any time. ::

    from providerhub.plugin import Credential, HTTPProvider

The names, by what they are for:

- declaring a provider that is an HTTP endpoint of a known dialect: :class:`HTTPProvider`
  (its url, models, codec, capabilities, limits) and :class:`Credential` (where its key
  comes from and how it is sent); the core calls it, sync and asyncio, streaming, with
  typed errors;
- registering: :data:`hookimpl`, and the :class:`Register`, :class:`Report` and
  :class:`Offer` callables a ``register_providers`` hook receives;
- calling an OpenAI-compatible endpoint: :func:`chat_completion` and the parameters it
  takes, :data:`CHAT_PARAMETERS`; :func:`achat_completion`, the same for asyncio (over
  aiohttp, the ``providerhub[server]`` extra), for an ``_acreate_completion``;
  :func:`provider_options`, the names that are the helper's and the router's options,
  which a caller may never pass as parameters;
- settings from the environment: :func:`credential`, :func:`base_url`,
  :func:`api_key_variable`, :func:`url_variable`;
- describing the completion function: :func:`render_params` (the seed's ``params``
  string), :func:`describe_params` and :class:`Param`;
- structured pieces a completion function may yield besides text: :data:`Piece`,
  :class:`ToolCallDelta` (with :class:`FunctionDelta`), :class:`Usage`, :class:`Finish`,
  :class:`Reasoning`;
- limits: :class:`Timeout`;
- what a model costs: :class:`Price` (US dollars per million input, output and cached
  input tokens), for a declaration's ``prices``;
- keeping secrets out of messages: :func:`redact`;
- errors: the typed errors of :mod:`providerhub.errors`, which a provider raises to say
  what went wrong.
"""

from __future__ import annotations

from ._http.achat import achat_completion
from ._http.chat import CHAT_PARAMETERS, chat_completion
from ._http.endpoint import Credential, HTTPProvider
from ._options import provider_options
from ._params import Param
from ._params import describe as describe_params
from ._params import render as render_params
from ._redaction import redact
from ._settings import api_key_variable, credential, url_variable
from ._settings import url as base_url
from ._spend import Price
from ._timeout import Timeout, TimeoutLike
from .errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    PluginError,
    ProviderConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from .hookspecs import Offer, Register, Report, hookimpl
from .types import Finish, FunctionDelta, Piece, Reasoning, ToolCallDelta, Usage

__all__ = [
    "CHAT_PARAMETERS",
    "AuthenticationError",
    "ConfigurationError",
    "Credential",
    "Finish",
    "FunctionDelta",
    "HTTPProvider",
    "InvalidRequestError",
    "Offer",
    "Param",
    "Piece",
    "PluginError",
    "Price",
    "ProviderConfigurationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Reasoning",
    "Register",
    "Report",
    "StreamInterruptedError",
    "Timeout",
    "TimeoutLike",
    "ToolCallDelta",
    "Usage",
    "achat_completion",
    "api_key_variable",
    "base_url",
    "chat_completion",
    "credential",
    "describe_params",
    "hookimpl",
    "provider_options",
    "redact",
    "render_params",
    "url_variable",
]
