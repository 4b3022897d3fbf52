"""The configuration file: where it is, and the endpoints it declares, checked field by field.

::

    [endpoints.ollama]
    url = "http://localhost:11434"        # required: the base URL
    path = "/v1/chat/completions"         # the default
    models = ["llama3.2", "qwen2.5"]      # required (unless embedding_models is given)
    api_key_env = "OLLAMA_API_KEY"        # optional; when set, the endpoint needs a key
    stream = true                         # the default
    tools = true                          # the default: it takes tools= (supports_tools)
    vision = false                        # the default: image and file parts
    json_schema = false                   # the default: a json_schema response_format
    headers = { "X-Team" = "search" }     # optional
    extra_parameters = ["priority"]       # optional: added to DEFAULT_EXTRA_PARAMETERS
    rpm = 60                              # optional: requests per minute
    tpm = 100000                          # optional: tokens per minute, from reported usage
    embedding_models = ["nomic-embed-text"]  # optional: served at {url}/v1/embeddings

Every problem is a :class:`Problem` naming the file, the entry and the field.
:func:`check` returns the valid endpoints and the problems of the others apart (the plugin
registers the first and reports the second); :func:`load` is all or nothing, raising one
:class:`ConfigError` that holds every problem. Values that may be secrets (an
``api_key_env`` that holds a key instead of a variable name, header values, a URL with a
password in it) are never repeated in a message.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlsplit

from providerhub.plugin import ConfigurationError, Price, provider_options, url_variable

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, published on its own for Pythons without tomllib
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "CONFIG_VARIABLE",
    "DEFAULT_PATH",
    "FIELDS",
    "ConfigError",
    "Endpoint",
    "Problem",
    "check",
    "config_path",
    "default_config_path",
    "load",
    "parse",
]

CONFIG_VARIABLE = "PROVIDERHUB_CONFIG"
"""The environment variable naming the configuration file, instead of the default one."""

DEFAULT_PATH = "/v1/chat/completions"
"""The chat completions path of OpenAI and of the servers that copy its API."""

FIELDS = (
    "url",
    "path",
    "models",
    "api_key_env",
    "stream",
    "tools",
    "vision",
    "json_schema",
    "headers",
    "extra_parameters",
    "rpm",
    "tpm",
    "embedding_models",
)
"""The fields of an ``[endpoints.<name>]`` table, in the order they are documented."""

FLAGS = {"stream": True, "tools": True, "vision": False, "json_schema": False}
"""The true-or-false fields, and their defaults."""

REQUIRED = ("url", "models")

EMBEDDINGS_PATH = "/v1/embeddings"
"""Where an endpoint's ``embedding_models`` are served, under its url."""

DEFAULT_EXTRA_PARAMETERS = frozenset(
    {
        # vLLM's sampling parameters and extra parameters of its chat completions API
        # (vllm/entrypoints/openai/protocol.py, ChatCompletionRequest).
        "add_generation_prompt",
        "add_special_tokens",
        "allowed_token_ids",
        "bad_words",
        "best_of",
        "chat_template_kwargs",
        "continue_final_message",
        "echo",
        "guided_choice",
        "guided_decoding_backend",
        "guided_grammar",
        "guided_json",
        "guided_regex",
        "guided_whitespace_pattern",
        "ignore_eos",
        "include_reasoning",
        "include_stop_str_in_output",
        "length_penalty",
        "min_p",
        "min_tokens",
        "prompt_logprobs",
        "repetition_penalty",
        "return_tokens_as_token_ids",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "stop_token_ids",
        "structural_tag",
        "top_k",
        "truncate_prompt_tokens",
        "use_beam_search",
        # llama.cpp's server (tools/server/README.md, the options of /completion, which its
        # /v1/chat/completions takes too), those vLLM does not share.
        "cache_prompt",
        "dry_allowed_length",
        "dry_base",
        "dry_multiplier",
        "dry_penalty_last_n",
        "dry_sequence_breakers",
        "dynatemp_exponent",
        "dynatemp_range",
        "grammar",
        "json_schema",
        "min_keep",
        "mirostat",
        "mirostat_eta",
        "mirostat_tau",
        "n_predict",
        "n_probs",
        "post_sampling_probs",
        "repeat_last_n",
        "repeat_penalty",
        "samplers",
        "tfs_z",
        "typical_p",
        "xtc_probability",
        "xtc_threshold",
    }
)
"""The request parameters beyond OpenAI's chat parameters that every endpoint takes with
no configuration: the sampling and generation fields of vLLM and of llama.cpp's server,
sent on as the caller gives them (a server that does not know one ignores it or refuses
the request, as its own documentation says). Fields that act on the server rather than on
the answer are left out (vLLM's ``chat_template``, ``logits_processors``, ``priority``,
``request_id``, ``cache_salt``, ``kv_transfer_params``, ``vllm_xargs``,
``mm_processor_kwargs``, ``documents``; llama.cpp's ``id_slot``, ``lora``, ``n_keep``,
``t_max_predict_ms``, ``response_fields``, ``timings_per_token``, ``return_tokens``): an
entry's ``extra_parameters`` adds them, or any other name, to these."""

