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
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from . import _settings as settings
from . import _transport as transport
from ._provider import Provider
from ._timeout import Timeout
from ._watchdog import Watched
from .errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    ModelNotFoundError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
)

if TYPE_CHECKING:
    from urllib3.util import Retry

    from ._hub import Hub

__all__ = [
    "Attempt",
    "Auth",
    "Call",
    "ProviderChoice",
    "Stream",
    "check_auth",
    "complete",
    "is_transient",
    "plan",
    "resolve",
]

logger = logging.getLogger("providerhub.router")  # a stable name for users' logging config

Auth = Union[str, Mapping[str, str], None]
ProviderChoice = Union[str, Sequence[str], None]


def resolve(hub: Hub, model: str, provider: ProviderChoice) -> tuple[str, ProviderChoice]:
    """The model to ask for, and the providers pinned, after aliases and pinned names.

    An alias (``hub.alias("fast", ...)``) stands for its model. ``name/model`` and
    ``name:model`` pin the provider ``name``, unless a provider serves the whole string as
    a model of its own (Ollama's ``llama3.2:1b``, say).
    """
    model = hub._aliases.get(model, model)
    if hub._serving(model):
        return model, provider
    for separator in ("/", ":"):
        head, found, rest = model.partition(separator)
        pinned = hub._lookup(head) if found and rest else None
        if pinned is None:
            continue
        if provider is not None and not (
            isinstance(provider, str) and provider.lower() == pinned.name.lower()
        ):
            raise InvalidRequestError(
                f"model {model!r} pins the provider {pinned.name!r}, but provider={provider!r} "
                "asks for another: give one or the other"
            )
        return hub._aliases.get(rest, rest), pinned.name
    return model, provider


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
    cooling: list[tuple[float, Provider]] = []
    for p in considered:
        why = _exclusion(p, model, stream, auth)
        if why is None:
            cooldown = hub.health.cooling(p.name)
            if cooldown is None:
                candidates.append(p)
                continue
            if cooldown.remaining > 0:  # one mid-probe is left to its probe
                cooling.append((cooldown.remaining, p))
            why = cooldown.describe()
        reasons[p.name] = why
    if not candidates and cooling:
        # Refusing outright would fail a call that one of them may well serve by now: try
        # the provider whose cooldown ends first.
        candidates.append(min(cooling, key=lambda pair: pair[0])[1])
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


class Attempt(NamedTuple):
    """One try of one provider: its ``number`` among that provider's tries in the call, and
    when it ``started`` (``time.perf_counter()``)."""

    number: int
    started: float


class Call:
    """One ``create()``: what was asked, and the budget of time and retries it has.

    Each candidate gets up to ``retries`` more attempts for a transient failure (connection,
    timeout, 429, 500, 502, 503, 504) that came before any text. Retrying a POST is safe
    here because a failed attempt produced nothing the caller saw: no text was yielded,
    so nothing can be duplicated. The counting, the backoff (exponential, with jitter) and
    its cap are urllib3's ``Retry``, the machinery ``requests`` ships; the loop is the
    router's because most of these failures (a reset or a stall before the first event, an
    error status from a provider that is not HTTP-based) happen where urllib3 cannot see
    them.
    """

    def __init__(
        self,
        hub: Hub,
        model: str,
        messages: list[Any],
        *,
        stream: bool,
        auth: Auth,
        timeout: Timeout,
        retries: Retry,
        kwargs: dict[str, Any],
    ) -> None:
        self.hub = hub
        self.model = model
        self.messages = messages
        self.stream = stream
        self.auth = auth
        self.timeout = timeout
        self.retries = retries
        self.kwargs = kwargs
        self.deadline = None if timeout.total is None else time.monotonic() + timeout.total

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def attempt_timeout(self, p: Provider) -> Timeout:
        """The timeout of one attempt: the call's, shrunk to what is left of the total."""
        left = self.remaining()
        if left is None:
            return self.timeout
        if left <= 0:
            raise ProviderTimeoutError(
                p.name,
                "the call's total timeout was spent before this provider could be asked",
                hint="raise timeout= to leave room for retries and fallbacks",
            )
        return Timeout(min(self.timeout.connect, left), min(self.timeout.read, left), left)

    def start(self, p: Provider) -> tuple[Iterator[str], str, Attempt]:
        """Call ``p``, retrying transient failures, until it gives its first non-empty
        piece of text (or ends without one). Returns the rest of its pieces and that first
        piece. Raises the last failure, a :class:`ProviderError` naming ``p``."""
        retry = self.retries
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            pieces: Iterator[str] | None = None
            secret = None
            try:
                limits = self.attempt_timeout(p)
                secret = p.credential(self.auth)
                extra: dict[str, Any] = {"timeout": limits, "session": self.hub.session}
                if secret:
                    extra["auth"] = secret
                self.hub.health.begin(p.name)
                pieces = p.complete(self.model, self.messages, self.stream, **self.kwargs, **extra)
                if not p.honors_timeout:
                    pieces = Watched(pieces, p.name, limits.read, self.deadline)
                first = ""
                for first in pieces:
                    if type(first) is not str:
                        raise _non_string(p, first)
                    if first:
                        break
            except InvalidRequestError:
                raise
            except Exception as exc:
                _close(pieces)
                err = _as_provider_error(p, exc, secret)
                self.hub.health.failure(p.name, err)
                wait, retry = self._next_wait(retry, err)
                outcome = type(err).__name__ + (" (retrying)" if wait is not None else "")
                _log(p, self.model, attempt, outcome, started)
                if wait is None:
                    raise err from None
                time.sleep(wait)
                continue
            return pieces, first, Attempt(attempt, started)

    def _next_wait(self, retry: Retry, err: ProviderError) -> tuple[float | None, Retry]:
        """How long to wait before retrying after ``err``, or None not to retry."""
        if not is_transient(err):
            return None, retry
        from urllib3.exceptions import MaxRetryError

        try:
            retry = retry.increment(method="POST", url=err.url or "")
        except MaxRetryError:
            return None, retry
        wait = retry.get_backoff_time()
        after = getattr(err, "retry_after", None)
        if after is not None:
            if after > self.hub.retry_after_max:
                return None, retry  # better to ask the next provider than to wait that long
            wait = max(wait, after)
        left = self.remaining()
        if left is not None and wait >= left:
            return None, retry
        return wait, retry

    def failed(self, p: Provider, exc: Exception, attempt: Attempt) -> ProviderError:
        """Record that ``p`` failed after its answer began, and give the typed error."""
        failure = _as_provider_error(p, exc, p.credential(self.auth))
        self.hub.health.failure(p.name, failure)
        _log(p, self.model, attempt.number, type(failure).__name__, attempt.started)
        return failure

    def finish(self, p: Provider, attempt: Attempt, outcome: str = "ok") -> None:
        """Record that ``p``'s answer ended (``outcome`` "closed": the caller stopped)."""
        if outcome == "ok":
            self.hub.health.success(p.name)
        _log(p, self.model, attempt.number, outcome, attempt.started)


