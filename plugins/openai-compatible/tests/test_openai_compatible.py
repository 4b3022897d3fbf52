"""Endpoints from a configuration file, routed by a real hub to a real local
OpenAI-compatible server: the providers they make, what reaches the server, the text that
comes back, keys, and ``providerhub chat`` as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

import providerhub
from providerhub import (
    AuthenticationError,
    InvalidRequestError,
    NoProviderError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderResponseError,
    StreamInterruptedError,
)
from providerhub.plugin import CHAT_PARAMETERS, provider_options
from providerhub.testing import FakeClock, OpenAIServer, RecordedRequest, Reply
from providerhub_openai_compatible import DEFAULT_EXTRA_PARAMETERS, EndpointProvider, load

HI = [{"role": "user", "content": "Hi"}]

WriteConfig = Callable[[str], Path]  # the conftest's fixtures
MakeHub = Callable[..., providerhub.Hub]  # (config text, **hub options)


def only_request(server: OpenAIServer) -> RecordedRequest:
    [request] = server.requests
    return request


# -- the providers a file makes ------------------------------------------------------------


def test_each_endpoint_becomes_a_provider_through_the_entry_point(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.ollama]
        url = "{server.url}/"
        path = "/api/v2/chat/completions"
        models = ["llama3.2", "qwen2.5"]
        api_key_env = "OLLAMA_API_KEY"
        stream = false
        headers = {{ "X-Team" = "search" }}

        [endpoints.plain]
        url = "https://plain.invalid:8443/base"
        models = ["plain-1"]
        """
    )
    assert hub.plugin_errors == []
    ollama = hub.providers["ollama"]
    assert ollama.plugin == "openai-compatible"
    assert ollama.distribution == "providerhub-openai-compatible"
    assert isinstance(ollama.obj, EndpointProvider)
    assert ollama.url == server.url  # the trailing slash is dropped
    assert ollama.model == ("llama3.2", "qwen2.5")
    assert ollama.supports_stream is False
    assert ollama.needs_auth is True
    assert ollama.working is True
    assert ollama.honors_timeout is True
    assert ollama.obj.path == "/api/v2/chat/completions"
    assert ollama.obj.headers == {"X-Team": "search"}
    assert ollama.obj.api_key_env == "OLLAMA_API_KEY"
    assert ollama.obj.source == os.environ["PROVIDERHUB_CONFIG"]

    plain = hub.providers["plain"]
    assert plain.url == "https://plain.invalid:8443/base"
    assert plain.obj.path == "/v1/chat/completions"  # the defaults
    assert plain.obj.endpoint == "https://plain.invalid:8443/base/v1/chat/completions"
    assert (plain.supports_stream, plain.needs_auth) == (True, False)
    assert plain.obj.headers == {}
    assert plain.obj.api_key_env is None
    # The other plugins load as usual; the endpoints are registered in the file's order.
    assert "gravityengine" in hub.providers
    assert [name for name in hub.providers if name in ("ollama", "plain")] == ["ollama", "plain"]
    assert hub.models()["plain-1"] == ["plain"]


