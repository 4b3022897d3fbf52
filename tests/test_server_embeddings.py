"""``POST /v1/embeddings`` on a real ``providerhub serve``, driven by the openai SDK
(unchanged) and by raw HTTP: float and base64 vectors, usage, fallback to a second
upstream on a 5xx, admission as for every POST route (client keys, per-key rpm, body caps,
concurrency), ``/metrics`` by route, ``/v1/models``, and errors in OpenAI's shape that show
nothing internal. The upstreams are two local stand-ins, declared in the configuration
file's ``embedding_models``."""

from __future__ import annotations

import hashlib
import json
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from providerhub.testing import OpenAIServer, Reply, vector_for

from ._gateway import Gateway, clean_environment, poll

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

KEY = "sk-embeddings-client"
LIMITED = "sk-embeddings-limited"
UPSTREAM_KEY = "sk-upstream-SECRET-4242"
MODEL = "emb-small"
MAX_BODY = 20_000


@pytest.fixture(scope="module")
def first() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def second() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    first: OpenAIServer, second: OpenAIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("embeddings")
    config = tmp / "config.toml"
    digest = hashlib.sha256(LIMITED.encode()).hexdigest()
    config.write_text(
        textwrap.dedent(
            f"""
            [server]
            max_body_bytes = {MAX_BODY}
            max_concurrency = 2

            [[server.keys]]
            name = "limited"
            sha256 = "{digest}"
            rpm = 2

            [endpoints.first]
            url = "{first.url}"
            embedding_models = ["{MODEL}"]
            api_key_env = "FIRST_UPSTREAM_KEY"

            [endpoints.second]
            url = "{second.url}"
            models = ["chat-only"]
            embedding_models = ["{MODEL}"]
            """
        ),
        encoding="utf-8",
    )
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_SERVER_API_KEYS=KEY,
        FIRST_UPSTREAM_KEY=UPSTREAM_KEY,
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0
    assert UPSTREAM_KEY not in gw.log()


