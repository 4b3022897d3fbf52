"""OpenTelemetry spans of the gateway (``providerhub[otel]``, with ``[server] otel = true``
or ``PROVIDERHUB_SERVER_OTEL=1``): one ``SERVER`` span per request and one ``CLIENT``
span per provider attempt inside it, with the GenAI semantic conventions' attributes
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.provider.name``, ``gen_ai.usage.input_tokens``/``output_tokens``) and the
provider's ``server.address`` (its host alone: never a user, password or key).

Where spans go is OpenTelemetry's own configuration: a tracer provider already set (by
``opentelemetry-instrument``, or by the program that runs the app) is used as it is;
otherwise one is made with the exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` by
default, from ``opentelemetry-exporter-otlp``; ``console``; ``none``), batched as the
``OTEL_BSP_*`` variables say, and the resource of ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``.

A request's ``traceparent`` (read by the propagators ``OTEL_PROPAGATORS`` names, W3C trace
context by default) makes its span a child of the client's.

Attempts are recorded as they end, from the router's attempt observer, with the start
they had (their end less their seconds): the routing loop carries no span.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from ._telemetry import Exchange, incoming, usage_of

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["INSTALL_HINT", "Tracing", "tracer_provider"]

INSTALL_HINT = 'OpenTelemetry traces need the otel extra: pip install "providerhub[otel]"'

_OPERATIONS = {"/v1/embeddings": "embeddings"}


def tracer_provider() -> Any:
    """The tracer provider spans go to: the one set for the process, or one made from
    the ``OTEL_*`` variables and set."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigurationError(INSTALL_HINT) from None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create())
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    for name in (n.strip() for n in names.split(",")):
        if name and name != "none":
            provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    for entry in entry_points(group="opentelemetry_traces_exporter"):
        if entry.name == name:
            return entry.load()()
    hint = " (pip install opentelemetry-exporter-otlp)" if name == "otlp" else ""
    raise ConfigurationError(
        f"OTEL_TRACES_EXPORTER names {name!r}, an exporter that is not installed{hint}"
    )


class _Headers:
    """Reads an ASGI request's headers (pairs of lower-case bytes) for a propagator."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for n, value in carrier if n == name]
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [n.decode("latin-1") for n, _ in carrier]


_HEADERS = _Headers()


class Tracing:
    """Makes the spans of the requests of an app over ``hub``."""

    def __init__(self, hub: Hub, provider: Any = None) -> None:
        from opentelemetry import propagate, trace
        from opentelemetry.trace import SpanKind, StatusCode

        self._extract = propagate.extract
        self._fields = frozenset(
            f.lower().encode("latin-1") for f in propagate.get_global_textmap().fields
        )
        self._trace = trace
        self._tracer = trace.get_tracer(
            "providerhub", tracer_provider=provider if provider is not None else tracer_provider()
        )
        self._server = SpanKind.SERVER
        self._client = SpanKind.CLIENT
        self._error = StatusCode.ERROR
        self.hub = hub
        self._hosts: dict[str, tuple[str, int | None] | None] = {}

    def begin(self, exchange: Exchange) -> None:
        exchange.started_ns = time.time_ns()
        headers = incoming()
        parent = None
        fields = self._fields
        # A client's trace (W3C ``traceparent``, or what OTEL_PROPAGATORS names) goes on;
        # the propagators are asked only when a header of theirs came (seldom: they cost
        # more than the span).
        if headers and any(name in fields for name, _ in headers):
            parent = self._extract(headers, getter=cast(Any, _HEADERS))
        exchange.span = self._tracer.start_span(
            "gateway", context=parent, kind=self._server, start_time=exchange.started_ns
        )

    def attempt(
        self,
        exchange: Exchange,
        provider: str,
        model: str,
        attempt: int,
        outcome: str,
        seconds: float,
    ) -> None:
        host = self._host(provider)
        if outcome == "ok" and exchange.attempts == 1:
            # Answered at once, as nearly every request is: the request's span says all an
            # attempt's would, and one span costs the SDK half of two.
            exchange.peer = host
            return
        # Few attributes: the SDK checks each one, which is most of a span's cost.
        end = time.time_ns()
        operation = _OPERATIONS.get(exchange.route or "", "chat")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "providerhub.outcome": outcome,
        }
        if host is not None:
            attributes["server.address"] = host[0]
            if host[1] is not None:
                attributes["server.port"] = host[1]
        span = self._tracer.start_span(
            f"{operation} {model}",
            context=self._trace.set_span_in_context(exchange.span),
            kind=self._client,
            attributes=attributes,
            start_time=end - int(seconds * 1e9),
        )
        if outcome != "ok":
            span.set_attribute("error.type", outcome.split(" ", 1)[0])
            span.set_status(self._error)
        span.end(end_time=end)

    def end(self, exchange: Exchange, seconds: float) -> None:
        span = exchange.span
        if span is None:
            return
        route = exchange.route or ""
        operation = _OPERATIONS.get(route, "chat")
        model = exchange.model
        span.update_name(f"{operation} {model}" if model else f"{operation}")
        input_tokens, output_tokens, answered = usage_of(exchange.answer)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "http.route": route,
            "http.response.status_code": exchange.status,
        }
        if model:
            attributes["gen_ai.request.model"] = model
        if answered:
            attributes["gen_ai.response.model"] = answered
        if exchange.provider:
            attributes["gen_ai.provider.name"] = exchange.provider
        if input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        if exchange.first_token is not None:
            attributes["providerhub.time_to_first_token_seconds"] = exchange.first_token
        peer = exchange.peer
        if peer is not None:
            attributes["server.address"] = peer[0]
            if peer[1] is not None:
                attributes["server.port"] = peer[1]
        span.set_attributes(attributes)
        if exchange.status >= 500:
            span.set_attribute("error.type", str(exchange.status))
            span.set_status(self._error)
        span.end(end_time=exchange.started_ns + int(seconds * 1e9))

    def _host(self, provider: str) -> tuple[str, int | None] | None:
        """The host (and port) of ``provider``'s url: its user info is never read."""
        if provider in self._hosts:
            return self._hosts[provider]
        found = None
        p = self.hub.providers.get(provider)
        url = getattr(p, "url", None)
        if isinstance(url, str) and url:
            try:
                parts = urlsplit(url)
                if parts.hostname:
                    found = (parts.hostname, parts.port)
            except ValueError:
                found = None
        self._hosts[provider] = found
        return found
