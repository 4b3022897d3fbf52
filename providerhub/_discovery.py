"""``providerhub models --refresh``: ask each provider's list endpoint which models it
serves, and keep the answers in the models cache (:mod:`providerhub._model_cache`) that
later hubs read.

The requests and the reading of their answers are the dialects'
(:mod:`providerhub._codecs.model_lists`, by the provider's codec key); this module sends
them over ``requests``, within a deadline per provider, several providers at a time.
Each provider's failure is one line naming it, the status and what to do, with no key
and no secret of its url; a provider that cannot be asked (no known dialect, no key,
disabled) is skipped, not failed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _settings as settings
from ._codecs.base import status_error
from ._codecs.model_lists import (
    LISTS,
    MAX_BODY_BYTES,
    MAX_PAGES,
    ListRequest,
    ModelList,
    error_message,
)
from ._model_cache import VERSION, cache_path, load, write
from ._redaction import redact, safe_url, url_secrets
from .errors import (
    InvalidRequestError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
)

if TYPE_CHECKING:
    import requests

    from ._hub import Hub
    from ._provider import Provider

__all__ = ["STATUSES", "Listed", "ask", "refresh", "save"]

STATUSES = ("ok", "failed", "skipped")


@dataclass(frozen=True)
class Listed:
    """What one provider's list endpoint gave: ``status`` is one of :data:`STATUSES`;
    ``models`` the names (on ``ok``); ``reason`` one line; ``url`` the list's address
    without user info and query (None when nothing was asked)."""

    provider: str
    status: str
    models: tuple[str, ...]
    reason: str
    url: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh(
    hub: Hub,
    *,
    providers: Sequence[str] | None = None,
    timeout: float = 15.0,
    workers: int = 8,
    path: Path | None = None,
) -> tuple[list[Listed], Path]:
    """:func:`ask` every provider of ``hub`` (or those named in ``providers``), then
    :func:`save` the answers at ``path``: what each provider gave, and the file written.
    Raises what those raise."""
    results = ask(hub, providers=providers, timeout=timeout, workers=workers)
    return results, save(hub, results, path)


def ask(
    hub: Hub,
    *,
    providers: Sequence[str] | None = None,
    timeout: float = 15.0,
    workers: int = 8,
) -> list[Listed]:
    """Ask every provider of ``hub`` (or those named in ``providers``) for its models, at
    most ``workers`` at a time, each within ``timeout`` seconds all pages included.
    Raises :class:`InvalidRequestError` for an unknown name in ``providers``."""
    chosen = _chosen(hub, providers)
    session = hub.session
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chosen) or 1))) as pool:
        return list(pool.map(lambda p: _ask(p, session, timeout), chosen))


def save(hub: Hub, results: Sequence[Listed], path: Path | None = None) -> Path:
    """Write ``results`` to the cache at ``path`` (by default
    :func:`~providerhub._model_cache.cache_path`), keeping what it held for the other
    providers, and return the file written; :class:`OSError` when it cannot be."""
    path = cache_path() if path is None else path
    write(path, _updated(load(path).document, results, hub))
    return path


def _chosen(hub: Hub, names: Sequence[str] | None) -> list[Provider]:
    if not names:
        return list(hub.providers.values())
    found = []
    for name in names:
        provider = hub.registry.lookup(name)
        if provider is None:
            raise InvalidRequestError(
                f"no provider named {name!r} (installed: {', '.join(hub.providers) or 'none'})"
            )
        found.append(provider)
    return found


def _ask(provider: Provider, session: requests.Session, timeout: float) -> Listed:
    """The models of ``provider``, or why not."""
    name = provider.name
    dialect = LISTS.get(getattr(provider.obj, "codec", None) or "")
    if dialect is None:
        return Listed(
            name,
            "skipped",
            (),
            "no model list is known for it (not a declared provider of a known codec): "
            f"name its models in {settings.models_variable(name)}",
        )
    if not provider.working:
        why = "disabled by PROVIDERHUB_DISABLE_PLUGINS" if provider.disabled else "not working"
        return Listed(name, "skipped", (), why)
    key = provider.credential(None)
    if key is None and provider.needs_auth:
        return Listed(name, "skipped", (), f"needs a key: set {provider.api_key_variable}")
    first = _request(provider, dialect, key, None)
    try:
        models = _pages(provider, dialect, session, timeout, key)
    except ProviderTimeoutError:
        # The exchange's own hint speaks of timeout=, an argument of create().
        said = (
            f"{name}: no whole answer from {safe_url(first.url)} within {timeout:g} s: is "
            "the service up? (--timeout gives it longer)"
        )
        return Listed(name, "failed", (), said, safe_url(first.url))
    except ProviderError as exc:
        return Listed(name, "failed", (), _one_line(exc, key, first.url), safe_url(first.url))
    return Listed(name, "ok", tuple(models), f"{len(models)} models", safe_url(first.url))


def _request(
    provider: Provider, dialect: ModelList, key: str | None, cursor: str | None
) -> ListRequest:
    """The request for the page after ``cursor`` of ``provider``'s list: at its url as
    ``PROVIDERHUB_<NAME>_URL`` leaves it, beside its chat path, with the key in the
    header its declaration names and the declaration's headers."""
    obj = provider.obj
    headers = getattr(obj, "headers", None)
    return dialect.request(
        provider.url,
        key,
        chat_path=getattr(obj, "path", None),
        key_header=getattr(obj, "key_header", None),
        key_scheme=getattr(obj, "key_scheme", None),
        headers=headers if isinstance(headers, Mapping) else None,
        cursor=cursor,
    )