@pytest.fixture
def sdk(gateway: Gateway) -> Iterator[Any]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def post(gateway: Gateway, doc: Any, key: str = KEY, raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    status, found, data = gateway.request("POST", "/v1/embeddings", body, headers)
    return status, found, json.loads(data)


def test_the_openai_sdk_gets_float_and_base64_vectors(sdk: Any, first: OpenAIServer) -> None:
    texts = ["the cat sat", "on the mat"]
    plain = sdk.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    # The SDK's default: it asks for base64 and decodes the float32s itself.
    decoded = sdk.embeddings.create(model=MODEL, input=texts)
    expected = [vector_for(t, MODEL) for t in texts]
    for r in (plain, decoded):
        assert [d.embedding for d in r.data] == expected
        assert [d.index for d in r.data] == [0, 1]
        assert r.model == MODEL
        assert (r.usage.prompt_tokens, r.usage.total_tokens) == (6, 6)
    # The gateway asked the upstream for floats, with the upstream's key.
    sent = first.requests[-1]
    assert sent.json() == {"model": MODEL, "input": texts}
    assert sent.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    one = sdk.embeddings.create(model=MODEL, input="x", dimensions=3)
    assert one.data[0].embedding == vector_for("x", MODEL, 3)


def test_the_raw_answer_is_openais_document(gateway: Gateway) -> None:
    status, headers, doc = post(
        gateway, {"model": MODEL, "input": "hi", "encoding_format": "base64"}
    )
    assert status == 200
    assert headers["x-providerhub-provider"] == "first"
    assert doc["object"] == "list" and doc["model"] == MODEL
    assert doc["usage"] == {"prompt_tokens": 1, "total_tokens": 1}
    (item,) = doc["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    assert isinstance(item["embedding"], str)


def test_a_5xx_falls_back_to_the_second_upstream(
    sdk: Any, first: OpenAIServer, second: OpenAIServer
) -> None:
    before = len(second.requests)
    # A Retry-After past what is worth waiting for: the next provider is asked at once.
    first.script(Reply.error(503, "overloaded", retry_after="120"))
    raw = sdk.embeddings.with_raw_response.create(model=MODEL, input="fallback")
    assert raw.headers["x-providerhub-provider"] == "second"
    assert raw.parse().data[0].embedding == vector_for("fallback", MODEL)
    assert len(second.requests) == before + 1


def test_upstream_failures_are_openai_errors_with_nothing_internal(
    gateway: Gateway, first: OpenAIServer, second: OpenAIServer
) -> None:
    leak = f"upstream says: key {UPSTREAM_KEY} at {first.url}"
    first.script(Reply.error(500, leak, retry_after="120"))
    second.script(Reply.error(500, leak, retry_after="120"))
    status, _, doc = post(gateway, {"model": MODEL, "input": "a"})
    assert status == 502
    assert set(doc) == {"error"} and doc["error"]["type"]
    shown = json.dumps(doc)
    assert UPSTREAM_KEY not in shown and first.url not in shown and second.url not in shown


@pytest.mark.parametrize(
    ("doc", "param"),
    [
        ({"input": "a"}, "model"),
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": ["a", 3]}, "input"),
        ({"model": MODEL, "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": MODEL, "input": "a", "dimensions": -1}, "dimensions"),
        ({"model": MODEL, "input": "a", "provider": "second"}, "provider"),
        ({"model": MODEL, "input": "a", "stream": True}, "stream"),
    ],
)
def test_bad_requests_are_400_and_reach_no_upstream(
    gateway: Gateway, first: OpenAIServer, second: OpenAIServer, doc: Any, param: str
) -> None:
    sent = len(first.requests) + len(second.requests)
    status, _, answer = post(gateway, doc)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param
    assert len(first.requests) + len(second.requests) == sent


def test_an_unknown_or_chat_model_is_404(gateway: Gateway) -> None:
    for model in ("no-such-model", "chat-only"):
        status, _, answer = post(gateway, {"model": model, "input": "a"})
        assert status == 404, answer
        assert answer["error"]["code"] == "model_not_found"


def test_admission_keys_body_cap_and_per_key_rpm(
    gateway: Gateway, first: OpenAIServer, second: OpenAIServer
) -> None:
    status, _, answer = post(gateway, {"model": MODEL, "input": "a"}, key="")
    assert status == 401 and answer["error"]["type"]
    status, _, answer = post(
        gateway, None, raw=b'{"model": "x", "input": "' + b"a" * MAX_BODY + b'"}'
    )
    assert status == 413
    assert post(gateway, {"model": MODEL, "input": "a"}, key=LIMITED)[0] == 200
    assert post(gateway, {"model": MODEL, "input": "b"}, key=LIMITED)[0] == 200
    sent = len(first.requests) + len(second.requests)
    status, headers, answer = post(gateway, {"model": MODEL, "input": "c"}, key=LIMITED)
    assert status == 429
    assert answer["error"]["type"] and int(headers["retry-after"]) >= 1
    assert len(first.requests) + len(second.requests) == sent


def test_past_max_concurrency_the_answer_is_503_at_once(
    gateway: Gateway, first: OpenAIServer
) -> None:
    first.script(
        Reply(fault="stall", delay=1.5, after=None), Reply(fault="stall", delay=1.5, after=None)
    )
    held = [
        threading.Thread(target=post, args=(gateway, {"model": MODEL, "input": f"h{i}"}))
        for i in range(2)
    ]
    for thread in held:
        thread.start()
    assert poll(lambda: first.pending == 0, timeout=3)
    status, _, answer = post(gateway, {"model": MODEL, "input": "third"})
    assert status == 503, answer
    for thread in held:
        thread.join(5)


def test_metrics_and_models_know_the_route_and_the_models(gateway: Gateway) -> None:
    post(gateway, {"model": MODEL, "input": "m"})
    status, _, data = gateway.request("GET", "/metrics")
    assert status == 200
    text = data.decode()
    assert 'providerhub_server_requests_total{route="/v1/embeddings",status="200"}' in text
    assert 'route="/v1/embeddings",status="400"' in text
    status, _, data = gateway.request(
        "GET", "/v1/models", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert status == 200
    models = {m["id"]: m for m in json.loads(data)["data"]}
    assert models[MODEL]["providers"] == ["first", "second"]
    assert "chat-only" in models
    status, _, data = gateway.request(
        "GET", f"/v1/models/{MODEL}", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert status == 200 and json.loads(data)["owned_by"] == "first"


def test_the_gateway_keeps_no_socket_per_request(gateway: Gateway) -> None:
    post(gateway, {"model": MODEL, "input": "warm"})
    sockets = gateway.sockets()
    for i in range(10):
        assert post(gateway, {"model": MODEL, "input": f"n{i}"})[0] == 200
    assert poll(lambda: gateway.sockets() <= sockets, timeout=3)


def test_get_is_405(gateway: Gateway) -> None:
    status, headers, _ = gateway.request("GET", "/v1/embeddings")
    assert status == 405 and headers["allow"].startswith("POST")
