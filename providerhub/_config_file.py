"""providerhub's configuration file: where it is, and reading one of its tables.

The file is TOML. ``PROVIDERHUB_CONFIG`` names it; else it is ``providerhub/config.toml``
in the platform's configuration folder. Each part reads its own table: the
openai-compatible plugin ``[endpoints.NAME]``, the gateway ``[server]``, the hub
``[routing]`` (:mod:`providerhub._routing.strategies`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import ConfigurationError

__all__ = ["CONFIG_VARIABLE", "config_path", "read_table"]

CONFIG_VARIABLE = "PROVIDERHUB_CONFIG"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The configuration file: ``PROVIDERHUB_CONFIG``, else ``providerhub/config.toml`` in
    the platform's configuration folder (``%APPDATA%`` on Windows, ``~/Library/Application
    Support`` on macOS, ``$XDG_CONFIG_HOME`` or ``~/.config`` elsewhere)."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_VARIABLE, "")
    if named:
        return Path(named).expanduser()
    home = str(Path.home())
    base: PurePath
    if sys.platform == "win32":
        appdata = env.get("APPDATA")
        base = PureWindowsPath(appdata) if appdata else PureWindowsPath(home, "AppData", "Roaming")
    elif sys.platform == "darwin":
        base = PurePosixPath(home, "Library", "Application Support")
    else:
        xdg = env.get("XDG_CONFIG_HOME", "")
        base = PurePosixPath(xdg) if xdg.startswith("/") else PurePosixPath(home, ".config")
    return Path(base / "providerhub" / "config.toml")


def read_table(
    name: str, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], Path, str]:
    """The table ``[name]`` of the configuration file, the file's path (for messages),
    and why the file could not be read, if it could not ("" when it was, or is missing).
    The table is empty when the file, or the table, is missing, and when the file cannot
    be read or parsed: the openai-compatible plugin reports such a file, with its line,
    and a program goes on without it. A ``name`` that is not a table raises
    :class:`~providerhub.ConfigurationError`."""
    path = config_path(environ)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, path, ""
    except OSError as exc:
        return {}, path, f"{path}: cannot be read: {exc.strerror or exc}"
    if not raw.strip():
        return {}, path, ""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, published on its own for Pythons without tomllib
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, path, f"{path}: is not a valid TOML file: {exc}"
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    return table, path, ""