def _pages(
    provider: Provider,
    dialect: ModelList,
    session: requests.Session,
    timeout: float,
    key: str | None,
) -> list[str]:
    """Every page of the list, within ``timeout`` seconds in all."""
    from ._transports.errors import error_for_exception

    deadline = time.monotonic() + timeout
    found: dict[str, None] = {}
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        request = _request(provider, dialect, key, cursor)
        try:
            body = _get(provider, session, request.url, request.headers, deadline, key)
        except ProviderError:
            raise
        except Exception as exc:
            raise error_for_exception(
                provider.name, exc, request.url, secrets=[key], deadline=deadline
            ) from None
        try:
            page = dialect.parse(body)
        except ValueError as exc:
            raise ProviderResponseError(
                provider.name,
                f"the model list at {safe_url(request.url)} is not one: {exc}",
                url=safe_url(request.url),
                hint=f"name its models in {settings.models_variable(provider.name)} instead",
            ) from None
        found.update(dict.fromkeys(m for m in page.models if not any(c.isspace() for c in m)))
        if page.next is None or page.next in seen:
            break
        seen.add(page.next)
        cursor = page.next
    return list(found)


def _get(
    provider: Provider,
    session: requests.Session,
    url: str,
    headers: Mapping[str, str],
    deadline: float,
    key: str | None,
) -> bytes:
    """The body of ``GET url``, whole, within ``deadline``; a typed error for an HTTP
    error status, a redirect or a body too long."""
    from ._transports.sync import read_body

    left = max(0.001, deadline - time.monotonic())
    response = session.get(
        url, headers=dict(headers), timeout=(left, left), stream=True, allow_redirects=False
    )
    try:
        status = response.status_code
        if 300 <= status < 400:
            target = safe_url(response.headers.get("Location", "?"))
            raise ProviderHTTPError(
                provider.name,
                f"HTTP {status} from {safe_url(url)}: the model list moved to {target}",
                status_code=status,
                url=safe_url(url),
                hint=f"set {settings.url_variable(provider.name)} to where the service is now",
            )
        body = read_body(response, MAX_BODY_BYTES + 1, provider.name, deadline)
        if status >= 400:
            raise _status_error(provider, status, response.reason, url, response.headers, body, key)
        if len(body) > MAX_BODY_BYTES:
            raise ProviderResponseError(
                provider.name,
                f"the model list at {safe_url(url)} is larger than {MAX_BODY_BYTES} bytes",
                url=safe_url(url),
            )
        return body
    finally:
        response.close()


def _status_error(
    provider: Provider,
    status: int,
    reason: str | None,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key: str | None,
) -> ProviderError:
    if status == 404:
        return ProviderHTTPError(
            provider.name,
            f"HTTP 404 from {safe_url(url)}: the service lists no models there",
            status_code=404,
            url=safe_url(url),
            hint=f"check {settings.url_variable(provider.name)}, or name its models in "
            f"{settings.models_variable(provider.name)}",
        )
    variable = getattr(provider.obj, "credential_variable", None)
    return status_error(
        provider.name,
        status,
        reason,
        url,
        headers.get("Retry-After"),
        error_message(body[:65536]),
        [key],
        credential_variable=variable() if callable(variable) else None,
    )


def _one_line(exc: ProviderError, key: str | None, url: str) -> str:
    """``exc``'s message on one line, without the key or the url's secrets."""
    return redact(" ".join(str(exc).split()), [key, *url_secrets(url)])


def _updated(old: Mapping[str, Any], results: Sequence[Listed], hub: Hub) -> dict[str, Any]:
    """The cache document after ``results``: a provider that answered gets its new list
    and loses its error; one that failed keeps its last list and gets its error; the
    others are left as they were."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    providers = dict(old.get("providers", {}))
    errors = dict(old.get("errors", {}))
    for result in results:
        if result.status == "ok":
            url = safe_url(hub.providers[result.provider].url)
            providers[result.provider] = {
                "url": url,
                "fetched_at": now,
                "models": list(result.models),
            }
            errors.pop(result.provider, None)
        elif result.failed:
            errors[result.provider] = {"fetched_at": now, "error": result.reason}
    return {"version": VERSION, "fetched_at": now, "providers": providers, "errors": errors}
