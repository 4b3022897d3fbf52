"""The hub's view of one registered provider: its contract fields, its settings from the
environment, and the one way to call it."""

from __future__ import annotations

import logging
import types
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import Piece

from . import _params as _params
from . import _settings as settings
from ._contract import CAPABILITIES
from ._spend import declared_prices
from ._state.limits import Limits
from .errors import PluginError

__all__ = ["Provider"]

logger = logging.getLogger("providerhub.provider")  # a stable name for users' logging config


class Provider:
    """A registered provider.

    ``name`` is the name it was registered under (unique in a hub, matched
    case-insensitively); ``plugin``, ``distribution`` and ``version`` say where it came
    from. ``url`` is the base URL after ``PROVIDERHUB_<NAME>_URL``. ``working`` is the
    module's own flag (True when absent) unless the provider is disabled. ``params`` is the
    module's own ``params`` string if it has one, else one built by introspection.
    ``capabilities`` holds ``supports_stream``, ``needs_auth`` and the optional capability
    fields (``supports_tools``, ``supports_vision``, ``supports_audio``,
    ``supports_json_schema``; False when the module does not declare them). ``limits`` holds
    the optional ``rpm`` and ``tpm`` the module declares (requests and tokens per minute,
    counted per hub or, with a shared state, across every process). ``model`` holds the
    module's own models, then those ``added`` to them (by ``PROVIDERHUB_<NAME>_MODELS``,
    or from the cache ``providerhub models --refresh`` writes); :meth:`origin` says where
    each came from. ``embedding_models`` holds the embedding models it serves (the
    optional field of the same name; empty for a chat-only provider), which it answers
    with its ``_create_embedding`` (see :data:`providerhub._contract.EMBEDDINGS`).
    """

    __slots__ = (
        "_aaccepts",
        "_accepts",
        "_clone",
        "_declared_url",
        "_eaaccepts",
        "_eaccepts",
        "added",
        "capabilities",
        "disabled",
        "distribution",
        "embedding_models",
        "limit_key",
        "limits",
        "model",
        "name",
        "needs_auth",
        "obj",
        "plugin",
        "prices",
        "supports_stream",
        "version",
    )

    def __init__(
        self,
        obj: Any,
        name: str,
        *,
        plugin: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
        disabled: bool = False,
        added: Mapping[str, str] | None = None,
    ) -> None:
        self.obj = obj
        self.name = name
        self.plugin = plugin
        self.distribution = distribution
        self.version = version
        self.disabled = disabled
        own = tuple(obj.model)
        self.added: dict[str, str] = {
            m: origin for m, origin in (added or {}).items() if m not in own
        }
        """Models served besides the module's own, each with where it came from:
        ``"env"`` (``PROVIDERHUB_<NAME>_MODELS``) or ``"cache"`` (``providerhub models
        --refresh``)."""
        self.model: tuple[str, ...] = own + tuple(self.added)
        self.embedding_models: tuple[str, ...] = tuple(getattr(obj, "embedding_models", ()) or ())
        self.supports_stream = bool(obj.supports_stream)
        self.needs_auth = bool(obj.needs_auth)
        self.capabilities: dict[str, bool] = {
            "supports_stream": self.supports_stream,
            "needs_auth": self.needs_auth,
            **{field: getattr(obj, field, False) is True for field in CAPABILITIES},
        }
        try:
            self.limits = Limits.of(obj)
        except ValueError as exc:
            raise PluginError(f"provider {name!r}: {exc}") from None
        try:
            self.prices = declared_prices(getattr(obj, "prices", None), f"provider {name!r}")
        except ValueError as exc:
            raise PluginError(str(exc)) from None
        """Its models' prices, as it declares them (an optional ``prices`` field: model
        name to :class:`~providerhub._spend.Price`, or to a mapping of its fields)."""
        self.limit_key = "provider:" + name
        """What its rate limit is counted under (see :class:`providerhub._state.limits.Limiter`)."""
        self._declared_url: str = obj.url
        self._accepts = _keyword_names(obj._create_completion)
        native = getattr(obj, "_acreate_completion", None)
        self._aaccepts = _keyword_names(native) if callable(native) else None
        embed = getattr(obj, "_create_embedding", None)
        self._eaccepts = _keyword_names(embed) if callable(embed) else None
        aembed = getattr(obj, "_acreate_embedding", None)
        self._eaaccepts = _keyword_names(aembed) if callable(aembed) else None
        # Per completion function's name: (url, the function, its clone).
        self._clone: dict[str, tuple[str, Any, Any]] = {}

    def __repr__(self) -> str:
        return f"<Provider {self.name!r} models={list(self.model)!r}>"

    @property
    def url(self) -> str:
        return settings.url(self.name, self._declared_url)

    def origin(self, model: str) -> str:
        """Where ``model`` came from: ``"plugin"`` (the provider declares it), ``"env"``
        or ``"cache"`` (see :attr:`added`)."""
        return self.added.get(model, "plugin")

    @property
    def working(self) -> bool:
        return not self.disabled and bool(getattr(self.obj, "working", True))

    @property
    def yields_pieces(self) -> bool:
        """Whether the provider declares ``yields_pieces``: its completion function takes
        ``structured=True``, which the router then passes, and may yield the structured
        pieces of :mod:`providerhub.types`. Others are called as the seed's modules were."""
        return getattr(self.obj, "yields_pieces", False) is True

    @property
    def native(self) -> bool:
        """Whether the provider has an asyncio-native completion function,
        ``_acreate_completion``: the async API then calls it on the event loop, rather
        than its ``_create_completion`` on a worker thread."""
        return callable(getattr(self.obj, "_acreate_completion", None))

    @property
    def native_embeddings(self) -> bool:
        """Whether the provider has an asyncio-native embeddings function,
        ``_acreate_embedding``, which the async API then awaits on the event loop."""
        return callable(getattr(self.obj, "_acreate_embedding", None))

    @property
    def honors_timeout(self) -> bool:
        """Whether the provider keeps the ``timeout`` it is given. Those that do not (the
        default, for modules written to the bare seed contract) run under a watchdog."""
        return bool(getattr(self.obj, "honors_timeout", False))

    def capability_setting(self, field: str) -> str | None:
        """How the capability ``field`` (``supports_vision``, say) is turned on for this
        provider, for the message of a request it cannot take: what the provider's
        optional ``capability_settings`` mapping says (``"set vision = true in its
        [endpoints.local] table"``), else None."""
        settings_of = getattr(self.obj, "capability_settings", None)
        if not isinstance(settings_of, Mapping):
            return None
        found = settings_of.get(field)
        return found if isinstance(found, str) and found else None

    @property
    def params(self) -> str:
        own = getattr(self.obj, "params", None)
        if isinstance(own, str):
            return own
        return _params.render(self.name, self.obj._create_completion)

    @property
    def params_info(self) -> _params.ParamsInfo:
        """The structured form of ``params``: one :class:`providerhub.plugin.Param` each,
        and the provider's ``capabilities``."""
        return _params.ParamsInfo(_params.describe(self.obj._create_completion), self.capabilities)

    @property
    def api_key_variable(self) -> str:
        """The environment variable to set for a credential: the provider's own
        ``api_key_env`` when it names one, else ``PROVIDERHUB_<NAME>_API_KEY``."""
        own = getattr(self.obj, "api_key_env", None)
        if isinstance(own, str) and own:
            return own
        return settings.api_key_variable(self.name)

    def credential(self, auth: str | Mapping[str, str] | None) -> str | None:
        """The credential for this provider: from ``auth`` (a string meant for it, or a
        ``{name: credential}`` mapping), else ``PROVIDERHUB_<NAME>_API_KEY``, else the
        variable the provider names in its optional ``api_key_env``."""
        if auth is None or isinstance(auth, str):
            given = auth
        else:
            given = next((v for k, v in auth.items() if k.lower() == self.name.lower()), None)
        own = getattr(self.obj, "api_key_env", None)
        return settings.credential(self.name, given, own if isinstance(own, str) else None)

    def complete(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        """Call the module's ``_create_completion``; keyword arguments it cannot take are
        left out (the router offers ``auth``, ``timeout`` and ``session`` to every provider).
        """
        if self._accepts is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in self._accepts}
        result: Iterable[str] = self._completion("_create_completion")(
            model, messages, stream, **kwargs
        )
        return iter(result)  # the loop asks for each piece itself: a list would do too

    def acomplete(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> AsyncIterator[Piece]:
        """Call the module's ``_acreate_completion`` (see :attr:`native`), as
        :meth:`complete` calls ``_create_completion``; ``session`` is then an
        ``aiohttp.ClientSession``."""
        if self._aaccepts is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in self._aaccepts}
        result: AsyncIterator[Piece] = self._completion("_acreate_completion")(
            model, messages, stream, **kwargs
        )
        return result

    @property
    def passes_through(self) -> bool:
        """Whether a client of the provider's own dialect may send it a request unchanged
        (an :class:`~providerhub.plugin.HTTPProvider` of Anthropic's Messages API)."""
        return getattr(self.obj, "passes_through", False) is True

    def amessage(self, model: str, stream: bool, **kwargs: Any) -> AsyncIterator[Piece]:
        """Call the module's ``_acreate_message`` (see :attr:`passes_through`): a request
        in the provider's own dialect, passed on; its answer verbatim."""
        result: AsyncIterator[Piece] = self._completion("_acreate_message")(model, stream, **kwargs)
        return result

    def embed(self, model: str, input: Any, **kwargs: Any) -> Iterator[Piece]:
        """Call the module's ``_create_embedding`` when the first piece is asked for, and
        yield its answer, checked (:func:`~providerhub._codecs.openai_embeddings.result_of`):
        its :class:`~providerhub.types.Usage`, which a ``tpm`` limit counts, then the
        :class:`~providerhub.types.CreateEmbeddingResponse`. Keyword arguments it cannot
        take are left out, as in :meth:`complete`."""
        kwargs = self._embedding_kwargs(kwargs)
        result = self._completion("_create_embedding")(model, input, **kwargs)
        yield from self._embedded(result, model, input)

    async def aembed(self, model: str, input: Any, **kwargs: Any) -> AsyncIterator[Piece]:
        """:meth:`embed` over the module's ``_acreate_embedding`` (see
        :attr:`native_embeddings`), awaited; ``session`` is then an
        ``aiohttp.ClientSession``."""
        if self._eaaccepts is not None:
            kwargs = {k: v for k, v in kwargs.items() if k in self._eaaccepts}
        result = await self._completion("_acreate_embedding")(model, input, **kwargs)
        for piece in self._embedded(result, model, input):
            yield piece

    def _embedding_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._eaccepts is None:
            return kwargs
        return {k: v for k, v in kwargs.items() if k in self._eaccepts}

    def _embedded(self, result: Any, model: str, input: Any) -> list[Piece]:
        from ._codecs.openai_embeddings import input_count, result_of
        from .types import Usage

        response = result_of(self.name, result, model, input_count(input))
        usage = response.usage
        counted = Usage(usage.prompt_tokens, None, usage.total_tokens)
        return [counted, response]

    def _completion(self, name: str) -> Any:
        """The completion function ``name``, made to see the effective url.

        A seed-contract module reads its module-level ``url`` when it builds the request.
        Rather than write the override into the module (which every other user of the
        module would then see), the function runs over a copy of its globals holding the
        override. The copy is made once per url and kept: mutable module state (a session,
        a list) is shared with the module, but a global the module rebinds afterwards is
        not seen; such a module should read its url through
        :func:`providerhub.plugin.base_url`. An object's ``url`` attribute is set instead.
        """
        func = getattr(self.obj, name)
        effective = self.url
        if getattr(self.obj, "url", None) == effective:
            return func
        if isinstance(self.obj, types.ModuleType):
            if isinstance(func, types.FunctionType) and "url" in func.__code__.co_names:
                kept = self._clone.get(name)
                if kept is not None and kept[0] == effective and kept[1] is func:
                    return kept[2]
                scope = dict(func.__globals__)
                scope["url"] = effective
                clone = types.FunctionType(
                    func.__code__, scope, func.__name__, func.__defaults__, func.__closure__
                )
                clone.__kwdefaults__ = func.__kwdefaults__
                self._clone[name] = (effective, func, clone)
                return clone
            return func
        try:
            self.obj.url = effective
        except (AttributeError, TypeError):
            # A read-only provider object cannot take the override: say so, loudly.
            logger.warning(
                "provider %s ignores %s: its 'url' attribute is read-only",
                self.name,
                settings.url_variable(self.name),
            )
        return func


def _keyword_names(func: Any) -> frozenset[str] | None:
    """Names ``func`` takes by keyword, or None when it takes ``**kwargs``."""
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return frozenset(names)
