"""Any OpenAI-compatible chat completions endpoint as a providerhub provider, from a TOML
file: one provider per ``[endpoints.<name>]`` table, named after it; and a catalog of
known services and local servers (:mod:`.presets`), each a provider once its key or url
variable is set.

The file is ``PROVIDERHUB_CONFIG``, else ``providerhub/config.toml`` in the platform's
configuration directory (see :func:`config.default_config_path`); a missing default file
means no endpoints. Each endpoint is a declaration, an
:class:`~providerhub.plugin.HTTPProvider` of the ``openai-chat`` codec
(:class:`EndpointProvider`): requests, streaming, errors and ``Authorization: Bearer`` are
providerhub's.
"""

from __future__ import annotations

from providerhub.plugin import Offer, Register, Report, hookimpl

from . import presets
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
    "PRESETS",
    "ConfigError",
    "Endpoint",
    "EndpointProvider",
    "Preset",
    "Problem",
    "check",
    "config_path",
    "default_config_path",
    "load",
    "presets",
    "register_providers",
]


@hookimpl
def register_providers(register: Register, report: Report, offer: Offer) -> None:
    """Register one :class:`EndpointProvider` per valid endpoint of the configuration file,
    in the file's order, then one per active preset of the catalog
    (:data:`presets.PRESETS`) the file does not name; ``offer`` each inactive preset with
    the variables that would activate it; and ``report`` each problem of the file, one line
    each naming the file, the entry and the field: the hub shows them in
    ``hub.plugin_errors`` while the valid endpoints load.

    A file that cannot be used at all (a ``PROVIDERHUB_CONFIG`` naming no file, an
    unreadable file, invalid TOML) registers nothing of its own and is reported the same
    way, so every problem of the file reads alike and the other plugins load as usual.
    An entry of the file, even a bad one, replaces the preset of its name: a typo in the
    user's own ``[endpoints.groq]`` must not quietly route to the preset instead.
    """
    # The module's namespace stays small: pluggy inspects each of its names for every hub.
    try:
        endpoints, problems = check()
    except ConfigError as exc:
        endpoints, problems = [], list(exc.problems)
    named = {presets.key(p.entry) for p in problems if p.entry is not None}
    for endpoint in endpoints:
        register(EndpointProvider(endpoint), name=endpoint.name)
        named.add(presets.key(endpoint.name))
    presets.register_active(register, offer, named)
    for problem in problems:
        report(str(problem))
