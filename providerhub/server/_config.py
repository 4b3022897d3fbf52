"""The server's settings: client keys and limits, from the environment and from the
``[server]`` table of providerhub's configuration file.

::

    [server]
    max_body_bytes = 16777216      # larger request bodies get 413
    max_concurrency = 1024         # requests at once per worker; past it, 503 at once
    max_header_bytes = 65536       # a larger request line and headers get 431 (414)
    header_timeout = 10            # seconds for the request line and headers (408)
    body_timeout = 30              # seconds for the whole body, from the headers (408)
    write_timeout = 30             # seconds an answer may wait on a client not reading
    cors_origins = ["https://app.example.com"]  # browsers' origins allowed; none by default
    upstream_timeout = 120         # seconds a request may take upstream, retries included
    access_log = "json"            # a JSON line per request on providerhub.access; off by default
    otel = true                    # OpenTelemetry spans (providerhub[otel]); off by default

    [[server.keys]]
    name = "ci"                    # optional; shown in logs, never the key
    sha256 = "9f86d081884c7d65..." # hex SHA-256 of the key: the file holds no key
    rpm = 600                      # optional requests per minute, per worker
    budget_usd = 25                # optional: US dollars this key may spend per period
    budget_period = "month"        # "month" (the default) or "day", in UTC

    [prices."gpt-4o"]              # USD per million tokens; overrides the plugins' prices
    input = 2.5
    output = 10
    cached_input = 1.25            # optional (the input price when left out)

``PROVIDERHUB_SERVER_API_KEYS`` adds keys given in clear (comma-separated, no name, no
limit); ``PROVIDERHUB_SERVER_MAX_BODY_BYTES``, ``PROVIDERHUB_SERVER_MAX_CONCURRENCY``,
``PROVIDERHUB_SERVER_MAX_HEADER_BYTES``, ``PROVIDERHUB_SERVER_HEADER_TIMEOUT``,
``PROVIDERHUB_SERVER_BODY_TIMEOUT``, ``PROVIDERHUB_SERVER_WRITE_TIMEOUT``,
``PROVIDERHUB_SERVER_CORS_ORIGINS`` (comma-separated) and
``PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT``, ``PROVIDERHUB_SERVER_ACCESS_LOG`` and
``PROVIDERHUB_SERVER_OTEL`` override the file's values.

The ``[response_cache]`` table (and its ``PROVIDERHUB_RESPONSE_CACHE_*`` variables) is
read here too, by :func:`providerhub._cache.load_settings`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from .._cache import CacheSettings
from .._cache import load_settings as load_cache_settings
from .._spend import Price, prices_from_table
from .._timeout import DEFAULT_TIMEOUT, MAX_SECONDS, Timeout
from ..errors import ConfigurationError

__all__ = [
    "ACCESS_LOG_VARIABLE",
    "BODY_TIMEOUT_VARIABLE",
    "CORS_ORIGINS_VARIABLE",
    "HEADER_TIMEOUT_VARIABLE",
    "KEYS_VARIABLE",
    "MAX_BODY_VARIABLE",
    "MAX_CONCURRENCY_VARIABLE",
    "MAX_HEADER_VARIABLE",
    "OTEL_VARIABLE",
    "UPSTREAM_TIMEOUT_VARIABLE",
    "WRITE_TIMEOUT_VARIABLE",
    "ClientKey",
    "ServerSettings",
    "config_path",
    "load",
]

KEYS_VARIABLE = "PROVIDERHUB_SERVER_API_KEYS"
MAX_BODY_VARIABLE = "PROVIDERHUB_SERVER_MAX_BODY_BYTES"
MAX_CONCURRENCY_VARIABLE = "PROVIDERHUB_SERVER_MAX_CONCURRENCY"
MAX_HEADER_VARIABLE = "PROVIDERHUB_SERVER_MAX_HEADER_BYTES"
HEADER_TIMEOUT_VARIABLE = "PROVIDERHUB_SERVER_HEADER_TIMEOUT"
BODY_TIMEOUT_VARIABLE = "PROVIDERHUB_SERVER_BODY_TIMEOUT"
WRITE_TIMEOUT_VARIABLE = "PROVIDERHUB_SERVER_WRITE_TIMEOUT"
CORS_ORIGINS_VARIABLE = "PROVIDERHUB_SERVER_CORS_ORIGINS"
UPSTREAM_TIMEOUT_VARIABLE = "PROVIDERHUB_SERVER_UPSTREAM_TIMEOUT"
CONFIG_VARIABLE = "PROVIDERHUB_CONFIG"
ACCESS_LOG_VARIABLE = "PROVIDERHUB_SERVER_ACCESS_LOG"
OTEL_VARIABLE = "PROVIDERHUB_SERVER_OTEL"

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Room for a conversation with a few base64 images; a larger body is refused (413)."""
DEFAULT_MAX_CONCURRENCY = 1024
"""Requests (streams included) one worker serves at once before it answers 503."""
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
"""The request line and headers: 8 KiB is the common size, 64 KiB leaves room for long
cookies and tokens; past it the answer is 431 (414 when the URL alone is longer)."""
DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds from the connection (or the first byte of the next request on it) to the end
of the headers; past it, 408 and the connection is closed."""
DEFAULT_BODY_TIMEOUT = 30.0
"""Seconds from the end of the headers to the end of the body; past it, 408."""
DEFAULT_WRITE_TIMEOUT = 30.0
"""Seconds an answer may stay blocked on a client that does not read it; past it the
connection is closed and the request's upstream call aborted."""
DEFAULT_UPSTREAM_TIMEOUT = 120.0
"""Seconds one request may take upstream, every retry and fallback and the whole answer
(a stream's too) included: one read timeout (60 s) for an upstream that hangs, and as
much again for a retry or the next provider; a client is answered by then, not after
the 3 x 60 s that a hung upstream held it with the library's own timeouts."""

