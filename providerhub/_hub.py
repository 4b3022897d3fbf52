"""The hub: the providers one program uses, loaded from plugins, and the calls made
through them."""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _settings as settings
from . import hookspecs
from ._contract import missing_fields, required_capabilities
from ._plugins import Available, PluginFailure, discover
from ._provider import Provider
from ._redaction import one_line
from ._registry import Registry
from ._routing import router
from ._routing.strategies import Routing
from ._state.choose import resolve
from ._state.health import Health
from ._state.store import StateLike
from ._timeout import TimeoutLike, to_timeout
from ._transports.sync import new_session
from ._validation import (
    validate_embedding_input,
    validate_embedding_options,
    validate_messages,
    validate_model,
    validate_parameters,
)
from .errors import (
    ConfigurationError,
    InvalidRequestError,
    NoProviderError,
    PluginError,
    ProviderHubError,
    ProvidersCoolingDownError,
)

if TYPE_CHECKING:
    import pluggy
    import requests
    from urllib3.util import Retry

    from ._api import Create
    from ._model_cache import Cached
    from ._routing.arouter import AsyncStream
    from ._routing.plan import Plan
    from ._routing.router import Auth, ProviderChoice
    from ._transports.aio import Sessions
    from .types import Piece

    Offered = tuple[str, tuple[str, ...], str | None, tuple[str, ...]]
    """A provider a plugin offered: its name, the variables, its url, its models."""

DEFAULT_RETRIES = 2

logger = logging.getLogger("providerhub")

__all__ = ["Hub", "get_hub", "signed"]


def signed(
    function: Callable[..., Any],
    parameters: Callable[..., Any],
    name: str,
    *,
    unbound: bool = False,
    keywords: bool = False,
) -> Any:
    """``function``, a ``create`` that passes ``*args, **kwargs`` on to ``parameters``
    (:meth:`Hub._prepare`), named ``name`` and showing the parameters of ``parameters`` with
    its own return annotation to ``help()`` and :func:`inspect.signature`.

    ``unbound`` leaves ``self`` out (a module-level function); ``keywords`` makes ``model``,
    ``messages`` and ``input`` keyword-only and calls ``**kwargs`` ``**params``, as the
    clients' ``create`` takes them. The result is typed ``Any``: the attribute it is assigned to is
    annotated with its signature, a protocol of :mod:`providerhub._api`."""
    shown = list(inspect.signature(parameters).parameters.values())[1 if unbound else 0 :]
    if keywords:
        shown = [
            p.replace(name="params")
            if p.kind is p.VAR_KEYWORD
            else p.replace(kind=p.KEYWORD_ONLY)
            if p.name in ("model", "messages", "input")
            else p
            for p in shown
        ]
    returns = inspect.signature(function).return_annotation
    function.__signature__ = inspect.Signature(shown, return_annotation=returns)  # type: ignore[attr-defined]
    owner, dot, _ = function.__qualname__.rpartition(".")
    function.__name__ = name
    function.__qualname__ = owner + dot + name
    return function


