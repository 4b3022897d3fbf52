"""The plugin authoring kit: ``check_provider`` against real providers and real local
servers, and the pytest fixtures, proven in fresh pytest runs through their entry point."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

import providerhub
import providerhub_gravityengine
from providerhub import ProviderHTTPError, ProviderResponseError
from providerhub.testing import (
    SERVER_CHUNKS,
    OpenAIServer,
    ProviderCheckError,
    ProviderCheckReport,
    Reply,
    check_provider,
)
from providerhub.testing.pytest_plugin import RegisterProvider

from ._internals import chat_completion, settings

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
OPENAI_CHECKS = [
    "contract",
    "params",
    "non-stream",
    "stream",
    "errors: HTTP 503",
    "errors: an HTML page",
    "errors: a stream cut short",
    "credentials",
    "logs",
]
TOOL_CHECKS = [*OPENAI_CHECKS[:4], "tools", "tools (stream)", *OPENAI_CHECKS[4:]]
"""The checks of a provider that declares supports_tools."""
NOT_TYPED = "not a providerhub.ProviderError"


def assert_problems(err: ProviderCheckError, expected: Sequence[str]) -> None:
    """``err`` lists exactly the problems ``expected``, each line starting as given, and its
    message holds one line per problem."""
    assert len(err.problems) == len(expected), err.problems
    for line, start in zip(err.problems, expected):
        assert line.startswith(start), f"{line!r} does not start with {start!r}"
    message_lines = str(err).splitlines()
    assert [f"  - {p}" for p in err.problems] == message_lines[1 : 1 + len(err.problems)]


# -- providers used by the tests ------------------------------------------------------------


class Echo:
    """A well-behaved provider of another protocol: in memory, yields words of the last
    message, raises a typed error naming itself when given a credential it rejects."""

    name = "echo"
    url = "http://echo.invalid"
    model = ["echo-model"]
    supports_stream = True
    needs_auth = False

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        if kwargs.get("auth"):
            raise providerhub.AuthenticationError(self.name, "credential rejected", status_code=401)
        for word in messages[-1]["content"].split(" "):
            yield word + " "


class Broken:
    """Everything a plugin can get wrong at once: wrong field types, a non-stream call that
    raises KeyError, a stream that yields bytes, an error quoting the credential."""

    url = "http://broken.invalid"
    model = "broken-model"  # should be a list
    supports_stream = "yes"  # should be a bool
    needs_auth = False

    def __init__(self) -> None:
        self.credentials: list[str] = []

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        if kwargs.get("auth"):
            self.credentials.append(kwargs["auth"])
            raise RuntimeError(f"login failed for key {kwargs['auth']}")
        if stream:
            yield b"bytes, not text"
        else:
            raise KeyError("choices")


class QuotesErrorBodies:
    """OpenAI-compatible, through requests directly: its HTTP errors are typed and name it,
    but quote the service's error body, which can echo the request's credential."""

    name = "quoter"
    url = "http://quoter.invalid"
    model = ["quoter-model"]
    supports_stream = False
    needs_auth = True
    honors_timeout = True

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        response = requests.post(
            self.url + "/v1/chat/completions",
            json={"model": model, "messages": messages},
            headers={"Authorization": f"Bearer {kwargs['auth']}"},
            timeout=kwargs["timeout"],
        )
        if response.status_code >= 400:
            raise ProviderHTTPError(
                self.name,
                f"HTTP {response.status_code}: {response.text}",
                status_code=response.status_code,
            )
        if response.headers.get("Content-Type", "").startswith("text/html"):
            raise ProviderResponseError(self.name, "answered with an HTML page")
        yield response.json()["choices"][0]["message"]["content"]


class Compatible:
    """An OpenAI-compatible provider object built on the shared helper, with knobs to break
    it in one way at a time."""

    url = "http://compatible.invalid"
    model = ["compatible-model"]
    supports_stream = True
    needs_auth = False
    honors_timeout = True

    def __init__(
        self,
        name: str = "compatible",
        *,
        error_name: str | None = None,
        swallow_errors: bool = False,
        buffer_stream: bool = False,
        log_credential: bool = False,
        fixed_url: str | None = None,
    ) -> None:
        self.name = name
        self.error_name = error_name or name
        self.swallow_errors = swallow_errors
        self.buffer_stream = buffer_stream
        self.log_credential = log_credential
        self.fixed_url = fixed_url

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        if self.log_credential and kwargs.get("auth"):
            logging.getLogger("phtest.compatible").debug("calling with %s", kwargs["auth"])
        endpoint = (self.fixed_url or self.url) + "/v1/chat/completions"
        pieces = chat_completion(self.error_name, endpoint, model, messages, stream, **kwargs)
        try:
            if self.buffer_stream:
                yield "".join(pieces)
            else:
                yield from pieces
        except providerhub.ProviderError:
            if not self.swallow_errors:
                raise


# -- check_provider: providers that pass ------------------------------------------------------


def test_gravityengine_passes_against_the_local_server(server: OpenAIServer) -> None:
    report = check_provider(providerhub_gravityengine, server=server)
    assert isinstance(report, ProviderCheckReport)
    assert report.name == "gravityengine"  # from its installed entry point
    assert report.openai_compatible is True  # detected
    assert report.model == "gpt-3.5-turbo-16k"
    assert list(report.passed) == TOOL_CHECKS
    paths = {r.path for r in server.requests}
    assert paths == {"/api/openai/v1/chat/completions"}
    assert len(server.requests) == 8
    assert server.requests[1].json()["stream"] is True
    # The credential check really sent a credential, and the server echoed it back.
    assert server.requests[-1].headers["Authorization"].startswith("Bearer sk-providerhub-check-")
    assert "passed:" in str(report) and "errors: HTTP 503" in str(report)


def test_the_environment_and_the_server_are_restored(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url_var = settings.url_variable("gravityengine")
    key_var = settings.api_key_variable("gravityengine")
    monkeypatch.setenv(url_var, "http://developer.invalid")
    monkeypatch.setenv(key_var, "sk-real-developer-key")

    def responder(number: int, request: Any) -> Reply:
        return Reply.text("mine")

    server.responder = responder
    root_level = logging.getLogger().level
    check_provider(providerhub_gravityengine, server=server)
    assert os.environ[url_var] == "http://developer.invalid"
    assert os.environ[key_var] == "sk-real-developer-key"
    assert server.responder is responder
    assert len(server.requests) == 8  # two of them the tools checks
    # The real credential from the environment never went to the local server.
    assert not any("sk-real-developer-key" in str(r.headers) for r in server.requests)
    assert logging.getLogger().level == root_level


def test_a_registered_provider_keeps_its_name(
    register_provider: RegisterProvider, openai_server: OpenAIServer
) -> None:
    provider = register_provider(providerhub_gravityengine, name="gravity-copy")
    with pytest.raises(ProviderCheckError) as info:
        check_provider(provider, server=openai_server)
    # Its params and its errors say "gravityengine": the check catches the mismatch.
    assert info.value.name == "gravity-copy"
    assert info.value.problems[0].startswith(
        "params: is 'providerhub.providers.gravityengine supports: "
    )
    expected = "errors: on HTTP 503, raised ProviderHTTPError naming provider 'gravityengine'"
    assert f"{expected}, not 'gravity-copy'" in info.value.problems


def test_a_provider_of_another_protocol_passes_with_the_prompt(server: OpenAIServer) -> None:
    report = check_provider(Echo(), prompt="hello there", server=server)
    assert report.openai_compatible is False
    assert list(report.passed) == [
        "contract",
        "params",
        "non-stream",
        "stream",
        "credentials",
        "logs",
    ]
    assert server.requests == []
    assert any("no request reached the local OpenAI-compatible server" in n for n in report.notes)


def test_openai_compatible_false_skips_the_server(server: OpenAIServer) -> None:
    report = check_provider(Echo(), openai_compatible=False, server=server)
    assert report.openai_compatible is False
    assert report.notes == ()
    assert server.requests == []


def test_an_object_url_is_restored_after_the_check(server: OpenAIServer) -> None:
    provider = Compatible()
    report = check_provider(provider, server=server)
    assert report.openai_compatible is True
    assert list(report.passed) == OPENAI_CHECKS
    assert provider.url == "http://compatible.invalid"
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 6


def test_the_template_passes_from_its_sources(
    monkeypatch: pytest.MonkeyPatch, server: OpenAIServer
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "plugins" / "_template"))
    monkeypatch.delitem(sys.modules, "providerhub_template", raising=False)  # gone after, too
    import providerhub_template

    assert Path(providerhub_template.__file__).is_relative_to(ROOT)
    report = check_provider(providerhub_template.provider, name="template", server=server)
    assert list(report.passed) == TOOL_CHECKS
    assert server.requests[0].path == "/v1/chat/completions"
    assert server.requests[0].headers["Authorization"].startswith("Bearer sk-providerhub-check-")


# -- check_provider: providers that fail ------------------------------------------------------


class TextOnlyButClaimsTools(Compatible):
    """Declares supports_tools, but gives back text only: the tool call is lost."""

    supports_tools = True

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        for piece in super()._create_completion(model, messages, stream, **kwargs):
            if isinstance(piece, str):
                yield piece


def test_a_provider_that_claims_tools_must_give_back_tool_calls(server: OpenAIServer) -> None:
    with pytest.raises(ProviderCheckError) as info:
        check_provider(TextOnlyButClaimsTools(), server=server)
    text = str(info.value)
    assert "tools: gave the tool calls [], but the server sent" in text
    assert "yield providerhub.plugin.ToolCallDelta pieces" in text
    assert "tools: gave the finish reason" in text


def test_a_broken_provider_fails_with_every_problem_listed() -> None:
    broken = Broken()
    with pytest.raises(ProviderCheckError) as info:
        check_provider(broken)
    err = info.value
    assert isinstance(err, AssertionError)
    assert err.name == "broken"
    assert err.openai_compatible is False
    assert_problems(
        err,
        [
            "contract: 'model' is str",
            "contract: 'supports_stream' is str",
            f"non-stream: raised KeyError: 'choices', {NOT_TYPED}",
            "stream: yielded bytes, not str",
            f"credentials: raised RuntimeError: login failed for key ***, {NOT_TYPED}",
            "credentials: the RuntimeError it raised holds the credential it was given "
            "(in its str, repr)",
        ],
    )
    assert str(err).startswith("provider 'broken' has 6 problems (checked as a provider of")
    # The credential it was given reached it, and appears nowhere in the report.
    assert broken.credentials
    for credential in broken.credentials:
        assert credential.startswith("sk-providerhub-check-")
        assert credential not in str(err)
        assert credential not in repr(err)
        assert credential[-24:] not in str(err)


def test_an_error_body_echoing_the_credential_is_caught(server: OpenAIServer) -> None:
    with pytest.raises(ProviderCheckError) as info:
        check_provider(QuotesErrorBodies(), server=server)
    assert info.value.openai_compatible is True
    credentials = [p for p in info.value.problems if p.startswith("credentials:")]
    assert credentials == [
        "credentials: the ProviderHTTPError it raised holds the credential it was given (in "
        "its str, repr, attributes); redact it, e.g. with providerhub.plugin.redact(text, "
        "[credential])"
    ]
    secret = server.requests[-1].headers["Authorization"].removeprefix("Bearer ")
    assert secret.startswith("sk-providerhub-check-")
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


def test_errors_naming_another_provider_are_caught(server: OpenAIServer) -> None:
    with pytest.raises(ProviderCheckError) as info:
        check_provider(Compatible(error_name="someone-else"), server=server)
    naming = "naming provider 'someone-else', not 'compatible'"
    assert_problems(
        info.value,
        [
            f"errors: on HTTP 503, raised ProviderHTTPError {naming}",
            f"errors: on an HTML page, raised ProviderResponseError {naming}",
            f"errors: on a stream cut short, raised StreamInterruptedError {naming}",
            f"credentials: on HTTP 401, raised AuthenticationError {naming}",
        ],
    )


def test_swallowed_errors_are_caught(server: OpenAIServer) -> None:
    with pytest.raises(ProviderCheckError) as info:
        check_provider(Compatible(swallow_errors=True), server=server)
    first_two = "".join(SERVER_CHUNKS[:2])
    assert_problems(
        info.value,
        [
            "errors: on HTTP 503, it raised nothing (it gave '')",
            "errors: on an HTML page, it raised nothing (it gave '')",
            # The stream was cut after two events: it passed them on, and said nothing.
            f"errors: on a stream cut short, it raised nothing (it gave {first_two!r})",
            "credentials: on HTTP 401, it raised nothing (it gave '')",
        ],
    )


def test_a_buffered_stream_is_caught(server: OpenAIServer) -> None:
    with pytest.raises(ProviderCheckError) as info:
        check_provider(Compatible(buffer_stream=True), server=server)
    assert_problems(info.value, ["stream: gave the whole text as one piece"])
    stream_request = server.requests[1].json()
    assert stream_request["stream"] is True  # it did ask for a stream, then buffered it


def test_a_credential_in_a_log_record_is_caught(server: OpenAIServer) -> None:
    provider = Compatible(log_credential=True)
    with pytest.raises(ProviderCheckError) as info:
        check_provider(provider, server=server)
    assert_problems(
        info.value, ["logs: a record of logger 'phtest.compatible' holds the credential"]
    )


def test_a_provider_that_ignores_the_url_override_is_caught(server: OpenAIServer) -> None:
    with OpenAIServer() as elsewhere:
        provider = Compatible(fixed_url=elsewhere.url)
        with pytest.raises(ProviderCheckError) as info:
            check_provider(provider, server=server, openai_compatible=True)
        assert len(elsewhere.requests) == 1  # one call, then the check stopped calling
    assert server.requests == []
    assert_problems(
        info.value,
        [
            "non-stream: no request reached the local server at a path ending in "
            "/chat/completions: the provider must build its endpoint from the url that "
            "PROVIDERHUB_COMPATIBLE_URL overrides"
        ],
    )


def test_a_hanging_provider_is_reported_not_waited_for() -> None:
    release = threading.Event()

    class Hangs(Echo):
        name = "hangs"
        supports_stream = False

        def _create_completion(
            self, model: str, messages: list[Any], stream: bool, **kwargs: Any
        ) -> Iterator[str]:
            release.wait(30)
            yield "too late"

    try:
        with pytest.raises(ProviderCheckError) as info:
            check_provider(Hangs(), openai_compatible=False, timeout=0.2)
    finally:
        release.set()
    assert_problems(
        info.value,
        ["non-stream: did not finish within 0.2 s", "credentials: did not finish within 0.2 s"],
    )


def test_a_params_string_of_the_wrong_name_or_type_is_caught() -> None:
    class WrongParams(Echo):
        name = "wrongparams"
        params = "providerhub.providers.echo supports: (model: str)"

    with pytest.raises(ProviderCheckError) as info:
        check_provider(WrongParams(), openai_compatible=False)
    assert_problems(
        info.value,
        [
            "params: is 'providerhub.providers.echo supports: (model: str)'; it should start "
            "with 'providerhub.providers.wrongparams supports: ('"
        ],
    )

    class NotAString(Echo):
        params = 42
        honors_timeout = "yes"

    with pytest.raises(ProviderCheckError) as info:
        check_provider(NotAString(), openai_compatible=False)
    assert_problems(
        info.value, ["contract: 'params' is int, not str", "contract: 'honors_timeout' is str"]
    )


def test_a_provider_that_needs_a_credential_it_lacks_is_told_so() -> None:
    class Locked(Echo):
        name = "locked"
        needs_auth = True

    with pytest.raises(ProviderCheckError) as info:
        check_provider(Locked(), openai_compatible=False)
    assert_problems(
        info.value,
        [
            "calls: needs_auth is True, but no credential is at hand: pass auth= or set "
            "PROVIDERHUB_LOCKED_API_KEY"
        ],
    )


def test_a_server_with_queued_replies_is_refused(server: OpenAIServer) -> None:
    server.script(Reply.text("queued"))
    with pytest.raises(ValueError, match="no replies queued"):
        check_provider(providerhub_gravityengine, server=server)
    assert server.requests == []


# -- the pytest plugin ----------------------------------------------------------------------


def test_the_pytest_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    declared = importlib.metadata.distribution("providerhub").entry_points
    found = [(ep.name, ep.value) for ep in declared if ep.group == "pytest11"]
    assert found == [("providerhub", "providerhub.testing.pytest_plugin")]


def test_register_provider_undoes_only_its_own_registrations(
    providerhub_hub: providerhub.Hub,
) -> None:
    registrar = RegisterProvider(providerhub_hub)
    first = registrar(Echo(), name="one")
    registrar(Echo(), name="two")
    providerhub_hub.unregister("two")  # the test removed it itself
    providerhub_hub.unregister("one")
    replacement = providerhub_hub.register(Echo(), name="one")  # someone else's now
    registrar.undo()
    assert first is not replacement
    assert dict(providerhub_hub.providers) == {"one": replacement}


PLUGIN_USER = """
import providerhub
from providerhub.testing import Reply, check_provider