def test_endpoints_serving_one_model_are_tried_in_the_files_order(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.second-choice]
        url = "{server.url}"
        path = "/second/chat/completions"
        models = ["shared-model"]

        [endpoints.first-choice]
        url = "{server.url}"
        path = "/first/chat/completions"
        models = ["shared-model"]
        """
    )
    assert [p.name for p in hub.route("shared-model")] == ["second-choice", "first-choice"]
    server.script(Reply.error(503, "busy"), Reply.text("from the other"))
    assert hub.create("shared-model", HI) == "from the other"
    assert [r.path for r in server.requests] == [
        "/second/chat/completions",
        "/first/chat/completions",
    ]


# -- text ----------------------------------------------------------------------------------


def test_stream_yields_each_delta_as_the_server_sends_it(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("Hel", "lo", ", ", "wörld 😀"))
    stream = hub.create("local-llama", HI, stream=True)
    assert list(stream) == ["Hel", "lo", ", ", "wörld 😀"]
    assert stream.provider == "local"
    request = only_request(server)
    assert request.path == "/v1/chat/completions"
    assert request.headers["Accept"] == "text/event-stream"
    assert request.json() == {"model": "local-llama", "messages": HI, "stream": True}


def test_stream_arrives_piece_by_piece(hub: providerhub.Hub, server: OpenAIServer) -> None:
    release = threading.Event()
    server.script(Reply.text("first", " second", wait=release, after=1))
    stream = hub.create("local-qwen", HI, stream=True, timeout=10)
    assert next(stream) == "first"  # while the server still holds the rest
    release.set()
    assert list(stream) == [" second"]


def test_non_stream_returns_the_whole_message(hub: providerhub.Hub, server: OpenAIServer) -> None:
    server.script(Reply.text("Hello", " there"))
    assert hub.create("local-qwen", HI, temperature=0.2, max_tokens=5) == "Hello there"
    request = only_request(server)
    assert request.headers["Accept"] == "application/json"
    assert request.json() == {
        "model": "local-qwen",
        "messages": HI,
        "temperature": 0.2,
        "max_tokens": 5,
    }
    assert "Authorization" not in request.headers


def test_an_unknown_parameter_is_refused_before_sending(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    with pytest.raises(InvalidRequestError, match="'temprature'; did you mean 'temperature'"):
        hub.create("local-llama", HI, temprature=0.2)
    assert server.requests == []


def test_custom_path_and_headers_reach_the_server(make_hub: MakeHub, server: OpenAIServer) -> None:
    hub = make_hub(
        f"""
        [endpoints.custom]
        url = "{server.url}/proxy"
        path = "/openai/deployments/chat-1/chat/completions"
        models = ["custom-model"]
        headers = {{ "X-Team" = "search", "X-Trace-Id" = "abc 123" }}
        """
    )
    assert list(hub.create("custom-model", HI, stream=True)) != []
    request = only_request(server)
    assert request.path == "/proxy/openai/deployments/chat-1/chat/completions"
    assert request.headers["X-Team"] == "search"
    assert request.headers["X-Trace-Id"] == "abc 123"
    assert request.headers["Content-Type"] == "application/json"


def test_the_headers_are_the_files_and_a_call_cannot_change_them(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.custom]
        url = "{server.url}"
        models = ["custom-model"]
        headers = {{ "X-Team" = "search", "X-Tier" = "free" }}
        """
    )
    with pytest.raises(InvalidRequestError, match="'headers' is not a request parameter"):
        hub.create("custom-model", HI, headers={"X-Tier": "paid", "X-Call": "1"})
    assert server.requests == []
    hub.create("custom-model", HI)
    headers = only_request(server).headers
    assert (headers["X-Team"], headers["X-Tier"]) == ("search", "free")
    assert "X-Call" not in headers
    assert hub.providers["custom"].obj.headers == {"X-Team": "search", "X-Tier": "free"}


def test_vllm_and_llama_cpp_parameters_reach_the_server_with_no_configuration(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.vllm]
        url = "{server.url}"
        models = ["qwen"]
        """
    )
    template = {"enable_thinking": False, "nested": [1, {"a": None}]}
    extra = {
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "chat_template_kwargs": template,
        "guided_choice": ["yes", "no"],
        "mirostat_tau": 5.0,
    }
    hub.create("qwen", HI, **extra)
    body = only_request(server).json()
    assert {key: body[key] for key in extra} == extra
    assert hub.providers["vllm"].obj.extra_parameters == DEFAULT_EXTRA_PARAMETERS
    with pytest.raises(
        InvalidRequestError,
        match=r"'priority'.*; and beyond them: .*chat_template_kwargs.*typical_p",
    ):
        hub.create("qwen", HI, priority=1)
    assert len(server.requests) == 1


def test_the_files_extra_parameters_add_to_the_default(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.vllm]
        url = "{server.url}"
        models = ["qwen"]
        extra_parameters = ["priority", "top_k"]
        """
    )
    hub.create("qwen", HI, priority=1, top_k=20, min_p=0.05)
    body = only_request(server).json()
    assert (body["priority"], body["top_k"], body["min_p"]) == (1, 20, 0.05)
    provider = hub.providers["vllm"].obj
    assert provider.extra_parameters == DEFAULT_EXTRA_PARAMETERS | {"priority"}
    with pytest.raises(InvalidRequestError, match=r"'priorty'; did you mean 'priority'"):
        hub.create("qwen", HI, priorty=2)
    assert len(server.requests) == 1