class Hub:
    """A set of providers and the state of the calls made through them.

    ``Hub()`` loads every plugin of the ``providerhub`` entry-point group, each on its own:
    one that fails to import, lacks the provider contract or raises while registering is
    skipped and listed in :attr:`plugin_errors`, and the others load. ``Hub(False)`` starts
    empty, for tests and for programs that register their own providers.

    The hub owns a pooled ``requests.Session``, made on the first request; :meth:`close`
    (or ``with Hub() as hub:``) releases it. It also keeps the retry settings and the
    cooldowns of its providers: after ``failure_threshold`` failures in a row a provider is
    left alone for ``cooldown`` seconds (doubling while it keeps failing, up to
    ``max_cooldown``); see docs/routing.md. ``state`` says where cooldowns and rate-limit
    counts are kept: in this process, or shared with every process that points at the same
    Redis (see :data:`providerhub.StateLike` and docs/deploy.md). ``when_all_cooling``
    says what a call whose every candidate is cooling down gets: ``"refuse"`` (the
    default), :class:`ProvidersCoolingDownError` at once, nothing sent; ``"try-soonest"``,
    one attempt at the provider whose cooldown ends first; None follows
    ``PROVIDERHUB_WHEN_ALL_COOLING``. ``routing`` gives each model its routing strategy
    (ordered fallback, weighted, least-busy, lowest-latency, usage-aware), as the
    ``[routing]`` table of the configuration file does, which is read when ``routing`` is
    None (see docs/operations.md).
    """

    def __init__(
        self,
        load_entrypoints: bool = True,
        *,
        retries: int | Retry = DEFAULT_RETRIES,
        retry_after_max: float = 30.0,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        max_cooldown: float = 600.0,
        state: StateLike = None,
        when_all_cooling: str | None = None,
        routing: Mapping[str, Any] | None = None,
    ) -> None:
        self.when_all_cooling = settings.when_all_cooling(when_all_cooling)
        """``"refuse"`` or ``"try-soonest"``: see the class."""
        table: Mapping[str, Any]
        if routing is None:
            from ._config_file import read_table

            table, path, problem = read_table("routing")
            where = f"{path} [routing]"
            if problem:
                logger.warning("every model is routed in order: %s", problem)
        else:
            table, where = routing, "Hub(routing=...)"
        routing_table = Routing(table, where)  # checked before a state holds connections
        self.state = resolve(state)
        """Where the cooldowns and rate-limit counts are kept: in this process (the
        default), or shared through Redis (``PROVIDERHUB_REDIS_URL``, or ``state=`` a
        ``redis://`` URL or a :class:`providerhub.RedisState`)."""
        routing_table.clock = self.state.clock
        self.routing = routing_table
        """Each model's routing strategy (:meth:`strategy` names it), made from
        ``routing`` or the configuration file's ``[routing]`` table."""
        self.retries = retries
        """Default retries of each provider, per call: a count, or a ``urllib3`` ``Retry``
        for full control of the backoff."""
        self.retry_after_max = retry_after_max
        """The longest ``Retry-After`` worth waiting for; a longer one means: fall back."""
        self.health: Health = self.state.health(failure_threshold, cooldown, max_cooldown)
        """The cooldown (circuit breaker) state of this hub's providers."""
        self.plugin_errors: list[PluginFailure] = []
        """Plugins that were skipped, and why."""
        self.available: list[Available] = []
        """Providers the plugins offer but have not registered, each with the variables
        that would activate it (a catalog's services without their keys, say)."""
        self.disabled_plugins: list[str] = []
        """Entry points skipped because ``PROVIDERHUB_DISABLE_PLUGINS`` names them."""
        self.alias_errors: list[str] = []
        """Aliases of ``PROVIDERHUB_ALIASES`` that were not applied, and why, one line each."""
        # Read now, so that a malformed value fails before any plugin is imported; applied
        # once the plugins are in, so that the check of alias() sees the models they serve.
        environment_aliases = settings.aliases()
        settings.check_models_variables()
        self.registry = Registry()
        """The providers by name and by model, and the aliases: what the router reads."""
        self._lock = threading.RLock()
        self._pm: pluggy.PluginManager | None = None
        self._session: requests.Session | None = None
        self._asessions: Sessions | None = None
        self._model_cache: Cached | None = None
        if load_entrypoints:
            self.load_entrypoints()
        self._apply_environment_aliases(environment_aliases)

    def __repr__(self) -> str:
        return f"<Hub providers={list(self.providers)!r}>"

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plugins -------------------------------------------------------------------------

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """This hub's own ``pluggy.PluginManager``, with the providerhub hookspecs."""
        if self._pm is None:
            import pluggy

            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            self._pm = pm
        return self._pm

    def load_entrypoints(self) -> None:
        """Load every plugin of the ``providerhub`` entry-point group not yet loaded."""
        disabled = settings.disabled_names()
        for ep in discover():
            if ep.name.lower() in disabled:
                self.disabled_plugins.append(ep.name)
                continue
            if self._pm is not None and self._pm.has_plugin(ep.name):
                continue
            try:
                obj = ep.load()
            except (Exception, SystemExit) as exc:
                self._fail(ep.name, ep.distribution, f"failed to import: {one_line(exc)}")
                continue
            try:
                self._add(obj, ep.name, ep.distribution, ep.version, ep.name)
            except (Exception, SystemExit) as exc:
                self._fail(ep.name, ep.distribution, one_line(exc))

    def _apply_environment_aliases(self, pairs: Mapping[str, str]) -> None:
        """Apply the aliases of ``PROVIDERHUB_ALIASES`` through :meth:`alias`, which refuses
        one that would hide a model a provider serves. A refused alias is left out and
        recorded in :attr:`alias_errors`; the others apply, and the hub is built."""
        for alias, model in pairs.items():
            try:
                self.alias(alias, model)
            except ConfigurationError as exc:
                self.alias_errors.append(
                    f"{settings.ALIASES_VARIABLE}: {alias}={model} was left out: {exc}"
                )

    def _fail(self, name: str, distribution: str | None, error: str) -> None:
        self.plugin_errors.append(PluginFailure(name, distribution, error))

    def _add(
        self,
        obj: Any,
        plugin: str,
        distribution: str | None,
        version: str | None,
        default_name: str,
    ) -> list[Provider]:
        if _has_hookimpls(obj):
            return self._add_hook_plugin(obj, plugin, distribution, version)
        problems = missing_fields(obj)
        if problems:
            raise PluginError(
                "is neither a provider nor a plugin: it implements no providerhub hook and "
                f"does not follow the provider contract ({', '.join(problems)})"
            )
        return [self._adopt(obj, default_name, plugin, distribution, version)]

    def _add_hook_plugin(
        self, obj: Any, plugin: str, distribution: str | None, version: str | None
    ) -> list[Provider]:
        pm = self.plugin_manager
        pm.register(obj, name=plugin)
        try:
            registered, reported, offered = _run_register_hook(pm, obj)
            # Check every provider before adopting any, so a plugin is all in or all out.
            _check_contracts(registered)
        except BaseException:
            pm.unregister(obj)
            raise
        for error in reported:
            self._fail(plugin, distribution, error)
        self.available.extend(
            Available(name, plugin, distribution, activate, url, models)
            for name, activate, url, models in offered
        )
        adopted = []
        for provider, name in registered:
            try:
                adopted.append(
                    self._adopt(provider, _name_of(provider, name), plugin, distribution, version)
                )
            except PluginError as exc:
                # One clashing name does not cost the plugin its other providers.
                self._fail(plugin, distribution, str(exc))
        return adopted

    def _adopt(
        self,
        obj: Any,
        name: str,
        plugin: str | None,
        distribution: str | None,
        version: str | None,
    ) -> Provider:
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"a provider name must be a non-empty string, not {name!r}")
        key = name.lower()
        disabled = key in settings.disabled_names()
        provider = Provider(
            obj,
            name,
            plugin=plugin,
            distribution=distribution,
            version=version,
            disabled=disabled,
            added=self._added_models(name),
        )
        self.registry.add(provider)
        return provider

    def _added_models(self, name: str) -> dict[str, str]:
        """The models the provider ``name`` serves besides its own, each with its origin:
        those of ``PROVIDERHUB_<NAME>_MODELS``, then those of the models cache."""
        added = dict.fromkeys(settings.models(name), "env")
        for model in self.model_cache.models_of(name):
            added.setdefault(model, "cache")
        return added

    @property
    def model_cache(self) -> Cached:
        """The models cache ``providerhub models --refresh`` writes, read when the first
        provider is registered (a file, never the network); see docs/configuration.md."""
        if self._model_cache is None:
            from ._model_cache import load

            self._model_cache = load()
        return self._model_cache

    # -- registering by hand -------------------------------------------------------------

    def register(self, obj: Any, name: str | None = None) -> Provider:
        """Register ``obj``, a module or object following the provider contract, under
        ``name`` (by default its ``name`` attribute, or its module's last dotted part)."""
        problems = missing_fields(obj)
        if problems:
            raise PluginError(
                f"{_name_of(obj, name)!r} does not follow the provider contract "
                f"({', '.join(problems)})"
            )
        return self._adopt(obj, _name_of(obj, name), None, None, None)

    def register_plugin(self, plugin: Any, name: str | None = None) -> list[Provider]:
        """Register a plugin (an object implementing the providerhub hooks) and the
        providers its ``register_providers`` hook registers."""
        if not _has_hookimpls(plugin):
            raise PluginError("that object implements no providerhub hook")
        return self._add_hook_plugin(plugin, name or _name_of(plugin, None), None, None)

    def unregister(self, name: str) -> Provider:
        """Remove the provider named ``name`` and return it."""
        return self.registry.remove(name)

    # -- aliases -------------------------------------------------------------------------

    def alias(self, alias: str, model: str) -> None:
        """Let ``alias`` stand for ``model`` (which may pin a provider, as
        ``"gravityengine/gpt-3.5-turbo-16k"``) in :meth:`route` and :meth:`create`."""
        self.registry.set_alias(alias, model)

    def unalias(self, alias: str) -> None:
        self.registry.drop_alias(alias)

    @property
    def aliases(self) -> Mapping[str, str]:
        """Aliases and the models they stand for (read-only); ``PROVIDERHUB_ALIASES`` gives
        the first ones."""
        return self.registry.aliases

    # -- looking things up ---------------------------------------------------------------

    @property
    def providers(self) -> Mapping[str, Provider]:
        """Registered providers by name, in registration order (read-only); looking a name
        up ignores case, as routing does."""
        return self.registry.providers

    def models(self) -> dict[str, list[str]]:
        """Every model, with the names of the providers that list it, in routing order."""
        return self.registry.by_model()

    def embedding_models(self) -> dict[str, list[str]]:
        """Every embedding model, with the names of the providers that list it in their
        ``embedding_models``, in routing order."""
        return self.registry.by_model(embeddings=True)

    # -- routing and calling -------------------------------------------------------------

    def route(
        self,
        model: str,
        *,
        stream: bool = False,
        auth: router.Auth = None,
        provider: router.ProviderChoice = None,
    ) -> list[Provider]:
        """The providers that can serve ``model`` with these needs, best first; possibly
        none. Raises :class:`ModelNotFoundError` when no provider lists ``model``."""
        validate_model(model)
        router.check_auth(auth, provider)
        model, provider = router.resolve(self.registry, model, provider)
        return self._plan(model, stream=stream, auth=auth, provider=provider).candidates

    def strategy(self, model: str) -> str:
        """The name of ``model``'s routing strategy (``ordered``, ``weighted``,
        ``least-busy``, ``lowest-latency`` or ``usage-aware``), after aliases."""
        return self.routing.spec_name(self.registry.unalias(model))

    @property
    def _try_soonest(self) -> bool:
        return self.when_all_cooling == "try-soonest"

    def _plan(
        self,
        model: str,
        *,
        stream: bool,
        auth: Auth,
        provider: ProviderChoice,
        needs: frozenset[str] = frozenset(),
        ordered: bool = True,
    ) -> Plan:
        """:func:`router.plan <providerhub._routing.plan.plan>` over this hub's providers
        and breaker, as ``when_all_cooling`` says, the candidates in the order of the
        model's routing strategy (unless the caller pinned providers, and their order;
        or not ``ordered``: see :meth:`_order`)."""
        found = router.plan(
            self.registry,
            self.health,
            model,
            stream=stream,
            auth=auth,
            provider=provider,
            needs=needs,
            try_soonest=self._try_soonest,
        )
        if ordered:
            self._order(model, provider, found.candidates)
        return found

    def _order(self, model: str, provider: ProviderChoice, candidates: list[Provider]) -> None:
        """Put ``candidates`` in the order of ``model``'s routing strategy, in place,
        unless the caller pinned providers (``provider``), whose order holds."""
        if provider is None and len(candidates) > 1:
            self.routing.strategy(model).order(candidates, self.state.limiter)

    def _create(self, *args: Any, **kwargs: Any) -> str | router.Stream:
        """Complete ``messages`` with ``model``: the whole text, or with ``stream=True`` an
        iterator of its pieces as they arrive.

        ``kwargs`` are request parameters (``temperature``, ``tools``, ...), passed on to
        the provider. Everything is checked before any provider is asked: bad input raises
        :class:`InvalidRequestError` (among it a provider option such as ``headers`` or
        ``max_body_bytes`` in ``kwargs``, which the provider's plugin or the operator's
        configuration sets, and a message or value nested deeper than
        :data:`~providerhub._validation.MAX_DEPTH` levels), an unknown model
        :class:`ModelNotFoundError`, a model no provider can serve for these needs
        :class:`NoProviderError`, and one whose every provider is cooling down
        :class:`ProvidersCoolingDownError` (unless the hub says
        ``when_all_cooling="try-soonest"``). ``retries`` overrides the hub's retries for
        this call.
        """
        call, candidates = self._prepare(*args, **kwargs)
        if call.stream:
            return router.Stream(call, candidates)
        return router.complete(call, candidates)

    def _prepare(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool = False,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> tuple[router.Call, list[Provider]]:
        """Check a request and choose its candidates: everything but the network.

        Its parameters are those of every ``create`` (see :mod:`providerhub._api`), written
        here once: each ``create`` passes its arguments on, and :func:`signed` shows these
        parameters as its own."""
        model = validate_model(model)
        checked = validate_messages(messages)
        if not isinstance(stream, bool):
            raise InvalidRequestError(f"stream must be True or False, not {stream!r}")
        router.check_auth(auth, provider)
        model, provider = router.resolve(self.registry, model, provider)
        limits = to_timeout(timeout)
        validate_parameters(kwargs)
        needs = required_capabilities(checked, kwargs)
        candidates, reasons, cooling = self._plan(
            model, stream=stream, auth=auth, provider=provider, needs=needs
        )
        if not candidates:
            if cooling:
                raise ProvidersCoolingDownError(model, reasons, cooling, stream=stream)
            raise NoProviderError(model, reasons, stream=stream)
        call = router.Call(
            model,
            checked,
            stream=stream,
            auth=auth,
            timeout=limits,
            kwargs=kwargs,
            health=self.health,
            limiter=self.state.limiter,
            session=self.session,
            policy=router.RetryPolicy(self._retry(retries), self.retry_after_max),
            try_soonest=self._try_soonest,
            strategy=self.routing.tracking(model),
        )
        return call, candidates

    def _pass_through(
        self,
        model: str,
        body: Mapping[str, Any],
        *,
        stream: bool,
        betas: str | None = None,
        timeout: TimeoutLike = None,
    ) -> tuple[router.Call, list[Provider]] | None:
        """The call that sends ``body``, a request in a provider's own dialect (the
        gateway's ``/v1/messages``), unchanged to ``model``'s candidates, when every one
        of them can take it (see :attr:`Provider.passes_through`); else None, and the
        request is translated as any other. The call (``operation`` "messages") goes
        through the same routing loop, breaker and rate limits; its pieces are
        :class:`~providerhub.types.Verbatim`."""
        model = validate_model(model)
        model, provider = router.resolve(self.registry, model, None)
        candidates = self._plan(
            model, stream=stream, auth=None, provider=provider, ordered=False
        ).candidates
        if not candidates or not all(p.passes_through for p in candidates):
            return None
        # Ordered only now: a strategy's order may count (a lowest-latency probe is sent
        # once), and a request that is translated instead is planned again.
        self._order(model, provider, candidates)
        call = router.Call(
            model,
            [],
            stream=stream,
            auth=None,
            timeout=to_timeout(timeout),
            kwargs={"native_body": body, "betas": betas},
            health=self.health,
            limiter=self.state.limiter,
            session=self.session,
            policy=router.RetryPolicy(self._retry(None), self.retry_after_max),
            structured=True,
            try_soonest=self._try_soonest,
            operation="messages",
            strategy=self.routing.tracking(model),
        )
        call.asession = self._aiohttp_session
        return call, candidates

    def _prepare_embeddings(
        self,
        model: str,
        input: str | list[str] | list[int] | list[list[int]],
        *,
        encoding_format: str = "float",
        dimensions: int | None = None,
        user: str | None = None,
        provider: ProviderChoice = None,
        auth: Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
    ) -> tuple[router.Call, list[Provider]]:
        """Check an embeddings request and choose its candidates, as :meth:`_prepare` does
        a chat completion's: the call (``operation`` "embeddings") goes through the same
        routing loop, breaker and rate limits, among the providers that list ``model`` in
        their ``embedding_models``. ``encoding_format`` is only checked here: providers
        are asked for floats, which the client encodes."""
        model = validate_model(model)
        checked = validate_embedding_input(input)
        sent = validate_embedding_options(encoding_format, dimensions, user)
        router.check_auth(auth, provider)
        model, provider = router.resolve(self.registry, model, provider, embeddings=True)
        limits = to_timeout(timeout)
        candidates, reasons, cooling = router.plan(
            self.registry,
            self.health,
            model,
            stream=False,
            auth=auth,
            provider=provider,
            try_soonest=self._try_soonest,
            embeddings=True,
        )
        if not candidates:
            if cooling:
                raise ProvidersCoolingDownError(model, reasons, cooling)
            raise NoProviderError(model, reasons)
        call = router.Call(
            model,
            [],
            stream=False,
            auth=auth,
            timeout=limits,
            kwargs={"input": checked, **sent},
            health=self.health,
            limiter=self.state.limiter,
            session=self.session,
            policy=router.RetryPolicy(self._retry(retries), self.retry_after_max),
            try_soonest=self._try_soonest,
            operation="embeddings",
        )
        return call, candidates

    def _acreate(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, str] | AsyncStream:
        """:meth:`create` for asyncio: ``await hub.acreate(...)`` gives the text, and
        ``async for piece in hub.acreate(..., stream=True)`` the pieces as they arrive.

        The request is checked, and its candidates chosen, at once, as with :meth:`create`;
        cancelling the awaiting task closes the HTTP response. See :mod:`providerhub.aio`.
        """
        call, candidates = self._prepare(*args, **kwargs)
        if call.stream:
            return self._astream(call, candidates)
        self._native(call, candidates)
        complete: Coroutine[Any, Any, str] = _arouter().complete(call, candidates)
        return complete

    create: Create[str, router.Stream] = signed(_create, _prepare, "create")
    acreate: Create[Coroutine[Any, Any, str], AsyncStream] = signed(_acreate, _prepare, "acreate")

    def _native(self, call: router.Call, candidates: list[Provider]) -> bool:
        """Give ``call`` the hub's aiohttp session, for its candidates with an
        ``_acreate_completion``; and say whether every candidate has one (and aiohttp is
        installed), so that no worker thread serves the call."""
        call.asession = self._aiohttp_session
        native: bool = _arouter().native(candidates)
        return native

    def _astream(self, call: router.Call, candidates: list[Provider]) -> AsyncStream:
        """The asyncio stream of ``call``."""
        arouter = _arouter()
        stream: AsyncStream
        if self._native(call, candidates):
            stream = arouter.NativeStream(call, candidates)
        else:
            stream = arouter.AsyncStream(call, candidates)
        return stream

    async def _acollect(
        self, call: router.Call, candidates: list[Provider], sink: Callable[[Piece], None]
    ) -> str:
        """``router.collect`` for asyncio."""
        self._native(call, candidates)
        served_by: str = await _arouter().collect(call, candidates, sink)
        return served_by

    async def _aiohttp_session(self) -> Any:
        """The hub's ``aiohttp.ClientSession`` for the running event loop, made on first
        use, closed with the loop or by :meth:`close`."""
        if self._asessions is None:
            from ._transports.aio import Sessions

            with self._lock:
                if self._asessions is None:
                    self._asessions = Sessions()
        return await self._asessions.get()

    def _retry(self, retries: int | Retry | None) -> Retry:
        """The ``Retry`` of a call: its own ``retries``, else the hub's. A bad value is the
        caller's (:class:`InvalidRequestError`) or the hub's (:class:`ConfigurationError`,
        ``Hub(retries=...)``, found by its first call)."""
        fault: type[ProviderHubError] = InvalidRequestError
        if retries is None:
            retries, fault = self.retries, ConfigurationError
        if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
            return _retry_policy(retries)
        from urllib3.util import Retry

        if isinstance(retries, Retry):
            return retries
        raise fault(f"retries must be a whole number >= 0 or a urllib3 Retry, not {retries!r}")

    @property
    def session(self) -> requests.Session:
        """The hub's pooled ``requests.Session``, made on first use."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = new_session()
        return self._session

    def close(self) -> None:
        """Close the hub's connections. The hub stays usable; it reconnects when asked.

        The asyncio-native calls' connections (one aiohttp session per event loop) are
        closed on their loops: at once when the loop is not running, soon when it is (use
        :meth:`aclose` on the loop to wait for it). A loop run by ``asyncio.run`` closes
        its session itself when it ends."""
        with self._lock:
            session, self._session = self._session, None
            asessions = self._asessions
        if session is not None:
            session.close()
        if asessions is not None:
            asessions.close()
        self.state.close()

    async def aclose(self) -> None:
        """:meth:`close`, waiting for the running loop's connections to be closed."""
        asessions = self._asessions
        if asessions is not None:
            await asessions.aclose()
        await self.state.aclose()
        self.close()


@functools.cache
def _arouter() -> Any:
    """:mod:`providerhub._routing.arouter`, imported on first use (it imports asyncio,
    which only the asyncio API needs), then kept: an import statement in a function
    costs about a microsecond a call."""
    from ._routing import arouter

    return arouter


@functools.lru_cache(maxsize=16)
def _retry_policy(retries: int) -> Retry:
    """The ``Retry`` of a plain count of retries. A ``Retry`` never changes (``increment``
    makes a new one), so one per count serves every call."""
    from urllib3.util import Retry

    return Retry(
        total=retries,
        backoff_factor=0.5,
        backoff_jitter=0.25,
        backoff_max=10.0,
        allowed_methods=None,
        raise_on_status=False,
    )


def _run_register_hook(
    pm: pluggy.PluginManager, obj: Any
) -> tuple[list[tuple[Any, str | None]], list[str], list[Offered]]:
    """Call the ``register_providers`` hook of ``obj`` (registered in ``pm``): the providers
    it registered, each with the name it gave (or None), the problems it reported, one
    line each, and the providers it offered (name, variables, url, models)."""
    registered: list[tuple[Any, str | None]] = []
    reported: list[str] = []
    offered: list[Offered] = []

    def register(provider: Any, name: str | None = None) -> None:
        registered.append((provider, name))

    def report(error: str) -> None:
        reported.append(" ".join(str(error).split()))

    def offer(
        name: str, *, activate: Sequence[str], url: str | None = None, models: Sequence[str] = ()
    ) -> None:
        offered.append((str(name), tuple(map(str, activate)), url, tuple(map(str, models))))

    arguments = {"register": register, "report": report, "offer": offer}
    for impl in pm.hook.register_providers.get_hookimpls():
        if impl.plugin is obj:
            impl.function(**{arg: arguments[arg] for arg in impl.argnames})
    return registered, reported, offered


def _check_contracts(registered: list[tuple[Any, str | None]]) -> None:
    """Raise :class:`PluginError` for the first provider that does not follow the provider
    contract."""
    for provider, name in registered:
        problems = missing_fields(provider)
        if problems:
            raise PluginError(
                f"registered {_name_of(provider, name)!r}, which does not follow "
                f"the provider contract ({', '.join(problems)})"
            )


def _has_hookimpls(obj: Any) -> bool:
    marker = f"{hookspecs.PROJECT}_impl"
    return hasattr(getattr(obj, "register_providers", None), marker)


def _name_of(obj: Any, name: str | None) -> str:
    if name is not None:
        return name
    own = getattr(obj, "name", None)
    if isinstance(own, str) and own:
        return own
    module_name = getattr(obj, "__name__", None)
    if isinstance(module_name, str):
        return module_name.rsplit(".", 1)[-1]
    return type(obj).__name__.lower()


_default_hub: Hub | None = None
_default_lock = threading.Lock()


def get_hub() -> Hub:
    """The default hub, the one :func:`providerhub.create` uses: built, with every installed
    plugin, on first use."""
    global _default_hub
    if _default_hub is None:
        with _default_lock:
            if _default_hub is None:
                _default_hub = Hub()
    return _default_hub
