"""Provider options are never request parameters, and a caller's mistake never counts
against a provider: every hostile field is refused before the upstream sees a request,
and the breaker is left alone, in the library and through a real ``providerhub serve``.

The provider under test is the openai-compatible plugin's, through its real entry point,
configured by a TOML file that sets headers (and no ``extra_parameters``: vLLM's and
llama.cpp's are taken by default), and pointed at the stand-in OpenAI server on
127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub import InvalidRequestError
from providerhub.plugin import CHAT_PARAMETERS, achat_completion, chat_completion
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._gateway import Gateway, clean_environment
from ._internals import MAX_DEPTH, ROUTER_ARGUMENTS, _openai_compat, failure_for, provider_options

MODEL = "local-model"
HI = [{"role": "user", "content": "Hi"}]
OPTION = (
    r"is not a request parameter: it is a provider option, set by the provider's plugin "
    r"or the operator's configuration, not per call"
)
ROUTER = r"is not a request parameter: providerhub's router sets it for each attempt"
TOO_DEEP = rf"nests lists and objects deeper than {MAX_DEPTH} levels"


def config(*servers: OpenAIServer) -> str:
    """One ``[endpoints.<name>]`` per server (``local``, then ``b``, ``c``...), each serving
    MODEL with the file's headers, and no ``extra_parameters``."""
    tables = []
    for index, server in enumerate(servers):
        name = "local" if index == 0 else chr(ord("a") + index)
        tables.append(
            f"[endpoints.{name}]\n"
            f'url = "{server.url}"\n'
            f'models = ["{MODEL}"]\n'
            f'headers = {{ "X-Team" = "ops" }}\n'
        )
    return "\n".join(tables)


