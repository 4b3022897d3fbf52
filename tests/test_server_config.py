"""The server's settings and keys, read in process: the [server] table, its mistakes, the
environment, and the key checks."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from providerhub import ConfigurationError

from ._internals import Keys, MemoryLimiter, _config, _limits, is_loopback

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("uvicorn")


def _load(tmp_path: Path, text: str, **env: str) -> _config.ServerSettings:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return _config.load({"PROVIDERHUB_CONFIG": str(path), **env})


def test_keys_come_hashed_from_the_file_and_in_clear_from_the_environment(
    tmp_path: Path,
) -> None:
    digest = hashlib.sha256(b"sk-file").hexdigest()
    settings = _load(
        tmp_path,
        f'[server]\nmax_concurrency = 8\n[[server.keys]]\nname = "ci"\nsha256 = "{digest}"\n'
        "rpm = 60\n",
        PROVIDERHUB_SERVER_API_KEYS="sk-env, ,sk-env2",
        PROVIDERHUB_SERVER_MAX_BODY_BYTES="1000",
    )
    assert [(k.name, k.rpm) for k in settings.keys] == [
        ("ci", 60),
        ("env-1", None),
        ("env-3", None),
    ]
    assert (settings.max_concurrency, settings.max_body_bytes) == (8, 1000)
    assert "sk-env" not in repr(settings)  # only hashes are kept, and not shown
    keys = Keys(settings.keys, MemoryLimiter())
    found = keys.find(b"Bearer sk-file")
    assert found is not None and found.name == "ci"
    assert keys.find(b"Bearer sk-env2") is not None
    assert keys.find(b"Bearer sk-fil") is None
    assert keys.find(b"Basic sk-file") is None
    assert keys.find(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[server.keys]]\nkey = "sk-clear"\n', "the file holds hashes only"),
        ('[[server.keys]]\nsha256 = "abc"\n', "64 hex digits"),
        ('[[server.keys]]\nsha256 = "' + "0" * 64 + '"\nrpm = 0\n', "rpm must be a positive"),
        ("[server]\nmax_conns = 3\n", "unknown field 'max_conns'"),
        ("[server]\nmax_body_bytes = -1\n", "positive whole number"),
        ("[server]\nheader_timeout = 0\n", "header_timeout must be a positive number"),
        ('[server]\nwrite_timeout = "30"\n', "write_timeout must be a positive number"),
        ('[server]\ncors_origins = "https://a.example"\n', "must be a list of origins"),
        ('[server]\ncors_origins = ["https://a.example/"]\n', "no path or trailing slash"),
        ("[server\n", "not a valid TOML file"),
    ],
)
def test_a_mistake_in_the_file_stops_the_start_with_its_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _load(tmp_path, text)


def test_the_limits_and_origins_come_from_the_file_and_the_environment_wins(
    tmp_path: Path,
) -> None:
    defaults = _load(tmp_path, "")
    assert (defaults.max_header_bytes, defaults.header_timeout) == (65536, 10.0)
    assert (defaults.body_timeout, defaults.write_timeout, defaults.cors_origins) == (
        30.0,
        30.0,
        (),
    )
    text = (
        "[server]\nmax_header_bytes = 16384\nheader_timeout = 2.5\nbody_timeout = 20\n"
        'write_timeout = 5\ncors_origins = ["https://App.example.com", "http://localhost:3000"]\n'
    )
    settings = _load(tmp_path, text)
    assert (settings.max_header_bytes, settings.header_timeout) == (16384, 2.5)
    assert (settings.body_timeout, settings.write_timeout) == (20.0, 5.0)
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    settings = _load(
        tmp_path,
        text,
        PROVIDERHUB_SERVER_MAX_HEADER_BYTES="8192",
        PROVIDERHUB_SERVER_HEADER_TIMEOUT="1",
        PROVIDERHUB_SERVER_BODY_TIMEOUT="0.5",
        PROVIDERHUB_SERVER_WRITE_TIMEOUT="60",
        PROVIDERHUB_SERVER_CORS_ORIGINS=" https://b.example.com , *",
    )
    assert (settings.max_header_bytes, settings.header_timeout) == (8192, 1.0)
    assert (settings.body_timeout, settings.write_timeout) == (0.5, 60.0)
    assert settings.cors_origins == ("https://b.example.com", "*")
    with pytest.raises(ConfigurationError, match="PROVIDERHUB_SERVER_BODY_TIMEOUT must be a"):
        _load(tmp_path, "", PROVIDERHUB_SERVER_BODY_TIMEOUT="soon")
    with pytest.raises(ConfigurationError, match="PROVIDERHUB_SERVER_WRITE_TIMEOUT must be a"):
        _load(tmp_path, "", PROVIDERHUB_SERVER_WRITE_TIMEOUT="inf")


def test_a_missing_default_file_means_no_keys_but_a_missing_named_one_stops(
    tmp_path: Path,
) -> None:
    settings = _config.load({"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.keys == ()
    assert settings.max_concurrency == _config.DEFAULT_MAX_CONCURRENCY
    with pytest.raises(ConfigurationError, match="no such file"):
        _config.load({"PROVIDERHUB_CONFIG": str(tmp_path / "absent.toml")})


def test_the_file_is_the_one_the_openai_compatible_plugin_reads(tmp_path: Path) -> None:
    from providerhub_openai_compatible.config import config_path

    for env in ({}, {"XDG_CONFIG_HOME": str(tmp_path)}, {"PROVIDERHUB_CONFIG": "~/x.toml"}):
        assert _config.config_path(env) == config_path(env)[0]


def test_a_key_over_its_rpm_waits_until_its_oldest_request_leaves_the_minute() -> None:
    now = [1000.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    key = _config.ClientKey(hashlib.sha256(b"k").digest(), "k", rpm=2)
    free = _config.ClientKey(hashlib.sha256(b"f").digest(), "f")
    keys = Keys((key, free), limiter)

    def wait(k: _config.ClientKey) -> int:
        return asyncio.run(keys.take(k))  # awaited in the server (see Keys.take)

    assert wait(key) == 0
    now[0] += 10
    assert wait(key) == 0
    now[0] += 10.5
    assert wait(key) == 40  # 39.5 s until the first leaves the minute, rounded up
    assert [wait(free) for _ in range(100)] == [0] * 100  # no rpm: never counted
    now[0] += 39.5
    assert wait(key) == 0
    assert wait(key) == 10  # the second one leaves at 1070: a sliding window, no burst
    # Counted under client:NAME, apart from the providers' provider:NAME.
    assert limiter.take("client:k", _limits.Limits(rpm=2)) > 0
    assert limiter.take("provider:k", _limits.Limits(rpm=2)) == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_importing_providerhub_imports_neither_the_server_nor_uvicorn() -> None:
    code = (
        "import sys, providerhub\n"
        "print(sorted(m for m in ('providerhub.server', 'uvicorn') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