# Headers providerhub itself sets on every request. Authorization carries the credential,
# which must come through api_key_env or auth= so that error messages can redact it; the
# others describe the body and the answer's format, which chat_completion chooses per call
# (a JSON body; an event stream or a JSON document back).
_RESERVED_HEADERS = {
    "authorization": (
        "must not set Authorization: name the variable holding the key in api_key_env "
        "(or pass auth=, or set PROVIDERHUB_<NAME>_API_KEY), so that providerhub sends it "
        "as a Bearer token and keeps it out of error messages"
    ),
    "content-type": "must not set Content-Type: providerhub sends a JSON body and says so",
    "content-length": "must not set Content-Length: it is the length of each request's body",
    "accept": (
        "must not set Accept: providerhub asks for an event stream or a JSON document, "
        "whichever the call needs"
    ),
}

# Headers of one hop rather than of the request: they describe the connection or how the
# body is framed on it (RFC 9110, section 7.6.1; RFC 9112, section 6), and the HTTP client
# sets them for each connection and body. One from the file would send the request to
# another virtual host (Host), or frame the body differently from how it is sent
# (Transfer-Encoding), which a proxy or server may read as two requests.
_HOP_HEADERS = frozenset(
    {"connection", "host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# An HTTP header name is a "token" (RFC 9110, section 5.6.2).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Arguments create() takes itself: a parameter of that name never reaches a provider.
_CREATE_ARGUMENTS = frozenset({"model", "messages", "stream", "provider", "retries"})


@dataclass(frozen=True)
class Endpoint:
    """One valid ``[endpoints.<name>]`` table of the file ``source``.

    ``url`` has no trailing slash; ``api_key_env`` is None when the endpoint needs no key.
    """

    name: str
    url: str
    models: tuple[str, ...]
    source: str
    path: str = DEFAULT_PATH
    api_key_env: str | None = None
    stream: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_parameters: tuple[str, ...] = ()
    """The file's request parameters beyond OpenAI's chat parameters, which the endpoint
    takes besides :data:`DEFAULT_EXTRA_PARAMETERS` (vLLM's ``priority``, ...)."""
    tools: bool = True
    vision: bool = False
    json_schema: bool = False
    rpm: int | None = None
    """Requests per minute the endpoint takes (None: no limit of providerhub's)."""
    tpm: int | None = None
    """Tokens per minute, counted from the usage its answers report (None: no limit)."""
    embedding_models: tuple[str, ...] = ()
    """The embedding models it serves, whose requests go to ``{url}/v1/embeddings``."""
    prices: Mapping[str, Price] = field(default_factory=dict)
    """Its models' prices (a preset's; the configuration file's ``[prices]`` table sets
    or overrides them, see the gateway's docs)."""


@dataclass(frozen=True)
class Problem:
    """What is wrong in the file ``source``: in the entry ``entry`` (an endpoint's name, or
    None for the file as a whole), in its field ``field`` (None for the entry as a whole;
    for the file as a whole, a top-level key or None)."""

    source: str
    entry: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.source]
        if self.entry is not None:
            table = f"[endpoints.{_toml_key(self.entry)}]"
            parts.append(table if self.field is None else f"{table} {self.field}")
        elif self.field is not None:
            parts.append(_toml_key(self.field))
        return ": ".join([*parts, self.message])


class ConfigError(ConfigurationError):
    """What is wrong with the configuration file: raised by :func:`check` for a file that
    cannot be used at all, and by :func:`load` for any problem. A
    :class:`providerhub.ConfigurationError` (so a ``ValueError``), as every mistake in how
    providerhub is set up. ``problems`` holds every
    problem found, each naming the file, the entry and the field; the message lists them
    all on one line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        text = "; ".join(str(p) for p in self.problems)
        if len(self.problems) > 1:
            text = f"{len(self.problems)} problems: {text}"
        super().__init__(text)


# -- where the file is ---------------------------------------------------------------------


def default_config_path(
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: str | None = None,
) -> PurePath:
    """Where the configuration file is when ``PROVIDERHUB_CONFIG`` does not say:

    - Windows: ``%APPDATA%\\providerhub\\config.toml``;
    - macOS: ``~/Library/Application Support/providerhub/config.toml``;
    - elsewhere: ``$XDG_CONFIG_HOME/providerhub/config.toml``, or
      ``~/.config/providerhub/config.toml`` when ``XDG_CONFIG_HOME`` is unset or relative
      (the XDG specification says to ignore a relative one).

    ``platform``, ``environ`` and ``home`` default to this machine's ``sys.platform``,
    ``os.environ`` and home directory; passing them shows the answer for another system.
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform == "win32":
        appdata = environ.get("APPDATA")
        if appdata:
            base: PurePath = PureWindowsPath(appdata)
        else:
            base = PureWindowsPath(home or str(Path.home()), "AppData", "Roaming")
        return base / "providerhub" / "config.toml"
    user_home = PurePosixPath(home or str(Path.home()))
    if platform == "darwin":
        return user_home / "Library" / "Application Support" / "providerhub" / "config.toml"
    xdg = environ.get("XDG_CONFIG_HOME", "")
    base = PurePosixPath(xdg) if xdg.startswith("/") else user_home / ".config"
    return base / "providerhub" / "config.toml"


def config_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The configuration file to read, and whether ``PROVIDERHUB_CONFIG`` named it (a file
    named on purpose must exist; the default one may be absent). An empty
    ``PROVIDERHUB_CONFIG`` counts as unset; a leading ``~`` is expanded."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_VARIABLE, "")
    if named:
        return Path(named).expanduser(), True
    return Path(default_config_path(environ=environ)), False


# -- reading and checking it ---------------------------------------------------------------


def load(path: Path | None = None, *, required: bool | None = None) -> list[Endpoint]:
    """The endpoints of the configuration file, in the file's order, for a program that
    wants the file right or not at all (the plugin itself uses :func:`check`, and loads the
    valid entries of a file that has bad ones).

    ``path`` defaults to :func:`config_path`. A missing file is no endpoints when
    ``required`` is false, and a :class:`ConfigError` when it is true; by default it is
    required when ``path`` is given or ``PROVIDERHUB_CONFIG`` names it. Any other problem
    (unreadable file, invalid TOML, a bad entry) raises :class:`ConfigError` listing every
    problem in the file, and no endpoint is returned, not even the valid ones.
    """
    endpoints, problems = check(path, required=required)
    if problems:
        raise ConfigError(problems)
    return endpoints


def check(
    path: Path | None = None, *, required: bool | None = None
) -> tuple[list[Endpoint], list[Problem]]:
    """The valid endpoints of the configuration file, in the file's order, and the
    problems of the others: what the plugin registers and what it reports. Unlike
    :func:`load`, the valid entries are kept when others are bad.

    A file that cannot be used at all (missing when ``required``, unreadable, not TOML)
    raises :class:`ConfigError`; ``path`` and ``required`` are as for :func:`load`.
    """
    given, named = path is not None, False
    if path is None:
        path, named = config_path()
    if required is None:
        required = given or named
    source = str(path)
    document = _read(path, source, required=required, named=named)
    if document is None:
        return [], []
    return parse(document, source)


def _read(path: Path, source: str, *, required: bool, named: bool) -> dict[str, Any] | None:
    def fail(message: str) -> ConfigError:
        return ConfigError([Problem(source, None, None, message)])

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not required:
            return None
        by = f" (named by {CONFIG_VARIABLE})" if named else ""
        raise fail(f"no such file{by}") from None
    except IsADirectoryError:
        raise fail("is a directory, not a TOML file") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(f"is not UTF-8 text (line {line}); TOML files are UTF-8") from None
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"is not valid TOML: {exc}") from None
    return document


