"""What the settings ask the gateway to record of its requests: timings always
(:mod:`._telemetry`), an access log line (:mod:`._access_log`) and spans (:mod:`._otel`)
when they are on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._telemetry import Telemetry

if TYPE_CHECKING:
    from .._hub import Hub
    from ._app import App
    from ._config import ServerSettings

__all__ = ["instrument"]


def instrument(app: App, hub: Hub, settings: ServerSettings) -> Telemetry:
    """What ``settings`` ask to record of ``app``'s requests over ``hub``: their timings
    always, an access log and spans when they are on."""
    access_log = None
    tracing = None
    if settings.access_log == "json":
        from ._access_log import AccessLog

        access_log = AccessLog()
    if settings.otel:
        from ._otel import Tracing

        tracing = Tracing(hub)

    def key_name(authorization: bytes | None) -> str | None:
        keys = app.keys
        if not keys.required:
            return None
        key = keys.find(authorization)
        return None if key is None else key.name

    return Telemetry(app.metrics, access_log, tracing, key_name)
