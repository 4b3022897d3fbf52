"""Shared fixtures: a real local server, empty hubs, and plugins installed as real
distributions (a ``*.dist-info`` with ``entry_points.txt`` on a temporary ``sys.path``)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

import providerhub
from providerhub.testing import OpenAIServer

from ._internals import settings
from ._support import FakeProvider

if TYPE_CHECKING:
    from ._redis import RedisServer

MakeDist = Callable[..., Path]


SLOW_FIXTURES = frozenset(
    {"gateway", "gateways", "replicas", "redis_server", "redis_url", "own_redis", "cluster"}
)
"""Fixtures that start a ``providerhub serve`` process or a redis-server."""

SLOW_MODULES = frozenset(
    {
        "test_cli.py",  # runs the command line in subprocesses
        "test_redis_cluster.py",
        "test_reload.py",  # serve processes sent SIGHUP
        "test_server.py",  # serve processes and the openai SDK against them
        "test_server_lifecycle.py",  # serve processes started and stopped
        "test_server_limits.py",
        "test_server_redis.py",
        "test_server_strategies.py",  # a serve process and the command line
        "test_shared_state.py",
        "test_testing_kit.py",  # runs pytest in subprocesses
        "test_transport_faults.py",  # stalls and trickles timed out
    }
)
"""Modules whose tests wait on processes or timeouts."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that uses a fixture of :data:`SLOW_FIXTURES` or is in a
    module of :data:`SLOW_MODULES` (single tests elsewhere that run the command line in a
    subprocess or wait out a timeout carry ``@pytest.mark.slow`` themselves): ``pytest -m
    "not slow"`` is the quick inner loop, and the full suite (what CI runs) runs them all."""
    for item in items:
        if item.path.name in SLOW_MODULES or SLOW_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _clean_environment(providerhub_clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own providerhub settings, nor their configuration file
    (the openai-compatible plugin reads it): the kit's fixture clears them; nor their
    services' keys (``OPENAI_API_KEY``, ...), which activate the catalog's presets."""
    for variable in _PRESET_KEYS:
        monkeypatch.delenv(variable, raising=False)


def _preset_keys() -> tuple[str, ...]:
    try:
        from providerhub_openai_compatible.presets import PRESETS
    except ImportError:  # the plugin is not installed: nothing activates a preset
        return ()
    return tuple(p.key_env for p in PRESETS.values() if p.key_env is not None)


_PRESET_KEYS = _preset_keys()


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def hub() -> Iterator[providerhub.Hub]:
    """A hub with no installed plugins, and no retries (tests/test_reliability.py tests
    those)."""
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        yield h


@pytest.fixture
def gravity_hub(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[providerhub.Hub]:
    """A hub with only the Gravityengine plugin, pointed at the local server."""
    import providerhub_gravityengine

    monkeypatch.setenv(settings.url_variable("gravityengine"), server.url)
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        h.register_plugin(providerhub_gravityengine, name="gravityengine")
        yield h


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on ``sys.path`` where :func:`make_dist` installs distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        if name.startswith("phtest_"):
            del sys.modules[name]


@pytest.fixture
def make_dist(site_dir: Path) -> MakeDist:
    """Install a distribution into ``site_dir``: ``make_dist(name, modules={module: source},
    entry_points={ep_name: "module"})``."""

    def make(
        name: str,
        *,
        modules: dict[str, str],
        entry_points: dict[str, str],
        version: str = "1.0",
        group: str = "providerhub",
    ) -> Path:
        for module, source in modules.items():
            (site_dir / f"{module}.py").write_text(textwrap.dedent(source))
        info = site_dir / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        return info

    return make


@pytest.fixture
def fake() -> Callable[..., FakeProvider]:
    return FakeProvider


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session's shared-state tests (see tests/_redis.py)."""
    from ._redis import RedisServer  # skips where the redis package is not installed

    srv = RedisServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    if not redis_server.ping():  # a test that killed it left it down
        redis_server.start()
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url
