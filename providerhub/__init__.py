"""providerhub: route chat completions across many LLM providers, installed as plugins.

::

    import providerhub

    text = providerhub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}])
    for piece in providerhub.create("gpt-3.5-turbo-16k", messages, stream=True):
        print(piece, end="")
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from ._client import AsyncClient, Client
from ._contract import ProviderModule
from ._hub import Hub, get_hub
from ._plugins import PluginFailure
from ._provider import Provider
from ._routing.router import Auth, ProviderChoice, Stream
from ._state.store import MemoryState, State, StateLike, StateStatus
from ._timeout import Timeout, TimeoutLike
from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
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
    from urllib3.util import Retry

    from ._routing.threaded import AsyncStream
    from ._state.redis import RedisState

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # AsyncStream lives with asyncio, whose import a program that never awaits should not
    # pay for (PEP 562).
    if name == "AsyncStream":
        from ._routing.threaded import AsyncStream

        return AsyncStream
    if name == "RedisState":  # kept out of the import of a program that shares nothing
        from ._state.redis import RedisState

        return RedisState
    raise AttributeError(f"module 'providerhub' has no attribute {name!r}")


__all__ = [
    "AllProvidersFailedError",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "Client",
    "Hub",
    "InvalidRequestError",
    "MemoryState",
    "ModelNotFoundError",
    "NoProviderError",
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


@overload
def create(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: Literal[False] = False,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> str: ...


@overload
def create(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: Literal[True],
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> Stream: ...


@overload
def create(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: bool,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> str | Stream: ...


def create(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: bool = False,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> str | Stream:
    """Complete ``messages`` with ``model`` on the default hub (:func:`get_hub`).

    See :meth:`Hub.create`.
    """
    return get_hub().create(
        model,
        messages,
        stream=stream,
        provider=provider,
        auth=auth,
        timeout=timeout,
        retries=retries,
        **kwargs,
    )


@overload
def acreate(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: Literal[False] = False,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> Coroutine[Any, Any, str]: ...


@overload
def acreate(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: Literal[True],
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> AsyncStream: ...


@overload
def acreate(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: bool,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> Coroutine[Any, Any, str] | AsyncStream: ...


def acreate(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: bool = False,
    provider: ProviderChoice = None,
    auth: Auth = None,
    timeout: TimeoutLike = None,
    retries: int | Retry | None = None,
    **kwargs: Any,
) -> Coroutine[Any, Any, str] | AsyncStream:
    """:func:`create` for asyncio, on the default hub: ``await acreate(...)`` gives the
    text; ``async for piece in acreate(..., stream=True)`` the pieces as they arrive.

    See :meth:`Hub.acreate`.
    """
    return get_hub().acreate(
        model,
        messages,
        stream=stream,
        provider=provider,
        auth=auth,
        timeout=timeout,
        retries=retries,
        **kwargs,
    )
