"""The access log: one JSON line per request on the ``providerhub.access`` logger, when
``[server] access_log = "json"`` (``PROVIDERHUB_SERVER_ACCESS_LOG=json``).

A line holds names, numbers and times only: the request id, the client key's name, the
route, the model and provider, the status, the latency and time to first token, the
gateway's own time and the tokens. Never a message, a prompt, an answer's text, or a key:
nothing of the request body but its model is read for it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from ._telemetry import Exchange, request_id, usage_of

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = "providerhub.access"

logger = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    """Writes each request's line. With no handler configured for the logger (as under
    ``providerhub serve``), the lines go to standard error, one JSON document each."""

    def __init__(self) -> None:
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        self._encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def line(self, exchange: Exchange, seconds: float) -> str:
        """The JSON of ``exchange``'s line, the request having taken ``seconds``."""
        input_tokens, output_tokens, answered = usage_of(exchange.answer)
        first = exchange.first_token
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "request_id": request_id(exchange),
            "key": exchange.key,
            "route": exchange.route,
            "model": exchange.model,
            "response_model": answered,
            "provider": exchange.provider,
            "status": exchange.status,
            "attempts": exchange.attempts,
            "latency_ms": round(seconds * 1000, 3),
            "ttft_ms": None if first is None else round(first * 1000, 3),
            "upstream_ms": round(exchange.upstream * 1000, 3),
            "overhead_ms": round(max(0.0, seconds - exchange.upstream) * 1000, 3),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }
        return self._encode(doc)

    def write(self, exchange: Exchange, seconds: float) -> None:
        if exchange.route is not None and logger.isEnabledFor(logging.INFO):
            logger.info(self.line(exchange, seconds))
