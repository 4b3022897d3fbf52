"""Declared HTTP providers (``providerhub.plugin.HTTPProvider``) through the public API,
against a real local OpenAI-compatible server: sync, asyncio and streamed answers,
retries, typed errors, settings from the environment, the conformance check, discovery
through real entry points, and declarations refused field by field."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from urllib3.util import Retry

import providerhub
from providerhub import (
    AuthenticationError,
    InvalidRequestError,
    NoProviderError,
    PluginError,
    ProviderResponseError,
    RateLimitError,
    StreamInterruptedError,
)
from providerhub.plugin import Credential, HTTPProvider
from providerhub.testing import OpenAIServer, RecordedRequest, Reply, check_provider

HI = [{"role": "user", "content": "Hi"}]
FAST = Retry(total=2, backoff_factor=0, allowed_methods=None)


def acme(url: str = "https://acme.invalid", **fields: Any) -> HTTPProvider:
    """A declaration of the made-up service Acme; ``fields`` change or add fields."""
    declared: dict[str, Any] = {
        "name": "acme",
        "url": url,
        "models": ["acme-large", "acme-small"],
        "capabilities": ["stream", "tools"],
        **fields,
    }
    return HTTPProvider(**declared)


@pytest.fixture
def declared_hub(server: OpenAIServer) -> Iterator[providerhub.Hub]:
    """A hub holding only Acme, declared at the local server's url."""
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(acme(server.url, defaults={"temperature": 0.2}))
        yield hub


# -- answers -------------------------------------------------------------------------------


def test_a_declaration_answers_whole_and_streamed(
    declared_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("Hello", " there"), Reply.text("Hel", "lo"))
    assert declared_hub.create("acme-large", HI) == "Hello there"
    assert list(declared_hub.create("acme-small", HI, stream=True)) == ["Hel", "lo"]
    whole, streamed = server.requests
    assert whole.path == "/v1/chat/completions"  # the openai-chat codec's path
    assert whole.json() == {"model": "acme-large", "temperature": 0.2, "messages": HI}
    assert streamed.json()["stream"] is True
    assert streamed.headers["Accept"] == "text/event-stream"
    assert "Authorization" not in whole.headers  # no credential declared, none at hand


def test_a_declaration_answers_on_the_event_loop(
    declared_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    provider = declared_hub.providers["acme"]
    assert provider.native  # asyncio-native: no worker thread
    server.script(Reply.text("Hello"), Reply.text("a", "b"))

    async def main() -> tuple[str, list[str]]:
        text = await declared_hub.acreate("acme-large", HI)
        pieces = [piece async for piece in declared_hub.acreate("acme-large", HI, stream=True)]
        return text, pieces

    assert asyncio.run(main()) == ("Hello", ["a", "b"])
    assert [r.json().get("stream") for r in server.requests] == [None, True]


def test_a_declaration_passes_tool_calls_on(
    declared_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    call = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}
    server.script(Reply.tools(call))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    client = providerhub.Client(declared_hub)
    answer = client.chat.completions.create(model="acme-large", messages=HI, tools=tools)
    [made] = answer.choices[0].message.tool_calls or []
    assert (made.function.name, made.id) == ("get_weather", "call_1")
    assert server.requests[0].json()["tools"] == tools


def test_a_503_is_retried_and_then_answered(server: OpenAIServer) -> None:
    with providerhub.Hub(load_entrypoints=False, retries=FAST) as hub:
        hub.register(acme(server.url))
        server.script(Reply.error(503, "busy"), Reply.text("fine"))
        assert hub.create("acme-large", HI) == "fine"
    assert len(server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (Reply.error(401, "bad key"), AuthenticationError, "PROVIDERHUB_ACME_API_KEY"),
        (Reply.error(429, "slow down", retry_after="7"), RateLimitError, "retry after 7 s"),
        (Reply.html(), ProviderResponseError, "HTML page"),
    ],
)
def test_each_failure_is_a_typed_error_naming_the_provider(
    declared_hub: providerhub.Hub,
    server: OpenAIServer,
    reply: Reply,
    error: type[Exception],
    says: str,
    stream: bool,
) -> None:
    server.script(reply)
    with pytest.raises(providerhub.ProviderError) as info:
        if stream:
            list(declared_hub.create("acme-large", HI, stream=True))
        else:
            declared_hub.create("acme-large", HI)
    assert type(info.value) is error
    assert info.value.provider == "acme"
    assert says in str(info.value)


