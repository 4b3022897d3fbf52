"""One configured endpoint as a providerhub provider: a declaration built from its table."""

from __future__ import annotations

from providerhub.plugin import Credential, HTTPProvider, api_key_variable

from .config import DEFAULT_EXTRA_PARAMETERS, Endpoint

__all__ = ["EndpointProvider"]


class EndpointProvider(HTTPProvider):
    """The provider for one ``[endpoints.<name>]`` table: an
    :class:`~providerhub.plugin.HTTPProvider` of the ``openai-chat`` codec declared from
    its fields, so it has the provider contract's fields (``url``, ``model``,
    ``supports_stream``, ``needs_auth``, ``working``, ``_create_completion``,
    ``_acreate_completion``, the optional ``rpm`` and ``tpm`` limits, which the router
    counts: per hub, or across every process sharing its state through Redis) and the
    endpoint's own ``embedding_models`` (served at ``{url}/v1/embeddings``), ``path``,
    ``headers`` (the file's, and only the file's), ``extra_parameters``, ``api_key_env``,
    ``endpoint`` and ``credential()``; besides,
    ``capability_settings``, the fields that turn the capabilities on, and ``source``
    (the file it came from).

    ``url`` is an attribute the hub may overwrite with ``PROVIDERHUB_<NAME>_URL`` before a
    call; each call builds its address from it afresh.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        # The table's true-or-false fields are named as the capabilities they turn on.
        flags = {
            "stream": endpoint.stream,
            "tools": endpoint.tools,
            "vision": endpoint.vision,
            "json_schema": endpoint.json_schema,
        }
        super().__init__(
            name=endpoint.name,
            url=endpoint.url,
            path=endpoint.path,
            models=endpoint.models,
            embedding_models=endpoint.embedding_models,
            codec="openai-chat",
            capabilities=[name for name, on in flags.items() if on],
            # An endpoint that names the variable holding its key needs one.
            credential=None if endpoint.api_key_env is None else Credential(endpoint.api_key_env),
            rpm=endpoint.rpm,
            tpm=endpoint.tpm,
            # vLLM's and llama.cpp's parameters, and the file's extra_parameters.
            extra_parameters=DEFAULT_EXTRA_PARAMETERS.union(endpoint.extra_parameters),
            headers=endpoint.headers,
            prices=endpoint.prices,
        )
        self.source: str = endpoint.source
        table = f"in its [endpoints.{endpoint.name}] table"
        self.capability_settings: dict[str, str] = {
            "supports_tools": f"set tools = true {table}",
            "supports_vision": f"set vision = true {table}",
            "supports_json_schema": f"set json_schema = true {table}",
        }
        """The field of the endpoint's table that turns each capability on, which the
        router names when it leaves the endpoint out of a request that needs it."""

    def _missing_key(self) -> str:
        return (
            f"{self.name} needs a key: set {self.api_key_env} (as {self.source} says) or "
            f"{api_key_variable(self.name)}, or pass auth={{{self.name!r}: ...}}"
        )
