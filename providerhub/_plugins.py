"""Finding plugins through the ``providerhub`` entry-point group, and what went wrong with
the ones that could not be loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Available", "EntryPoint", "PluginFailure", "discover"]

GROUP = "providerhub"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin the hub skipped: its entry-point ``name``, the ``distribution`` that
    declared it, and the ``error`` in one line."""

    name: str
    distribution: str | None
    error: str

    def __str__(self) -> str:
        where = f" (from {self.distribution})" if self.distribution else ""
        return f"plugin {self.name!r}{where}: {self.error}"


@dataclass(frozen=True)
class Available:
    """A provider a plugin offers but has not registered (see
    :class:`providerhub.hookspecs.Offer`): its ``name``, the entry-point name of the
    ``plugin`` and its ``distribution``, the environment variables that would activate it
    (any one of them), its ``url`` and ``models`` when the plugin gives them."""

    name: str
    plugin: str
    distribution: str | None
    activate: tuple[str, ...]
    url: str | None
    models: tuple[str, ...]


@dataclass(frozen=True)
class EntryPoint:
    """One declared plugin: entry-point ``name`` and ``value``, and its distribution."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    _ep: Any

    def load(self) -> Any:
        return self._ep.load()


def discover(group: str = GROUP) -> list[EntryPoint]:
    """Every entry point of ``group`` in the installed distributions, sorted by name so that
    registration order does not depend on the file system. A distribution found twice on
    ``sys.path`` counts once, the first, as Python's own import would."""
    from importlib import metadata

    found: list[EntryPoint] = []
    seen_dists: set[str] = set()
    header = f"[{group}]"
    for dist in metadata.distributions():
        # Reading entry_points.txt as text first spares parsing the metadata of the many
        # distributions that declare no plugin.
        text = dist.read_text("entry_points.txt")
        if not text or header not in text:
            continue
        dist_name = dist.metadata["Name"] or "?"
        key = dist_name.lower().replace("_", "-")
        if key in seen_dists:
            continue
        seen_dists.add(key)
        for ep in dist.entry_points:
            if ep.group == group:
                found.append(EntryPoint(ep.name, ep.value, dist_name, dist.version, ep))
    # Two plugins of one name both stay: the hub registers the first and reports the second.
    return sorted(found, key=lambda e: (e.name, e.distribution or ""))
