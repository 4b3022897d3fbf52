"""Algorithmic guards on the hot paths: what a call touches and what it imports, never
how long it takes (the benchmarks in bench/ measure time)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import providerhub
from providerhub.testing import OpenAIServer, Reply

HI = [{"role": "user", "content": "Hi"}]


class Counted:
    """A provider that counts every look at its ``working`` flag, which routing reads."""

    looks = 0

    def __init__(self, index: int) -> None:
        self.url = f"http://p{index}.invalid"
        self.model = [f"model-{index % 100}-{k}" for k in range(10)]
        self.supports_stream = True
        self.needs_auth = False

    @property
    def working(self) -> bool:
        Counted.looks += 1
        return True

    def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
        yield "x"


def test_route_looks_only_at_the_providers_serving_the_model() -> None:
    hub = providerhub.Hub(load_entrypoints=False)
    for index in range(2000):
        hub.register(Counted(index), name=f"p{index}")
    Counted.looks = 0
    candidates = hub.route("model-7-3")
    assert len(candidates) == 20  # p7, p107, ..., p1907
    assert Counted.looks == 20


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_and_listing_do_not_import_requests_or_asyncio() -> None:
    code = (
        "import sys, io, contextlib, providerhub\n"
        "from providerhub import _cli as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['providers'])\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'asyncio') if m in sys.modules))\n"
    )
    assert run(code) == "[]"


def test_calls_through_one_hub_reuse_one_connection(server: OpenAIServer) -> None:
    from ._internals import chat_completion

    class Endpoint:
        url = server.url
        model = ["m"]
        supports_stream = True
        needs_auth = False
        honors_timeout = True

        def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
            yield from chat_completion(
                "e", server.url + "/v1/chat/completions", model, messages, stream, **kw
            )

    with providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Endpoint(), name="e")
        server.script(Reply.text("a"), Reply.text("b", "c"), Reply.text("d"))
        assert hub.create("m", HI) == "a"
        assert list(hub.create("m", HI, stream=True)) == ["b", "c"]  # read to its end
        assert hub.create("m", HI) == "d"
    assert len({request.client for request in server.requests}) == 1
