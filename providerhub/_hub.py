"""The hub: the providers one program uses, loaded from plugins, and the calls made
through them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, overload

from . import _router as router
from . import _settings as settings
from . import hookspecs
from ._contract import missing_fields
from ._health import Health
from ._plugins import PluginFailure, discover
from ._provider import Provider
from ._timeout import TimeoutLike, to_timeout
from ._transport import one_line
from ._validation import validate_messages, validate_model
from .errors import InvalidRequestError, NoProviderError

if TYPE_CHECKING:
    import pluggy
    import requests
    from urllib3.util import Retry

    from ._aio import AsyncStream

DEFAULT_RETRIES = 2

__all__ = ["Hub", "get_hub"]


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
    ``max_cooldown``); see :mod:`providerhub.health`.
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
    ) -> None:
        self.retries = retries
        """Default retries of each provider, per call: a count, or a ``urllib3`` ``Retry``
        for full control of the backoff."""
        self.retry_after_max = retry_after_max
        """The longest ``Retry-After`` worth waiting for; a longer one means: fall back."""
        self.health = Health(failure_threshold, cooldown, max_cooldown)
        """The cooldown (circuit breaker) state of this hub's providers."""
        self.plugin_errors: list[PluginFailure] = []
        """Plugins that were skipped, and why."""
        self.disabled_plugins: list[str] = []
        """Entry points skipped because ``PROVIDERHUB_DISABLE_PLUGINS`` names them."""
        self._aliases: dict[str, str] = settings.aliases()
        self._providers: dict[str, Provider] = {}  # lower-cased name -> provider
        self._by_model: dict[str, list[Provider]] = {}
        self._lock = threading.RLock()
        self._pm: pluggy.PluginManager | None = None
        self._session: requests.Session | None = None
        if load_entrypoints:
            self.load_entrypoints()

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
            raise InvalidRequestError(
                "is neither a provider nor a plugin: it implements no providerhub hook and "
                f"does not follow the provider contract ({', '.join(problems)})"
            )
        return [self._adopt(obj, default_name, plugin, distribution, version)]

    def _add_hook_plugin(
        self, obj: Any, plugin: str, distribution: str | None, version: str | None
    ) -> list[Provider]:
        pm = self.plugin_manager
        pending: list[tuple[Any, str | None]] = []

        def register(provider: Any, name: str | None = None) -> None:
            pending.append((provider, name))

        reported: list[str] = []

        def report(error: str) -> None:
            reported.append(" ".join(str(error).split()))

        offered = {"register": register, "report": report}
        pm.register(obj, name=plugin)
        try:
            for impl in pm.hook.register_providers.get_hookimpls():
                if impl.plugin is obj:
                    impl.function(**{arg: offered[arg] for arg in impl.argnames})
            # Check every provider before adopting any, so a plugin is all in or all out.
            for provider, name in pending:
                problems = missing_fields(provider)
                if problems:
                    raise InvalidRequestError(
                        f"registered {_name_of(provider, name)!r}, which does not follow "
                        f"the provider contract ({', '.join(problems)})"
                    )
        except BaseException:
            pm.unregister(obj)
            raise
        for error in reported:
            self._fail(plugin, distribution, error)
        adopted = []
        for provider, name in pending:
            try:
                adopted.append(
                    self._adopt(provider, _name_of(provider, name), plugin, distribution, version)
                )
            except InvalidRequestError as exc:
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
            raise InvalidRequestError(f"a provider name must be a non-empty string, not {name!r}")
        key = name.lower()
        disabled = key in settings.disabled_names()
        provider = Provider(
            obj,
            name,
            plugin=plugin,
            distribution=distribution,
            version=version,
            disabled=disabled,
        )
        with self._lock:
            existing = self._providers.get(key)
            if existing is not None:
                origin = existing.distribution or existing.plugin or "hub.register"
                raise InvalidRequestError(
                    f"a provider named {existing.name!r} is already registered (from "
                    f"{origin}); this one was not registered: register it under another "
                    "name, or unregister the first"
                )
            self._providers[key] = provider
            for model in provider.model:
                self._by_model.setdefault(model, []).append(provider)
        return provider

    # -- registering by hand -------------------------------------------------------------

    def register(self, obj: Any, name: str | None = None) -> Provider:
        """Register ``obj``, a module or object following the provider contract, under
        ``name`` (by default its ``name`` attribute, or its module's last dotted part)."""
        problems = missing_fields(obj)
        if problems:
            raise InvalidRequestError(
                f"{_name_of(obj, name)!r} does not follow the provider contract "
                f"({', '.join(problems)})"
            )
        return self._adopt(obj, _name_of(obj, name), None, None, None)

    def register_plugin(self, plugin: Any, name: str | None = None) -> list[Provider]:
        """Register a plugin (an object implementing the providerhub hooks) and the
        providers its ``register_providers`` hook registers."""
        if not _has_hookimpls(plugin):
            raise InvalidRequestError("that object implements no providerhub hook")
        return self._add_hook_plugin(plugin, name or _name_of(plugin, None), None, None)

    def unregister(self, name: str) -> Provider:
        """Remove the provider named ``name`` and return it."""
        with self._lock:
            provider = self._providers.pop(name.lower(), None)
            if provider is None:
                raise InvalidRequestError(f"no provider named {name!r} is registered")
            for model in provider.model:
                serving = self._by_model.get(model, [])
                self._by_model[model] = [p for p in serving if p is not provider]
                if not self._by_model[model]:
                    del self._by_model[model]
        return provider

    # -- aliases -------------------------------------------------------------------------

    def alias(self, alias: str, model: str) -> None:
        """Let ``alias`` stand for ``model`` (which may pin a provider, as
        ``"gravityengine/gpt-3.5-turbo-16k"``) in :meth:`route` and :meth:`create`."""
        for label, value in (("alias", alias), ("model", model)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidRequestError(f"{label} must be a non-empty string, not {value!r}")
        if alias == model:
            raise InvalidRequestError(f"{alias!r} cannot be an alias of itself")
        if self._serving(alias):
            raise InvalidRequestError(
                f"{alias!r} is a model a provider serves; an alias of that name would hide it"
            )
        self._aliases[alias] = model

    def unalias(self, alias: str) -> None:
        if self._aliases.pop(alias, None) is None:
            raise InvalidRequestError(f"no alias {alias!r}")

    @property
    def aliases(self) -> Mapping[str, str]:
        """Aliases and the models they stand for (read-only); ``PROVIDERHUB_ALIASES`` gives
        the first ones."""
        return MappingProxyType(self._aliases)

    # -- looking things up ---------------------------------------------------------------

    @property
    def providers(self) -> Mapping[str, Provider]:
        """Registered providers by name, in registration order (read-only); looking a name
        up ignores case, as routing does."""
        return _ProviderView(self._providers)

    def models(self) -> dict[str, list[str]]:
        """Every model, with the names of the providers that list it, in routing order."""
        return {m: [p.name for p in ps] for m, ps in sorted(self._by_model.items())}

    def _lookup(self, name: str) -> Provider | None:
        return self._providers.get(name.lower())

    def _serving(self, model: str) -> list[Provider]:
        return self._by_model.get(model, [])

    def _models(self) -> list[str]:
        return list(self._by_model)

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
        model, provider = router.resolve(self, model, provider)
        candidates, _ = router.plan(self, model, stream=stream, auth=auth, provider=provider)
        return candidates

    @overload
    def create(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[False] = False,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> str: ...

    @overload
    def create(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[True],
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> router.Stream: ...

    @overload
    def create(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> str | router.Stream: ...

    def create(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool = False,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> str | router.Stream:
        """Complete ``messages`` with ``model``: the whole text, or with ``stream=True`` an
        iterator of its pieces as they arrive.

        Everything is checked before any provider is asked: bad input raises
        :class:`InvalidRequestError`, an unknown model :class:`ModelNotFoundError`, a model
        no provider can serve for these needs :class:`NoProviderError`. ``retries``
        overrides the hub's retries for this call.
        """
        call, candidates = self._prepare(
            model,
            messages,
            stream=stream,
            provider=provider,
            auth=auth,
            timeout=timeout,
            retries=retries,
            kwargs=kwargs,
        )
        if stream:
            return router.Stream(call, candidates)
        return router.complete(call, candidates)

    def _prepare(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool,
        provider: router.ProviderChoice,
        auth: router.Auth,
        timeout: TimeoutLike,
        retries: int | Retry | None,
        kwargs: dict[str, Any],
    ) -> tuple[router.Call, list[Provider]]:
        """Check a request and choose its candidates: everything but the network."""
        model = validate_model(model)
        checked = validate_messages(messages)
        if not isinstance(stream, bool):
            raise InvalidRequestError(f"stream must be True or False, not {stream!r}")
        router.check_auth(auth, provider)
        model, provider = router.resolve(self, model, provider)
        limits = to_timeout(timeout)
        for reserved in ("session",):
            if reserved in kwargs:
                raise InvalidRequestError(f"{reserved!r} is set by the hub; do not pass it")
        candidates, reasons = router.plan(self, model, stream=stream, auth=auth, provider=provider)
        if not candidates:
            raise NoProviderError(model, reasons, stream=stream)
        call = router.Call(
            self,
            model,
            checked,
            stream=stream,
            auth=auth,
            timeout=limits,
            retries=self._retry(self.retries if retries is None else retries),
            kwargs=kwargs,
        )
        return call, candidates

    @overload
    def acreate(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[False] = False,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, str]: ...

    @overload
    def acreate(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: Literal[True],
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> AsyncStream: ...

    @overload
    def acreate(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, str] | AsyncStream: ...

    def acreate(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        stream: bool = False,
        provider: router.ProviderChoice = None,
        auth: router.Auth = None,
        timeout: TimeoutLike = None,
        retries: int | Retry | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, str] | AsyncStream:
        """:meth:`create` for asyncio: ``await hub.acreate(...)`` gives the text, and
        ``async for piece in hub.acreate(..., stream=True)`` the pieces as they arrive.

        The request is checked, and its candidates chosen, at once, as with :meth:`create`;
        cancelling the awaiting task closes the HTTP response. See :mod:`providerhub.aio`.
        """
        from . import _aio as aio

        call, candidates = self._prepare(
            model,
            messages,
            stream=stream,
            provider=provider,
            auth=auth,
            timeout=timeout,
            retries=retries,
            kwargs=kwargs,
        )
        if stream:
            return aio.AsyncStream(router.Stream(call, candidates))
        return aio.complete(call, candidates)

    @staticmethod
    def _retry(retries: int | Retry) -> Retry:
        if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0:
            return _retry_policy(retries)
        from urllib3.util import Retry

        if isinstance(retries, Retry):
            return retries
        raise InvalidRequestError(
            f"retries must be a whole number >= 0 or a urllib3 Retry, not {retries!r}"
        )

    @property
    def session(self) -> requests.Session:
        """The hub's pooled ``requests.Session``, made on first use."""
        if self._session is None:
            from ._transport import new_session

            with self._lock:
                if self._session is None:
                    self._session = new_session()
        return self._session

    def close(self) -> None:
        """Close the hub's connections. The hub stays usable; it reconnects when asked."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()


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


class _ProviderView(Mapping[str, Provider]):
    """The registry seen by name: keys as registered, lookups in any case."""

    __slots__ = ("_by_key",)

    def __init__(self, by_key: dict[str, Provider]) -> None:
        self._by_key = by_key

    def __getitem__(self, name: str) -> Provider:
        return self._by_key[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_key

    def __iter__(self) -> Iterator[str]:
        return (p.name for p in list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def __repr__(self) -> str:
        return f"<providers {list(self)!r}>"


def _has_hookimpls(obj: Any) -> bool:
    marker = f"{hookspecs.PROJECT}_impl"
    return any(hasattr(getattr(obj, spec, None), marker) for spec in ("register_providers",))


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