def nested(depth: int) -> dict[str, Any]:
    """Objects within objects, ``depth`` levels in all."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def write(*servers: OpenAIServer) -> None:
        path = tmp_path / "config.toml"
        path.write_text(config(*servers), encoding="utf-8")
        monkeypatch.setenv("PROVIDERHUB_CONFIG", str(path))

    return write


@pytest.fixture
def endpoint_hub(server: OpenAIServer, write_config: Any) -> Iterator[providerhub.Hub]:
    """Every installed plugin, the openai-compatible one with the endpoint ``local`` on
    ``server``; no retries, and the default breaker (3 failures in a row cool it)."""
    write_config(server)
    with providerhub.Hub(retries=0) as hub:
        assert "local" in hub.providers, hub.plugin_errors
        yield hub


HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "structured": ({"structured": True}, ROUTER),
    "credential_variable": ({"credential_variable": "X"}, OPTION),
    "max_body_bytes=1": ({"max_body_bytes": 1}, OPTION),
    "max_body_bytes=1e12": ({"max_body_bytes": 10**12}, OPTION),
    "max_event_bytes": ({"max_event_bytes": 1}, OPTION),
    "headers-int": ({"headers": {"X-A": 1}}, OPTION),
    "headers-crlf": ({"headers": {"X-A": "a\r\nX-Injected: 1"}}, OPTION),
    "headers-content-length": ({"headers": {"Content-Length": "10"}}, OPTION),
    "headers-host": ({"headers": {"Host": "internal-admin"}}, OPTION),
    "headers-transfer-encoding": ({"headers": {"Transfer-Encoding": "chunked"}}, OPTION),
    "headers-override": ({"headers": {"X-Team": "someone-else"}}, OPTION),
    "defaults": ({"defaults": {"anything": 1}}, OPTION),
    "endpoint": ({"endpoint": "http://169.254.169.254/latest"}, OPTION),
    "session": ({"session": None}, ROUTER),
    "extra_parameters": ({"extra_parameters": ["anything"]}, OPTION),
    "metadata-1000-deep": ({"metadata": nested(1000)}, "the parameter 'metadata' " + TOO_DEEP),
    "nan": ({"temperature": float("nan")}, "'temperature' for local cannot be sent as JSON"),
    "auth-crlf": ({"auth": {"local": "key\r\nX-Injected: 1"}}, "must be printable ASCII"),
}


def _call(hub: providerhub.Hub, way: str, kwargs: dict[str, Any]) -> Any:
    if way == "create":
        return hub.create(MODEL, HI, **kwargs)
    if way == "stream":
        return "".join(hub.create(MODEL, HI, stream=True, **kwargs))
    if way == "acreate":
        return asyncio.run(hub.acreate(MODEL, HI, **kwargs))
    return providerhub.Client(hub).chat.completions.create(model=MODEL, messages=HI, **kwargs)


def _untouched(hub: providerhub.Hub, name: str = "local") -> bool:
    state = hub.health.snapshot().get(name)
    return hub.health.cooling(name) is None and (state is None or state.failures == 0)


@pytest.mark.parametrize("way", ["create", "stream", "acreate", "client"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_parameter_is_refused_before_sending_and_the_breaker_is_untouched(
    endpoint_hub: providerhub.Hub, server: OpenAIServer, case: str, way: str
) -> None:
    kwargs, says = HOSTILE[case]
    with pytest.raises(InvalidRequestError, match=says):
        _call(endpoint_hub, way, kwargs)
    assert server.requests == []
    assert _untouched(endpoint_hub)
    assert endpoint_hub.create(MODEL, HI)  # a following normal call is served
    [request] = server.requests
    assert request.headers["X-Team"] == "ops"


def test_three_mistakes_in_a_row_leave_the_provider_in_service(
    endpoint_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    # What cooled every provider down: three failures in a row, each a caller's mistake.
    for kwargs in ({"structured": True}, {"max_event_bytes": 1}, {"metadata": nested(1000)}):
        with pytest.raises(InvalidRequestError):
            endpoint_hub.create(MODEL, HI, stream=True, **kwargs)
    assert server.requests == []
    assert _untouched(endpoint_hub)
    assert [p.name for p in endpoint_hub.route(MODEL)] == ["local"]
    assert "".join(endpoint_hub.create(MODEL, HI, stream=True))


def test_every_option_of_the_helpers_is_refused() -> None:
    options = provider_options()
    for helper in (chat_completion, achat_completion):
        for parameter in inspect.signature(helper).parameters.values():
            if parameter.kind is parameter.KEYWORD_ONLY:
                assert parameter.name in options
    assert options >= ROUTER_ARGUMENTS
    assert "endpoint" in options  # a positional of the helper, refused as well
    assert not options & CHAT_PARAMETERS
    assert not options & {"model", "messages", "stream", "provider"}  # create()'s own


def test_an_option_added_to_the_helper_later_is_refused_with_no_list_to_update(
    endpoint_hub: providerhub.Hub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = inspect.signature(chat_completion)
    parameters = list(signature.parameters.values())
    added = inspect.Parameter("brand_new_option", inspect.Parameter.KEYWORD_ONLY, default=None)
    parameters.insert(-1, added)  # before **params
    monkeypatch.setattr(
        _openai_compat.chat_completion,
        "__signature__",
        signature.replace(parameters=parameters),
        raising=False,
    )
    provider_options.cache_clear()
    try:
        with pytest.raises(InvalidRequestError, match="'brand_new_option' " + OPTION):
            endpoint_hub.create(MODEL, HI, brand_new_option=1)
    finally:
        monkeypatch.undo()
        provider_options.cache_clear()
    assert "brand_new_option" not in provider_options()
    assert server.requests == []


def test_the_router_still_passes_its_own_options(hub: providerhub.Hub) -> None:
    received: list[dict[str, Any]] = []

    class Recorder:
        url = "http://recorder.invalid"
        model = ["m"]
        supports_stream = True
        needs_auth = True
        yields_pieces = True

        def _create_completion(
            self, model: str, messages: list[Any], stream: bool, **kwargs: Any
        ) -> Iterator[str]:
            received.append(kwargs)
            yield "ok"

    hub.register(Recorder(), name="recorder")
    assert hub.create("m", HI, auth={"recorder": "key-1"}, temperature=0.5) == "ok"
    [kwargs] = received
    assert set(kwargs) == {"auth", "timeout", "session", "structured", "temperature"}
    assert (kwargs["auth"], kwargs["structured"], kwargs["temperature"]) == ("key-1", True, 0.5)


@pytest.mark.parametrize("way", ["create", "stream", "acreate", "client"])
def test_extra_parameters_reach_the_upstream_unchanged_with_no_configuration(
    endpoint_hub: providerhub.Hub, server: OpenAIServer, way: str
) -> None:
    extra = {
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "chat_template_kwargs": {"enable_thinking": False, "tools": [{"a": None}]},
    }
    _call(endpoint_hub, way, {**extra, "temperature": 0.2})
    [request] = server.requests
    body = request.json()
    assert {key: body[key] for key in extra} == extra
    assert body["temperature"] == 0.2
    assert request.headers["X-Team"] == "ops"


@pytest.mark.parametrize("way", ["create", "stream", "acreate", "client"])
def test_a_parameter_the_endpoint_does_not_take_is_still_refused(
    endpoint_hub: providerhub.Hub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    with pytest.raises(
        InvalidRequestError,
        match=r"local does not take the parameter 'tempurature'; did you mean 'temperature'\?"
        r".*; and beyond them: .*chat_template_kwargs.*top_k",
    ):
        _call(endpoint_hub, way, {"tempurature": 0.5, "top_k": 20})
    # Gravityengine takes the OpenAI parameters only.
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    with pytest.raises(InvalidRequestError, match="does not take the parameter 'top_k'"):
        endpoint_hub.create("gravityengine/gpt-3.5-turbo-16k", HI, top_k=20)
    assert server.requests == []
    assert _untouched(endpoint_hub) and _untouched(endpoint_hub, "gravityengine")


# -- nesting ----------------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_sent_and_past_it_refused(
    endpoint_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    endpoint_hub.create(MODEL, HI, metadata=nested(MAX_DEPTH))
    assert server.requests[0].json()["metadata"] == nested(MAX_DEPTH)
    with pytest.raises(InvalidRequestError, match="the parameter 'metadata' " + TOO_DEEP):
        endpoint_hub.create(MODEL, HI, metadata=nested(MAX_DEPTH + 1))
    deep_message: list[dict[str, Any]] = [
        HI[0],
        {"role": "user", "content": "Hi", "extra": nested(MAX_DEPTH + 1)},
    ]
    with pytest.raises(InvalidRequestError, match=r"messages\[1\] " + TOO_DEEP):
        endpoint_hub.create(MODEL, deep_message)
    itself: dict[str, Any] = {}
    itself["again"] = itself
    with pytest.raises(InvalidRequestError, match=r"the parameter 'metadata' .*or holds itself"):
        endpoint_hub.create(MODEL, HI, metadata=itself)
    assert len(server.requests) == 1
    assert _untouched(endpoint_hub)


def test_the_helper_called_directly_refuses_what_json_cannot_nest(server: OpenAIServer) -> None:
    # Without the hub's check: the encoder's RecursionError is the caller's mistake too.
    endpoint = server.url + "/v1/chat/completions"
    with pytest.raises(InvalidRequestError, match="the parameter 'metadata' for p cannot be sent"):
        chat_completion("p", endpoint, "m", HI, False, metadata=nested(5000))
    with pytest.raises(InvalidRequestError, match="the messages for p cannot be sent"):
        chat_completion("p", endpoint, "m", [{**HI[0], "x": nested(5000)}], False)
    with pytest.raises(InvalidRequestError, match="the parameter 'metadata' for p cannot be sent"):
        achat_completion("p", endpoint, "m", HI, True, metadata=nested(5000))
    # One name given as a string is that name, not its letters.
    with pytest.raises(InvalidRequestError, match="does not take the parameter 'top'"):
        chat_completion("p", endpoint, "m", HI, False, extra_parameters="top_k", top=1)
    assert server.requests == []


# -- a call's deadline -------------------------------------------------------------------------


@pytest.mark.slow  # waits out the deadline
def test_a_provider_the_deadline_left_no_time_for_is_not_counted(write_config: Any) -> None:
    with OpenAIServer() as slow, OpenAIServer() as spare:
        slow.default = Reply(fault="stall", after=None, delay=1.0)
        write_config(slow, spare)
        with providerhub.Hub(retries=0) as hub:
            assert [p.name for p in hub.route(MODEL)] == ["local", "b"]
            with pytest.raises(providerhub.ProviderHubError, match="total timeout"):
                hub.create(MODEL, HI, timeout=providerhub.Timeout(5, 5, total=0.3))
            assert hub.health.snapshot()["local"].failures == 1  # it was asked, and stalled
            assert spare.requests == []
            assert _untouched(hub, "b")  # never asked: not its failure


# -- a request the provider refuses as invalid ------------------------------------------------

REFUSED = (400, 413, 422)
"""The statuses that refuse the request itself: the caller's mistake, not the provider's."""

WAYS = ("create", "stream", "acreate", "client")


def _refused_by_upstream(hub: providerhub.Hub, way: str, status: int) -> None:
    with pytest.raises(providerhub.ProviderHTTPError) as caught:
        _call(hub, way, {"temperature": 99})
    assert caught.value.status_code == status and caught.value.request_refused
    assert not caught.value.transient


def test_ten_requests_the_upstream_refuses_as_invalid_leave_the_breaker_alone(
    endpoint_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    # Three failures in a row cool a provider down; ten refusals of the caller's request
    # (each way of calling, each refusing status) are no failure at all.
    calls = [(way, status) for status in REFUSED for way in WAYS][:10]
    server.script(*(Reply.error(status, "temperature must be at most 2") for _, status in calls))
    for way, status in calls:
        _refused_by_upstream(endpoint_hub, way, status)
    assert len(server.requests) == 10  # each asked once: a refusal is not retried
    assert endpoint_hub.health.cooling("local") is None
    assert "local" not in endpoint_hub.health.snapshot()  # no failure recorded
    assert [p.name for p in endpoint_hub.route(MODEL)] == ["local"]
    assert endpoint_hub.create(MODEL, HI).endswith("You said: Hi")


@pytest.mark.parametrize("status", [500, 404, 408])
def test_other_error_statuses_still_cool_the_provider_down(
    endpoint_hub: providerhub.Hub, server: OpenAIServer, status: int
) -> None:
    server.script(*[Reply.error(status)] * 3)
    for _ in range(3):
        with pytest.raises(providerhub.ProviderHTTPError) as caught:
            endpoint_hub.create(MODEL, HI)
        assert not caught.value.request_refused
    assert endpoint_hub.health.cooling("local") is not None
    assert endpoint_hub.health.snapshot()["local"].failures == 3


def test_a_probe_the_upstream_refuses_as_invalid_is_given_back(
    write_config: Any, server: OpenAIServer
) -> None:
    write_config(server)
    clock = FakeClock()
    state = providerhub.MemoryState(clock=clock)
    with providerhub.Hub(retries=0, failure_threshold=1, cooldown=30, state=state) as hub:
        server.script(Reply.error(503))
        with pytest.raises(providerhub.ProviderHTTPError, match="503"):
            hub.create(MODEL, HI)
        cooling = hub.health.snapshot()["local"]
        assert cooling.failures == 1 and cooling.open_until > 0
        clock.advance(30)
        assert hub.health.cooling("local") is None  # its cooldown is over
        server.script(Reply.error(422, "top_k must be an integer"))
        _refused_by_upstream(hub, "create", 422)  # the probe
        after = hub.health.snapshot()["local"]
        # Released, not settled: no failure counted, the cooldown not re-opened (nor
        # doubled), and not closed either, since the provider's health is still unknown.
        assert (after.failures, after.open_until, after.period) == (1, cooling.open_until, 30)
        assert not after.probing and hub.health.cooling("local") is None
        assert hub.create(MODEL, HI).endswith("Hi")  # the next call probes, and closes it
        assert hub.health.snapshot()["local"].failures == 0


def test_a_request_one_provider_refuses_falls_back_to_the_next(write_config: Any) -> None:
    with OpenAIServer() as strict, OpenAIServer() as lenient:
        strict.default = Reply.error(400, "top_k is not a parameter of this server")
        write_config(strict, lenient)
        with providerhub.Hub(retries=0) as hub:
            for way in WAYS:
                answer = _call(hub, way, {"top_k": 20})
                text = answer if isinstance(answer, str) else answer.choices[0].message.content
                assert text.endswith("You said: Hi")
            assert len(strict.requests) == len(lenient.requests) == 4
            assert [r.json()["top_k"] for r in lenient.requests] == [20] * 4
            assert _untouched(hub) and _untouched(hub, "b")
            # When every candidate refuses it, the caller's request is what to fix.
            lenient.default = Reply.error(422, "top_k must be at most 100")
            with pytest.raises(providerhub.AllProvidersFailedError) as caught:
                hub.create(MODEL, HI, top_k=1000)
            assert all(e.request_refused for e in caught.value.errors.values())
            assert _untouched(hub) and _untouched(hub, "b")
            failure = failure_for(caught.value, hub, [])  # what the gateway answers
            assert (failure.status, failure.type) == (400, "invalid_request_error")


# -- through the gateway -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream: OpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    pytest.importorskip("uvicorn")
    pytest.importorskip("aiohttp")
    tmp = tmp_path_factory.mktemp("gateway")
    path = tmp / "config.toml"
    path.write_text(config(upstream), encoding="utf-8")
    env = clean_environment(
        PROVIDERHUB_CONFIG=str(path), PROVIDERHUB_DISABLE_PLUGINS="gravityengine"
    )
    gw = Gateway(tmp, env)
    yield gw
    assert gw.stop() == 0


DEEP = "(1000 levels of objects)"
"""Stands for a 1,000-deep value in :func:`post`'s body: this process's json module would
not encode one from within pytest's stack."""


