"""SIGHUP makes a real ``providerhub serve`` read its configuration file again: a key
added works and a key removed is refused, an endpoint added is served, a file that does
not parse is refused (logged) while the old configuration goes on serving, and a stream
begun before the signal ends whole. Reloads leave no thread or socket behind."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import Gateway, clean_environment, poll

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

OLD_KEY = "sk-client-before-reload"
NEW_KEY = "sk-client-after-reload"
MODEL = "gpt-3.5-turbo-16k"
ADDED_MODEL = "added-after-reload"
CHAT = "/v1/chat/completions"


def _key(name: str, key: str) -> str:
    return (
        f'[[server.keys]]\nname = "{name}"\nsha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
    )


@pytest.fixture
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def setup(upstream: OpenAIServer, tmp_path: Path) -> Iterator[tuple[Gateway, Path]]:
    config = tmp_path / "config.toml"
    config.write_text("[server]\nupstream_timeout = 2\n" + _key("old", OLD_KEY), encoding="utf-8")
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_GRAVITYENGINE_URL=upstream.url,
        PROVIDERHUB_GRAVITYENGINE_API_KEY="sk-upstream-reload-1",
        PROVIDERHUB_LOCAL_API_KEY="sk-upstream-local-2",
    )
    gateway = Gateway(tmp_path, env)
    yield gateway, config
    assert gateway.stop() == 0


def _chat(gateway: Gateway, key: str, model: str = MODEL) -> int:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    status, _, _ = gateway.request("POST", CHAT, body.encode(), {"authorization": f"Bearer {key}"})
    return status


def _reload(gateway: Gateway, marker: str) -> None:
    seen = gateway.log().count(marker)
    gateway.process.send_signal(signal.SIGHUP)
    assert poll(lambda: gateway.log().count(marker) > seen, 10), gateway.log()


def test_a_new_key_works_and_a_removed_key_is_refused(
    setup: tuple[Gateway, Path], upstream: OpenAIServer
) -> None:
    gateway, config = setup
    assert _chat(gateway, OLD_KEY) == 200
    assert _chat(gateway, NEW_KEY) == 401
    assert _chat(gateway, NEW_KEY, ADDED_MODEL) == 401
    with OpenAIServer() as second:
        config.write_text(
            "[server]\nupstream_timeout = 2\n"
            + _key("new", NEW_KEY)
            + f'[endpoints.local]\nurl = "{second.url}"\nmodels = ["{ADDED_MODEL}"]\n',
            encoding="utf-8",
        )
        _reload(gateway, "reloaded ")
        assert _chat(gateway, NEW_KEY) == 200
        assert _chat(gateway, OLD_KEY) == 401
        assert _chat(gateway, NEW_KEY, ADDED_MODEL) == 200
        assert json.loads(second.requests[-1].body)["model"] == ADDED_MODEL
    assert "sk-upstream" not in gateway.log() and NEW_KEY not in gateway.log()


def test_a_broken_file_is_refused_and_the_old_one_serves(setup: tuple[Gateway, Path]) -> None:
    gateway, config = setup
    config.write_text("[server\n" + _key("new", NEW_KEY), encoding="utf-8")
    _reload(gateway, "reload refused")
    assert "is not a valid TOML file" in gateway.log()
    assert _chat(gateway, OLD_KEY) == 200
    assert _chat(gateway, NEW_KEY) == 401
    # A file that parses but holds a mistake is refused alike.
    config.write_text("[server]\nmax_concurrency = 0\n" + _key("new", NEW_KEY), encoding="utf-8")
    _reload(gateway, "reload refused")
    assert "max_concurrency must be a positive whole number" in gateway.log()
    assert _chat(gateway, OLD_KEY) == 200
    assert gateway.process.poll() is None


def test_a_stream_in_flight_across_a_reload_completes(
    setup: tuple[Gateway, Path], upstream: OpenAIServer
) -> None:
    gateway, config = setup
    pieces = [f"piece-{i} " for i in range(8)]
    upstream.script(Reply.text(*pieces, chunk_delay=0.1))
    body = json.dumps(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    ).encode()
    conn = gateway.connection()
    conn.request("POST", CHAT, body=body, headers={"authorization": f"Bearer {OLD_KEY}"})
    response = conn.getresponse()
    assert response.status == 200
    first = response.readline()
    assert first.startswith(b"data: ")
    # The key that opened the stream is removed while the stream goes on.
    config.write_text("[server]\nupstream_timeout = 2\n" + _key("new", NEW_KEY), encoding="utf-8")
    _reload(gateway, "reloaded ")
    rest = response.read()
    conn.close()
    assert rest.rstrip().endswith(b"data: [DONE]")
    text = ""
    for line in (first + rest).split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in json.loads(line[6:])["choices"]:
                text += choice["delta"].get("content") or ""
    assert text == "".join(pieces)
    assert _chat(gateway, OLD_KEY) == 401 and _chat(gateway, NEW_KEY) == 200


def test_reloads_leave_no_thread_or_socket(setup: tuple[Gateway, Path]) -> None:
    gateway, config = setup
    assert _chat(gateway, OLD_KEY) == 200  # the pools made, as after any first call
    threads, sockets = gateway.threads(), gateway.sockets()
    for i in range(3):
        _reload(gateway, f"reloaded {config}: 1 client key(s)")
        assert _chat(gateway, OLD_KEY) == 200
        del i
    # Each old hub's connections are closed its upstream_timeout (2 s) + 1 s after.
    assert poll(lambda: gateway.sockets() <= sockets, 8), (gateway.sockets(), sockets)
    assert poll(lambda: gateway.threads() <= threads, 3), (gateway.threads(), threads)
    assert threading.active_count() >= 1
