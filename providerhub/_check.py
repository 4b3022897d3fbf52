"""Health checks: a short prompt to every provider and model, in parallel, each with a
timeout and a short answer asked for, and one line of result for each. ``providerhub
check`` prints them."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ._redaction import redact
from .errors import InvalidRequestError, ProviderHubError

if TYPE_CHECKING:
    from ._hub import Hub
    from ._provider import Provider

__all__ = ["MAX_TOKENS", "STATUSES", "CheckResult", "run_checks"]

STATUSES = ("ok", "failing", "needs auth", "disabled")
PROMPT = "Reply with the single word OK."
_USERINFO = re.compile(r"(?<=://)[^/?#\s@]*@")
MAX_TOKENS = 16
"""The longest answer a check asks for: a check costs little, even on a paid model that
would otherwise answer at length. A provider whose completion takes no ``max_tokens`` is
called without it (the hub leaves out keyword arguments a provider cannot take)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome for one provider and model: ``status`` is one of :data:`STATUSES`;
    ``latency`` is in seconds (None when nothing was sent); ``reason`` is one line."""

    provider: str
    model: str
    status: str
    latency: float | None
    reason: str

    @property
    def failed(self) -> bool:
        return self.status == "failing"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(
    hub: Hub,
    *,
    providers: list[str] | None = None,
    models: list[str] | None = None,
    timeout: float = 15.0,
    workers: int = 8,
    prompt: str = PROMPT,
) -> list[CheckResult]:
    """Check every (provider, model) pair of ``hub``, narrowed to ``providers`` and
    ``models`` when given, at most ``workers`` at a time. Each check makes one attempt (no
    retries, no fallback) within ``timeout`` seconds, asking for at most
    :data:`MAX_TOKENS` tokens."""
    chosen = _providers(hub, providers)
    pairs = [(p, m) for p in chosen for m in p.model if models is None or m in models]
    if not pairs:
        raise InvalidRequestError(
            "nothing to check: no installed provider matches "
            f"{_describe(providers, models)} (see 'providerhub models')"
        )
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs)))) as pool:
        return list(pool.map(lambda pair: _check(hub, pair[0], pair[1], timeout, prompt), pairs))


def _providers(hub: Hub, names: list[str] | None) -> list[Provider]:
    if not names:
        return list(hub.providers.values())
    found = []
    for name in names:
        p = hub.registry.lookup(name)
        if p is None:
            raise InvalidRequestError(
                f"no provider named {name!r} (installed: {', '.join(hub.providers) or 'none'})"
            )
        found.append(p)
    return found


def _describe(providers: list[str] | None, models: list[str] | None) -> str:
    parts = []
    if providers:
        parts.append(f"providers {', '.join(providers)}")
    if models:
        parts.append(f"models {', '.join(models)}")
    return " and ".join(parts) or "anything"


def _check(hub: Hub, p: Provider, model: str, timeout: float, prompt: str) -> CheckResult:
    if p.disabled or not p.working:
        why = "disabled by PROVIDERHUB_DISABLE_PLUGINS" if p.disabled else "marked not working"
        return CheckResult(p.name, model, "disabled", None, why)
    if p.needs_auth and not p.credential(None):
        return CheckResult(p.name, model, "needs auth", None, f"set {p.api_key_variable}")
    started = time.perf_counter()
    try:
        text = hub.create(
            model,
            [{"role": "user", "content": prompt}],
            provider=p.name,
            timeout=timeout,
            retries=0,
            max_tokens=MAX_TOKENS,
        )
    except ProviderHubError as exc:
        reason = _without_credentials(" ".join(str(exc).split()))
        return CheckResult(p.name, model, "failing", time.perf_counter() - started, reason)
    latency = time.perf_counter() - started
    if not text.strip():
        return CheckResult(p.name, model, "failing", latency, "answered with empty text")
    return CheckResult(p.name, model, "ok", latency, f"answered {len(text)} characters")


def _without_credentials(reason: str) -> str:
    """``reason`` with no user info or query value in its URLs. The hub's own errors show
    URLs without them; a provider's own exception text may hold its url as configured,
    password and all (``PROVIDERHUB_<NAME>_URL=https://user:password@host``)."""
    return redact(_USERINFO.sub("", reason))
