"""Reloading without a restart: on SIGHUP, ``providerhub serve`` reads its configuration
file again (the ``[server]`` table, client keys included, and the providers the plugins
declare from it), and serves every request from then on with what it read.

What reloads: client keys and their ``rpm``; the body, concurrency, head and write limits
and timeouts; ``cors_origins``; ``upstream_timeout``; the access log and traces; and the
hub, built anew with every plugin (so the openai-compatible plugin's endpoints, models
and aliases), which keeps the old one's shared state and cooldowns. A request under way
finishes on the hub and limits it began with; the old hub's connections are closed once
no request can still be using it (its ``upstream_timeout`` later, the longest any of its
calls may take).

A file that does not parse, or holds a mistake, or whose providers a plugin cannot load,
is refused with a log line naming the mistake, and the configuration in force stays.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from . import _config

if TYPE_CHECKING:
    from .._hub import Hub
    from ._app import App

__all__ = ["Reloader", "retire"]

logger = logging.getLogger("providerhub.server.reload")


def _heard() -> None:
    """Have the reload's lines go to standard error when nothing else configures where
    they go (as under ``providerhub serve``): an operator who sent SIGHUP looks there."""
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def _new_hub(old: Hub) -> Hub:
    """A hub with every installed plugin, as the default hub is made, sharing ``old``'s
    state (rate-limit counts, shared or not) and cooldowns."""
    from .._hub import Hub

    hub = Hub(state=old.state)
    hub.health = old.health
    return hub


class Reloader:
    """Reloads ``app``'s configuration when asked (:meth:`reload`), or on SIGHUP once
    :meth:`install`\\ ed on the app's event loop."""

    def __init__(self, app: App, new_hub: Callable[[Hub], Hub] = _new_hub) -> None:
        self.app = app
        self._new_hub = new_hub
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reloads = 0
        """Reloads done; refused ones are not counted."""

    def install(self) -> None:
        """Reload on SIGHUP (on this event loop; where the platform has the signal)."""
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is not None:
            _heard()
            asyncio.get_running_loop().add_signal_handler(hangup, self._hangup)

    def uninstall(self) -> None:
        hangup = getattr(signal, "SIGHUP", None)
        if hangup is not None:
            asyncio.get_running_loop().remove_signal_handler(hangup)

    def _hangup(self) -> None:
        self._keep(asyncio.get_running_loop().create_task(self.reload()))

    def _retire(self, hub: Hub) -> None:
        self._keep(asyncio.get_running_loop().create_task(retire(hub)))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        # The loop holds tasks weakly: one nobody holds may vanish before it ends.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """Read the configuration again and serve with it: True once it is in force,
        False when it was refused (and logged), the old one staying."""
        async with self._lock:  # two signals in a row: one reload after the other
            app = self.app
            try:
                settings = _config.load()
            except ConfigurationError as exc:
                logger.error("reload refused, the configuration in force stays: %s", exc)
                return False
            old = app.hub
            try:
                hub = await self._built(old)
            except Exception as exc:
                logger.error(
                    "reload refused, the configuration in force stays: the providers "
                    "could not be loaded (%s: %s)",
                    type(exc).__name__,
                    exc,
                )
                return False
            known = {e.name for e in old.plugin_errors}
            failed = [e for e in hub.plugin_errors if e.name not in known]
            if failed:
                await retire(hub)
                logger.error(
                    "reload refused, the configuration in force stays: plugin %s failed (%s)",
                    failed[0].name,
                    failed[0].error,
                )
                return False
            # The longest a call begun on the old hub may still take.
            drain = app.settings.upstream_timeout + 1.0
            try:
                app.configure(hub, settings)
            except ConfigurationError as exc:
                logger.error("reload refused, the configuration in force stays: %s", exc)
                return False
            _apply_connection_limits(settings)
            if old is not hub:
                asyncio.get_running_loop().call_later(drain, self._retire, old)
            self.reloads += 1
            keys = f"{len(settings.keys)} client key(s)" if settings.keys else "no client key"
            logger.info(
                "reloaded %s: %s, %d provider(s)", settings.source, keys, len(hub.providers)
            )
            return True

    async def _built(self, old: Hub) -> Hub:
        """A new hub, made on a thread of its own (plugins import modules and read files)
        while the loop goes on serving; the thread ends with it, so reloads leave none."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Hub] = loop.create_future()

        def give(hub: Hub | None, exc: BaseException | None) -> None:
            if done.cancelled():
                return
            if exc is not None:
                done.set_exception(exc)
            else:
                assert hub is not None
                done.set_result(hub)

        def build() -> None:
            try:
                hub = self._new_hub(old)
            except BaseException as exc:
                loop.call_soon_threadsafe(give, None, exc)
            else:
                loop.call_soon_threadsafe(give, hub, None)

        threading.Thread(target=build, name="providerhub-reload", daemon=True).start()
        return await done


def _apply_connection_limits(settings: _config.ServerSettings) -> None:
    import importlib.util

    if importlib.util.find_spec("httptools") is not None:
        from . import _protocol

        _protocol.configure(settings)


async def retire(hub: Hub) -> None:
    """Close ``hub``'s connections, not its state, which the hub serving now shares."""
    asessions = hub._asessions
    if asessions is not None:
        await asessions.aclose()
    session = hub._session
    if session is not None:
        session.close()
