"""Embeddings through the public API: ``Client().embeddings.create`` and its async twin,
over declared providers (``HTTPProvider(embedding_models=...)``) and seed-contract modules,
against real local servers; routing, retries, fallback, cooldowns and rate limits as for
chat; bad input refused before anything is sent; the stand-in driven by the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import struct
import types
from collections.abc import Iterator
from typing import Any

import pytest

import providerhub
from providerhub import (
    InvalidRequestError,
    ModelNotFoundError,
    PluginError,
    ProviderHTTPError,
    ProviderResponseError,
    ProvidersCoolingDownError,
    RateLimitError,
)
from providerhub.plugin import HTTPProvider
from providerhub.testing import EMBEDDING_DIMENSIONS, OpenAIServer, Reply, vector_for
from providerhub.types import CreateEmbeddingResponse

from ._support import sockets, threads, wait_until

EMBED = "text-embedding-3-small"
CHAT = "gpt-3.5-turbo-16k"


def declared(name: str, server: OpenAIServer, **options: Any) -> HTTPProvider:
    options.setdefault("models", [CHAT])
    return HTTPProvider(name=name, url=server.url, embedding_models=[EMBED], **options)


def floats(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


@pytest.fixture
def second() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def one(hub: providerhub.Hub, server: OpenAIServer) -> providerhub.Hub:
    hub.register(declared("p1", server))
    return hub


def test_vectors_come_back_in_the_openai_shape(one: providerhub.Hub, server: OpenAIServer) -> None:
    r = providerhub.Client(one).embeddings.create(model=EMBED, input=["hello there", "bye"])
    assert isinstance(r, CreateEmbeddingResponse)
    assert [d.index for d in r.data] == [0, 1]
    assert r.data[0].embedding == vector_for("hello there", EMBED)
    assert r.data[1].embedding == vector_for("bye", EMBED)
    assert r.model == EMBED and r.provider == "p1"
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (3, 3)
    assert r.to_dict() == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": vector_for(t, EMBED)}
            for i, t in enumerate(["hello there", "bye"])
        ],
        "model": EMBED,
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }
    (sent,) = server.requests
    assert sent.path == "/v1/embeddings"
    # Floats are always asked for: the client encodes base64 itself.
    assert sent.json() == {"model": EMBED, "input": ["hello there", "bye"]}


def test_base64_is_little_endian_float32_and_options_are_passed_on(
    one: providerhub.Hub, server: OpenAIServer
) -> None:
    r = providerhub.Client(one).embeddings.create(
        model=EMBED, input="hi", encoding_format="base64", dimensions=5, user="u-1"
    )
    (item,) = r.data
    assert isinstance(item.embedding, str)
    assert floats(item.embedding) == vector_for("hi", EMBED, 5)
    assert server.requests[0].json() == {
        "model": EMBED,
        "input": "hi",
        "dimensions": 5,
        "user": "u-1",
    }


def test_token_arrays_are_taken(one: providerhub.Hub) -> None:
    client = providerhub.Client(one)
    assert len(client.embeddings.create(model=EMBED, input=[1, 2, 3]).data) == 1
    r = client.embeddings.create(model=EMBED, input=[[1, 2], [3]])
    assert r.data[1].embedding == vector_for("3", EMBED)


def test_async_client_on_the_event_loop(one: providerhub.Hub, server: OpenAIServer) -> None:
    pytest.importorskip("aiohttp")
    before = threads()

    async def main() -> CreateEmbeddingResponse:
        r = await providerhub.AsyncClient(one).embeddings.create(
            model=EMBED, input=["a", "b", "c"], encoding_format="base64"
        )
        await one.aclose()
        return r

    r = asyncio.run(main())
    assert [floats(d.embedding) for d in r.data] == [  # type: ignore[arg-type]
        vector_for(t, EMBED) for t in "abc"
    ]
    assert r.provider == "p1"
    # The declaration's _acreate_embedding ran on the loop: no worker thread stayed.
    assert wait_until(lambda: threads() <= before)


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", ""]}, "input"),
        ({"input": ["a", [1]]}, "input"),
        ({"input": {"text": "a"}}, "input"),
        ({"input": [-1]}, "input"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "dimensions": True}, "dimensions"),
        ({"input": "a", "user": 7}, "user"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    one: providerhub.Hub, server: OpenAIServer, options: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        providerhub.Client(one).embeddings.create(model=EMBED, **options)
    assert caught.value.param == param
    assert server.requests == []


def test_chat_and_embedding_models_are_kept_apart(one: providerhub.Hub) -> None:
    client = providerhub.Client(one)
    with pytest.raises(ModelNotFoundError, match="chat model"):
        client.embeddings.create(model=CHAT, input="a")
    with pytest.raises(ModelNotFoundError, match=r"embeddings\.create"):
        client.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "a"}])
    assert one.embedding_models() == {EMBED: ["p1"]}
    assert EMBED not in one.models()


def test_a_5xx_falls_back_to_the_next_provider(
    hub: providerhub.Hub, server: OpenAIServer, second: OpenAIServer
) -> None:
    hub.register(declared("p1", server))
    hub.register(declared("p2", second))
    server.script(Reply.error(503, "overloaded"))
    r = providerhub.Client(hub).embeddings.create(model=EMBED, input="a")
    assert r.provider == "p2"
    assert r.data[0].embedding == vector_for("a", EMBED)
    assert len(server.requests) == 1 and len(second.requests) == 1


def test_a_5xx_is_retried_on_the_same_provider(server: OpenAIServer) -> None:
    with providerhub.Hub(load_entrypoints=False, retries=1) as hub:
        hub.register(declared("p1", server))
        server.script(Reply.error(502))
        r = providerhub.Client(hub).embeddings.create(model=EMBED, input="a", retries=1)
    assert r.provider == "p1"
    assert [q.path for q in server.requests] == ["/v1/embeddings"] * 2


def test_one_failing_provider_is_a_typed_error(one: providerhub.Hub, server: OpenAIServer) -> None:
    server.script(Reply.error(500, "boom"))
    with pytest.raises(ProviderHTTPError) as caught:
        providerhub.Client(one).embeddings.create(model=EMBED, input="a")
    assert caught.value.provider == "p1" and caught.value.status_code == 500


def test_a_provider_that_failed_cools_down(server: OpenAIServer, second: OpenAIServer) -> None:
    with providerhub.Hub(
        load_entrypoints=False, retries=0, failure_threshold=1, cooldown=30
    ) as hub:
        hub.register(declared("p1", server))
        hub.register(declared("p2", second))
        server.script(Reply.error(503))
        client = providerhub.Client(hub)
        assert client.embeddings.create(model=EMBED, input="a").provider == "p2"
        # p1 cools down: the next call goes straight to p2, nothing sent to p1.
        assert client.embeddings.create(model=EMBED, input="b").provider == "p2"
        assert len(server.requests) == 1
        hub.unregister("p2")
        with pytest.raises(ProvidersCoolingDownError):
            client.embeddings.create(model=EMBED, input="c")
        assert len(server.requests) == 1


def test_the_rate_limit_counts_embeddings(hub: providerhub.Hub, server: OpenAIServer) -> None:
    hub.register(declared("p1", server, rpm=1))
    client = providerhub.Client(hub)
    client.embeddings.create(model=EMBED, input="a")
    with pytest.raises(RateLimitError):
        client.embeddings.create(model=EMBED, input="b")
    assert len(server.requests) == 1


def test_an_upstream_that_answers_nonsense_is_a_response_error(
    one: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply(body='{"data": [{"embedding": "not base64!", "index": 0}]}'))
    with pytest.raises(ProviderResponseError, match="p1"):
        providerhub.Client(one).embeddings.create(model=EMBED, input="a")
    server.script(Reply(body='{"data": []}', content_type="application/json"))
    with pytest.raises(ProviderResponseError, match="0 vector"):
        providerhub.Client(one).embeddings.create(model=EMBED, input="a")


def test_an_embeddings_only_declaration(hub: providerhub.Hub, server: OpenAIServer) -> None:
    hub.register(declared("p1", server, models=[]))
    assert hub.models() == {}
    assert providerhub.Client(hub).embeddings.create(model=EMBED, input="a").provider == "p1"
    with pytest.raises(PluginError, match="models"):
        HTTPProvider(name="none", url=server.url, models=[])
    with pytest.raises(PluginError, match="/v1"):
        HTTPProvider(name="v1", url=server.url + "/v1", models=[], embedding_models=[EMBED])


def seed(result: Any, **fields: Any) -> types.SimpleNamespace:
    """A module of the seed contract, plus embeddings: ``_create_embedding`` returns
    ``result`` (a function of the input, or a value)."""
    calls: list[dict[str, Any]] = []

    def _create_embedding(model: str, input: Any, **kwargs: Any) -> Any:
        calls.append({"model": model, "input": input, **kwargs})
        return result(input) if callable(result) else result

    return types.SimpleNamespace(
        url="http://127.0.0.1:9",
        model=[],
        supports_stream=False,
        needs_auth=False,
        embedding_models=[EMBED],
        _create_completion=lambda *a, **k: iter(()),
        _create_embedding=_create_embedding,
        calls=calls,
        **fields,
    )


def test_a_seed_module_may_return_the_openai_document(hub: providerhub.Hub) -> None:
    module = seed(
        lambda texts: {
            "data": [{"embedding": [0.5, float(i)], "index": i} for i in range(len(texts))][::-1],
            "usage": {"prompt_tokens": 2},
        }
    )
    hub.register(module, "seedling")
    r = providerhub.Client(hub).embeddings.create(model=EMBED, input=["x", "y"], dimensions=2)
    assert [d.embedding for d in r.data] == [[0.5, 0.0], [0.5, 1.0]]  # sorted by index
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (2, 2)
    (call,) = module.calls
    assert call["input"] == ["x", "y"] and call["dimensions"] == 2
    assert "structured" not in call and "timeout" in call


def test_a_seed_module_of_the_bare_contract_still_registers(hub: providerhub.Hub) -> None:
    bare = types.SimpleNamespace(
        url="http://x",
        model=["m"],
        supports_stream=False,
        needs_auth=False,
        _create_completion=lambda *a, **k: iter(["hi"]),
    )
    assert hub.register(bare, "bare").embedding_models == ()
    broken = types.SimpleNamespace(**{**vars(bare), "embedding_models": [EMBED]})
    with pytest.raises(PluginError, match="_create_embedding"):
        hub.register(broken, "broken")


def test_a_seed_module_with_a_wrong_count_is_refused(hub: providerhub.Hub) -> None:
    hub.register(seed({"data": [{"embedding": [1.0], "index": 0}]}), "short")
    with pytest.raises(ProviderResponseError, match="1 vector"):
        providerhub.Client(hub).embeddings.create(model=EMBED, input=["x", "y"])


def test_no_socket_is_left_open(one: providerhub.Hub) -> None:
    client = providerhub.Client(one)
    client.embeddings.create(model=EMBED, input="warm")
    before = sockets()
    for _ in range(5):
        client.embeddings.create(model=EMBED, input="a")
    assert sockets() <= before


def test_the_stand_in_answers_the_openai_sdk(server: OpenAIServer) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.url + "/v1", api_key="sk-local", max_retries=0) as sdk:
        plain = sdk.embeddings.create(model=EMBED, input=["a", "b"], encoding_format="float")
        # Without encoding_format the SDK asks for base64 and decodes it itself.
        decoded = sdk.embeddings.create(model=EMBED, input=["a", "b"])
    for r in (plain, decoded):
        assert [d.embedding for d in r.data] == [vector_for("a", EMBED), vector_for("b", EMBED)]
        assert r.usage.total_tokens == 2
    assert server.requests[1].json()["encoding_format"] == "base64"
    assert len(plain.data[0].embedding) == EMBEDDING_DIMENSIONS


def test_the_token_limit_counts_the_usage_embeddings_report(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    hub.register(declared("p1", server, tpm=3))
    client = providerhub.Client(hub)
    client.embeddings.create(model=EMBED, input="one two three")  # 3 tokens reported
    with pytest.raises(RateLimitError):
        client.embeddings.create(model=EMBED, input="four")
    assert len(server.requests) == 1


def test_the_async_client_runs_a_seed_module_on_a_worker_thread(hub: providerhub.Hub) -> None:
    import threading

    seen: list[str] = []

    def vectors(texts: Any) -> dict[str, Any]:
        seen.append(threading.current_thread().name)
        return {"data": [{"embedding": [1.0], "index": i} for i in range(len(texts))]}

    hub.register(seed(vectors), "seedling")

    async def main() -> CreateEmbeddingResponse:
        return await providerhub.AsyncClient(hub).embeddings.create(model=EMBED, input=["a", "b"])

    r = asyncio.run(main())
    assert [d.embedding for d in r.data] == [[1.0], [1.0]] and r.provider == "seedling"
    assert seen and seen[0] != threading.main_thread().name


def test_cancelling_an_async_call_closes_its_connection(server: OpenAIServer) -> None:
    pytest.importorskip("aiohttp")
    server.script(Reply(fault="stall", delay=5, after=None))
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(declared("p1", server))
        before = sockets()

        async def main() -> None:
            task = asyncio.ensure_future(
                providerhub.AsyncClient(hub).embeddings.create(model=EMBED, input="slow")
            )
            assert await asyncio.wait_for(_arrived(server), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await hub.aclose()

        asyncio.run(main())
        # The client's socket is closed: only the stalled server side may linger.
        assert wait_until(lambda: sockets() <= before + 1)
        # A caller's cancellation tells nothing of the provider: it does not cool down.
        assert hub.health.cooling("p1") is None


async def _arrived(server: OpenAIServer) -> bool:
    while not server.requests:
        await asyncio.sleep(0.005)
    return True


# -- the codecs, sans-IO ----------------------------------------------------------------------


def _codec_call(**params: Any) -> Any:
    from ._internals import Call

    return Call("acme", "http://h/v1/embeddings", EMBED, [], False, params, auth="sk-acme-secret")


def test_base64_round_trips_as_openai_encodes_it() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from ._internals import openai_embeddings as codec

    @given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=64))
    def round_trip(vector: list[float]) -> None:
        text = codec.to_base64(vector)
        assert text == base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        assert codec.from_base64(text) == vector

    round_trip()
    with pytest.raises(ValueError):
        codec.from_base64("AAAA!")
    with pytest.raises(ValueError):
        codec.from_base64(base64.b64encode(b"abc").decode())  # not whole float32s


def test_the_openai_codec_refuses_what_it_cannot_send() -> None:
    from ._internals import openai_embeddings as codec

    request = codec.CODEC.encode(_codec_call(input=["a"], dimensions=3))
    assert request.url == "http://h/v1/embeddings"
    assert request.headers["Authorization"] == "Bearer sk-acme-secret"
    assert request.body == b'{"model":"text-embedding-3-small","input":["a"],"dimensions":3}'
    with pytest.raises(InvalidRequestError, match="dimension"):
        codec.CODEC.encode(_codec_call(input="a", dimension=3))
    with pytest.raises(InvalidRequestError, match="needs input"):
        codec.CODEC.encode(_codec_call())


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"<html>challenge</html>", "text/html", "HTML page"),
        (b"not json", "text/plain", "not JSON"),
        (b'{"error": {"message": "quota sk-acme-secret"}}', "application/json", "an error"),
        (b'{"data": [{"embedding": [1, "x"], "index": 0}]}', "application/json", "holds str"),
        (b'{"object": "list"}', "application/json", "not an embeddings list"),
    ],
)
def test_the_openai_codec_decodes_bad_answers_as_typed_errors(
    body: bytes, content_type: str, says: str
) -> None:
    from ._internals import openai_embeddings as codec

    request = codec.CODEC.encode(_codec_call(input="a"))
    with pytest.raises(ProviderResponseError, match=says) as caught:
        codec.CODEC.decode(request, request.url, 200, content_type, body)
    assert "sk-acme-secret" not in str(caught.value)
    assert caught.value.provider == "acme"


def test_the_openai_codec_refuses_a_body_past_its_limit() -> None:
    from ._internals import Call
    from ._internals import openai_embeddings as codec

    call = Call("acme", "http://h", EMBED, [], False, {"input": "a"}, max_body_bytes=10)
    request = codec.CODEC.encode(call)
    with pytest.raises(ProviderResponseError, match="larger than 10 bytes"):
        codec.CODEC.decode(request, "http://h", 200, "application/json", b"{" * 11)


def test_an_error_status_names_the_embeddings_endpoint() -> None:
    from ._internals import openai_embeddings as codec

    request = codec.CODEC.encode(_codec_call(input="a"))
    err = codec.CODEC.error(request, request.url, 404, "Not Found", {}, b"{}")
    assert "no embeddings endpoint there" in str(err)
    limited = codec.CODEC.error(request, request.url, 429, None, {"Retry-After": "7"}, b"")
    assert isinstance(limited, RateLimitError) and limited.retry_after == 7
