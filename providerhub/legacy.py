"""Provider modules written for the old gpt4free layout, loaded unchanged.

Such a module lived at ``g4f/Provider/Providers/<Name>.py`` and imported helpers from its
package root with ``from ...typing import sha256, Dict, get_type_hints``. :func:`load`
gives it that package root, a synthetic one under :data:`ROOT`, so the file runs as
written; its own ``params`` string is kept, and its module-level ``url`` still takes
``PROVIDERHUB_<NAME>_URL``.

Whatever such a module prints while it is imported goes to standard error, so that it does
not mix with a program's output (``providerhub providers --json``); and whatever it raises
then, ``SystemExit`` included, becomes an :class:`~providerhub.PluginError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from ._hub import Hub, get_hub
from ._plugins import PluginFailure
from .errors import PluginError

if TYPE_CHECKING:
    from ._provider import Provider

__all__ = ["ROOT", "load", "load_dir"]

ROOT = "providerhub._legacy_g4f"
"""The synthetic package old modules are loaded under, as ``ROOT.Provider.Providers.X``."""

_PACKAGE = f"{ROOT}.Provider.Providers"
_lock = threading.Lock()


def load(
    path_or_module: str | os.PathLike[str] | types.ModuleType,
    *,
    hub: Hub | None = None,
    name: str | None = None,
) -> Provider:
    """Register an old-layout provider module into ``hub`` (the default hub when None) and
    return the registered provider.

    ``path_or_module`` is the module's file, or a module already imported. ``name`` is
    the provider's name; by default the file's name without ``.py``. A file that raises
    while it is imported (``sys.exit()`` included) raises :class:`PluginError`
    saying what it raised, with that exception as its ``__cause__``.
    """
    if isinstance(path_or_module, types.ModuleType):
        module = path_or_module
        default_name = module.__name__.rsplit(".", 1)[-1]
    else:
        path = Path(path_or_module)
        module = _import_file(path)
        default_name = path.stem
    if hub is None:
        hub = get_hub()
    return hub.register(module, name=name or default_name)


def load_dir(directory: str | os.PathLike[str], *, hub: Hub) -> list[Provider]:
    """Load every ``*.py`` of ``directory`` (but ``_*.py``) into ``hub``, in name order.
    A file that fails is reported in ``hub.plugin_errors`` and the others still load."""
    folder = Path(directory)
    if not folder.is_dir():
        raise PluginError(f"{folder} is not a directory of legacy provider modules")
    loaded = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            loaded.append(load(path, hub=hub))
        except (Exception, SystemExit) as exc:
            # SystemExit too: a file's exit() must not end the program that loads it.
            error = exc.report if isinstance(exc, _ImportFailedError) else _one_line(exc)
            hub.plugin_errors.append(PluginFailure(path.stem, f"legacy file {path}", error))
    return loaded


class _ImportFailedError(PluginError):
    """A legacy file raised while it was imported; ``report`` says so for ``plugin_errors``,
    in the words the hub uses for a plugin that fails to import."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        self.report = f"failed to import: {_one_line(exc)}"
        super().__init__(f"legacy module {path} {self.report}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_file(path: Path) -> types.ModuleType:
    if path.suffix != ".py" or not path.is_file():
        raise PluginError(f"{path} is not a Python file")
    _ensure_packages()
    qualified = f"{_PACKAGE}.{path.stem}"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path} cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        # Old modules print as they please; standard output belongs to the program.
        # (redirect_stdout swaps sys.stdout for the whole process, for the import's time.)
        with contextlib.redirect_stdout(sys.stderr):
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[qualified]
        raise _ImportFailedError(path, exc) from exc
    except BaseException:
        # KeyboardInterrupt and the like are the user's, not the module's: let them through.
        del sys.modules[qualified]
        raise
    return module


def _ensure_packages() -> None:
    """Create ``ROOT``, ``ROOT.typing``, ``ROOT.Provider`` and ``ROOT.Provider.Providers``."""
    with _lock:
        if _PACKAGE in sys.modules:
            return
        for dotted in (ROOT, f"{ROOT}.Provider", _PACKAGE):
            package = types.ModuleType(dotted)
            package.__path__ = []  # a package, so relative imports resolve against it
            package.__package__ = dotted
            sys.modules[dotted] = package
        shim = types.ModuleType(f"{ROOT}.typing")
        # What the old package's typing module offered its providers.
        shim.sha256 = hashlib.sha256  # type: ignore[attr-defined]
        for attribute in (
            "Any",
            "Dict",
            "Generator",
            "Iterator",
            "List",
            "Optional",
            "Tuple",
            "Union",
            "get_type_hints",
        ):
            setattr(shim, attribute, getattr(typing, attribute))
        sys.modules[shim.__name__] = shim
        sys.modules[ROOT].typing = shim  # type: ignore[attr-defined]
