"""Per-provider settings read from the environment, one scheme for every provider.

``NAME`` is the provider's name upper-cased, with every character that is not a letter or a
digit written as ``_``:

- ``PROVIDERHUB_<NAME>_URL`` overrides the provider's ``url``;
- ``PROVIDERHUB_<NAME>_API_KEY`` is its credential;
- ``PROVIDERHUB_<NAME>_MODELS=a,b`` adds model names to the ones it declares;
- ``PROVIDERHUB_DISABLE_PLUGINS=name,name`` skips plugins (and providers) by name;
- ``PROVIDERHUB_ALIASES=alias=model,alias=model`` gives a new hub its first aliases;
- ``PROVIDERHUB_REDIS_URL=redis://host:port/db`` makes every new hub share its cooldowns and
  rate-limit counts through Redis, ``PROVIDERHUB_REDIS_TIMEOUT`` (seconds, 0.1 by default)
  bounds each Redis command, and ``PROVIDERHUB_REDIS_FAIL=closed`` refuses rate-limited
  calls while Redis is down (``open``, the default, counts them in the process);
- ``PROVIDERHUB_WHEN_ALL_COOLING=refuse`` (the default) or ``try-soonest`` says what a new
  hub does with a call whose every candidate is cooling down (see ``Hub(when_all_cooling=)``).

The environment is read when a value is needed, not cached, so a change shows at once; a
provider's url and credential, read on every call, through
:func:`providerhub._speedups.getenv`. A provider's added models are read when it is
registered: the registry indexes providers by model.
"""

from __future__ import annotations

import functools
import os

from ._speedups import getenv
from .errors import ConfigurationError

__all__ = [
    "ALIASES_VARIABLE",
    "DISABLE_VARIABLE",
    "REDIS_FAIL_VARIABLE",
    "REDIS_TIMEOUT_VARIABLE",
    "REDIS_URL_VARIABLE",
    "WHEN_ALL_COOLING",
    "WHEN_ALL_COOLING_VARIABLE",
    "aliases",
    "api_key",
    "api_key_variable",
    "check_models_variables",
    "credential",
    "disabled_names",
    "env_prefix",
    "models",
    "models_variable",
    "parse_models",
    "redis_fail_closed",
    "redis_timeout",
    "redis_url",
    "url",
    "url_variable",
    "when_all_cooling",
]

DISABLE_VARIABLE = "PROVIDERHUB_DISABLE_PLUGINS"
ALIASES_VARIABLE = "PROVIDERHUB_ALIASES"
REDIS_URL_VARIABLE = "PROVIDERHUB_REDIS_URL"
REDIS_TIMEOUT_VARIABLE = "PROVIDERHUB_REDIS_TIMEOUT"
REDIS_FAIL_VARIABLE = "PROVIDERHUB_REDIS_FAIL"
WHEN_ALL_COOLING_VARIABLE = "PROVIDERHUB_WHEN_ALL_COOLING"
WHEN_ALL_COOLING = ("refuse", "try-soonest")
"""What a hub may do with a call whose every candidate is cooling down: ``refuse`` it at
once (``ProvidersCoolingDownError``, nothing sent), or ``try-soonest``: send one attempt to
the provider whose cooldown ends first."""


@functools.lru_cache(maxsize=4096)
def env_prefix(provider_name: str) -> str:
    """``PROVIDERHUB_<NAME>_`` for ``provider_name``."""
    upper = "".join(c if c.isascii() and c.isalnum() else "_" for c in provider_name.upper())
    return f"PROVIDERHUB_{upper}_"


def url_variable(provider_name: str) -> str:
    return env_prefix(provider_name) + "URL"


def api_key_variable(provider_name: str) -> str:
    return env_prefix(provider_name) + "API_KEY"


def models_variable(provider_name: str) -> str:
    return env_prefix(provider_name) + "MODELS"


def models(provider_name: str) -> tuple[str, ...]:
    """The model names ``PROVIDERHUB_<NAME>_MODELS`` adds to the provider's own (see
    :func:`parse_models`); none when it is unset or empty."""
    variable = models_variable(provider_name)
    return parse_models(variable, getenv(variable) or "")


def parse_models(variable: str, raw: str) -> tuple[str, ...]:
    """The model names of ``raw``, the value of ``variable``: separated by commas, each
    trimmed, empty ones and repeats left out, in the order given. A name with a space
    inside raises :class:`providerhub.ConfigurationError` naming the variable: the router
    matches names exactly, and such a name is more likely two names missing a comma."""
    found: dict[str, None] = {}
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        if any(c.isspace() or not c.isprintable() for c in name):
            raise ConfigurationError(
                f"{variable} holds {name!r}, a model name with a space or control character "
                f"in it; write names separated by commas, like {variable}=model-a,model-b"
            )
        found.setdefault(name)
    return tuple(found)


