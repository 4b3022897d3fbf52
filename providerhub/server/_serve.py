"""``providerhub serve``: the app under uvicorn, on loopback unless keys are set, with a
graceful stop on SIGTERM and a reload of the configuration on SIGHUP (:mod:`._reload`)."""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
from typing import Any, TextIO

from ..errors import ConfigurationError
from . import _config

__all__ = ["ALLOW_FLAG", "is_loopback", "serve", "worker_app"]

ALLOW_FLAG = "--allow-unauthenticated"
INSTALL_HINT = 'providerhub serve needs the server extra: pip install "providerhub[server]"'


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): only this machine can
    reach a server listening there."""
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def worker_app() -> Any:
    """The app of one uvicorn worker (the factory ``providerhub serve`` names); the
    worker's connections get its limits."""
    from . import create_app
    from ._reload import Reloader

    app = create_app()
    app.reloader = Reloader(app)  # SIGHUP reads the configuration file again
    if _httptools():
        from . import _protocol

        _protocol.configure(app.settings)
    return app


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    drain_timeout: float,
    allow_unauthenticated: bool,
    out: TextIO,
) -> int:
    """Run the server until SIGTERM or SIGINT; 0 once it stopped gracefully."""
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if drain_timeout < 0:
        raise ConfigurationError("--drain-timeout must be 0 or more seconds")
    if not 0 <= port <= 65535:
        raise ConfigurationError("--port must be between 0 and 65535")
    settings = _config.load()  # a mistake in the keys stops the start, with its reason
    if not settings.keys and not is_loopback(host) and not allow_unauthenticated:
        raise ConfigurationError(
            f"refusing to listen on {host}, which other machines can reach, with no client "
            f"key: set {_config.KEYS_VARIABLE} (or [[server.keys]] in {settings.source}), "
            f"or pass {ALLOW_FLAG} to serve anyone who can connect"
        )
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(INSTALL_HINT) from None

    keys = f"{len(settings.keys)} client key(s)" if settings.keys else "no client key"
    print(
        f"providerhub: serving on http://{host}:{port}/v1 with {keys}, "
        f"{workers} worker(s), at most {settings.max_concurrency} requests at once each",
        file=out,
        flush=True,
    )
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler
    # it found: the default one would end the process with status -15, not 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(
            "providerhub.server._serve:worker_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # Typed int, but handed to asyncio.wait_for, which takes any seconds.
            timeout_graceful_shutdown=drain_timeout,  # type: ignore[arg-type]
            access_log=False,  # a line per request costs more than the request itself
            lifespan="on",
            server_header=False,
            # The app reads neither the client's address nor the scheme, which uvicorn's
            # proxy-headers layer rewrites from X-Forwarded-*: one coroutine less a request.
            proxy_headers=False,
            # httptools with the head's size and timeout and the write timeout; where
            # httptools has no wheel, uvicorn's h11 (16 KiB heads, no timeouts of ours).
            http=_protocol_name(),
            log_level="info",
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _httptools() -> bool:
    return importlib.util.find_spec("httptools") is not None


def _protocol_name() -> str:
    if not _httptools():
        return "h11"
    from ._protocol import PROTOCOL

    return PROTOCOL


def _stopped(signum: int, frame: Any) -> None:
    """SIGTERM after the graceful stop: nothing left to do."""
