"""The clients the benchmark compares, each doing the same two things against the bench
server: one non-streamed completion, and one streamed completion of ``n`` pieces.

Every client returns exactly the text it received, for the worker to check against
:mod:`protocol`. Each library is imported only when its client is made, so a worker process
holds the library it measures and no other.

- ``providerhub``: ``providerhub.Hub().create(...)`` with Gravityengine pointed at the server.
- ``requests``: a ``requests.Session``: ``post(...).json()``, and for streams the usual
  ``iter_lines()`` + ``json.loads`` loop.
- ``openai``: the openai SDK's ``OpenAI(base_url=...).chat.completions.create``.
- ``litellm``: ``litellm.completion(model="openai/...", api_base=...)``.
- ``httpclient``: a bare ``http.client`` keep-alive connection, the measure of the server's
  own ceiling: it reads whole bodies, and the worker parses streams outside the timing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

import protocol

TIMEOUT = (10.0, 60.0)
"""Connect and read timeouts, as providerhub's default ``Timeout``."""


class Client(Protocol):
    """What every client offers to the workers."""

    shared: bool
    """Whether threads may share one instance (else each thread makes its own)."""

    def nonstream(self, nonce: str) -> str: ...

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        """The text received and the number of non-empty pieces it came in."""
        ...

    def close(self) -> None: ...


class ProviderhubClient:
    """providerhub's default route: a ``Hub`` with every installed plugin."""

    shared = True

    def __init__(self, base_url: str) -> None:
        os.environ["PROVIDERHUB_GRAVITYENGINE_URL"] = base_url
        import providerhub

        self.hub = providerhub.Hub()
        if "gravityengine" not in self.hub.providers:
            raise RuntimeError("the gravityengine plugin is not installed")

    def nonstream(self, nonce: str) -> str:
        return self.hub.create(protocol.MODEL, protocol.messages_for(nonce))

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        out: list[str] = []
        append = out.append
        messages = protocol.messages_for(nonce)
        with self.hub.create(protocol.MODEL, messages, stream=True, max_tokens=pieces) as chunks:
            for piece in chunks:
                append(piece)
        return "".join(out), len(out)

    def close(self) -> None:
        self.hub.close()


class RequestsClient:
    """Raw ``requests``: the baseline every ratio is taken against."""

    shared = False  # a Session is not documented as thread-safe: one per thread

    def __init__(self, base_url: str) -> None:
        import json

        import requests

        self.url = base_url + protocol.PATH
        self.session = requests.Session()
        self._loads = json.loads

    def nonstream(self, nonce: str) -> str:
        body = protocol.request_body(nonce, stream=False)
        doc = self.session.post(self.url, json=body, timeout=TIMEOUT).json()
        content: str = doc["choices"][0]["message"]["content"]
        return content

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        body = protocol.request_body(nonce, stream=True, pieces=pieces)
        loads = self._loads
        out: list[str] = []
        append = out.append
        with self.session.post(self.url, json=body, stream=True, timeout=TIMEOUT) as resp:
            if resp.status_code != 200:
                raise RuntimeError(f"HTTP {resp.status_code}")
            for line in resp.iter_lines():
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    break
                content = loads(data)["choices"][0]["delta"].get("content")
                if content:
                    append(content)
        return "".join(out), len(out)

    def close(self) -> None:
        self.session.close()


class OpenAIClient:
    """The openai SDK (httpx underneath), retries off."""

    shared = True

    def __init__(self, base_url: str) -> None:
        from openai import OpenAI

        self.client = OpenAI(
            base_url=base_url + protocol.PATH.rsplit("/chat/completions", 1)[0],
            api_key="bench",
            max_retries=0,
            timeout=TIMEOUT[1],
        )

    def nonstream(self, nonce: str) -> str:
        result = self.client.chat.completions.create(
            model=protocol.MODEL, messages=protocol.messages_for(nonce), **protocol.DEFAULTS
        )
        content = result.choices[0].message.content
        return content or ""

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        out: list[str] = []
        append = out.append
        chunks = self.client.chat.completions.create(
            model=protocol.MODEL,
            messages=protocol.messages_for(nonce),
            stream=True,
            max_tokens=pieces,
            **protocol.DEFAULTS,
        )
        with chunks:
            for chunk in chunks:
                if chunk.choices:
                    content = chunk.choices[0].delta.content
                    if content:
                        append(content)
        return "".join(out), len(out)

    def close(self) -> None:
        self.client.close()


class LiteLLMClient:
    """LiteLLM's ``completion`` on its OpenAI-compatible route, kept off the network: the
    local model cost map, no telemetry, no retries."""

    shared = True

    def __init__(self, base_url: str) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        self.completion = litellm.completion
        self.api_base = base_url + protocol.PATH.rsplit("/chat/completions", 1)[0]

    def _call(self, nonce: str, **options: Any) -> Any:
        return self.completion(
            model="openai/" + protocol.MODEL,
            api_base=self.api_base,
            api_key="bench",
            messages=protocol.messages_for(nonce),
            num_retries=0,
            timeout=TIMEOUT[1],
            **protocol.DEFAULTS,
            **options,
        )

    def nonstream(self, nonce: str) -> str:
        content = self._call(nonce).choices[0].message.content
        return content or ""

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        out: list[str] = []
        append = out.append
        for chunk in self._call(nonce, stream=True, max_tokens=pieces):
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    append(content)
        return "".join(out), len(out)

    def close(self) -> None:
        pass


class HTTPClientClient:
    """A bare ``http.client`` keep-alive loop: the server's ceiling, as seen by the
    lightest client the standard library has."""

    shared = False

    def __init__(self, base_url: str) -> None:
        import http.client
        import json
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT[1])
        self._dumps = json.dumps
        self._loads = json.loads
        self._headers = {"Content-Type": "application/json"}

    def _post(self, body: dict[str, Any]) -> bytes:
        self.conn.request("POST", protocol.PATH, self._dumps(body).encode(), self._headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return data

    def nonstream(self, nonce: str) -> str:
        data = self._post(protocol.request_body(nonce, stream=False))
        content: str = self._loads(data)["choices"][0]["message"]["content"]
        return content

    def stream_body(self, nonce: str, pieces: int) -> bytes:
        """The whole event stream, unparsed."""
        return self._post(protocol.request_body(nonce, stream=True, pieces=pieces))

    def stream(self, nonce: str, pieces: int) -> tuple[str, int]:
        return protocol.parse_sse_text(self.stream_body(nonce, pieces))

    def close(self) -> None:
        self.conn.close()


CLIENTS: dict[str, Callable[[str], Client]] = {
    "providerhub": ProviderhubClient,
    "requests": RequestsClient,
    "openai": OpenAIClient,
    "litellm": LiteLLMClient,
    "httpclient": HTTPClientClient,
}


def make(name: str, base_url: str) -> Client:
    """A new client of kind ``name``, talking to the server at ``base_url``."""
    return CLIENTS[name](base_url)
