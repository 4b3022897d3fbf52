"""Choosing providers for a request, and falling back among them.

Candidates for a model are the providers that list it, are working, stream when asked to,
and need no credential or have one. The caller's ``provider`` names pin the choice and its
order; otherwise registration order holds. A candidate that fails before any text reached
the caller makes way for the next; once text has reached the caller, a failure is raised,
because continuing elsewhere would mix two answers.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from . import settings, transport
from .errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderResponseError,
)
from .provider import Provider
from .timeout import Timeout

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Auth", "ProviderChoice", "Stream", "complete", "plan", "stream"]

logger = logging.getLogger(__name__)

Auth = Union[str, Mapping[str, str], None]
ProviderChoice = Union[str, Sequence[str], None]


def plan(
    hub: Hub, model: str, *, stream: bool, auth: Auth, provider: ProviderChoice
) -> tuple[list[Provider], dict[str, str]]:
    """The candidates for ``model``, best first, and why each other provider that serves
    it was left out."""
    serving = hub._serving(model)
    pinned = _pinned(hub, provider)
    if not serving:
        hint = ""
        if pinned:
            hint = "; ".join(f"{p.name} serves {', '.join(p.model) or 'nothing'}" for p in pinned)
        raise ModelNotFoundError(model, _close_models(hub, model), hint=hint)
    considered = serving if pinned is None else pinned
    candidates: list[Provider] = []
    reasons: dict[str, str] = {}
    for p in considered:
        why = _exclusion(p, model, stream, auth)
        if why is None:
            candidates.append(p)
        else:
            reasons[p.name] = why
    if pinned is not None:
        for p in serving:
            if p not in pinned:
                reasons.setdefault(p.name, "not among the providers asked for")
    return candidates, reasons


def _exclusion(p: Provider, model: str, stream: bool, auth: Auth) -> str | None:
    if model not in p.model:
        return f"does not serve {model!r} (it serves {', '.join(p.model) or 'nothing'})"
    if p.disabled:
        return f"disabled by {settings.DISABLE_VARIABLE}"
    if not p.working:
        return "not working (its plugin marks it working = False)"
    if stream and not p.supports_stream:
        return "cannot stream: pass stream=False"
    if p.needs_auth and not p.credential(auth):
        return f"needs a credential: set {p.api_key_variable} or pass auth={{{p.name!r}: ...}}"
    return None


def _pinned(hub: Hub, provider: ProviderChoice) -> list[Provider] | None:
    if provider is None:
        return None
    if isinstance(provider, str):
        names = [provider]
    elif isinstance(provider, (list, tuple)):
        names = list(provider)
    else:
        names = []
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidRequestError(
            f"provider must be a provider name or a list of names, not {provider!r}"
        )
    pinned = []
    for name in names:
        found = hub._lookup(name)
        if found is None:
            known = sorted(hub.providers)
            close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=1)
            tip = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidRequestError(
                f"no provider named {name!r}{tip} (installed: {', '.join(known) or 'none'}; "
                "run 'providerhub providers')"
            )
        if found not in pinned:
            pinned.append(found)
    return pinned


def _close_models(hub: Hub, model: str) -> list[str]:
    known = hub._models()
    lowered = {m.lower(): m for m in known}
    if model.lower() in lowered:
        return [lowered[model.lower()]]
    return difflib.get_close_matches(model, known, n=3, cutoff=0.6)


def check_auth(auth: object, provider: ProviderChoice) -> None:
    """A credential given as a bare string belongs to one named provider: sent to whatever
    the router picked, it could reach a service it was never meant for."""
    if auth is None:
        return
    if isinstance(auth, str):
        if not auth:
            raise InvalidRequestError("auth is an empty string")
        if not isinstance(provider, str):
            raise InvalidRequestError(
                "a credential given as a string needs one provider to go to: pass "
                "provider='name', or auth={'name': credential}"
            )
        return
    if isinstance(auth, Mapping):
        for key, value in auth.items():
            if not isinstance(key, str) or not isinstance(value, str) or not value:
                raise InvalidRequestError(
                    "auth must map provider names to non-empty credential strings "
                    f"(the entry for {key!r} is not one)"
                )
        return
    raise InvalidRequestError(
        f"auth must be a string or a {{provider: credential}} mapping, not {type(auth).__name__}"
    )


def _call(
    hub: Hub,
    p: Provider,
    model: str,
    messages: list[Any],
    stream: bool,
    auth: Auth,
    timeout: Timeout,
    kwargs: dict[str, Any],
) -> tuple[Iterator[str], str | None]:
    credential = p.credential(auth)
    extra: dict[str, Any] = {"timeout": timeout, "session": hub.session}
    if credential:
        extra["auth"] = credential
    return p.complete(model, messages, stream, **kwargs, **extra), credential


def _as_provider_error(p: Provider, exc: BaseException, secret: str | None) -> ProviderError:
    """What a provider raised, as a typed error naming it, with no credential in it."""
    if isinstance(exc, ProviderError):
        return exc
    origin = type(exc).__module__.split(".")[0]
    if origin in ("requests", "urllib3"):
        return transport.error_for_exception(p.name, exc, p.url)
    text = transport.redact(f"{type(exc).__name__}: {exc}", [secret])
    if isinstance(exc, (KeyError, IndexError, ValueError)):
        return ProviderResponseError(
            p.name,
            f"could not read the service's answer ({text})",
            url=transport.safe_url(p.url),
            hint="the service may have changed its API; try another provider",
        )
    return ProviderError(
        p.name,
        f"raised {text}",
        url=transport.safe_url(p.url),
        hint="a bug in the provider's plugin; try another provider",
    )


def _non_string(p: Provider, piece: object) -> ProviderResponseError:
    return ProviderResponseError(
        p.name,
        f"yielded {type(piece).__name__}, not text",
        hint="a bug in the provider's plugin; try another provider",
    )


def _failed(model: str, errors: dict[str, ProviderError]) -> Exception:
    if len(errors) == 1:
        return next(iter(errors.values()))
    return AllProvidersFailedError(model, errors)


def _log(p: Provider, model: str, attempt: int, outcome: str, started: float) -> None:
    logger.info(
        "provider=%s model=%s attempt=%d outcome=%s latency_ms=%.1f",
        p.name,
        model,
        attempt,
        outcome,
        (time.perf_counter() - started) * 1000,
    )


def complete(
    hub: Hub,
    candidates: list[Provider],
    model: str,
    messages: list[Any],
    *,
    auth: Auth,
    timeout: Timeout,
    kwargs: dict[str, Any],
) -> str:
    """The whole answer of the first candidate that gives one. Nothing has reached the
    caller until it returns, so a failure at any point makes way for the next candidate."""
    errors: dict[str, ProviderError] = {}
    for attempt, p in enumerate(candidates, 1):
        started = time.perf_counter()
        secret = None
        try:
            pieces, secret = _call(hub, p, model, messages, False, auth, timeout, kwargs)
            text = []
            for piece in pieces:
                if type(piece) is not str:
                    raise _non_string(p, piece)
                text.append(piece)
        except InvalidRequestError:
            raise
        except Exception as exc:
            err = _as_provider_error(p, exc, secret)
            _log(p, model, attempt, type(err).__name__, started)
            errors[p.name] = err
            continue
        _log(p, model, attempt, "ok", started)
        return "".join(text)
    raise _failed(model, errors)


class Stream(Iterator[str]):
    """The text of a streamed completion, piece by piece as it arrives.

    ``provider`` names the provider that answers, once the first piece is in. Leaving the
    loop early and calling :meth:`close` (or using it as a context manager) closes the
    connection.
    """

    def __init__(
        self,
        hub: Hub,
        candidates: list[Provider],
        model: str,
        messages: list[Any],
        *,
        auth: Auth,
        timeout: Timeout,
        kwargs: dict[str, Any],
    ) -> None:
        self.provider: str | None = None
        self.model = model
        self._pieces: Generator[str, None, None] = self._run(
            hub, candidates, model, messages, auth, timeout, kwargs
        )

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(
        self,
        hub: Hub,
        candidates: list[Provider],
        model: str,
        messages: list[Any],
        auth: Auth,
        timeout: Timeout,
        kwargs: dict[str, Any],
    ) -> Generator[str, None, None]:
        errors: dict[str, ProviderError] = {}
        for attempt, p in enumerate(candidates, 1):
            started = time.perf_counter()
            secret = None
            pieces: Iterator[str] | None = None
            try:
                pieces, secret = _call(hub, p, model, messages, True, auth, timeout, kwargs)
                first = ""
                for first in pieces:
                    if type(first) is not str:
                        raise _non_string(p, first)
                    if first:
                        break
            except InvalidRequestError:
                raise
            except Exception as exc:
                err = _as_provider_error(p, exc, secret)
                _log(p, model, attempt, type(err).__name__, started)
                errors[p.name] = err
                _close(pieces)
                continue
            self.provider = p.name
            assert pieces is not None
            try:
                if first:
                    yield first
                for piece in pieces:
                    if type(piece) is not str:
                        raise _non_string(p, piece)
                    if piece:
                        yield piece
            except GeneratorExit:
                _log(p, model, attempt, "closed", started)
                raise
            except ProviderError as exc:
                _log(p, model, attempt, type(exc).__name__, started)
                raise
            except Exception as exc:
                err = _as_provider_error(p, exc, secret)
                _log(p, model, attempt, type(err).__name__, started)
                raise err from None
            finally:
                _close(pieces)
            _log(p, model, attempt, "ok", started)
            return
        raise _failed(model, errors)


def _close(pieces: Iterator[str] | None) -> None:
    close = getattr(pieces, "close", None)  # a provider may return any iterator
    if close is not None:
        close()


def stream(
    hub: Hub,
    candidates: list[Provider],
    model: str,
    messages: list[Any],
    *,
    auth: Auth,
    timeout: Timeout,
    kwargs: dict[str, Any],
) -> Stream:
    return Stream(hub, candidates, model, messages, auth=auth, timeout=timeout, kwargs=kwargs)
