"""Any OpenAI-compatible chat completions endpoint as a providerhub provider, from a TOML
file: one provider per ``[endpoints.<name>]`` table, named after it.

The file is ``PROVIDERHUB_CONFIG``, else ``providerhub/config.toml`` in the platform's
configuration directory (see :func:`config.default_config_path`); a missing default file
means no endpoints. Each endpoint is a declaration, an
:class:`~providerhub.plugin.HTTPProvider` of the ``openai-chat`` codec
(:class:`EndpointProvider`): requests, streaming, errors and ``Authorization: Bearer`` are
providerhub's.
"""

from __future__ import annotations

from providerhub.plugin import Register, Report, hookimpl

from .config import (
    CONFIG_VARIABLE,
    DEFAULT_EXTRA_PARAMETERS,
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
    "DEFAULT_EXTRA_PARAMETERS",
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
def register_providers(register: Register, report: Report) -> None:
    """Register one :class:`EndpointProvider` per valid endpoint of the configuration file,
    in the file's order, and ``report`` each problem of the file, one line each naming the
    file, the entry and the field: the hub shows them in ``hub.plugin_errors`` while the
    valid endpoints load.

    A file that cannot be used at all (a ``PROVIDERHUB_CONFIG`` naming no file, an
    unreadable file, invalid TOML) registers nothing and is reported the same way, so every
    problem of the file reads alike and the other plugins load as usual.
    """
    try:
        endpoints, problems = check()
    except ConfigError as exc:
        endpoints, problems = [], list(exc.problems)
    for endpoint in endpoints:
        register(EndpointProvider(endpoint), name=endpoint.name)
    for problem in problems:
        report(str(problem))
