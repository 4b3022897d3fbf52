"""Declarative HTTP providers: a plugin describes an endpoint, and the core calls it.

A declaration names the endpoint (``url`` and ``path``), the models it serves, the wire
dialect it speaks (its ``codec``, a key of :data:`CODECS`), what it can do, and where its
credential comes from and goes::

    provider = HTTPProvider(
        name="acme",
        url="https://api.acme.example",
        models=["acme-large"],
        capabilities=["stream", "tools"],
        credential=Credential(env="ACME_API_KEY"),
    )

It is checked field by field when it is made, and then presents the module contract the
hub accepts (:class:`providerhub._contract.ProviderModule`: ``url``, ``model``,
``supports_stream``, ``needs_auth``, ``working``, ``params``, ``_create_completion`` and the
asyncio-native ``_acreate_completion``), each call going through the codec's exchange
functions: sync, asyncio, streaming and typed errors are theirs; routing, retries and
fallback are the router's, as for any provider. A declaration with ``embedding_models``
serves embeddings too, in the dialect of its ``embedding_codec`` (a key of
:data:`EMBEDDING_CODECS`: OpenAI's, posted to ``{url}/v1/embeddings``, by default)
(``_create_embedding``, ``_acreate_embedding``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from .. import _settings as settings
from .._codecs.anthropic_messages import CODEC as ANTHROPIC_MESSAGES
from .._codecs.anthropic_messages import MESSAGES_PARAMETERS
from .._codecs.anthropic_messages import NATIVE as ANTHROPIC_NATIVE
from .._codecs.base import Codec
from .._codecs.gemini import CODEC as GEMINI
from .._codecs.gemini import GEMINI_PARAMETERS
from .._codecs.gemini_embeddings import CODEC as GEMINI_EMBEDDINGS
from .._codecs.openai_chat import CODEC as OPENAI_CHAT
from .._codecs.openai_embeddings import CODEC as OPENAI_EMBEDDINGS
from .._contract import CAPABILITIES
from .._options import REQUEST_FIELDS, ROUTING_ARGUMENTS, provider_options
from .._params import render as render_params
from .._redaction import redact
from .._spend import Price, declared_prices
from .._validation import did_you_mean
from ..errors import InvalidRequestError, PluginError
from ..types import CreateEmbeddingResponse, Piece
from .achat import achat_completion
from .chat import CHAT_PARAMETERS, chat_completion
from .embeddings import acreate_embedding, create_embedding

__all__ = [
    "CAPABILITY_NAMES",
    "CODECS",
    "EMBEDDING_CODECS",
    "Credential",
    "Dialect",
    "EmbeddingDialect",
    "HTTPProvider",
]


class Dialect(NamedTuple):
    """What a declaration's ``codec`` key stands for: the dialect's usual ``path`` under a
    base URL, the request ``parameters`` it takes besides ``model``, ``messages`` and
    ``stream``, and its ``codec``, which :func:`providerhub.plugin.chat_completion` and
    its asyncio twin send calls with."""

    path: str
    parameters: frozenset[str]
    codec: Codec


CODECS: dict[str, Dialect] = {
    "openai-chat": Dialect("/v1/chat/completions", CHAT_PARAMETERS, OPENAI_CHAT),
    "anthropic-messages": Dialect("/v1/messages", MESSAGES_PARAMETERS, ANTHROPIC_MESSAGES),
    # The model and the action follow the path: /v1beta/models/{model}:generateContent.
    "gemini": Dialect("/v1beta/models", GEMINI_PARAMETERS, GEMINI),
}
"""The wire dialects a declaration may name as its ``codec``: OpenAI's chat completions,
Anthropic's Messages API (:mod:`providerhub._codecs.anthropic_messages`) and Google's
Gemini API (:mod:`providerhub._codecs.gemini`). Another dialect is one more entry: its
path, parameters and codec."""


class EmbeddingDialect(NamedTuple):
    """What a declaration's ``embedding_codec`` key stands for: the ``path`` its
    embeddings are posted to under the base URL (``{model}`` is the model asked for), and
    the ``codec`` of the request and its answer."""

    path: str
    codec: Codec


EMBEDDING_CODECS: dict[str, EmbeddingDialect] = {
    "openai-embeddings": EmbeddingDialect("/v1/embeddings", OPENAI_EMBEDDINGS),
    "gemini-embeddings": EmbeddingDialect(
        "/v1/models/{model}:batchEmbedContents", GEMINI_EMBEDDINGS
    ),
}
"""The embeddings dialects a declaration may name as its ``embedding_codec``: OpenAI's
``/v1/embeddings`` (the default), and Gemini's ``batchEmbedContents``."""

