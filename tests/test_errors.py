"""The error tree's two branches for mistakes made before any network call: the caller's
(:class:`InvalidRequestError`) and the setup's (:class:`ConfigurationError`, and
:class:`PluginError` below it), and what the command line and the gateway make of the
second."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

import providerhub
import providerhub.plugin
from providerhub import ConfigurationError, InvalidRequestError, PluginError, ProviderHubError

from ._support import FakeProvider

HI = [{"role": "user", "content": "Hi"}]


def test_a_setup_mistake_is_not_a_bad_request() -> None:
    assert issubclass(ConfigurationError, ProviderHubError)
    assert issubclass(PluginError, ConfigurationError)
    assert not issubclass(ConfigurationError, InvalidRequestError)
    assert not issubclass(InvalidRequestError, ConfigurationError)
    # Both were ValueErrors before the split, and stay so for code that caught that.
    assert issubclass(ConfigurationError, ValueError)
    assert providerhub.plugin.ConfigurationError is ConfigurationError
    assert providerhub.plugin.PluginError is PluginError
    assert {"ConfigurationError", "PluginError"} <= set(providerhub.__all__)
    assert {"ConfigurationError", "PluginError"} <= set(providerhub.plugin.__all__)


def test_bad_retries_are_the_callers_in_a_call_and_the_hubs_in_the_hub() -> None:
    with providerhub.Hub(False) as hub:
        hub.register(FakeProvider("p", ["m"], ["ok"]))
        with pytest.raises(InvalidRequestError, match="retries must be a whole number"):
            hub.create("m", HI, retries=-1)
        assert hub.create("m", HI) == "ok"
    with providerhub.Hub(False, retries=-1) as hub:  # type: ignore[arg-type]
        hub.register(FakeProvider("p", ["m"], ["ok"]))
        with pytest.raises(ConfigurationError, match="retries must be a whole number"):
            hub.create("m", HI)


def test_a_bad_hub_setting_and_a_broken_provider_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="need threshold >= 1"):
        providerhub.Hub(False, failure_threshold=0)
    with pytest.raises(ConfigurationError, match="state must be a providerhub State"):
        providerhub.Hub(False, state=3)  # type: ignore[arg-type]
    with providerhub.Hub(False) as hub:
        with pytest.raises(PluginError, match="implements no providerhub hook"):
            hub.register_plugin(object())
        with pytest.raises(ConfigurationError, match="no alias 'nope'"):
            hub.unalias("nope")


def test_the_command_line_says_a_setup_mistake_in_one_line_and_exits_2() -> None:
    env = {**os.environ, "PROVIDERHUB_WHEN_ALL_COOLING": "never"}
    result = subprocess.run(
        [sys.executable, "-m", "providerhub", "models"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "providerhub: error: PROVIDERHUB_WHEN_ALL_COOLING holds 'never'"
    )
    assert "Traceback" not in result.stderr


def test_the_gateway_answers_a_setup_mistake_with_a_500_that_tells_nothing_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("uvicorn")
    from ._internals import _errors

    caplog.set_level(logging.INFO, logger="providerhub.server")
    inside = "/etc/providerhub/config.toml: [server] keys must be an array of tables"
    for exc in (ConfigurationError(inside), PluginError(inside)):
        with providerhub.Hub(False) as hub:
            failure = _errors.failure_for(exc, hub, (), request_id="r-2")
            _errors.log_failure(exc, failure, "r-2", ())
        assert (failure.status, failure.type, failure.code) == (
            500,
            "server_error",
            "internal_error",
        )
        assert failure.message == (
            "the server failed (the server's log has the details: request id r-2)"
        )
        assert "/etc/providerhub" not in str(failure.body())
    assert len(caplog.records) == 2
    assert all(inside in record.getMessage() for record in caplog.records)