def test_the_default_extra_parameters_are_never_options_nor_openai_parameters() -> None:
    assert not DEFAULT_EXTRA_PARAMETERS & provider_options()
    assert not DEFAULT_EXTRA_PARAMETERS & CHAT_PARAMETERS
    assert not DEFAULT_EXTRA_PARAMETERS & {"model", "messages", "stream", "provider", "retries"}
    assert {"top_k", "min_p", "repetition_penalty", "chat_template_kwargs"} <= (
        DEFAULT_EXTRA_PARAMETERS
    )


def test_the_url_variable_overrides_the_files_url(
    make_hub: MakeHub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(
        """
        [endpoints.moved]
        url = "http://127.0.0.1:9"
        path = "/moved/chat/completions"
        models = ["moved-model"]
        """
    )
    monkeypatch.setenv("PROVIDERHUB_MOVED_URL", server.url)
    assert hub.providers["moved"].url == server.url
    server.script(Reply.text("here"))
    assert hub.create("moved-model", HI) == "here"
    assert only_request(server).path == "/moved/chat/completions"


def test_a_non_streaming_endpoint_is_never_asked_to_stream(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.whole]
        url = "{server.url}"
        models = ["whole-model"]
        stream = false
        """
    )
    with pytest.raises(NoProviderError) as info:
        hub.create("whole-model", HI, stream=True)
    assert "cannot stream" in info.value.reasons["whole"]
    server.script(Reply.text("all", " of it"))
    assert hub.create("whole-model", HI) == "all of it"
    # Called directly with stream=True, it still asks for a whole answer.
    server.script(Reply.text("in one"))
    provider = hub.providers["whole"].obj
    assert list(provider._create_completion("whole-model", HI, True)) == ["in one"]
    assert [("stream" in r.json()) for r in server.requests] == [False, False]


# -- keys ----------------------------------------------------------------------------------


def key_config(server: OpenAIServer, variable: str = "LOCKED_SERVICE_KEY") -> str:
    return f"""
        [endpoints.locked]
        url = "{server.url}"
        models = ["locked-model"]
        api_key_env = "{variable}"
        """


def test_bearer_from_auth_or_the_providerhub_variable(
    make_hub: MakeHub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(key_config(server))
    hub.create("locked-model", HI, auth={"locked": "sk-from-auth"})
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-from-auth"
    monkeypatch.setenv("PROVIDERHUB_LOCKED_API_KEY", "sk-from-providerhub-variable")
    monkeypatch.setenv("LOCKED_SERVICE_KEY", "sk-from-api-key-env")
    hub.create("locked-model", HI)
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-from-providerhub-variable"


def test_bearer_from_the_api_key_env_variable(
    write_config: WriteConfig, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Called as the router calls it when it passes no auth.
    [endpoint] = load(write_config(key_config(server)))
    provider = EndpointProvider(endpoint)
    monkeypatch.setenv("LOCKED_SERVICE_KEY", "sk-from-api-key-env")
    assert provider.credential() == "sk-from-api-key-env"
    server.script(Reply.text("a", "b"))
    assert list(provider._create_completion("locked-model", HI, True)) == ["a", "b"]
    assert only_request(server).headers["Authorization"] == "Bearer sk-from-api-key-env"


def test_without_a_key_nothing_is_sent_and_the_variable_is_named(
    write_config: WriteConfig, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    [endpoint] = load(write_config(key_config(server)))
    provider = EndpointProvider(endpoint)
    monkeypatch.setenv("LOCKED_SERVICE_KEY", "")  # empty counts as unset
    with pytest.raises(InvalidRequestError, match=r"locked needs a key: set LOCKED_SERVICE_KEY "):
        list(provider._create_completion("locked-model", HI, False))
    assert server.requests == []


def test_a_key_needing_endpoint_without_its_key_is_left_out(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(key_config(server))
    assert hub.route("locked-model") == []
    with pytest.raises(NoProviderError) as info:
        hub.create("locked-model", HI)
    assert "needs a credential" in info.value.reasons["locked"]
    assert server.requests == []


def test_the_exclusion_reason_names_the_api_key_env_variable(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(key_config(server, "OLLAMA_API_KEY"))
    assert hub.providers["locked"].api_key_variable == "OLLAMA_API_KEY"
    with pytest.raises(NoProviderError) as info:
        hub.create("locked-model", HI)
    assert "set OLLAMA_API_KEY " in info.value.reasons["locked"]


def test_the_router_uses_the_api_key_env_variable(
    make_hub: MakeHub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub(key_config(server))
    monkeypatch.setenv("LOCKED_SERVICE_KEY", "sk-from-api-key-env")
    assert [p.name for p in hub.route("locked-model")] == ["locked"]
    assert hub.create("locked-model", HI) != ""
    assert only_request(server).headers["Authorization"] == "Bearer sk-from-api-key-env"


def test_a_key_echoed_by_the_server_never_reaches_the_message(
    write_config: WriteConfig, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-configured-secret-4711"
    [endpoint] = load(write_config(key_config(server)))
    monkeypatch.setenv("LOCKED_SERVICE_KEY", secret)

    def echo(request: RecordedRequest) -> str:
        return f"denied for {request.headers.get('Authorization')}, key {secret}"

    server.script(Reply(status=401, body=echo, content_type="text/plain"))
    with pytest.raises(AuthenticationError) as info:
        list(EndpointProvider(endpoint)._create_completion("locked-model", HI, False))
    assert only_request(server).headers["Authorization"] == f"Bearer {secret}"
    assert secret not in str(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    ("config", "environment", "says"),
    [
        # The variable the file names, not PROVIDERHUB_LOCKED_API_KEY.
        (key_config, {"OLLAMA_API_KEY": "sk-refused"}, "OLLAMA_API_KEY"),
        # PROVIDERHUB_<NAME>_API_KEY comes first: it holds the refused key, and setting
        # the file's variable would change nothing.
        (
            key_config,
            {"PROVIDERHUB_LOCKED_API_KEY": "sk-refused", "OLLAMA_API_KEY": "sk-other"},
            "PROVIDERHUB_LOCKED_API_KEY",
        ),
        # Without api_key_env, the variable every providerhub provider reads.
        (None, {"PROVIDERHUB_LOCKED_API_KEY": "sk-refused"}, "PROVIDERHUB_LOCKED_API_KEY"),
    ],
)
def test_a_refused_key_names_the_variable_to_set(
    make_hub: MakeHub,
    server: OpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    config: Callable[[OpenAIServer, str], str] | None,
    environment: dict[str, str],
    says: str,
) -> None:
    if config is None:
        text = f'[endpoints.locked]\nurl = "{server.url}"\nmodels = ["locked-model"]\n'
    else:
        text = config(server, "OLLAMA_API_KEY")
    hub = make_hub(text)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    server.script(Reply.error(401, "invalid api key"))
    with pytest.raises(AuthenticationError) as info:
        hub.create("locked-model", HI)
    assert info.value.provider == "locked"
    assert f"set {says} or pass auth={{'locked': ...}}" in str(info.value)
    others = {"OLLAMA_API_KEY", "PROVIDERHUB_LOCKED_API_KEY"} - {says}
    assert not any(other in str(info.value) for other in others)
    assert only_request(server).headers["Authorization"] == "Bearer sk-refused"


# -- failures: the shared helper's, naming the endpoint ------------------------------------


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (Reply.error(401, "bad key"), AuthenticationError, "HTTP 401"),
        (Reply.error(503, "overloaded"), ProviderHTTPError, "overloaded"),
        (Reply.html(), ProviderResponseError, "HTML page"),
        (Reply.text("a", "b", fault="cut", after=0), StreamInterruptedError, "[DONE]"),
    ],
)
def test_failures_are_typed_errors_naming_the_endpoint(
    hub: providerhub.Hub,
    server: OpenAIServer,
    reply: Reply,
    error: type[Exception],
    says: str,
) -> None:
    server.script(reply)
    with pytest.raises(providerhub.ProviderError) as info:
        list(hub.create("local-llama", HI, stream=True, timeout=5))
    assert type(info.value) is error
    assert info.value.provider == "local"
    assert str(info.value).startswith("local: ")
    assert says in str(info.value)


def test_an_unreachable_endpoint_is_a_connection_error_naming_it(make_hub: MakeHub) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hub = make_hub(
        f"""
        [endpoints.gone]
        url = "http://127.0.0.1:{port}"
        models = ["gone-model"]
        """
    )
    with pytest.raises(ProviderConnectionError) as info:
        hub.create("gone-model", HI)
    assert info.value.provider == "gone"
    assert f"127.0.0.1:{port}/v1/chat/completions" in str(info.value)


# -- the command line ----------------------------------------------------------------------


def providerhub_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVIDERHUB_")}
    env["PROVIDERHUB_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "providerhub", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


@pytest.mark.slow  # runs the command line in a subprocess
def test_providerhub_chat_streams_from_the_configured_endpoint(
    write_config: WriteConfig, server: OpenAIServer
) -> None:
    config = write_config(
        f"""
        [endpoints.ollama]
        url = "{server.url}"
        models = ["llama3.2"]
        """
    )
    server.script(Reply.text("Streamed", " from", " the", " endpoint"))
    result = providerhub_cli("chat", "-m", "llama3.2", "Say hello", config=config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Streamed from the endpoint\n"
    request = only_request(server)
    body: dict[str, Any] = request.json()
    assert body["stream"] is True
    assert body["model"] == "llama3.2"
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]


@pytest.mark.slow  # runs the command line in a subprocess
def test_providerhub_providers_reports_a_bad_entry_and_lists_the_rest(
    write_config: WriteConfig,
) -> None:
    config = write_config(
        """
        [endpoints.ollama]
        url = "http://localhost:11434"
        models = "llama3"

        [endpoints.vllm]
        url = "http://localhost:8000"
        models = ["qwen2.5"]
        """
    )
    said = (
        f"{config}: [endpoints.ollama] models: must be a non-empty list of model names, "
        'not "llama3"'
    )
    result = providerhub_cli("providers", "--json", config=config)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    names = [p["name"] for p in doc["providers"]]
    assert "gravityengine" in names
    assert "vllm" in names
    assert "ollama" not in names
    assert doc["plugin_errors"] == [
        {
            "plugin": "openai-compatible",
            "distribution": "providerhub-openai-compatible",
            "error": said,
        }
    ]
    # As the documentation shows it: the good entry listed, the bad one on the last line.
    result = providerhub_cli("providers", config=config)
    assert result.returncode == 0, result.stderr
    [vllm] = [line for line in result.stdout.splitlines() if line.startswith("vllm  ")]
    assert vllm.startswith("vllm  [providerhub-openai-compatible ")
    assert vllm.endswith("]  working, streams, no auth")
    assert result.stdout.endswith(
        f"error: plugin 'openai-compatible' (from providerhub-openai-compatible): {said}\n"
    )


# -- rate limits ---------------------------------------------------------------------------


def test_an_endpoint_at_its_rpm_is_skipped_for_the_next_one(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.small]
        url = "{server.url}"
        path = "/small/chat/completions"
        models = ["shared-model"]
        rpm = 2

        [endpoints.big]
        url = "{server.url}"
        path = "/big/chat/completions"
        models = ["shared-model"]
        """
    )
    for _ in range(4):
        assert "You said: Hi" in hub.create("shared-model", HI)
    # The third and fourth calls found small at its limit and went to big, sending nothing
    # to small: a provider at its limit is skipped like one cooling down.
    assert [r.path for r in server.requests] == [
        "/small/chat/completions",
        "/small/chat/completions",
        "/big/chat/completions",
        "/big/chat/completions",
    ]
    assert hub.health.cooling("small") is None  # a limit is not a failure


