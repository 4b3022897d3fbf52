"""One configured endpoint as a providerhub provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from providerhub.plugin import (
    InvalidRequestError,
    Piece,
    achat_completion,
    api_key_variable,
    chat_completion,
    credential,
)

from .config import DEFAULT_EXTRA_PARAMETERS, Endpoint

__all__ = ["EndpointProvider"]


class EndpointProvider:
    """The provider for one ``[endpoints.<name>]`` table: the provider contract's fields
    (``url``, ``model``, ``supports_stream``, ``needs_auth``, ``working``,
    ``_create_completion``, the optional ``rpm`` and ``tpm`` limits, which the router
    counts: per hub, or across every process sharing its state through Redis, and
    ``capability_settings``, the fields that turn the capabilities on), and the
    endpoint's own ``path``, ``headers``, ``extra_parameters``, ``api_key_env`` and
    ``source`` (the file it came from).

    ``url`` is an attribute the hub may overwrite with ``PROVIDERHUB_<NAME>_URL`` before a
    call, so each call builds its address from it afresh.
    """

    working = True
    yields_pieces = True
    """The router passes ``structured=True``, which goes on to the shared helper: tool
    calls, usage and the finish reason reach the client."""
    honors_timeout = True
    """The shared helper keeps the router's timeouts, so no watchdog thread is needed."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.name: str = endpoint.name
        self.url: str = endpoint.url
        self.path: str = endpoint.path
        self.model: list[str] = list(endpoint.models)
        self.supports_stream: bool = endpoint.stream
        self.supports_tools: bool = endpoint.tools
        self.supports_vision: bool = endpoint.vision
        self.supports_json_schema: bool = endpoint.json_schema
        table = f"in its [endpoints.{endpoint.name}] table"
        self.capability_settings: dict[str, str] = {
            "supports_tools": f"set tools = true {table}",
            "supports_vision": f"set vision = true {table}",
            "supports_json_schema": f"set json_schema = true {table}",
        }
        """The field of the endpoint's table that turns each capability on, which the
        router names when it leaves the endpoint out of a request that needs it."""
        self.api_key_env: str | None = endpoint.api_key_env
        """The environment variable holding the key, or None when the endpoint needs none."""
        self.needs_auth: bool = endpoint.api_key_env is not None
        self.headers: dict[str, str] = dict(endpoint.headers)
        """Sent with every request: the file's, and only the file's."""
        self.extra_parameters: frozenset[str] = DEFAULT_EXTRA_PARAMETERS.union(
            endpoint.extra_parameters
        )
        """Parameters beyond OpenAI's chat parameters that the server takes, sent on as
        given: vLLM's and llama.cpp's (:data:`~.config.DEFAULT_EXTRA_PARAMETERS`) and the
        file's ``extra_parameters``."""
        self.source: str = endpoint.source
        self.rpm: int | None = endpoint.rpm
        """Requests per minute the router lets through to it, or None for no limit."""
        self.tpm: int | None = endpoint.tpm
        """Tokens per minute (from the usage its answers report), or None for no limit."""

    def __repr__(self) -> str:
        return f"<EndpointProvider {self.name!r} {self.url}{self.path} models={self.model!r}>"

    @property
    def endpoint(self) -> str:
        """The full address requests go to: ``url`` followed by ``path``."""
        return self.url.rstrip("/") + self.path

    def credential(self) -> str | None:
        """The key from the environment: ``PROVIDERHUB_<NAME>_API_KEY``, else the variable
        named by ``api_key_env``; None when neither is set (an empty value counts as unset).
        ``auth=`` given to the call comes before both; the router passes it as ``auth``."""
        return credential(self.name, api_key_env=self.api_key_env)

    def credential_variable(self) -> str | None:
        """The variable an authentication error tells the user to set: the one named by
        ``api_key_env``, unless ``PROVIDERHUB_<NAME>_API_KEY`` is set, which comes before
        it (and which the shared helper names when this returns None)."""
        if self.api_key_env and credential(self.name) is None:
            return self.api_key_env
        return None

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Piece]:
        """Yield the answer from the endpoint: each content delta as it arrives when
        ``stream`` is true (and the endpoint streams), the whole message otherwise.

        ``kwargs`` are OpenAI chat parameters (``temperature``, ``max_tokens``, ...), those
        of :attr:`extra_parameters`, and what the router passes (``auth``, ``timeout``,
        ``session``, ``structured``). The headers are the file's. The credential, sent as
        ``Authorization: Bearer``, is ``auth``, else :meth:`credential`. An endpoint that
        needs a key and has none raises :class:`InvalidRequestError` before anything is
        sent, naming the variable to set; a key the server refuses (401, 403) raises
        :class:`~providerhub.errors.AuthenticationError` naming
        :meth:`credential_variable`.
        """
        auth = self._credential(kwargs)
        # An endpoint configured with stream = false is never asked to stream, even when
        # called directly: it may not speak Server-Sent Events at all.
        yield from chat_completion(
            self.name,
            self.endpoint,
            model,
            messages,
            stream and self.supports_stream,
            auth=auth,
            headers=self.headers,
            credential_variable=self.credential_variable(),
            extra_parameters=self.extra_parameters,
            **kwargs,
        )

    async def _acreate_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> AsyncIterator[Piece]:
        """:meth:`_create_completion` for asyncio, over aiohttp (``providerhub[server]``):
        the async API calls it on the event loop, with an ``aiohttp.ClientSession`` as
        ``session``."""
        auth = self._credential(kwargs)
        async for piece in achat_completion(
            self.name,
            self.endpoint,
            model,
            messages,
            stream and self.supports_stream,
            auth=auth,
            headers=self.headers,
            credential_variable=self.credential_variable(),
            extra_parameters=self.extra_parameters,
            **kwargs,
        ):
            yield piece

    def _credential(self, kwargs: dict[str, Any]) -> str | None:
        """The credential of a call, taken out of ``kwargs``; an endpoint that needs a key
        and has none raises :class:`InvalidRequestError`."""
        auth = credential(self.name, kwargs.pop("auth", None), self.api_key_env)
        if auth is None and self.needs_auth:
            raise InvalidRequestError(
                f"{self.name} needs a key: set {self.api_key_env} (as {self.source} says) or "
                f"{api_key_variable(self.name)}, or pass auth={{{self.name!r}: ...}}"
            )
        return auth
