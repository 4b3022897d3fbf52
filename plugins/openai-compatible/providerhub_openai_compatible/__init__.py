"""Any OpenAI-compatible chat completions endpoint as a providerhub provider, from a TOML
file: one provider per ``[endpoints.<name>]`` table, named after it.

The file is ``PROVIDERHUB_CONFIG``, else ``providerhub/config.toml`` in the platform's
configuration directory (see :func:`config.default_config_path`); a missing default file
means no endpoints. Requests, streaming, errors and ``Authorization: Bearer`` are
providerhub's shared helper, :func:`providerhub.openai_compat.chat_completion`.
"""

from __future__ import annotations

from providerhub import hookimpl
from providerhub.hookspecs import Register

from .config import (
    CONFIG_VARIABLE,
    ConfigError,
    Endpoint,
    Problem,
    check,
    config_path,
    default_config_path,
    load,
)
from .provider import EndpointProvider

__all__ = [
    "CONFIG_VARIABLE",
    "ConfigError",
    "Endpoint",
    "EndpointProvider",
    "Problem",
    "check",
    "config_path",
    "default_config_path",
    "load",
    "register_providers",
]


@hookimpl
def register_providers(register: Register) -> None:
    """Register one :class:`EndpointProvider` per endpoint of the configuration file, in
    the file's order.

    A file with any problem registers nothing and raises :class:`ConfigError` listing every
    problem: the hub then shows it in ``hub.plugin_errors`` and loads the other plugins.
    All or nothing, because the hook can only report by raising, and raising drops what was
    registered before it; loading the good entries silently would hide the bad ones.
    """
    for endpoint in load():
        register(EndpointProvider(endpoint), name=endpoint.name)
