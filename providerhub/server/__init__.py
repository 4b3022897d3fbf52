"""providerhub as a server: an OpenAI-compatible gateway any client can use.

``providerhub serve`` runs it under uvicorn (``pip install "providerhub[server]"``);
:func:`create_app` gives the ASGI app, to run under any ASGI server::

    uvicorn --factory providerhub.server:create_app

See docs/server.md: the endpoints, the errors, client keys and limits, metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["create_app"]


def create_app(hub: Hub | None = None) -> Any:
    """The server's ASGI app, over ``hub`` (by default the default hub,
    :func:`providerhub.get_hub`, with every installed plugin).

    Client keys and limits are read now, from ``PROVIDERHUB_SERVER_*`` and the
    ``[server]`` table of providerhub's configuration file; a mistake there raises
    :class:`providerhub.ConfigurationError`.
    """
    from .._hub import get_hub
    from . import _config
    from ._app import App

    settings = _config.load()
    return App(get_hub() if hub is None else hub, settings)