def post(gateway: Gateway, **fields: Any) -> tuple[int, dict[str, Any]]:
    text = json.dumps({"model": MODEL, "messages": HI, **fields})
    text = text.replace(json.dumps(DEEP), '{"a":' * 999 + "{}" + "}" * 999)
    status, _, data = gateway.request(
        "POST", "/v1/chat/completions", text.encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(data)


GATEWAY_HOSTILE = {
    name: ({"metadata": DEEP} if name == "metadata-1000-deep" else kwargs, says)
    for name, (kwargs, says) in HOSTILE.items()
    if name not in ("nan", "auth-crlf")  # not JSON; auth is a routing argument (next test)
}


@pytest.mark.parametrize("case", list(GATEWAY_HOSTILE))
def test_the_gateway_answers_400_for_a_hostile_field_and_asks_no_upstream(
    gateway: Gateway, upstream: OpenAIServer, case: str
) -> None:
    kwargs, says = GATEWAY_HOSTILE[case]
    before = len(upstream.requests)
    status, doc = post(gateway, **kwargs)
    assert status == 400, doc
    assert doc["error"]["type"] == "invalid_request_error"
    assert re.search(says, doc["error"]["message"])
    # The field at fault is the param: a provider option, or the value nested too deep.
    assert doc["error"]["param"] == next(iter(kwargs))
    assert len(upstream.requests) == before


def test_three_hostile_requests_leave_the_gateway_ready(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    before = len(upstream.requests)
    for fields in (
        {"structured": True},
        {"max_event_bytes": 1, "stream": True},
        {"metadata": DEEP},
        {"auth": "mine"},
        {"headers": {"Host": "internal-admin"}},
    ):
        status, _ = post(gateway, **fields)
        assert status == 400
    assert len(upstream.requests) == before
    status, _, body = gateway.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["providers"] == ["local"]
    # vLLM's and llama.cpp's parameters go through with no extra_parameters in the file.
    extra = {
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    for stream in (False, True):
        status, _, data = gateway.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": MODEL, "messages": HI, "stream": stream, **extra}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200, data
        request = upstream.requests[-1]
        assert {key: request.json()[key] for key in extra} == extra
        assert request.headers["X-Team"] == "ops"


def test_the_gateway_refuses_a_misspelt_parameter_before_sending(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    before = len(upstream.requests)
    status, doc = post(gateway, tempurature=0.5, top_k=20)
    assert status == 400, doc
    assert doc["error"]["type"] == "invalid_request_error"
    assert "'tempurature'; did you mean 'temperature'?" in doc["error"]["message"]
    assert len(upstream.requests) == before


def test_ten_requests_the_upstream_refuses_leave_the_gateway_ready(
    gateway: Gateway, upstream: OpenAIServer
) -> None:
    upstream.script(*[Reply.error(400, "temperature must be at most 2")] * 10)
    before = len(upstream.requests)
    for number in range(10):
        status, doc = post(gateway, temperature=99, stream=number % 2 == 1)
        # The client's request, refused upstream: a 400 of the client's, not a 502.
        assert status == 400, doc
        assert doc["error"]["type"] == "invalid_request_error"
    assert len(upstream.requests) == before + 10 and upstream.pending == 0
    status, _, body = gateway.request("GET", "/readyz")
    assert status == 200 and json.loads(body)["providers"] == ["local"]
    status, doc = post(gateway)
    assert status == 200, doc


def test_a_body_nested_past_what_the_parser_reads_is_a_400(gateway: Gateway) -> None:
    deep = b'{"model": "local-model", "messages": [], "metadata": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}"
    status, _, data = gateway.request(
        "POST", "/v1/chat/completions", deep, {"Content-Type": "application/json"}
    )
    assert status == 400
    assert json.loads(data)["error"]["type"] == "invalid_request_error"
    status, _, _ = gateway.request("GET", "/healthz")
    assert status == 200