def parse(document: Mapping[str, Any], source: str) -> tuple[list[Endpoint], list[Problem]]:
    """Check a parsed configuration ``document`` read from ``source`` (named in the
    problems): the valid endpoints, in order, and every problem found.

    Top-level keys other than ``endpoints`` are left alone, since the file is providerhub's
    and other parts of it may read their own tables; one that looks like a misspelling of
    ``endpoints`` is a problem, since its endpoints would otherwise vanish without a word.
    """
    problems: list[Problem] = []
    for key in document:
        if key != "endpoints" and difflib.get_close_matches(key.lower(), ["endpoints"], 1, 0.75):
            problems.append(Problem(source, None, key, "unknown table; did you mean endpoints?"))
    table = document.get("endpoints", {})
    if not isinstance(table, dict):
        kind = "an array of tables ([[endpoints]])" if isinstance(table, list) else _show(table)
        problems.append(
            Problem(
                source,
                None,
                "endpoints",
                f"must be a table of [endpoints.<name>] tables, not {kind}",
            )
        )
        return [], problems
    endpoints: list[Endpoint] = []
    prefixes: dict[str, str] = {}  # PROVIDERHUB_<NAME>_ -> the entry that has it
    for name, entry in table.items():
        found = _check_entry(name, entry, source)
        if isinstance(found, list):
            problems.extend(found)
        # Names that differ only in case or punctuation would share their
        # PROVIDERHUB_<NAME>_URL and _API_KEY variables (and the hub matches names
        # regardless of case), so one could not be configured without the other: the
        # first keeps them, and a later one is left out even when its fields are right.
        prefix = url_variable(name).removesuffix("URL")
        if prefix not in prefixes:
            prefixes[prefix] = name
            if isinstance(found, Endpoint):
                endpoints.append(found)
        else:
            problems.append(
                Problem(
                    source,
                    name,
                    None,
                    f"clashes with [endpoints.{_toml_key(prefixes[prefix])}]: the two names "
                    f"share the variables {prefix}URL and {prefix}API_KEY (and provider names "
                    "ignore case); rename one",
                )
            )
    return endpoints, problems


