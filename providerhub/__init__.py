"""providerhub: route chat completions across many LLM providers, installed as plugins.

::

    import providerhub

    text = providerhub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}])
    for piece in providerhub.create("gpt-3.5-turbo-16k", messages, stream=True):
        print(piece, end="")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from .contract import ProviderModule
from .errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderHubError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from .hookspecs import hookimpl, hookspec
from .hub import Hub, get_hub
from .plugins import PluginFailure
from .provider import Provider
from .router import Auth, ProviderChoice, Stream
from .timeout import Timeout, TimeoutLike

if TYPE_CHECKING:
    from urllib3.util import Retry

__version__ = "0.1.0"

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "Hub",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoProviderError",
    "PluginFailure",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderHubError",
    "ProviderModule",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Stream",
    "StreamInterruptedError",
    "Timeout",
    "__version__",
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