RETRY_STATUSES = ProviderHTTPError.transient_statuses
"""HTTP statuses worth retrying: the provider may well answer the same request later."""


def is_transient(err: ProviderError) -> bool:
    """Whether ``err`` may pass if the same request is sent again: the error says so
    (:attr:`ProviderError.transient <providerhub.errors.ProviderError>`)."""
    return err.transient


def _as_provider_error(p: Provider, exc: BaseException, secret: str | None) -> ProviderError:
    """What a provider raised, as a typed error naming it, with no credential in it."""
    return transport.error_for_exception(p.name, exc, p.url, secrets=[secret])


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
    # Names, counts and times only: never message contents or credentials.
    logger.info(
        "provider=%s model=%s attempt=%d outcome=%s latency_ms=%.1f",
        p.name,
        model,
        attempt,
        outcome,
        (time.perf_counter() - started) * 1000,
    )


def complete(call: Call, candidates: list[Provider]) -> str:
    """The whole answer of the first candidate that gives one. Nothing has reached the
    caller until it returns, so a failure at any point makes way for the next candidate."""
    errors: dict[str, ProviderError] = {}
    for p in candidates:
        try:
            pieces, first, attempt = call.start(p)
        except ProviderError as err:
            errors[p.name] = err
            continue
        text = [first]
        try:
            for piece in pieces:
                if type(piece) is not str:
                    raise _non_string(p, piece)
                text.append(piece)
        except InvalidRequestError:
            raise
        except Exception as exc:
            errors[p.name] = call.failed(p, exc, attempt)
            continue
        finally:
            _close(pieces)
        call.finish(p, attempt)
        return "".join(text)
    raise _failed(call.model, errors)


class Stream(Iterator[str]):
    """The text of a streamed completion, piece by piece as it arrives.

    ``provider`` names the provider that answers, once the first piece is in. Leaving the
    loop early and calling :meth:`close` (or using it as a context manager) closes the
    connection.
    """

    def __init__(self, call: Call, candidates: list[Provider]) -> None:
        self.provider: str | None = None
        self.model = call.model
        self._pieces: Generator[str, None, None] = self._run(call, candidates)

    def __iter__(self) -> Iterator[str]:
        # The generator itself, so a ``for`` loop pays no Python-level __next__ per piece;
        # next(stream) advances the same generator.
        return self._pieces

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call, candidates: list[Provider]) -> Generator[str, None, None]:
        errors: dict[str, ProviderError] = {}
        for p in candidates:
            try:
                pieces, first, attempt = call.start(p)
            except ProviderError as err:
                errors[p.name] = err
                continue
            self.provider = p.name
            try:
                if first:
                    yield first
                for piece in pieces:
                    if type(piece) is not str:
                        raise _non_string(p, piece)
                    if piece:
                        yield piece
            except GeneratorExit:
                call.finish(p, attempt, "closed")
                raise
            except InvalidRequestError:
                raise
            except Exception as exc:
                raise call.failed(p, exc, attempt) from None
            finally:
                _close(pieces)
            call.finish(p, attempt)
            return
        raise _failed(call.model, errors)


def _close(pieces: Iterator[str] | None) -> None:
    close = getattr(pieces, "close", None)  # a provider may return any iterator
    if close is not None:
        close()