def _check_entry(name: str, entry: Any, source: str) -> Endpoint | list[Problem]:
    problems: list[Problem] = []

    def problem(field_name: str | None, message: str) -> None:
        problems.append(Problem(source, name, field_name, message))

    if not _NAME.match(name):
        problem(
            None,
            "is not a valid provider name: use letters, digits, - and _, starting with a "
            "letter or a digit",
        )
    if not isinstance(entry, dict):
        problem(
            None,
            f"must be a table of fields ({', '.join(FIELDS)}), not {_show(entry)}",
        )
        return problems

    for key in entry:
        if key not in FIELDS:
            problem(key, _unknown_field(key))
    for key in REQUIRED:
        # An endpoint that serves embeddings only lists no chat models.
        if key not in entry and not (key == "models" and "embedding_models" in entry):
            problem(key, "missing: " + _REQUIRED_HELP[key])

    checked: dict[str, Any] = {}
    for key, check in _CHECKS.items():
        if key in entry:
            try:
                checked[key] = check(entry[key])
            except _Bad as bad:
                problem(key, str(bad))
    if "url" in checked and ("path" in checked or "path" not in entry):
        doubled = _doubled_prefix(checked["url"], checked.get("path", DEFAULT_PATH))
        if doubled:
            problem("url", doubled)
        elif "embedding_models" in checked:
            doubled = _doubled_prefix(checked["url"], EMBEDDINGS_PATH)
            if doubled:
                problem("url", doubled)
    if problems:
        return problems
    return Endpoint(
        name=name,
        url=checked["url"],
        models=checked.get("models", ()),
        embedding_models=checked.get("embedding_models", ()),
        source=source,
        path=checked.get("path", DEFAULT_PATH),
        api_key_env=checked.get("api_key_env"),
        headers=checked.get("headers", {}),
        extra_parameters=checked.get("extra_parameters", ()),
        rpm=checked.get("rpm"),
        tpm=checked.get("tpm"),
        **{flag: checked.get(flag, default) for flag, default in FLAGS.items()},
    )


