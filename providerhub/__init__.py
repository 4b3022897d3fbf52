"""providerhub: route chat completions across many LLM providers, installed as plugins.

::

    import providerhub

    text = providerhub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}])
    for piece in providerhub.create("gpt-3.5-turbo-16k", messages, stream=True):
        print(piece, end="")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._api import __getattr__ as __getattr__
from ._api import acreate, create
from ._client import AsyncClient, Client
from ._contract import ProviderModule
from ._hub import Hub, get_hub
from ._plugins import PluginFailure
from ._provider import Provider
from ._routing.router import Auth as Auth
from ._routing.router import ProviderChoice as ProviderChoice
from ._routing.router import Stream
from ._state.store import MemoryState, State, StateLike, StateStatus
from ._timeout import Timeout
from ._timeout import TimeoutLike as TimeoutLike
from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    PluginError,
    ProviderConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderHubError,
    ProviderResponseError,
    ProvidersCoolingDownError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
    StructuredAnswerError,
)
from .hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from ._routing.arouter import AsyncStream
    from ._state.redis import RedisState

__version__ = "0.1.0"


__all__ = [
    "AllProvidersFailedError",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "Hub",
    "InvalidRequestError",
    "MemoryState",
    "ModelNotFoundError",
    "NoProviderError",
    "PluginError",
    "PluginFailure",
    "Provider",
    "ProviderConfigurationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderHubError",
    "ProviderModule",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "ProvidersCoolingDownError",
    "RateLimitError",
    "RedisState",
    "State",
    "StateLike",
    "StateStatus",
    "Stream",
    "StreamInterruptedError",
    "StructuredAnswerError",
    "Timeout",
    "__version__",
    "acreate",
    "create",
    "get_hub",
    "hookimpl",
    "hookspec",
]
