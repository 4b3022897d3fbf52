"""The hub's session reads proxy settings from the environment once per origin, and
still follows every change of them."""

from __future__ import annotations

import pytest

from providerhub.testing import OpenAIServer

from ._internals import ENVIRONMENT, chat_completion, environment_reader, transport

HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def ask(session: object, server: OpenAIServer) -> str:
    endpoint = server.url + "/v1/chat/completions"
    return "".join(chat_completion("p", endpoint, "m", HI, False, session=session))  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_proxies")
def test_proxy_variables_are_followed_as_they_change(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer() as proxy:
        session = transport.new_session()
        ask(session, server)
        assert len(server.requests) == 1 and proxy.requests == []
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        ask(session, server)
        assert len(proxy.requests) == 1  # the proxy got the absolute URL to forward
        assert proxy.requests[0].path == server.url + "/v1/chat/completions"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        ask(session, server)
        assert len(server.requests) == 2 and len(proxy.requests) == 1
        session.trust_env = False
        monkeypatch.delenv("NO_PROXY")
        ask(session, server)
        assert len(server.requests) == 3 and len(proxy.requests) == 1
        session.close()


@pytest.mark.usefixtures("no_proxies")
def test_the_environment_is_read_once_per_origin(server: OpenAIServer) -> None:
    session = transport.new_session()
    for _ in range(3):
        ask(session, server)
    assert len(session._environment_settings) == 1  # type: ignore[attr-defined]
    session.proxies["https"] = "http://127.0.0.1:1"
    ask(session, server)
    assert len(session._environment_settings) == 2  # type: ignore[attr-defined]
    session.close()


def test_the_environment_reader_sees_what_os_environ_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ._internals import _session

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    values = dict(zip(ENVIRONMENT, _session.environment()))
    assert values["HTTPS_PROXY"] is not None
    assert values["NO_PROXY"] is None
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert dict(zip(ENVIRONMENT, _session.environment()))["NO_PROXY"] is not None


def test_the_environment_reader_of_a_plain_mapping_reads_it_the_plain_way() -> None:
    read = environment_reader(ENVIRONMENT, {"NO_PROXY": "example.com", "OTHER": "x"})
    values = dict(zip(ENVIRONMENT, read()))
    assert values["NO_PROXY"] == "example.com"
    assert [name for name, value in values.items() if value is not None] == ["NO_PROXY"]
