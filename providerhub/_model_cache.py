"""The models cache: the file ``providerhub models --refresh`` writes with what each
provider's list endpoint answered, and which later hubs read to add those models to each
provider, with no network call.

The file is ``models.json`` in ``PROVIDERHUB_CACHE_DIR``, else in the platform's cache
directory (:func:`default_cache_dir`)::

    {
      "version": 1,
      "fetched_at": "2026-12-07T23:30:00Z",
      "providers": {"groq": {"url": "https://api.groq.com/openai",
                             "fetched_at": "2026-12-07T23:30:00Z",
                             "models": ["llama-3.3-70b-versatile", "..."]}},
      "errors": {"openai": {"fetched_at": "2026-12-07T23:30:00Z",
                            "error": "openai: HTTP 401 Unauthorized from ..."}}
    }

A provider whose list failed keeps the models of its last good answer; its error is kept
apart, under ``errors``. The file is written whole to a temporary file beside it and moved
into place, so a reader never sees half of it. A file that cannot be read or is not this
shape is ignored, with a warning (logger ``providerhub.models``), never an error: it is
a cache, and ``providerhub models --refresh`` writes it again.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, NamedTuple

from ._settings import env_prefix

__all__ = [
    "CACHE_DIR_VARIABLE",
    "FILE_NAME",
    "VERSION",
    "Cached",
    "cache_path",
    "default_cache_dir",
    "load",
    "write",
]

logger = logging.getLogger("providerhub.models")  # a stable name for users' logging config

CACHE_DIR_VARIABLE = "PROVIDERHUB_CACHE_DIR"
FILE_NAME = "models.json"
VERSION = 1


class Cached(NamedTuple):
    """What the cache file at ``path`` holds: when it was last refreshed
    (``fetched_at``, ISO 8601 UTC, or None), the models of each provider by its
    ``PROVIDERHUB_<NAME>_`` prefix (names that share their variables share their entry),
    the whole document (for a refresh to update), and ``problem``, why the file was
    ignored (None when it was read, or is absent)."""

    path: str
    fetched_at: str | None
    models: Mapping[str, tuple[str, ...]]
    document: Mapping[str, Any]
    problem: str | None = None

    def models_of(self, provider: str) -> tuple[str, ...]:
        """The cached models of the provider named ``provider``."""
        return self.models.get(env_prefix(provider), ())


def default_cache_dir(
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: str | None = None,
) -> PurePath:
    """Where the cache goes when ``PROVIDERHUB_CACHE_DIR`` does not say:

    - Windows: ``%LOCALAPPDATA%\\providerhub\\Cache``;
    - macOS: ``~/Library/Caches/providerhub``;
    - elsewhere: ``$XDG_CACHE_HOME/providerhub``, or ``~/.cache/providerhub`` when
      ``XDG_CACHE_HOME`` is unset or relative (the XDG specification says to ignore a
      relative one).

    ``platform``, ``environ`` and ``home`` default to this machine's; passing them shows
    the answer for another system (as the openai-compatible plugin's
    ``default_config_path`` does for the configuration file).
    """
    platform = sys.platform if platform is None else platform
    environ = os.environ if environ is None else environ
    if platform == "win32":
        local = environ.get("LOCALAPPDATA")
        if local:
            base: PurePath = PureWindowsPath(local)
        else:
            base = PureWindowsPath(home or str(Path.home()), "AppData", "Local")
        return base / "providerhub" / "Cache"
    user_home = PurePosixPath(home or str(Path.home()))
    if platform == "darwin":
        return user_home / "Library" / "Caches" / "providerhub"
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = PurePosixPath(xdg) if xdg.startswith("/") else user_home / ".cache"
    return base / "providerhub"


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """The cache file: ``models.json`` in ``PROVIDERHUB_CACHE_DIR`` (a leading ``~`` is
    expanded; empty counts as unset), else in :func:`default_cache_dir`."""
    environ = os.environ if environ is None else environ
    named = environ.get(CACHE_DIR_VARIABLE, "")
    folder = Path(named).expanduser() if named else Path(default_cache_dir(environ=environ))
    return folder / FILE_NAME


def load(path: Path | None = None) -> Cached:
    """The cache file at ``path`` (by default :func:`cache_path`), read once per version
    of the file (its modification time and size): a hub built after another costs one
    ``stat``. An absent file is an empty cache; a broken one is ignored with a warning,
    logged once, and its ``problem`` says why."""
    path = cache_path() if path is None else path
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return Cached(str(path), None, {}, {})
    except OSError as exc:
        return _ignored(str(path), f"cannot be read ({exc.strerror or exc})")
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> Cached:
    # mtime_ns and size are the key of this file version; the file is read afresh.
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return _ignored(path, f"cannot be read ({exc.strerror or exc})")
    try:
        document = json.loads(raw)
    except ValueError:
        return _ignored(path, "is not JSON")
    problem = _check(document)
    if problem is not None:
        return _ignored(path, problem)
    models = {
        env_prefix(name): tuple(entry["models"]) for name, entry in document["providers"].items()
    }
    return Cached(path, document.get("fetched_at"), models, document)


def _check(document: Any) -> str | None:
    """What is wrong with a parsed cache ``document``, or None."""
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return f"is not a providerhub models cache of version {VERSION}"
    providers = document.get("providers")
    if not isinstance(providers, dict):
        return "has no providers table"
    for name, entry in providers.items():
        models = entry.get("models") if isinstance(entry, dict) else None
        if not isinstance(models, list) or not all(
            isinstance(m, str) and m.strip() and not any(c.isspace() for c in m) for m in models
        ):
            return f"holds no valid list of model names for {name!r}"
    if not isinstance(document.get("errors", {}), dict):
        return "has an errors entry that is not a table"
    return None


def _ignored(path: str, problem: str) -> Cached:
    said = f"{path} {problem}; ignored (providerhub models --refresh writes it again)"
    logger.warning("the models cache %s", said)
    return Cached(path, None, {}, {}, said)


def write(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` whole: to a temporary file in the same directory
    (made if missing), flushed to disk, then moved over ``path``, so that a reader sees
    the old file or the new one, never a part. Raises :class:`OSError`."""
    import tempfile  # only a refresh writes: a hub that reads pays nothing for it

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".models-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