class _Bad(Exception):
    """A field's value is wrong; the message says how, after ``<field>: ``."""


_REQUIRED_HELP = {
    "url": 'the base URL of the server, like url = "http://localhost:11434"',
    "models": 'the model names it serves, like models = ["llama3.2"] (or embedding_models = '
    '["nomic-embed-text"] for an endpoint that serves embeddings only)',
}


def _unknown_field(key: str) -> str:
    if key.lower() in ("api_key", "key", "token", "apikey", "api-key", "secret"):
        # A key written into the file would sit in plain text and reach no redaction.
        return (
            "unknown field: the file holds no keys; put the key in an environment variable "
            "and name that variable in api_key_env"
        )
    close = difflib.get_close_matches(key.lower(), FIELDS, n=1, cutoff=0.6)
    tip = f"; did you mean {close[0]}?" if close else ""
    return f"unknown field{tip} (the fields are {', '.join(FIELDS)})"


def _check_url(value: Any) -> str:
    example = 'like "http://localhost:11434"'
    if not isinstance(value, str):
        raise _Bad(f"must be a string, {example}, not {_show(value)}")
    # The value is shown in messages only when it cannot hold a password or a key.
    shown = _show(value) if "@" not in value and "?" not in value else "the value given"
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise _Bad(f"must be a URL without spaces, {example}, not {shown}")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise _Bad(f"is not a valid URL ({exc}): {shown}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _Bad(f"must be an http:// or https:// URL with a host, {example}, not {shown}")
    if parts.username is not None or parts.password is not None:
        raise _Bad(
            "must not hold a user name or password: put the key in an environment variable "
            "and name it in api_key_env"
        )
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise _Bad(
            "must not have a query (?...) or a fragment (#...): it is the base URL, and path "
            "is added to it; a query belongs at the end of path"
        )
    return value.rstrip("/")


def _check_path(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f'must be a string, like "{DEFAULT_PATH}", not {_show(value)}')
    if not value.startswith("/") or any(c.isspace() for c in value) or "#" in value:
        raise _Bad(
            f'must start with "/" and hold no spaces or "#", like "{DEFAULT_PATH}", '
            f"not {_show(value)}"
        )
    return value


def _check_models(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"must be a non-empty list of model names, not {_show(value)}")
    seen: set[str] = set()
    for index, item in enumerate(value, 1):
        if not isinstance(item, str) or not item.strip():
            raise _Bad(f"item {index} must be a non-empty model name, not {_show(item)}")
        if item != item.strip():
            # The router matches model names exactly; a stray space would never match.
            raise _Bad(f"item {index} has spaces around it: {_show(item)}")
        if item in seen:
            raise _Bad(f"lists {_show(item)} twice")
        seen.add(item)
    return tuple(value)


def _check_api_key_env(value: Any) -> str:
    if isinstance(value, str) and _ENV_NAME.match(value):
        return value
    # Not shown: a value that is not a variable name may well be the key itself.
    kind = "a string" if isinstance(value, str) else _kind(value)
    raise _Bad(
        "must be the name of the environment variable that holds the key (letters, digits "
        f'and _, not starting with a digit), like "OPENAI_API_KEY"; {kind} was given, not '
        "shown in case it is the key itself"
    )


def _check_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false, not {_show(value)}")
    return value


def _check_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Bad(
            f'must be a table of header names to values, like {{ "X-Team" = "search" }}, '
            f"not {_show(value)}"
        )
    headers: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, item in value.items():
        if not _HEADER_NAME.match(key):
            raise _Bad(f"{_show(key)} is not a valid HTTP header name")
        lowered = key.lower()
        if lowered in _RESERVED_HEADERS:
            raise _Bad(_RESERVED_HEADERS[lowered])
        if lowered in _HOP_HEADERS:
            raise _Bad(
                f"must not set {key}: it describes the connection or the framing of the "
                "body, which the HTTP client sets for each request"
            )
        if lowered.startswith("proxy-"):
            raise _Bad(
                f"must not set {key}: headers for a proxy go through the proxy variables "
                "(HTTPS_PROXY, HTTP_PROXY, with the proxy's user and password in their URL)"
            )
        if lowered in seen:
            raise _Bad(f"sets {seen[lowered]} twice (header names ignore case)")
        seen[lowered] = key
        # Values are not shown: a header may carry a key of some other scheme.
        if not isinstance(item, str):
            raise _Bad(f"{key} must be a string, not {_kind(item)}")
        if any(c in item for c in "\r\n\0"):
            raise _Bad(f"{key} holds a line break or NUL, which cannot go in a header")
        headers[key] = item
    return headers


def _check_extra_parameters(value: Any) -> tuple[str, ...]:
    # A name already in DEFAULT_EXTRA_PARAMETERS is taken: the list adds to that set.
    example = '["priority", "request_id"]'
    if not isinstance(value, list):
        raise _Bad(f"must be a list of parameter names, like {example}, not {_show(value)}")
    seen: set[str] = set()
    options = provider_options()
    for index, item in enumerate(value, 1):
        if not isinstance(item, str) or not _PARAMETER_NAME.match(item):
            raise _Bad(
                f"item {index} must be a parameter name (letters, digits and _, not "
                f"starting with a digit), like {example}, not {_show(item)}"
            )
        if item in _CREATE_ARGUMENTS:
            raise _Bad(f"{_show(item)} is an argument of create() itself, not a parameter")
        if item in options:
            raise _Bad(
                f"{_show(item)} is a provider option, which providerhub sets, not a "
                "parameter a call may pass"
            )
        if item in seen:
            raise _Bad(f"lists {_show(item)} twice")
        seen.add(item)
    return tuple(value)


def _check_rpm(value: Any) -> int:
    return _check_rate(value, "requests", "60")


def _check_tpm(value: Any) -> int:
    return _check_rate(value, "tokens", "100000")


def _check_rate(value: Any, what: str, example: str) -> int:
    # bool is an int in Python, and TOML's true would pass as 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Bad(
            f"must be a whole number of {what} per minute, at least 1, like {example}, "
            f"not {_show(value)} (leave it out for no limit)"
        )
    return value


