"""A provider written to the module contract, for a service that is not an HTTP endpoint of
a dialect providerhub knows (delete this module if yours is one).

The service here is made up: ``POST <url>/generate`` with ``{"model": ..., "prompt":
...}`` answers ``{"text": ...}``. The module holds the contract's fields and a
``_create_completion`` generator; the hub calls it with the caller's parameters and what
the router adds (``auth``, ``timeout``, ``session``). It raises providerhub's typed errors,
which the router retries, falls back on and counts against the provider. Register it
from the plugin's hook with ``register(custom, name=custom.NAME)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from providerhub.plugin import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    base_url,
    render_params,
)

NAME = "template-custom"
url = "https://generate.example.invalid"
model = ["template-generate"]
supports_stream = False
needs_auth = False
honors_timeout = True  # requests keeps the router's timeout, passed on below


def _create_completion(
    model: str,
    messages: list,  # type: ignore[type-arg]  # the contract's signature, which params shows
    stream: bool,
    **kwargs: Any,
) -> Iterator[str]:
    """Yield the service's whole answer once (it cannot stream)."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    session = kwargs.get("session")  # the hub's pooled requests.Session
    post = requests.post if session is None else session.post
    try:
        response = post(
            base_url(NAME, url) + "/generate",
            json={"model": model, "prompt": prompt},
            timeout=kwargs.get("timeout"),
        )
    except requests.Timeout:
        raise ProviderTimeoutError(NAME, "timed out") from None
    except requests.RequestException as exc:
        raise ProviderConnectionError(NAME, f"could not connect ({type(exc).__name__})") from None
    if response.status_code >= 400:
        raise ProviderHTTPError(
            NAME, f"answered HTTP {response.status_code}", status_code=response.status_code
        )
    try:
        text = response.json()["text"]
    except (ValueError, KeyError, TypeError):
        raise ProviderResponseError(NAME, "answered without a text field") from None
    if not isinstance(text, str):
        raise ProviderResponseError(NAME, f"answered with text of type {type(text).__name__}")
    yield text


params = render_params(NAME, _create_completion)