PASS_THROUGH: dict[str, Codec] = {"anthropic-messages": ANTHROPIC_NATIVE}
"""The dialects whose requests a client of the same dialect may send through unchanged
(the gateway's ``/v1/messages``), by codec key: the codec that passes them on."""

CAPABILITY_NAMES: dict[str, str] = {
    "stream": "supports_stream",
    **{field.removeprefix("supports_"): field for field in CAPABILITIES},
}
"""The names a declaration's ``capabilities`` may hold, and the contract field each sets:
``stream``, ``tools``, ``vision``, ``audio``, ``json_schema``."""


@dataclass(frozen=True)
class Credential:
    """Where a declared provider's key comes from, and how it is sent.

    The key is the call's ``auth=``, else ``PROVIDERHUB_<NAME>_API_KEY``, else the variable
    ``env`` names (when it names one). It goes in the header ``header``, after ``scheme``
    and a space (``Authorization: Bearer <key>`` by default; ``scheme=""`` sends the key
    alone, as ``x-api-key: <key>``). ``required`` says whether the provider needs one:
    the router then skips it while no key is at hand, and a direct call without one
    raises :class:`~providerhub.errors.InvalidRequestError` before sending anything. A
    declaration without a ``Credential`` needs no key, and sends one as a Bearer token
    when ``auth=`` or ``PROVIDERHUB_<NAME>_API_KEY`` gives one.
    """

    env: str | None = None
    header: str = "Authorization"
    scheme: str = "Bearer"
    required: bool = True