def test_every_endpoint_at_its_rpm_is_a_rate_limit_error_with_the_wait(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    hub = make_hub(
        f"""
        [endpoints.a]
        url = "{server.url}"
        models = ["m"]
        rpm = 1

        [endpoints.b]
        url = "{server.url}"
        models = ["m"]
        rpm = 1
        """,
        state=providerhub.MemoryState(clock=FakeClock()),  # the minute stands still
    )
    assert hub.create("m", HI) and hub.create("m", HI)
    with pytest.raises(providerhub.RateLimitError) as caught:
        "".join(hub.create("m", HI, stream=True))  # a stream is refused the same way
    error = caught.value
    assert error.provider in ("a", "b")
    assert error.retry_after == 60
    assert "at its rate limit (rpm=1)" in str(error)
    assert "so is every other provider of the model" in str(error)
    assert len(server.requests) == 2  # nothing sent past the limits


def test_tpm_counts_the_usage_an_answer_reports(make_hub: MakeHub, server: OpenAIServer) -> None:
    hub = make_hub(
        f"""
        [endpoints.metered]
        url = "{server.url}"
        models = ["m"]
        tpm = 100
        """,
        state=providerhub.MemoryState(clock=FakeClock()),  # the minute stands still
    )
    usage = {"prompt_tokens": 70, "completion_tokens": 40, "total_tokens": 110}
    server.script(Reply.text("long answer", usage=usage))
    client = providerhub.Client(hub)
    answer = client.chat.completions.create(model="m", messages=HI)
    assert answer.usage is not None and answer.usage.total_tokens == 110
    # 110 tokens reported in this minute: past tpm = 100, so the next call waits.
    with pytest.raises(providerhub.RateLimitError, match=r"tpm=100") as caught:
        hub.create("m", HI)
    assert caught.value.retry_after == 60
    assert len(server.requests) == 1


# -- embeddings ----------------------------------------------------------------------------


def test_embedding_models_are_served_at_v1_embeddings(
    make_hub: MakeHub, server: OpenAIServer
) -> None:
    from providerhub.testing import vector_for

    hub = make_hub(
        f"""
        [endpoints.local]
        url = "{server.url}"
        models = ["llama3.2"]
        embedding_models = ["nomic-embed-text"]

        [endpoints.tei]
        url = "{server.url}"
        embedding_models = ["bge-small"]
        """
    )
    assert hub.plugin_errors == []
    assert hub.providers["local"].embedding_models == ("nomic-embed-text",)
    assert hub.providers["tei"].model == ()
    assert hub.embedding_models() == {"bge-small": ["tei"], "nomic-embed-text": ["local"]}
    client = providerhub.Client(hub)
    r = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])
    assert r.provider == "local"
    assert r.data[1].embedding == vector_for("b", "nomic-embed-text")
    assert client.embeddings.create(model="bge-small", input="c").provider == "tei"
    assert [q.path for q in server.requests] == ["/v1/embeddings", "/v1/embeddings"]
    assert server.requests[0].json() == {"model": "nomic-embed-text", "input": ["a", "b"]}


def test_embedding_models_are_checked(make_hub: MakeHub) -> None:
    hub = make_hub(
        """
        [endpoints.bad]
        url = "http://127.0.0.1:9/v1"
        path = "/chat/completions"
        embedding_models = ["e", "e"]

        [endpoints.doubled]
        url = "http://127.0.0.1:9/v1"
        path = "/chat/completions"
        embedding_models = ["e"]
        """
    )
    errors = [f.error for f in hub.plugin_errors if f.name == "openai-compatible"]
    assert any("[endpoints.bad] embedding_models" in e and "twice" in e for e in errors)
    assert any("[endpoints.doubled] url" in e and "/v1/v1/embeddings" in e for e in errors)
