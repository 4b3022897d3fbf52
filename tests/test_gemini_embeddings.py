"""Gemini's ``batchEmbedContents`` as an embeddings dialect: a declaration with
``embedding_codec="gemini-embeddings"`` answered by a local stand-in of the endpoint, which
google-genai (the official SDK, unchanged) drives too, so the stand-in and the codec both
follow the real wire format."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import providerhub
from providerhub import AuthenticationError, InvalidRequestError, PluginError
from providerhub.plugin import Credential, HTTPProvider
from providerhub.testing import vector_for

MODEL = "gemini-embedding-001"
KEY = "AIza-test-key-123456"


class GeminiStandIn:
    """``POST /v1/models/{model}:batchEmbedContents`` on 127.0.0.1: the vectors of
    :func:`providerhub.testing.vector_for` for each request's text. ``fail`` holds statuses
    to answer the next requests with (Google's error body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.fail: list[int] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((self.path, dict(self.headers.items()), body))
                if owner.fail:
                    status = owner.fail.pop(0)
                    doc: Any = {"error": {"code": status, "message": "no", "status": "UNAVAILABLE"}}
                else:
                    status = 200
                    path = self.path.split("?")[0]
                    model = path.removeprefix("/v1/models/").split(":")[0]
                    doc = {
                        "embeddings": [
                            {
                                "values": vector_for(
                                    r["content"]["parts"][0]["text"],
                                    model,
                                    r.get("outputDimensionality", 8),
                                )
                            }
                            for r in body["requests"]
                        ]
                    }
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def gemini() -> Iterator[GeminiStandIn]:
    server = GeminiStandIn()
    yield server
    server.close()


def declaration(server: GeminiStandIn, name: str = "gemini") -> HTTPProvider:
    return HTTPProvider(
        name=name,
        url=server.url,
        models=[],
        embedding_models=[MODEL],
        embedding_codec="gemini-embeddings",
        credential=Credential(header="x-goog-api-key", scheme=""),
    )


def test_the_client_speaks_batch_embed_contents(
    hub: providerhub.Hub, gemini: GeminiStandIn
) -> None:
    hub.register(declaration(gemini))
    r = providerhub.Client(hub).embeddings.create(
        model=MODEL, input=["hello", "world"], dimensions=4, auth={"gemini": KEY}
    )
    assert [d.embedding for d in r.data] == [
        vector_for("hello", MODEL, 4),
        vector_for("world", MODEL, 4),
    ]
    assert r.provider == "gemini" and r.model == MODEL
    ((path, headers, body),) = gemini.requests
    assert path == f"/v1/models/{MODEL}:batchEmbedContents"
    assert headers["x-goog-api-key"] == KEY
    assert body == {
        "requests": [
            {
                "model": f"models/{MODEL}",
                "outputDimensionality": 4,
                "content": {"parts": [{"text": t}]},
            }
            for t in ("hello", "world")
        ]
    }


def test_token_ids_are_refused_before_sending(hub: providerhub.Hub, gemini: GeminiStandIn) -> None:
    hub.register(declaration(gemini))
    with pytest.raises(InvalidRequestError, match="text only"):
        providerhub.Client(hub).embeddings.create(model=MODEL, input=[1, 2], auth={"gemini": KEY})
    assert gemini.requests == []


def test_errors_are_typed_and_a_5xx_is_retried(gemini: GeminiStandIn) -> None:
    with providerhub.Hub(load_entrypoints=False, retries=1) as hub:
        hub.register(declaration(gemini))
        gemini.fail = [503]
        r = providerhub.Client(hub).embeddings.create(model=MODEL, input="a", auth={"gemini": KEY})
        assert r.data[0].embedding == vector_for("a", MODEL)
        gemini.fail = [403]
        with pytest.raises(AuthenticationError, match="PROVIDERHUB_GEMINI_API_KEY") as caught:
            providerhub.Client(hub).embeddings.create(model=MODEL, input="a", auth={"gemini": KEY})
        assert KEY not in str(caught.value)
    assert len(gemini.requests) == 3


def test_an_unknown_embedding_codec_is_a_plugin_error(gemini: GeminiStandIn) -> None:
    with pytest.raises(PluginError, match="embedding_codec"):
        HTTPProvider(
            name="x", url=gemini.url, models=[], embedding_models=["e"], embedding_codec="gemni"
        )


def test_the_stand_in_answers_google_genai(gemini: GeminiStandIn) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gemini.url))
    result = client.models.embed_content(
        model=MODEL,
        contents=["hello", "world"],
        config=types.EmbedContentConfig(output_dimensionality=4),
    )
    assert [e.values for e in result.embeddings] == [
        vector_for("hello", MODEL, 4),
        vector_for("world", MODEL, 4),
    ]
    # What the SDK sent is what the codec sends, but for the role of each content.
    path, headers, body = gemini.requests[0]
    assert path == f"/v1/models/{MODEL}:batchEmbedContents"
    assert headers["x-goog-api-key"] == KEY
    for request in body["requests"]:
        assert request["content"].pop("role", "user") == "user"
    assert body == {
        "requests": [
            {
                "model": f"models/{MODEL}",
                "outputDimensionality": 4,
                "content": {"parts": [{"text": t}]},
            }
            for t in ("hello", "world")
        ]
    }
