"""Test helpers shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SEED_MODULE = '''
"""A provider written to the seed contract alone: it never imports providerhub."""
import json
import urllib.request

url = "http://127.0.0.1:9"
model = {models!r}
supports_stream = {stream!r}
needs_auth = {needs_auth!r}
received = []


def _create_completion(model: str, messages: list, stream: bool, **kwargs):
    received.append(dict(model=model, messages=messages, stream=stream, kwargs=kwargs))
    body = json.dumps(dict(model=model, messages=messages)).encode()
    headers = {{"Content-Type": "application/json"}}
    if kwargs.get("auth"):
        headers["Authorization"] = "Bearer " + kwargs["auth"]
    request = urllib.request.Request(url + "/v1/chat/completions", body, headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        yield json.loads(response.read())["choices"][0]["message"]["content"]
'''


def seed_module(models: list[str], *, stream: bool = False, needs_auth: bool = False) -> str:
    """Source of a seed-contract provider module (no providerhub import)."""
    return SEED_MODULE.format(models=models, stream=stream, needs_auth=needs_auth)


class FakeProvider:
    """An in-memory provider following the contract, scripted per test."""

    def __init__(
        self,
        name: str,
        models: list[str],
        pieces: list[Any] | None = None,
        *,
        fail: BaseException | None = None,
        fail_after: int | None = None,
        stream: bool = True,
        needs_auth: bool = False,
        working: bool = True,
    ) -> None:
        self.name = name
        self.url = f"http://{name}.invalid"
        self.model = models
        self.supports_stream = stream
        self.needs_auth = needs_auth
        self.working = working
        self.pieces = pieces if pieces is not None else [f"from {name}"]
        self.fail = fail
        self.fail_after = fail_after
        self.calls: list[dict[str, Any]] = []

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        self.calls.append({"model": model, "messages": messages, "stream": stream, **kwargs})
        if self.fail is not None and self.fail_after is None:
            raise self.fail
        for index, piece in enumerate(self.pieces):
            if self.fail is not None and self.fail_after == index:
                raise self.fail
            yield piece
        if self.fail is not None and self.fail_after is not None:
            raise self.fail