_CHECKS = {
    "url": _check_url,
    "path": _check_path,
    "models": _check_models,
    "embedding_models": _check_models,
    "api_key_env": _check_api_key_env,
    **dict.fromkeys(FLAGS, _check_flag),
    "headers": _check_headers,
    "extra_parameters": _check_extra_parameters,
    "rpm": _check_rpm,
    "tpm": _check_tpm,
}


def _doubled_prefix(url: str, path: str) -> str | None:
    """Say so when ``url`` already ends with the first segment of ``path``: base URLs are
    often given as ``.../v1``, and then ``/v1/chat/completions`` makes ``/v1/v1/...``."""
    base_path = urlsplit(url).path.rstrip("/")
    first = "/" + path.lstrip("/").split("/", 1)[0]
    if first != "/" and base_path.endswith(first):
        return (
            f"ends with {first} and path starts with {first}/, so requests would go to "
            f"{url}{path}: drop {first} from url"
        )
    return None


# -- showing values ------------------------------------------------------------------------


def _show(value: Any, limit: int = 60) -> str:
    """``value`` as it would be written in TOML, cut short when long."""
    text = _toml_value(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    if hasattr(value, "isoformat"):  # TOML dates and times
        return str(value.isoformat())
    return repr(value)


def _kind(value: Any) -> str:
    kinds: Iterable[tuple[type | tuple[type, ...], str]] = (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
    )
    for kind, word in kinds:
        if isinstance(value, kind):
            return word
    return "a date or time"


def _toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it can be, quoted otherwise."""
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
