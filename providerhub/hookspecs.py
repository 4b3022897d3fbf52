"""The hooks a providerhub plugin implements.

A plugin is a module (or object) declared under the ``providerhub`` entry-point group. It
implements the hooks below, marked with :data:`providerhub.hookimpl`::

    from providerhub import hookimpl

    @hookimpl
    def register_providers(register):
        register(my_provider_module, name="myprovider")

A module that follows the provider contract and implements no hook is a plugin too: the
hub registers it as one provider named after its entry point.

Hook calls take keyword arguments only, and a hook implementation cannot receive
``**kwargs``; so the hooks register and describe providers, and the router calls each
provider's ``_create_completion`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PROJECT",
    "Offer",
    "Register",
    "Report",
    "hookimpl",
    "hookspec",
    "register_providers",
]

PROJECT = "providerhub"
"""The pluggy project name, which is also the entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Report(Protocol):
    """The ``report`` callable a plugin's :func:`register_providers` may take."""

    def __call__(self, error: str) -> None:
        """Report a problem that cost the plugin some of its providers, not all: it shows
        in ``Hub.plugin_errors`` as one line, and the providers registered still load."""


class Offer(Protocol):
    """The ``offer`` callable a plugin's :func:`register_providers` may take."""

    def __call__(
        self,
        name: str,
        *,
        activate: Sequence[str],
        url: str | None = None,
        models: Sequence[str] = (),
    ) -> None:
        """Say that the plugin can provide ``name`` but has not registered it: setting
        one of the environment variables ``activate`` would. It shows in
        ``Hub.available`` (and ``providerhub providers``, "available, not active"), and
        is never routed to."""


class Register(Protocol):
    """The ``register`` callable a plugin's :func:`register_providers` receives."""

    def __call__(self, provider: Any, name: str | None = None) -> None:
        """Register ``provider`` (a module or object following the provider contract) under
        ``name``; by default its ``name`` attribute, or its module's last dotted part."""


@hookspec
def register_providers(register: Register, report: Report, offer: Offer) -> None:
    """Register this plugin's providers by calling ``register(provider, name=...)`` once
    for each. A plugin may register any number of them.

    If this hook raises, none of the plugin's providers is kept and the error shows in
    ``Hub.plugin_errors``. A problem that spoils only some providers (one bad entry of a
    configuration file, say) goes to ``report(error)`` instead: it shows there too, and the
    providers registered load. A provider the plugin could give but leaves out until a
    variable is set (a catalog's service without its key) goes to ``offer(name,
    activate=[variables], url=..., models=[...])``, so that the user can see what would
    turn it on. A hook implementation takes only the arguments it names, so
    ``def register_providers(register)`` is fine."""