def test_a_stream_cut_short_raises_after_the_text_given(
    declared_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("a", "b", "c", fault="cut", after=2))
    pieces: list[str] = []
    with pytest.raises(StreamInterruptedError):
        for piece in declared_hub.create("acme-large", HI, stream=True):
            pieces.append(piece)
    assert pieces == ["a", "b"]


def test_a_declaration_without_stream_is_never_asked_to_stream(server: OpenAIServer) -> None:
    whole = acme(server.url, capabilities=[])
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(whole)
        with pytest.raises(NoProviderError) as info:
            hub.create("acme-large", HI, stream=True)
        assert "cannot stream" in info.value.reasons["acme"]
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        with pytest.raises(NoProviderError):
            hub.create("acme-large", HI, tools=tools)
    server.script(Reply.text("in one"))
    assert list(whole._create_completion("acme-large", HI, True)) == ["in one"]
    assert "stream" not in server.requests[0].json()


def test_capabilities_and_limits_are_the_contracts_fields() -> None:
    provider = acme(capabilities=["stream", "vision", "json_schema"], rpm=60, tpm=1000)
    with providerhub.Hub(load_entrypoints=False) as hub:
        registered = hub.register(provider)
    assert registered.capabilities == {
        "supports_stream": True,
        "needs_auth": False,
        "supports_tools": False,
        "supports_vision": True,
        "supports_audio": False,
        "supports_json_schema": True,
    }
    assert (registered.limits.rpm, registered.limits.tpm) == (60, 1000)
    assert registered.params == (
        "providerhub.providers.acme supports: (model: str, messages: list, stream: bool, **kwargs)"
    )
    assert registered.honors_timeout and registered.yields_pieces


# -- settings from the environment ---------------------------------------------------------


