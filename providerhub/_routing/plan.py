"""Choosing providers for a request, and the decisions of the loop that falls back among
them (:mod:`providerhub._routing._async`, with its generated synchronous twin): what an
attempt is given, whether a failure is retried and after how long, how an answer ends, and
the error when every candidate failed. Nothing here waits for the network.

Candidates for a model are the providers that list it, are working, stream when asked to,
and need no credential or have one. The caller's ``provider`` names pin the choice and its
order; otherwise registration order holds. A candidate that fails before any text reached
the caller makes way for the next; once text has reached the caller, a failure is raised,
because continuing elsewhere would mix two answers. A call whose every candidate is
cooling down is refused before anything is sent (:class:`ProvidersCoolingDownError`),
unless the hub says ``when_all_cooling="try-soonest"``.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from .. import _settings as settings
from .._codecs.completions import Assembler
from .._provider import Provider
from .._timeout import Timeout
from .._transports.errors import error_for_exception
from .._validation import did_you_mean
from ..errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    ProviderError,
    ProviderResponseError,
    ProvidersCoolingDownError,
    ProviderTimeoutError,
    RateLimitError,
    StructuredAnswerError,
)

if TYPE_CHECKING:
    import requests
    from urllib3.util import Retry

    from .._registry import Registry
    from .._state.health import Claim, Health
    from .._state.limits import Limiter
    from .strategies import Strategy

__all__ = [
    "Answer",
    "Attempt",
    "AttemptObserver",
    "Auth",
    "Call",
    "Plan",
    "ProviderChoice",
    "RetryPolicy",
    "all_failed",
    "check_auth",
    "is_transient",
    "non_string",
    "not_text",
    "observe_attempts",
    "plan",
    "resolve",
    "text_of",
]

logger = logging.getLogger("providerhub.router")  # a stable name for users' logging config

Auth = Union[str, Mapping[str, str], None]
ProviderChoice = Union[str, Sequence[str], None]


def resolve(
    registry: Registry, model: str, provider: ProviderChoice, *, embeddings: bool = False
) -> tuple[str, ProviderChoice]:
    """The model to ask for, and the providers pinned, after aliases and pinned names.

    An alias (``hub.alias("fast", ...)``) stands for its model. ``name/model`` and
    ``name:model`` pin the provider ``name``, unless a provider serves the whole string as
    a model of its own (Ollama's ``llama3.2:1b``, say); with ``embeddings``, as an
    embedding model of its own.
    """
    model = registry.unalias(model)
    if registry.serving(model, embeddings=embeddings):
        return model, provider
    for separator in ("/", ":"):
        head, found, rest = model.partition(separator)
        pinned = registry.lookup(head) if found and rest else None
        if pinned is None:
            continue
        if provider is not None and not (
            isinstance(provider, str) and provider.lower() == pinned.name.lower()
        ):
            raise InvalidRequestError(
                f"model {model!r} pins the provider {pinned.name!r}, but provider={provider!r} "
                "asks for another: give one or the other"
            )
        return registry.unalias(rest), pinned.name
    return model, provider


class Plan(NamedTuple):
    """What :func:`plan` found: the ``candidates``, best first; why each other provider
    serving the model was left out (``reasons``); and, of those, the ones left out only
    because they are cooling down (``cooling``), with the seconds until each takes a call
    again (0 while another call probes it)."""

    candidates: list[Provider]
    reasons: dict[str, str]
    cooling: dict[str, float]


def plan(
    registry: Registry,
    health: Health,
    model: str,
    *,
    stream: bool,
    auth: Auth,
    provider: ProviderChoice,
    needs: frozenset[str] = frozenset(),
    try_soonest: bool = False,
    embeddings: bool = False,
) -> Plan:
    """The candidates for ``model``, best first, and why each other provider that serves
    it was left out. ``needs`` names the capability fields the request needs (see
    :func:`providerhub._contract.required_capabilities`). When every provider that fits
    is cooling down there is no candidate, unless ``try_soonest``: then the one whose
    cooldown ends first is (see :class:`Call`). With ``embeddings``, the providers are
    those that list ``model`` among their ``embedding_models``."""
    serving = registry.serving(model, embeddings=embeddings)
    pinned = _pinned(registry, provider)
    if not serving:
        raise ModelNotFoundError(
            model,
            _close_models(registry, model, embeddings),
            hint=_not_found_hint(registry, model, pinned, embeddings),
        )
    considered = serving if pinned is None else pinned
    candidates: list[Provider] = []
    reasons: dict[str, str] = {}
    cooling: dict[str, float] = {}
    for p in considered:
        why = _exclusion(p, model, stream, auth, needs, embeddings)
        if why is None:
            cooldown = health.cooling(p.name)
            if cooldown is None:
                candidates.append(p)
                continue
            cooling[p.name] = cooldown.remaining
            why = cooldown.describe()
        reasons[p.name] = why
    if not candidates and try_soonest:
        waiting = {name: left for name, left in cooling.items() if left > 0}
        if waiting:  # one mid-probe is left to its probe
            soonest = min(waiting, key=waiting.__getitem__)
            candidates.append(next(p for p in considered if p.name == soonest))
    if pinned is not None:
        for p in serving:
            if p not in pinned:
                reasons.setdefault(p.name, "not among the providers asked for")
    return Plan(candidates, reasons, cooling)


def _not_found_hint(
    registry: Registry, model: str, pinned: list[Provider] | None, embeddings: bool
) -> str:
    """What a model no provider lists for this kind of call may be instead: the pinned
    providers' models, or the other kind's model of that name."""
    if pinned:
        return "; ".join(
            f"{p.name} serves {', '.join(_served(p, embeddings)) or 'nothing'}" for p in pinned
        )
    if registry.serving(model, embeddings=not embeddings):
        if embeddings:
            return "it is a chat model: ask for chat completions, not embeddings"
        return "it is an embedding model: use client.embeddings.create"
    return ""


def _served(p: Provider, embeddings: bool) -> tuple[str, ...]:
    return p.embedding_models if embeddings else p.model


def _exclusion(
    p: Provider,
    model: str,
    stream: bool,
    auth: Auth,
    needs: frozenset[str],
    embeddings: bool = False,
) -> str | None:
    served = _served(p, embeddings)
    if model not in served:
        kind = "the embedding model" if embeddings else ""
        return (
            f"does not serve {kind}{' ' if kind else ''}{model!r} "
            f"(it serves {', '.join(served) or 'nothing'})"
        )
    if p.disabled:
        return f"disabled by {settings.DISABLE_VARIABLE}"
    if not p.working:
        return "not working (its plugin marks it working = False)"
    if stream and not p.supports_stream:
        return "cannot stream: pass stream=False"
    if p.needs_auth and not p.credential(auth):
        return f"needs a credential: set {p.api_key_variable} or pass auth={{{p.name!r}: ...}}"
    for need in needs:
        if not p.capabilities[need]:
            setting = p.capability_setting(need)
            why = f"{need} is off: {setting}" if setting else f"no {need}"
            return f"cannot serve this request: {_LACKS[need]} ({why})"
    return None


_LACKS = {
    "supports_tools": "it does not take tools",
    "supports_vision": "it does not take image or file parts",
    "supports_audio": "it does not take audio parts",
    "supports_json_schema": "it does not take a json_schema response_format",
}
"""What a provider without each capability field cannot take; the reason goes on with
the setting that turns it on, when the provider names one (``capability_settings``)."""


def _pinned(registry: Registry, provider: ProviderChoice) -> list[Provider] | None:
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
        found = registry.lookup(name)
        if found is None:
            known = sorted(registry.providers)
            tip = did_you_mean(name.lower(), [k.lower() for k in known])
            raise InvalidRequestError(
                f"no provider named {name!r}{tip} (installed: {', '.join(known) or 'none'}; "
                "run 'providerhub providers')"
            )
        if found not in pinned:
            pinned.append(found)
    return pinned


def _close_models(registry: Registry, model: str, embeddings: bool = False) -> list[str]:
    known = registry.models(embeddings=embeddings)
    lowered = {m.lower(): m for m in known}
    if model.lower() in lowered:
        return [lowered[model.lower()]]
    return difflib.get_close_matches(model, known, n=3, cutoff=0.6)


def check_auth(auth: object, provider: ProviderChoice) -> None:
    """A credential given as a bare string belongs to one named provider: sent to whatever
    the router picked, it could reach a service it was never meant for. A credential goes
    in an HTTP header, so it must be printable ASCII: one that is not would fail as the
    request is built, the caller's mistake, not the provider's failure."""
    if auth is None:
        return
    if isinstance(auth, str):
        if not auth:
            raise InvalidRequestError("auth is an empty string")
        _check_credential("auth", auth)
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
            _check_credential(f"the credential for {key!r}", value)
        return
    raise InvalidRequestError(
        f"auth must be a string or a {{provider: credential}} mapping, not {type(auth).__name__}"
    )


def _check_credential(what: str, credential: str) -> None:
    # Not shown: the value is a credential.
    if not (credential.isascii() and credential.isprintable()) or credential != credential.strip():
        raise InvalidRequestError(
            f"{what} must be printable ASCII without spaces around it (it is sent in an "
            "HTTP header); it holds a line break, a control character, a non-ASCII "
            "character or surrounding spaces"
        )


class Attempt(NamedTuple):
    """One try of one provider: its ``number`` among that provider's tries in the call,
    when it ``started`` (``time.perf_counter()``), and the breaker's leave to ask the
    provider, which the call settles when the answer ends."""

    number: int
    started: float
    claim: Claim


class RetryPolicy(NamedTuple):
    """How a call retries: ``retries`` (urllib3's ``Retry``: the count, the backoff and its
    jitter), and ``retry_after_max``, the longest ``Retry-After`` worth waiting for (a
    longer one means: fall back at once)."""

    retries: Retry
    retry_after_max: float


@dataclass(eq=False, repr=False)  # a call is itself, and its repr shows no credential
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

    model: str
    messages: list[Any]
    stream: bool
    auth: Auth
    timeout: Timeout
    kwargs: dict[str, Any]
    health: Health
    session: requests.Session
    policy: RetryPolicy
    limiter: Limiter
    structured: bool = False
    """Whether the caller takes structured pieces (the client) or text only."""
    try_soonest: bool = False
    """Whether the last candidate is asked, once, even while it cools down, when no other
    was (``Hub(when_all_cooling="try-soonest")``); else the call is refused."""
    operation: str = "chat"
    """What the provider is asked for: ``"chat"``, a completion of ``messages``
    (``_create_completion``), or ``"embeddings"``, the vectors of ``kwargs["input"]``
    (``_create_embedding``), whose one piece is a
    :class:`~providerhub.types.CreateEmbeddingResponse` (after its usage); ``messages`` is
    then empty and ``stream`` false; or ``"messages"``, the request a client of the
    provider's own dialect sent (``kwargs["native_body"]``), passed on unchanged
    (``_acreate_message``, asyncio only), whose pieces are
    :class:`~providerhub.types.Verbatim`. Everything else (claims, retries, fallback,
    limits) is the same loop's."""
    strategy: Strategy | None = None
    """The model's routing strategy when it learns from the calls (``least-busy``,
    ``lowest-latency``): the loop tells it of each claim and first piece; None for the
    others, which cost the loop nothing."""
    deadline: float | None = field(init=False)
    """When the call's total timeout runs out (``time.monotonic()``), or None."""
    refused: dict[str, str] = field(init=False, default_factory=dict)
    """Candidates the breaker or their rate limit turned away when their turn came, and
    why."""
    waits: dict[str, float] = field(init=False, default_factory=dict)
    """Candidates at their rate limit, and the seconds until they take a call."""
    cooling: dict[str, float] = field(init=False, default_factory=dict)
    """Candidates the breaker turned away, and the seconds until they take a call (0 while
    another call probes them)."""
    once: set[str] = field(init=False, default_factory=set)
    """Candidates asked while cooling down (``try_soonest``): one attempt each, no retry."""
    asession: Callable[[], Awaitable[Any]] | None = field(init=False, default=None)
    """For the asyncio loop (:mod:`providerhub._routing._async`): gives the hub's
    ``aiohttp.ClientSession`` of the running event loop."""

    def __post_init__(self) -> None:
        total = self.timeout.total
        self.deadline = None if total is None else time.monotonic() + total

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

    def refuse_cooling(self, p: Provider) -> None:
        """Note why the breaker turned ``p`` away, and when it takes calls again."""
        cooldown = self.health.cooling(p.name)
        self.refused[p.name] = "cooling down" if cooldown is None else cooldown.describe()
        self.cooling[p.name] = 0.0 if cooldown is None else cooldown.remaining

    def refuse_at_limit(self, p: Provider, claim: Claim, wait: float) -> None:
        """Give back ``claim``: ``p`` is at its rate limit for ``wait`` seconds (or a
        :class:`~providerhub._state.limits.Refusal`)."""
        claim.release()
        self.waits[p.name] = wait
        self.refused[p.name] = getattr(wait, "reason", None) or (
            f"at its rate limit ({p.limits.describe()}): it takes a call again in {wait:.1f} s"
        )

    def provider_kwargs(
        self, p: Provider, limits: Timeout, secret: str | None, session: Any
    ) -> dict[str, Any]:
        """What the router adds to the caller's keyword arguments for one attempt of
        ``p``: ``timeout``, ``session``, ``structured`` (to a provider that yields
        pieces) and ``auth`` (when there is a credential)."""
        extra: dict[str, Any] = {"timeout": limits, "session": session}
        if p.yields_pieces and self.operation == "chat":
            extra["structured"] = True  # the pieces of providerhub.types too
        if secret:
            extra["auth"] = secret
        return extra

    def failure_wait(
        self, p: Provider, claim: Claim, exc: Exception, secret: str | None, retry: Retry
    ) -> tuple[ProviderError, float | None, Retry]:
        """After an attempt of ``p`` failed with ``exc`` before its answer began: the typed
        error, counted against ``p``, and the wait before a retry (None for
        none), before the rate limit has a say (the loop asks it for room for one more
        request, then calls :meth:`retry_or_raise`)."""
        err = _as_provider_error(p, exc, secret)
        probing = claim.probe
        claim.failure(err)
        # A failed probe says the provider is still down, and the breaker has re-opened:
        # the next candidate is asked at once, and the cooldown is not doubled again by
        # each retry.
        wait, retry = (
            (None, retry) if probing or p.name in self.once else self._next_wait(retry, err)
        )
        return err, wait, retry

    def retry_or_raise(
        self,
        p: Provider,
        err: ProviderError,
        wait: float | None,
        retry: Retry,
        attempt: int,
        started: float,
    ) -> tuple[float, Retry]:
        """After :meth:`failure_wait` and the rate limit's say: log attempt ``attempt``,
        and give the wait and the retries left, or raise ``err`` when ``wait`` is None."""
        outcome = type(err).__name__ + (" (retrying)" if wait is not None else "")
        _log(p, self.model, attempt, outcome, started)
        if wait is None:
            raise err from None
        return wait, retry

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
            if after > self.policy.retry_after_max:
                return None, retry  # better to ask the next provider than to wait that long
            wait = max(wait, after)
        left = self.remaining()
        if left is not None and wait >= left:
            return None, retry
        return wait, retry

    def failed(self, p: Provider, exc: Exception, attempt: Attempt) -> ProviderError:
        """Record that ``p`` failed after its answer began, and give the typed error."""
        failure = _as_provider_error(p, exc, p.credential(self.auth))
        attempt.claim.failure(failure)
        _log(p, self.model, attempt.number, type(failure).__name__, attempt.started)
        return failure

    def finish(self, p: Provider, attempt: Attempt, outcome: str = "ok") -> None:
        """Record that ``p``'s answer ended (``outcome`` "closed": the caller stopped,
        which tells nothing of the provider's health). The caller releases the attempt's
        claim whichever way the answer ended; after a success that does nothing."""
        if outcome == "ok":
            attempt.claim.success()
        _log(p, self.model, attempt.number, outcome, attempt.started)


def is_transient(err: ProviderError) -> bool:
    """Whether ``err`` may pass if the same request is sent again: the error says so
    (:attr:`ProviderError.transient <providerhub.errors.ProviderError>`)."""
    return err.transient


def _as_provider_error(p: Provider, exc: BaseException, secret: str | None) -> ProviderError:
    """What a provider raised, as a typed error naming it, with no credential in it."""
    return error_for_exception(p.name, exc, p.url, secrets=[secret])


def non_string(p: Provider, piece: object) -> ProviderResponseError:
    return ProviderResponseError(
        p.name,
        f"yielded {type(piece).__name__}, not text or a piece of providerhub.types",
        hint="a bug in the provider's plugin; try another provider",
    )


def not_text(call: Call, assembler: Assembler, provider: str) -> StructuredAnswerError:
    return StructuredAnswerError(assembler.completion(call.model, provider))


def all_failed(call: Call, errors: dict[str, ProviderError]) -> Exception:
    if not errors:  # the breaker or the rate limits turned every candidate away
        if call.waits and len(call.waits) == len(call.refused):
            return _rate_limited(call)
        if call.cooling:
            waits = {**call.waits, **call.cooling}
            return ProvidersCoolingDownError(call.model, call.refused, waits, stream=call.stream)
        return NoProviderError(call.model, call.refused, stream=call.stream)
    if len(errors) == 1:
        return next(iter(errors.values()))
    return AllProvidersFailedError(call.model, errors)


def _rate_limited(call: Call) -> RateLimitError:
    """Every candidate was at its rate limit: the error names the one free soonest."""
    name, wait = min(call.waits.items(), key=lambda pair: pair[1])
    others = [f"{n}: {why}" for n, why in call.refused.items() if n != name]
    message = call.refused[name]
    if others:
        message += "; so is every other provider of the model (" + "; ".join(others) + ")"
    return RateLimitError(
        name,
        message,
        retry_after=wait,
        hint=f"retry in {wait:.1f} s, or raise the provider's rpm/tpm",
    )


AttemptObserver = Callable[[str, str, int, str, float], None]
"""Told of each attempt as it ends: the provider's name, the model, the attempt's number
among that provider's in the call, its outcome ("ok", "closed", or the error's class,
with " (retrying)" when another attempt follows) and its seconds."""

_observers: list[AttemptObserver] = []


def observe_attempts(observer: AttemptObserver) -> None:
    """Have ``observer`` told of every attempt of every call in this process (once, however
    often it is added): what the server counts its attempts with, at the cost of a call
    rather than of a log record. It runs on the thread that made the attempt, and must be
    quick and never raise."""
    if observer not in _observers:
        _observers.append(observer)


def _log(p: Provider, model: str, attempt: int, outcome: str, started: float) -> None:
    seconds = time.perf_counter() - started
    for observer in _observers:
        observer(p.name, model, attempt, outcome, seconds)
    # Names, counts and times only: never message contents or credentials. Formatted only
    # for someone who listens: a record costs more than the rest of the bookkeeping.
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "provider=%s model=%s attempt=%d outcome=%s latency_ms=%.1f",
            p.name,
            model,
            attempt,
            outcome,
            seconds * 1000,
        )


def text_of(call: Call, assembler: Assembler, provider: str) -> str:
    """The text of an answer ``provider`` gave, gathered in ``assembler``, or
    :class:`StructuredAnswerError` when it holds tool calls, which text cannot carry."""
    if assembler.has_tool_calls:
        raise not_text(call, assembler, provider)
    return assembler.text


class Answer:
    """What a stream's generator tells its stream (:class:`~providerhub._routing.router.Stream`,
    :class:`~providerhub._routing.arouter.NativeStream`): kept apart from the stream,
    so that the generator holds no reference to it, and a stream dropped unfinished is
    freed, and closed, at once."""

    __slots__ = ("provider",)

    def __init__(self) -> None:
        self.provider: str | None = None