_FIELDS = (
    "keys",
    "max_body_bytes",
    "max_concurrency",
    "max_header_bytes",
    "header_timeout",
    "body_timeout",
    "write_timeout",
    "cors_origins",
    "upstream_timeout",
    "access_log",
    "otel",
)
_KEY_FIELDS = ("name", "sha256", "rpm", "budget_usd", "budget_period")
BUDGET_PERIODS = ("month", "day")


@dataclass(frozen=True)
class ClientKey:
    """A client key the server accepts: the SHA-256 ``digest`` of the key, an optional
    ``name`` (for logs and metrics; never the key), an optional ``rpm`` limit, and an
    optional ``budget`` (picodollars, 10^-12 USD) per ``budget_period`` (``"month"`` or
    ``"day"``, UTC)."""

    digest: bytes
    name: str
    rpm: int | None = None
    budget: int | None = None
    budget_period: str = "month"

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f" budget={self.budget}pUSD/{self.budget_period}"
        return f"<ClientKey {self.name!r} rpm={self.rpm}{budget}>"


@dataclass(frozen=True)
class ServerSettings:
    """What the server reads at start: its client keys (none: no key is asked for) and its
    limits."""

    keys: tuple[ClientKey, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    source: str = ""
    """The configuration file read, for messages."""
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    write_timeout: float = DEFAULT_WRITE_TIMEOUT
    cors_origins: tuple[str, ...] = ()
    """The origins whose browser pages may call the server (``*``: any); none by default."""
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    """The total timeout of each call the server makes (see :meth:`upstream_limits`)."""
    prices: tuple[Mapping[str, Price], Mapping[tuple[str, str], Price]] = ({}, {})
    """The configuration file's ``[prices]``: by model, and by provider and model."""
    cache: CacheSettings = field(default_factory=CacheSettings)
    """The response cache's settings: the ``[response_cache]`` table (off by default)."""
    access_log: str = ""
    """``"json"``: a JSON line per request (:mod:`._access_log`); ``""``: none."""
    otel: bool = False
    """Whether requests and attempts are traced with OpenTelemetry (:mod:`._otel`)."""

    def upstream_limits(self) -> Timeout:
        """The timeout of each call: :data:`upstream_timeout` for the whole of it, and
        the library's connect and read timeouts within it (never longer than it)."""
        total = self.upstream_timeout
        connect, read = DEFAULT_TIMEOUT
        return Timeout(min(connect, total), min(read, total), total)


def config_path(environ: dict[str, str] | None = None) -> Path:
    """providerhub's configuration file: ``PROVIDERHUB_CONFIG``, else
    ``providerhub/config.toml`` in the platform's configuration folder, the rule of the
    openai-compatible plugin (whose file it is too: each part reads its own table)."""
    from .._config_file import config_path as found

    return found(environ)


def load(environ: dict[str, str] | None = None) -> ServerSettings:
    """The settings of the environment and of the ``[server]`` table of the configuration
    file (a missing file has none). Anything wrong raises
    :class:`~providerhub.ConfigurationError` saying where and what, so the server does
    not start half configured."""
    env = os.environ if environ is None else environ
    path = config_path(dict(env))
    document = _document(path, named=bool(env.get(CONFIG_VARIABLE)))
    table = _server_table(document, path)
    where = f"{path} [server]"
    try:
        prices = prices_from_table(document.get("prices", {}), f"{path} [prices]")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None

    keys = [_file_key(entry, i, where) for i, entry in enumerate(_keys_of(table, where))]
    names = [k.name for k in keys]
    for i, raw in enumerate(part.strip() for part in env.get(KEYS_VARIABLE, "").split(",")):
        if raw:
            keys.append(ClientKey(hashlib.sha256(raw.encode()).digest(), f"env-{i + 1}"))
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigurationError(f"{where}: two keys are named {sorted(duplicates)[0]!r}")

    max_body = _limit(table, "max_body_bytes", env, MAX_BODY_VARIABLE, DEFAULT_MAX_BODY_BYTES)
    max_concurrency = _limit(
        table, "max_concurrency", env, MAX_CONCURRENCY_VARIABLE, DEFAULT_MAX_CONCURRENCY
    )
    return ServerSettings(
        tuple(keys),
        max_body,
        max_concurrency,
        str(path),
        max_header_bytes=_limit(
            table, "max_header_bytes", env, MAX_HEADER_VARIABLE, DEFAULT_MAX_HEADER_BYTES
        ),
        header_timeout=_seconds(
            table, "header_timeout", env, HEADER_TIMEOUT_VARIABLE, DEFAULT_HEADER_TIMEOUT
        ),
        body_timeout=_seconds(
            table, "body_timeout", env, BODY_TIMEOUT_VARIABLE, DEFAULT_BODY_TIMEOUT
        ),
        write_timeout=_seconds(
            table, "write_timeout", env, WRITE_TIMEOUT_VARIABLE, DEFAULT_WRITE_TIMEOUT
        ),
        cors_origins=_origins(table, env),
        upstream_timeout=_seconds(
            table, "upstream_timeout", env, UPSTREAM_TIMEOUT_VARIABLE, DEFAULT_UPSTREAM_TIMEOUT
        ),
        prices=prices,
        cache=load_cache_settings(document.get("response_cache"), env, str(path)),
        access_log=_access_log(table, env),
        otel=_switch(table, "otel", env, OTEL_VARIABLE),
    )


def _document(path: Path, *, named: bool) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if named:  # its keys were meant to be read: serving without them would be open
            raise ConfigurationError(f"{path}: no such file (named by {CONFIG_VARIABLE})") from None
        return {}
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published on its own for Pythons without tomllib
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        document: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: is not a valid TOML file: {exc}") from None
    return document


def _server_table(document: dict[str, Any], path: Path) -> dict[str, Any]:
    table = document.get("server", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [server] must be a table")
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise ConfigurationError(
            f"{path} [server]: unknown field {unknown[0]!r} (the fields are {', '.join(_FIELDS)})"
        )
    return table


def _keys_of(table: dict[str, Any], where: str) -> list[Any]:
    keys = table.get("keys", [])
    if not isinstance(keys, list):
        raise ConfigurationError(f"{where}: keys must be an array of tables ([[server.keys]])")
    return keys


def _file_key(entry: Any, index: int, where: str) -> ClientKey:
    at = f"{where} keys[{index}]"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{at}: must be a table with sha256, and optionally name, rpm")
    unknown = sorted(set(entry) - set(_KEY_FIELDS))
    if unknown:
        hint = (
            ": the file holds hashes only; put the SHA-256 of the key in sha256"
            if unknown[0] in ("key", "api_key", "secret")
            else f" (the fields are {', '.join(_KEY_FIELDS)})"
        )
        raise ConfigurationError(f"{at}: unknown field {unknown[0]!r}{hint}")
    digest = entry.get("sha256")
    if not (
        isinstance(digest, str) and len(digest) == 64 and all(c in string.hexdigits for c in digest)
    ):
        raise ConfigurationError(
            f"{at}: sha256 must be the 64 hex digits of the key's SHA-256 "
            "(printf %s KEY | sha256sum)"
        )
    name = entry.get("name", f"key-{index + 1}")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{at}: name must be a non-empty string")
    rpm = entry.get("rpm")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
        raise ConfigurationError(f"{at}: rpm must be a positive whole number of requests")
    budget = entry.get("budget_usd")
    if budget is not None:
        budget = _budget(budget, at)
    period = entry.get("budget_period", "month")
    if period not in BUDGET_PERIODS:
        raise ConfigurationError(
            f'{at}: budget_period must be "month" or "day" (UTC), not {period!r}'
        )
    if "budget_period" in entry and budget is None:
        raise ConfigurationError(f"{at}: budget_period needs budget_usd, the dollars per period")
    return ClientKey(bytes.fromhex(digest), name, rpm, budget, period)


def _budget(value: Any, at: str) -> int:
    """``budget_usd`` in picodollars."""
    wrong = ConfigurationError(f"{at}: budget_usd must be a positive number of US dollars")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise wrong
    if isinstance(value, float) and not math.isfinite(value):
        raise wrong
    picodollars = Decimal(str(value)).scaleb(12)
    if picodollars <= 0:
        raise wrong
    return int(picodollars.to_integral_value(ROUND_CEILING))


def _chosen(
    table: dict[str, Any],
    field: str,
    env: Any,
    variable: str,
    default: Any,
    parse: Callable[[str], Any],
    what: str,
) -> tuple[Any, str]:
    """The value of ``field``: the environment's ``variable`` when set (``parse``d, or an
    error saying it must be ``what``), which comes before the table's (or ``default``);
    and where it came from, for the messages about it."""
    raw = env.get(variable, "")
    if not raw:
        return table.get(field, default), f"[server] {field}"
    try:
        return parse(raw), variable
    except ValueError:
        raise ConfigurationError(f"{variable} must be {what}, not {raw!r}") from None


def _limit(table: dict[str, Any], field: str, env: Any, variable: str, default: int) -> int:
    value, where = _chosen(table, field, env, variable, default, int, "a whole number")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{where} must be a positive whole number, not {value!r}")
    return value


def _seconds(table: dict[str, Any], field: str, env: Any, variable: str, default: float) -> float:
    value, where = _chosen(table, field, env, variable, default, float, "a number of seconds")
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= MAX_SECONDS
    ):
        raise ConfigurationError(f"{where} must be a positive number of seconds, not {value!r}")
    return float(value)


def _access_log(table: dict[str, Any], env: Any) -> str:
    value, where = _chosen(table, "access_log", env, ACCESS_LOG_VARIABLE, "", str, "a string")
    if value in ("off", "none"):
        value = ""
    if value not in ("", "json"):
        raise ConfigurationError(f'{where} must be "json" or "off", not {value!r}')
    return str(value)


_TRUE = {"1": True, "true": True, "yes": True, "on": True}
_FALSE = {"0": False, "false": False, "no": False, "off": False}


def _switch(table: dict[str, Any], field: str, env: Any, variable: str) -> bool:
    def parse(raw: str) -> bool:
        words = {**_TRUE, **_FALSE}
        if raw.lower() not in words:
            raise ValueError(raw)
        return words[raw.lower()]

    value, where = _chosen(table, field, env, variable, False, parse, "true or false (1 or 0)")
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where} must be true or false, not {value!r}")
    return value


_ORIGIN = re.compile(r"https?://[^/?#\s]+")
"""What a browser sends as ``Origin``: a scheme and a host (and port), no path."""


def _origins(table: dict[str, Any], env: Any) -> tuple[str, ...]:
    values, where = _chosen(
        table,
        "cors_origins",
        env,
        CORS_ORIGINS_VARIABLE,
        [],
        lambda raw: [part.strip() for part in raw.split(",") if part.strip()],
        "a comma-separated list of origins",
    )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigurationError(f"{where} must be a list of origins, as strings")
    for value in values:
        if value != "*" and not _ORIGIN.fullmatch(value):
            raise ConfigurationError(
                f"{where}: {value!r} is not an origin: a browser sends scheme://host[:port], "
                "with no path or trailing slash (e.g. 'https://app.example.com'), or '*' for any"
            )
    return tuple(v.lower() for v in values)  # browsers send scheme and host lower-cased