def test_the_environment_overrides_the_url_and_gives_the_key(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_ACME_URL", server.url)
    monkeypatch.setenv("PROVIDERHUB_ACME_API_KEY", "sk-from-the-environment")
    provider = acme("https://acme.invalid", path="/api/chat/completions")
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(provider)
        assert hub.providers["acme"].url == server.url
        hub.create("acme-large", HI)
    [request] = server.requests
    assert request.path == "/api/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-from-the-environment"


def test_an_overriding_url_with_a_password_is_not_shown_in_the_repr(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "hunter2-url-secret"
    monkeypatch.setenv("PROVIDERHUB_ACME_URL", server.url.replace("//", f"//user:{password}@"))
    provider = acme()
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(provider)
        hub.create("acme-large", HI)
    assert server.requests[0].path == "/v1/chat/completions"
    assert password not in repr(provider)
    assert "acme" in repr(provider)


def test_a_required_key_keeps_the_provider_out_until_one_is_set(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = acme(server.url, credential=Credential(env="ACME_SERVICE_KEY"))
    assert provider.needs_auth
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(provider)
        with pytest.raises(NoProviderError) as info:
            hub.create("acme-large", HI)
        assert "ACME_SERVICE_KEY" in info.value.reasons["acme"]
        monkeypatch.setenv("ACME_SERVICE_KEY", "sk-from-its-own-variable")
        hub.create("acme-large", HI)
        hub.create("acme-large", HI, auth={"acme": "sk-from-auth"})
    assert [r.headers["Authorization"] for r in server.requests] == [
        "Bearer sk-from-its-own-variable",
        "Bearer sk-from-auth",
    ]
    monkeypatch.delenv("ACME_SERVICE_KEY")
    with pytest.raises(InvalidRequestError, match="acme needs a key: set ACME_SERVICE_KEY or "):
        list(provider._create_completion("acme-large", HI, False))
    assert len(server.requests) == 2  # nothing sent without the key


def test_a_key_in_another_header_is_sent_alone_and_never_shown(
    server: OpenAIServer,
) -> None:
    secret = "acme-secret-key-4711"
    provider = acme(server.url, credential=Credential(header="x-api-key", scheme=""))

    def echo(request: RecordedRequest) -> str:
        return f"denied for {request.headers.get('x-api-key')}"

    server.script(Reply.text("ok"), Reply(status=401, body=echo, content_type="text/plain"))
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register(provider)
        hub.create("acme-large", HI, auth={"acme": secret})
        with pytest.raises(AuthenticationError) as info:
            hub.create("acme-large", HI, auth={"acme": secret})
    assert server.requests[0].headers["x-api-key"] == secret
    assert "Authorization" not in server.requests[0].headers
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert "***" in str(info.value)


# -- the conformance check -----------------------------------------------------------------


def test_a_declaration_passes_the_conformance_check(server: OpenAIServer) -> None:
    report = check_provider(acme(credential=Credential()), server=server)
    assert report.openai_compatible
    assert {"contract", "params", "non-stream", "stream", "tools", "credentials"} <= set(
        report.passed
    )
    assert report.name == "acme"


# -- discovery through real entry points ---------------------------------------------------

DECLARED_PLUGIN = """
from providerhub.plugin import HTTPProvider, hookimpl

provider = HTTPProvider(
    name="declared",
    url="https://declared.invalid",
    models=["declared-model"],
)


@hookimpl
def register_providers(register):
    register(provider)
"""


def test_a_declared_plugin_is_found_through_its_entry_point(
    make_dist: Callable[..., Any], server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-declared",
        modules={"phtest_declared": DECLARED_PLUGIN},
        entry_points={"declared-plugin": "phtest_declared", "bare": "phtest_declared:provider"},
    )
    monkeypatch.setenv("PROVIDERHUB_DECLARED_URL", server.url)
    with providerhub.Hub() as hub:
        provider = hub.providers["declared"]
        assert (provider.plugin, provider.distribution) == ("declared-plugin", "phtest-declared")
        assert hub.create("declared-model", HI) != ""
        # An entry point naming the declaration itself registers it under its own name.
        assert hub.providers["bare"].distribution == "phtest-declared"
    assert server.requests[0].json()["model"] == "declared-model"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ('url="ftp://declared.invalid", models=["m"]', "url must be an http:// or https://"),
        ('url="https://declared.invalid", models=[]', "models must name at least one model"),
        (
            'url="https://declared.invalid", models=["m"], codec="soap"',
            # A prefix of the list, which grows with each codec.
            "codec is 'soap', which is not a known codec (the codecs are: openai-chat, ",
        ),
    ],
)
def test_a_bad_declaration_fails_when_its_plugin_loads(
    make_dist: Callable[..., Any], fields: str, says: str
) -> None:
    make_dist(
        "phtest-baddecl",
        modules={
            "phtest_baddecl": (
                "from providerhub.plugin import HTTPProvider\n"
                f'provider = HTTPProvider(name="baddecl", {fields})\n'
            ),
            "phtest_gooddecl": DECLARED_PLUGIN,
        },
        entry_points={"bad": "phtest_baddecl:provider", "good": "phtest_gooddecl"},
    )
    with providerhub.Hub() as hub:
        [failure] = [f for f in hub.plugin_errors if f.distribution == "phtest-baddecl"]
        assert "declared" in hub.providers  # the other plugins load
    assert failure.name == "bad"
    assert "PluginError" in failure.error
    assert f"HTTPProvider 'baddecl': {says}" in failure.error


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"name": "acme corp"}, "name", "must be a provider name"),
        ({"url": "https://user:pw@acme.invalid"}, "url", "must not hold a user name"),
        ({"url": "https://acme.invalid/v1"}, "url", "drop /v1 from url"),
        ({"path": "v1/chat"}, "path", 'must be a string starting with "/"'),
        ({"models": "acme-large"}, "models", "must be a list of model names"),
        ({"models": ["a", "a"]}, "models", "lists 'a' twice"),
        ({"capabilities": ["tool"]}, "capabilities", "did you mean 'tools'?"),
        ({"credential": Credential(env="sk-secret-123")}, "credential.env", "not shown"),
        ({"credential": Credential(header="Content-Type")}, "credential.header", "cannot be"),
        ({"credential": Credential(scheme="Two words")}, "credential.scheme", "one word"),
        ({"working": "yes"}, "working", "must be True or False"),
        ({"rpm": 0}, "rpm", "at least 1"),
        ({"tpm": True}, "tpm", "at least 1"),
        ({"defaults": {"colour": "red"}}, "defaults", "holds 'colour'"),
        ({"extra_parameters": ["timeout"]}, "extra_parameters", "providerhub sets itself"),
        ({"headers": {"Authorization": "Bearer x"}}, "headers", "through credential="),
        ({"headers": {"X-Team": "a\r\nb"}}, "headers", "no line break"),
    ],
)
def test_each_field_is_checked_when_declared(fields: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(PluginError) as info:
        acme(**fields)
    assert str(info.value).startswith(f"HTTPProvider {fields.get('name', 'acme')!r}: {field} ")
    assert says in str(info.value)
    assert info.value.setting == field
    assert "sk-secret-123" not in str(info.value)