SHARED = providerhub.Hub(load_entrypoints=False)


class Echo:
    url = "http://echo.invalid"
    model = ["echo-model"]
    supports_stream = True
    needs_auth = False

    def _create_completion(self, model, messages, stream, **kwargs):
        yield "echo: " + messages[-1]["content"]


def test_fixtures(providerhub_hub, openai_server, register_provider):
    assert isinstance(providerhub_hub, providerhub.Hub)
    assert dict(providerhub_hub.providers) == {}
    provider = register_provider(Echo(), name="echo")
    assert providerhub_hub.providers["echo"] is provider
    register_provider(Echo(), name="shared-echo", hub=SHARED)
    assert providerhub_hub.create("echo-model", [{"role": "user", "content": "hi"}]) == "echo: hi"
    openai_server.script(Reply.error(503))
    assert openai_server.url.startswith("http://127.0.0.1:")


def test_registrations_were_undone_after_the_previous_test():
    assert dict(SHARED.providers) == {}


def test_check_provider_with_the_fixtures(register_provider, openai_server):
    import providerhub_gravityengine

    provider = register_provider(providerhub_gravityengine, name="gravityengine")
    report = check_provider(provider, server=openai_server)
    assert report.openai_compatible
"""


def test_the_fixtures_work_in_a_fresh_pytest_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plugin_user=PLUGIN_USER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_fixtures_come_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plugin_user=PLUGIN_USER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:providerhub")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*fixture 'providerhub_hub' not found*"])


CLEAN_ENV_USER = """
import os


def test_the_developers_settings_are_gone(providerhub_clean_env):
    assert "PROVIDERHUB_GRAVITYENGINE_URL" not in os.environ
    with open(os.environ["PROVIDERHUB_CONFIG"]) as config:
        assert config.read() == ""


def test_they_come_back_after_the_test():
    assert os.environ["PROVIDERHUB_GRAVITYENGINE_URL"] == "http://developer.invalid"
"""


def test_the_clean_env_fixture_hides_the_developers_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", "http://developer.invalid")
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(pytester.path / "developer.toml"))
    (pytester.path / "developer.toml").write_text('[endpoints.mine]\nurl = "http://x"\n')
    pytester.makepyfile(test_clean_env_user=CLEAN_ENV_USER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
