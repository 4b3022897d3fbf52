"""Credentials never leak: not into a repr, a log record, an error message or CLI output.

The checks are written so that a failure does not print the credential either."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub._redaction import redact
from providerhub._transports import sync as transport
from providerhub.testing import OpenAIServer, RecordedRequest, Reply

SECRET = "sk-test-Zq8mW2xR7pL4vN9k"
MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]


def assert_clean(text: str, where: str) -> None:
    leaked = SECRET in text or SECRET[8:] in text
    assert not leaked, f"the credential leaked into {where}"


def echo_everything(request: RecordedRequest) -> str:
    return f"rejected: {request.headers} key={SECRET} token {SECRET}"


class Leaky:
    """A seed-style provider whose own errors quote the credential it was given."""

    url = "http://leaky.invalid"
    model = ["leaky-model"]
    supports_stream = True
    needs_auth = True

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        raise RuntimeError(f"login failed for key {kwargs['auth']}")
        yield ""


def test_error_messages_and_reprs_hold_no_credential(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply(status=401, body=echo_everything, content_type="text/plain"))
    with pytest.raises(providerhub.AuthenticationError) as info:
        gravity_hub.create(MODEL, HI, auth={"gravityengine": SECRET})
    err = info.value
    for text, where in [
        (str(err), "the message"),
        (repr(err), "the repr"),
        (repr(vars(err)), "the attributes"),
        (repr(gravity_hub), "the hub's repr"),
        (repr(gravity_hub.providers["gravityengine"]), "the provider's repr"),
    ]:
        assert_clean(text, where)


def test_a_plugin_quoting_the_credential_is_redacted(hub: providerhub.Hub) -> None:
    hub.register(Leaky(), name="leaky")
    with pytest.raises(providerhub.ProviderError) as info:
        hub.create("leaky-model", HI, auth={"leaky": SECRET})
    assert "login failed for key ***" in str(info.value)
    assert_clean(str(info.value), "a plugin's error")


def test_a_key_in_the_url_query_stays_out_of_messages(
    hub: providerhub.Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providerhub._http.chat import chat_completion

    with pytest.raises(providerhub.ProviderConnectionError) as info:
        list(chat_completion("q", f"http://127.0.0.1:1/v1/chat?key={SECRET}", MODEL, HI, False))
    assert_clean(str(info.value), "a connection error")
    assert_clean(redact(f"GET /v1?api_key={SECRET}&x=1"), "redact()")


def test_no_log_record_holds_a_credential_or_the_messages(
    gravity_hub: providerhub.Hub,
    server: OpenAIServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_prompt = [{"role": "user", "content": "my private question"}]
    server.script(
        Reply(status=401, body=echo_everything, content_type="text/plain"), Reply.text("fine")
    )
    with pytest.raises(providerhub.AuthenticationError):
        gravity_hub.create(MODEL, secret_prompt, auth={"gravityengine": SECRET})
    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_API_KEY", SECRET)
    gravity_hub.health.reset()
    assert list(gravity_hub.create(MODEL, secret_prompt, stream=True)) == ["fine"]
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage()
        assert_clean(text, f"a log record of {record.name}")
        if record.levelno >= logging.INFO:
            assert "my private question" not in text


def test_each_attempt_is_logged_once_with_its_outcome(
    gravity_hub: providerhub.Hub, server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="providerhub")
    server.script(Reply.error(503), Reply.text("ok"))
    gravity_hub.create(MODEL, HI, retries=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "providerhub.router"]
    assert len(lines) == 2  # one record per attempt
    assert lines[0].startswith(
        f"provider=gravityengine model={MODEL} attempt=1 outcome=ProviderHTTPError (retrying)"
    )
    assert lines[1].startswith(f"provider=gravityengine model={MODEL} attempt=2 outcome=ok")
    assert all("latency_ms=" in line for line in lines)


@pytest.mark.slow  # runs the command line in a subprocess
def test_cli_output_holds_no_credential(server: OpenAIServer, tmp_path: Path) -> None:
    server.script(Reply(status=401, body=echo_everything, content_type="text/plain"))
    env = dict(os.environ)  # as the autouse fixture left it: no PROVIDERHUB_* of the developer's
    env["PROVIDERHUB_GRAVITYENGINE_URL"] = server.url
    env["PROVIDERHUB_GRAVITYENGINE_API_KEY"] = SECRET
    for args in (["chat", "-m", MODEL, "Hi"], ["providers", "--json"], ["providers"]):
        result = subprocess.run(
            [sys.executable, "-m", "providerhub", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert_clean(result.stdout + result.stderr, f"'providerhub {args[0]}' output")
    assert server.requests[0].headers["Authorization"].endswith(SECRET[-4:])


def test_tls_verification_is_on_and_has_no_global_switch() -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        assert hub.session.verify is True
    assert transport.new_session().verify is True
    source = "".join(p.read_text() for p in Path(providerhub.__file__).parent.rglob("*.py"))
    assert "verify=False" not in source
    assert "verify = False" not in source