class HTTPProvider:
    """A provider that is an HTTP endpoint of a known dialect, declared by its fields.

    ``name`` is the provider's name (the ``<NAME>`` of ``PROVIDERHUB_<NAME>_URL`` and
    ``PROVIDERHUB_<NAME>_API_KEY``); ``url`` the endpoint's base URL, and ``path`` where
    its chat completions live under it (by default the codec's usual path,
    ``/v1/chat/completions`` for ``openai-chat``); ``models`` the model names it serves.
    ``embedding_models`` are the embedding models it serves (none by default), whose
    requests go out in the dialect ``embedding_codec`` names, a key of
    :data:`EMBEDDING_CODECS` (OpenAI's, to ``{url}/v1/embeddings``, by default; Gemini's
    ``batchEmbedContents``), whatever the ``codec``; with some, ``models`` may be empty.
    ``codec`` names its wire dialect, a key of :data:`CODECS`. ``capabilities`` names
    what it can do, of :data:`CAPABILITY_NAMES` (``stream`` by default). ``credential``
    says where its key comes from (see :class:`Credential`). ``working`` False keeps the
    router away from it; ``rpm`` and ``tpm`` are its rate limits, requests and tokens per
    minute. ``defaults`` are body fields a caller's parameters override;
    ``extra_parameters`` the parameters beyond the codec's that it takes and sends on as
    given; ``headers`` are sent with every request (no credential: that is
    ``credential``'s). ``prices`` maps model names to their :class:`~providerhub.plugin.Price`
    (US dollars per million tokens), which the gateway counts spend with.

    Every field is checked here: a wrong one raises
    :class:`~providerhub.errors.PluginError` naming the provider and the field, so
    a plugin with a bad declaration fails when it is loaded, and the hub's
    ``plugin_errors`` say why.

    The object then follows the provider contract: ``url`` (overridden at each call by
    ``PROVIDERHUB_<NAME>_URL``), ``model``, ``supports_stream``, ``needs_auth``,
    ``working``, the capability fields, ``api_key_env``, ``rpm``, ``tpm``, ``params``,
    ``yields_pieces`` and ``honors_timeout`` (both True), ``_create_completion`` and
    ``_acreate_completion``, and ``embedding_models``, ``_create_embedding`` and
    ``_acreate_embedding``.
    """

    yields_pieces = True
    """The router passes ``structured=True``: tool calls, usage and the finish reason
    reach the client."""
    honors_timeout = True
    """The codec's transports keep the router's timeouts, so no watchdog thread is
    needed."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        models: Iterable[str],
        path: str | None = None,
        codec: str = "openai-chat",
        capabilities: Iterable[str] = ("stream",),
        credential: Credential | None = None,
        working: bool = True,
        rpm: int | None = None,
        tpm: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        extra_parameters: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        embedding_models: Iterable[str] = (),
        embedding_codec: str = "openai-embeddings",
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        bad = _Bad(f"{type(self).__name__} {name!r}")
        self.name: str = _check_name(bad, name)
        dialect = _known(bad, "codec", codec, CODECS, "codec")
        self.codec: str = codec
        self._dialect = dialect
        self.url: str = _check_url(bad, url)
        """The base URL as declared; ``PROVIDERHUB_<NAME>_URL`` overrides it at each call."""
        self.path: str = dialect.path if path is None else _check_path(bad, path)
        _check_doubled_prefix(bad, self.url, self.path)
        self.embedding_models: list[str] = _check_models(
            bad, embedding_models, "embedding_models", empty=True
        )
        self.model: list[str] = _check_models(bad, models, empty=bool(self.embedding_models))
        self.embedding_codec: str = embedding_codec
        self._embedding_dialect = _known(
            bad, "embedding_codec", embedding_codec, EMBEDDING_CODECS, "embeddings codec"
        )
        if self.embedding_models:
            _check_doubled_prefix(bad, self.url, self._embedding_dialect.path)
        flags = _check_capabilities(bad, capabilities)
        self.supports_stream: bool = flags["supports_stream"]
        self.supports_tools: bool = flags["supports_tools"]
        self.supports_vision: bool = flags["supports_vision"]
        self.supports_audio: bool = flags["supports_audio"]
        self.supports_json_schema: bool = flags["supports_json_schema"]
        key = Credential(required=False) if credential is None else credential
        _check_credential(bad, key)
        self.api_key_env: str | None = key.env
        """The environment variable holding the key besides ``PROVIDERHUB_<NAME>_API_KEY``,
        or None."""
        self.needs_auth: bool = key.required
        self.key_header: str = key.header
        """The header the key goes in."""
        self.key_scheme: str = key.scheme
        """What comes before the key in that header ("" for the key alone)."""
        self._bearer = key.header.lower() == "authorization" and key.scheme == "Bearer"
        self.working: bool = _check_flag(bad, "working", working)
        self.rpm: int | None = _check_rate(bad, "rpm", rpm, "requests")
        self.tpm: int | None = _check_rate(bad, "tpm", tpm, "tokens")
        self.extra_parameters: frozenset[str] = _check_extra_parameters(bad, extra_parameters)
        self.defaults: dict[str, Any] = _check_defaults(
            bad, defaults, dialect.parameters | self.extra_parameters
        )
        self.headers: dict[str, str] = _check_headers(bad, "headers", headers, key.header)
        try:
            self.prices: dict[str, Price] = declared_prices(prices, bad.who)
        except ValueError as exc:
            raise PluginError(str(exc), setting="prices") from None
        """Its models' prices (see :class:`~providerhub.plugin.Price`)."""
        self.params: str = render_params(self.name, self._create_completion)

    def __repr__(self) -> str:
        # The hub may have written an overriding url, which could carry a password.
        where = redact(self.url + self.path)
        return f"<{type(self).__name__} {self.name!r} {where} models={self.model!r}>"

    @property
    def endpoint(self) -> str:
        """The full address requests go to: ``url`` followed by ``path`` (as declared;
        a call reads ``PROVIDERHUB_<NAME>_URL`` first)."""
        return self.url + self.path

    def credential(self) -> str | None:
        """The key from the environment: ``PROVIDERHUB_<NAME>_API_KEY``, else the variable
        ``api_key_env`` names; None when neither is set (an empty value counts as unset).
        A call's ``auth=`` comes before both."""
        return settings.credential(self.name, api_key_env=self.api_key_env)

    def credential_variable(self) -> str | None:
        """The variable an authentication error tells the user to set: ``api_key_env``,
        unless ``PROVIDERHUB_<NAME>_API_KEY`` is set, which comes before it (and which the
        exchange names when this returns None)."""
        if self.api_key_env and settings.credential(self.name) is None:
            return self.api_key_env
        return None

    def _create_completion(
        self,
        model: str,
        messages: list,  # type: ignore[type-arg]  # the contract's signature, which params shows
        stream: bool,
        **kwargs: Any,
    ) -> Iterator[Piece]:
        """Yield the answer: each content delta as it arrives when ``stream`` is true (and
        the provider streams), the whole message otherwise; :meth:`complete` at ``url``.

        ``kwargs`` are the codec's parameters (OpenAI's chat parameters for
        ``openai-chat``), those of :attr:`extra_parameters`, and what the router passes
        (``auth``, ``timeout``, ``session``, ``structured``). A provider that needs a key
        and has none raises :class:`~providerhub.errors.InvalidRequestError` before
        anything is sent, naming the variable to set.
        """
        return self.complete(self.url, model, messages, stream, **kwargs)

    def _acreate_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> AsyncIterator[Piece]:
        """:meth:`_create_completion` for asyncio, over aiohttp (``providerhub[server]``):
        the async API calls it on the event loop, with an ``aiohttp.ClientSession`` as
        ``session``."""
        return self.acomplete(self.url, model, messages, stream, **kwargs)

    @property
    def passes_through(self) -> bool:
        """Whether a client of this provider's own dialect may send its request through
        unchanged (:meth:`_acreate_message`)."""
        return self.codec in PASS_THROUGH

    def _acreate_message(
        self, model: str, stream: bool, native_body: Mapping[str, Any], **kwargs: Any
    ) -> AsyncIterator[Piece]:
        """Send ``native_body``, a request in this provider's own dialect (a Messages
        client's, for Anthropic's), as it is, with this provider's ``model``, credential
        and headers, and yield its answer verbatim (:class:`~providerhub.types.Verbatim`),
        with its usage; ``betas`` (in ``kwargs``) are the client's ``anthropic-beta``
        values. The router's keyword arguments are taken as by
        :meth:`_acreate_completion`."""
        codec = PASS_THROUGH.get(self.codec)
        if codec is None:
            raise InvalidRequestError(f"{self.name} takes no request in another dialect")
        betas = kwargs.pop("betas", None)
        address, options = self._call(self.url, kwargs)
        options["codec"] = codec
        return achat_completion(
            self.name,
            address,
            model,
            [],
            stream and self.supports_stream,
            native_body=native_body,
            betas=betas,
            **options,
        )

    def complete(
        self, url: str, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Piece]:
        """:meth:`_create_completion` under the base URL ``url`` (which
        ``PROVIDERHUB_<NAME>_URL`` still overrides): for a module that keeps the seed's
        shape, whose ``_create_completion`` passes its module-level ``url``, which a hub
        may override for the module's own calls. Nothing is sent, and nothing checked,
        until the first piece is asked for."""
        address, options = self._call(url, kwargs)
        # A provider declared without "stream" is never asked to stream, even when called
        # directly: it may not speak Server-Sent Events at all.
        yield from chat_completion(
            self.name, address, model, messages, stream and self.supports_stream, **options
        )

    def acomplete(
        self, url: str, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> AsyncIterator[Piece]:
        """:meth:`complete` for asyncio (see :meth:`_acreate_completion`). Unlike
        :meth:`complete`, it checks the call at once (a missing key, what the codec cannot
        send) and returns the exchange's own iterator: nothing is sent until the first
        piece is asked for, and no generator of its own stands between each piece and the
        loop."""
        address, options = self._call(url, kwargs)
        return achat_completion(
            self.name, address, model, messages, stream and self.supports_stream, **options
        )

    def _create_embedding(self, model: str, input: Any, **kwargs: Any) -> CreateEmbeddingResponse:
        """The vectors of ``input`` (a string, a list of strings, or token ids) by the
        embedding model ``model``, in the dialect of ``embedding_codec`` (from
        ``{url}/v1/embeddings`` by default); ``kwargs`` are OpenAI's
        embeddings fields (``dimensions``, ``user``) and what the router passes (``auth``,
        ``timeout``, ``session``)."""
        address, options = self._embedding_call(kwargs)
        return create_embedding(self.name, address, model, input, **options)

    async def _acreate_embedding(
        self, model: str, input: Any, **kwargs: Any
    ) -> CreateEmbeddingResponse:
        """:meth:`_create_embedding` for asyncio, over aiohttp (``providerhub[server]``),
        with an ``aiohttp.ClientSession`` as ``session``."""
        address, options = self._embedding_call(kwargs)
        return await acreate_embedding(self.name, address, model, input, **options)

    def _embedding_call(self, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """:meth:`_call` for embeddings: the chat dialect's defaults, parameters and codec
        are not the embeddings'."""
        options = self._key_options(kwargs)
        options["credential_variable"] = self.credential_variable()
        options["codec"] = self._embedding_dialect.codec
        options.update(kwargs)
        return settings.url(self.name, self.url) + self._embedding_dialect.path, options

    def _call(self, url: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The address of a call under the base URL ``url`` and the keyword arguments of
        its exchange: the declaration's options, then the call's own ``kwargs`` (a direct
        caller may set an option; the hub refuses them in a caller's parameters)."""
        options: dict[str, Any] = {
            "defaults": self.defaults,
            "credential_variable": self.credential_variable(),
            "extra_parameters": self.extra_parameters,
            "codec": self._dialect.codec,
            **self._key_options(kwargs),
        }
        options.update(kwargs)
        return settings.url(self.name, url) + self.path, options

    def _key_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The ``auth`` and ``headers`` of a call (taking ``auth`` out of ``kwargs``): the
        key as a Bearer token, or in the declared header."""
        auth = settings.credential(self.name, kwargs.pop("auth", None), self.api_key_env)
        if auth is None and self.needs_auth:
            raise InvalidRequestError(self._missing_key())
        headers = self.headers
        if auth is not None and not self._bearer:
            value = f"{self.key_scheme} {auth}" if self.key_scheme else auth
            # Configured header values are secrets to the exchange: no message shows it.
            headers = {**self.headers, self.key_header: value}
            auth = None
        return {"headers": headers, "auth": auth}

    def _missing_key(self) -> str:
        """What a call without a key to a provider that needs one is told."""
        where = f"{self.api_key_env} or " if self.api_key_env else ""
        return (
            f"{self.name} needs a key: set {where}{settings.api_key_variable(self.name)}, "
            f"or pass auth={{{self.name!r}: ...}}"
        )


# -- checking a declaration ----------------------------------------------------------------


class _Bad:
    """Raises the error of a declaration's field, naming the provider and the field."""

    def __init__(self, who: str) -> None:
        self.who = who

    def __call__(self, field: str, message: str) -> PluginError:
        return PluginError(f"{self.who}: {field} {message}", setting=field)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# An HTTP header name, and an authentication scheme, is a "token" (RFC 9110, 5.6.2, 11.1).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Headers the exchange sets itself: it describes the body and the answer's format per call.
_EXCHANGE_HEADERS = frozenset({"content-type", "content-length", "accept"})
# Headers of one hop rather than of the request, which the HTTP client sets for each
# connection and body (RFC 9110, 7.6.1; RFC 9112, 6).
_HOP_HEADERS = frozenset(
    {"connection", "host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)


def _check_name(bad: _Bad, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad(
            "name",
            "must be a provider name (letters, digits, '.', '-' and '_', starting with a "
            f"letter or a digit), like 'acme', not {name!r}",
        )
    return name


_D = TypeVar("_D")


def _known(bad: _Bad, field: str, key: Any, table: Mapping[str, _D], what: str) -> _D:
    """The entry of ``table`` that the declaration's ``field`` names (``key``), or its
    error naming the ``what`` there are."""
    found = table.get(key) if isinstance(key, str) else None
    if found is None:
        tip = did_you_mean(str(key), table)
        raise bad(
            field,
            f"is {key!r}, which is not a known {what}{tip} (the {what}s are: {', '.join(table)})",
        )
    return found


def _check_url(bad: _Bad, value: Any) -> str:
    example = 'like "https://api.example.com"'
    if not isinstance(value, str):
        raise bad("url", f"must be a string, {example}, not {type(value).__name__}")
    # The value is shown only when it cannot hold a password or a key.
    shown = repr(value) if "@" not in value and "?" not in value else "the value given"
    if not value or any(c.isspace() for c in value):
        raise bad("url", f"must be a URL without spaces, {example}, not {shown}")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise bad("url", f"is not a valid URL ({exc}): {shown}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad("url", f"must be an http:// or https:// URL with a host, {example}, not {shown}")
    if parts.username is not None or parts.password is not None:
        raise bad("url", "must not hold a user name or password: declare a credential instead")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise bad(
            "url", "must not have a query or a fragment: it is the base URL, and path is added"
        )
    return value.rstrip("/")


def _check_path(bad: _Bad, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise bad("path", f'must be a string starting with "/", not {value!r}')
    if any(c.isspace() for c in value) or "#" in value:
        raise bad("path", f'must hold no spaces or "#", not {value!r}')
    return value


def _check_doubled_prefix(bad: _Bad, url: str, path: str) -> None:
    """Base URLs are often given as ``.../v1``, and then ``/v1/chat/completions`` would
    make ``/v1/v1/...``."""
    base_path = urlsplit(url).path.rstrip("/")
    first = "/" + path.lstrip("/").split("/", 1)[0]
    if first != "/" and base_path.endswith(first):
        raise bad(
            "url",
            f"ends with {first} and path starts with {first}/, so requests would go to "
            f"{url}{path}: drop {first} from url",
        )


def _check_models(
    bad: _Bad, value: Any, field: str = "models", *, empty: bool = False
) -> list[str]:
    """The model names of ``field``; ``empty`` lets the list be empty (``models`` when
    the declaration serves embedding models)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise bad(field, f"must be a list of model names, not {value!r}")
    models = list(value)
    if not models and not empty:
        raise bad(field, "must name at least one model (or declare embedding_models)")
    for index, item in enumerate(models, 1):
        if not isinstance(item, str) or not item.strip():
            raise bad(field, f"item {index} must be a non-empty model name, not {item!r}")
        if item != item.strip():
            # The router matches model names exactly; a stray space would never match.
            raise bad(field, f"item {index} has spaces around it: {item!r}")
        if models.index(item) != index - 1:
            raise bad(field, f"lists {item!r} twice")
    return models


def _check_capabilities(bad: _Bad, value: Any) -> dict[str, bool]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise bad(
            "capabilities", f'must be a list of names, like ["stream", "tools"], not {value!r}'
        )
    flags = dict.fromkeys(CAPABILITY_NAMES.values(), False)
    for item in value:
        field = CAPABILITY_NAMES.get(item) if isinstance(item, str) else None
        if field is None:
            tip = did_you_mean(str(item), CAPABILITY_NAMES)
            raise bad(
                "capabilities",
                f"holds {item!r}, which is not a capability{tip} (they are: "
                f"{', '.join(CAPABILITY_NAMES)})",
            )
        flags[field] = True
    return flags


def _check_credential(bad: _Bad, key: Any) -> None:
    if not isinstance(key, Credential):
        raise bad("credential", f"must be a Credential(...) or None, not {type(key).__name__}")
    if key.env is not None and (not isinstance(key.env, str) or not _ENV_NAME.match(key.env)):
        # Not shown: a value that is not a variable name may well be the key itself.
        raise bad(
            "credential.env",
            "must be the name of the environment variable that holds the key, like "
            '"ACME_API_KEY" (the value given is not shown, in case it is the key itself)',
        )
    if not isinstance(key.header, str) or not _TOKEN.match(key.header):
        raise bad("credential.header", f"must be an HTTP header name, not {key.header!r}")
    lowered = key.header.lower()
    if lowered in _EXCHANGE_HEADERS or lowered in _HOP_HEADERS or lowered.startswith("proxy-"):
        raise bad("credential.header", f"cannot be {key.header}: the HTTP client sets it")
    if not isinstance(key.scheme, str) or (key.scheme and not _TOKEN.match(key.scheme)):
        raise bad(
            "credential.scheme",
            f'must be one word, like "Bearer", or "" for the key alone, not {key.scheme!r}',
        )
    _check_flag(bad, "credential.required", key.required)


def _check_flag(bad: _Bad, field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad(field, f"must be True or False, not {value!r}")
    return value


def _check_rate(bad: _Bad, field: str, value: Any, what: str) -> int | None:
    # bool is an int in Python, and True would pass as 1.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise bad(
            field,
            f"must be a whole number of {what} per minute, at least 1, or None for no "
            f"limit, not {value!r}",
        )
    return value


def _check_extra_parameters(bad: _Bad, value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise bad("extra_parameters", f'must be a list of names, like ["top_k"], not {value!r}')
    names = frozenset(value)
    options = provider_options()
    for item in sorted(names, key=str):
        if not isinstance(item, str) or not _PARAMETER_NAME.match(item):
            raise bad("extra_parameters", f"holds {item!r}, which is not a parameter name")
        if item in REQUEST_FIELDS or item in ROUTING_ARGUMENTS or item in options:
            raise bad(
                "extra_parameters",
                f"holds {item!r}, which providerhub sets itself, not a parameter a call may pass",
            )
    return names


def _check_defaults(
    bad: _Bad, value: Mapping[str, Any] | None, known: Collection[str]
) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad("defaults", f"must be a mapping of parameter to value, not {value!r}")
    for key in value:
        if key not in known:
            raise bad(
                "defaults",
                f"holds {key!r}, which is not a parameter of the codec (add it to "
                "extra_parameters if the endpoint takes it)",
            )
    try:
        json.dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise bad("defaults", f"must be values JSON can carry: {exc}") from None
    return dict(value)


def _check_headers(
    bad: _Bad, field: str, value: Mapping[str, str] | None, key_header: str
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad(field, f"must be a mapping of header names to values, not {value!r}")
    seen: set[str] = set()
    for name, item in value.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise bad(field, f"holds {name!r}, which is not an HTTP header name")
        lowered = name.lower()
        if lowered in ("authorization", key_header.lower()):
            raise bad(field, f"must not set {name}: the key goes through credential=")
        if lowered in _EXCHANGE_HEADERS or lowered in _HOP_HEADERS or lowered.startswith("proxy-"):
            raise bad(field, f"must not set {name}: the exchange or the HTTP client sets it")
        if lowered in seen:
            raise bad(field, f"sets {name} twice (header names ignore case)")
        seen.add(lowered)
        # Values are not shown: a header may carry a key of some other scheme.
        if not isinstance(item, str) or any(c in item for c in "\r\n\0"):
            raise bad(field, f"{name} must be a string with no line break or NUL")
    return dict(value)