def check_models_variables() -> None:
    """Read every ``PROVIDERHUB_<NAME>_MODELS`` of the environment, so that a malformed one
    raises :class:`providerhub.ConfigurationError` when a hub is built, before any plugin is
    loaded, rather than costing a plugin its providers while they register."""
    for key in list(os.environ):
        if key.endswith("_MODELS") and key.startswith("PROVIDERHUB_"):
            parse_models(key, os.environ[key])


def url(provider_name: str, default: str) -> str:
    """The provider's base URL: the environment's override, else ``default``; no trailing
    slash."""
    value = getenv(env_prefix(provider_name) + "URL") or default
    return value.rstrip("/")


def api_key(provider_name: str) -> str | None:
    """The provider's credential from the environment, or None when unset or empty."""
    return getenv(env_prefix(provider_name) + "API_KEY") or None


def credential(
    provider_name: str, auth: str | None = None, api_key_env: str | None = None
) -> str | None:
    """A provider's credential: ``auth`` when given, else ``PROVIDERHUB_<NAME>_API_KEY``,
    else the variable the provider names in its ``api_key_env``; None when none is set (an
    empty value counts as unset). The one lookup the hub and the plugins share."""
    if auth:
        return auth
    found = api_key(provider_name)
    if found is None and api_key_env:
        found = getenv(api_key_env) or None
    return found


def disabled_names() -> frozenset[str]:
    """Lower-cased names listed in ``PROVIDERHUB_DISABLE_PLUGINS``."""
    raw = os.environ.get(DISABLE_VARIABLE, "")
    return frozenset(part.strip().lower() for part in raw.split(",") if part.strip())


def aliases() -> dict[str, str]:
    """``alias=model`` pairs from ``PROVIDERHUB_ALIASES``, comma-separated. A malformed
    pair raises :class:`providerhub.ConfigurationError` naming the variable."""
    found: dict[str, str] = {}
    for part in os.environ.get(ALIASES_VARIABLE, "").split(","):
        if not part.strip():
            continue
        alias, sep, model = (piece.strip() for piece in part.partition("="))
        if not sep or not alias or not model:
            raise ConfigurationError(
                f"{ALIASES_VARIABLE} holds {part.strip()!r}; write alias=model pairs "
                "separated by commas"
            )
        found[alias] = model
    return found


def redis_url() -> str | None:
    """``PROVIDERHUB_REDIS_URL``, or None when it is not set (or empty)."""
    return os.environ.get(REDIS_URL_VARIABLE, "").strip() or None


def redis_timeout() -> float:
    """``PROVIDERHUB_REDIS_TIMEOUT``: the longest a Redis command may take, in seconds."""
    raw = os.environ.get(REDIS_TIMEOUT_VARIABLE, "").strip()
    if not raw:
        return 0.1
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 60:
        raise ConfigurationError(
            f"{REDIS_TIMEOUT_VARIABLE} holds {raw!r}; give seconds, more than 0 and at most 60 "
            "(0.1 is the default)"
        )
    return value


def redis_fail_closed() -> bool:
    """Whether ``PROVIDERHUB_REDIS_FAIL`` says ``closed``."""
    raw = os.environ.get(REDIS_FAIL_VARIABLE, "").strip().lower()
    if raw in ("", "open"):
        return False
    if raw == "closed":
        return True
    raise ConfigurationError(
        f"{REDIS_FAIL_VARIABLE} holds {raw!r}; give 'open' (the default: while Redis is down, "
        "rate limits are counted in each process) or 'closed' (rate-limited calls are refused)"
    )


def when_all_cooling(given: str | None = None) -> str:
    """``given``, or else ``PROVIDERHUB_WHEN_ALL_COOLING`` (``refuse`` when unset): one of
    :data:`WHEN_ALL_COOLING`."""
    if given is None:
        raw = os.environ.get(WHEN_ALL_COOLING_VARIABLE, "").strip().lower() or "refuse"
        where = WHEN_ALL_COOLING_VARIABLE
    else:
        raw = given
        where = "when_all_cooling"
    if raw not in WHEN_ALL_COOLING:
        raise ConfigurationError(
            f"{where} holds {raw!r}; give 'refuse' (the default: a call whose every "
            "provider is cooling down is refused at once, with the time to come back) or "
            "'try-soonest' (one attempt goes to the provider whose cooldown ends first)"
        )
    return raw
