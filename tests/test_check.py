"""`providerhub check`: every provider and model, in parallel, one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import providerhub
from providerhub.testing import OpenAIServer, Reply

from ._internals import MAX_TOKENS, help_texts, run_checks
from ._support import seed_module


def check(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "providerhub", "check", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


@pytest.mark.slow  # runs the command line in a subprocess
def test_check_reports_gravityengine_ok_against_the_demo_server(server: OpenAIServer) -> None:
    # Only gravityengine: the other installed plugins' providers need keys this run has not.
    result = check(
        "--json", "-p", "gravityengine", env={"PROVIDERHUB_GRAVITYENGINE_URL": server.url}
    )
    assert result.returncode == 0, result.stderr
    # The other installed plugins (gemini) need keys this run does not have.
    rows = [r for r in json.loads(result.stdout) if r["status"] != "needs auth"]
    assert [(r["provider"], r["model"], r["status"]) for r in rows] == [
        ("gravityengine", "gpt-3.5-turbo-16k", "ok"),
        ("gravityengine", "gpt-3.5-turbo-0613", "ok"),
    ]
    assert all(r["latency"] > 0 for r in rows)
    assert len(server.requests) == 2  # one short prompt each, no retries
    for request in server.requests:
        body = request.json()
        assert 0 < body["max_tokens"] <= 16  # a check asks for a short answer
        assert sum(len(m["content"]) for m in body["messages"]) <= 100


@pytest.mark.slow  # runs the command line in a subprocess
def test_check_reports_failures_with_their_reason_and_exits_1(
    server: OpenAIServer, make_dist: Callable[..., Any], site_dir: Path
) -> None:
    server.default = Reply.error(503, "overloaded")
    make_dist(
        "phtest-check",
        modules={
            "phtest_locked_check": seed_module(["locked-model"], needs_auth=True),
            "phtest_broken_check": seed_module(["off-model"]) + "\nworking = False\n",
        },
        entry_points={"lockedcheck": "phtest_locked_check", "offcheck": "phtest_broken_check"},
    )
    env = {"PROVIDERHUB_GRAVITYENGINE_URL": server.url, "PYTHONPATH": str(site_dir)}
    result = check(env=env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["provider", "model", "status", "latency", "reason"]
    by_provider = {line.split()[0] + " " + line.split()[1]: line for line in lines[1:]}
    failing = by_provider["gravityengine gpt-3.5-turbo-16k"]
    assert " failing " in failing and "HTTP 503" in failing and "overloaded" in failing
    assert " needs auth " in by_provider["lockedcheck locked-model"]
    assert "set PROVIDERHUB_LOCKEDCHECK_API_KEY" in by_provider["lockedcheck locked-model"]
    assert " disabled " in by_provider["offcheck off-model"]
    only = check("--json", "-p", "lockedcheck", env=env)
    assert only.returncode == 0  # needing auth is not a failure
    assert [r["status"] for r in json.loads(only.stdout)] == ["needs auth"]


@pytest.mark.slow  # runs the command line in a subprocess
def test_check_with_nothing_to_check_says_so() -> None:
    result = check("-m", "no-such-model", env={})
    assert result.returncode == 2
    assert result.stderr.startswith("providerhub: error: nothing to check")


class NoMaxTokens:
    """A provider whose completion takes only what it names: no max_tokens, no **kwargs."""

    url = "http://no-max-tokens.invalid"
    model = ["strict-model"]
    supports_stream = False
    needs_auth = False

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, timeout: Any = None
    ) -> Any:
        self.calls.append({"model": model, "messages": messages, "timeout": timeout})
        yield "OK"


def test_a_provider_that_takes_no_max_tokens_is_still_checked(
    hub: providerhub.Hub, fake: Callable[..., Any]
) -> None:
    strict = NoMaxTokens()
    hub.register(strict, name="strict")
    loose = fake("loose", ["loose-model"], ["OK"])
    hub.register(loose)
    results = {r.provider: r for r in run_checks(hub, timeout=5)}
    assert results["strict"].status == "ok", results["strict"].reason
    assert len(strict.calls) == 1
    assert results["loose"].status == "ok"
    [call] = loose.calls  # one that takes **kwargs is asked for a short answer
    assert call["max_tokens"] == MAX_TOKENS <= 16
    assert f"at most {MAX_TOKENS} tokens" in help_texts()["providerhub"]


class Tattler:
    """A provider that names its url, as configured, in the exception it raises."""

    url = "http://user:pw-secret@127.0.0.1:9/v1?key=k-secret"
    model = ["tattler-model"]
    supports_stream = False
    needs_auth = False

    def _create_completion(self, model: str, messages: list[Any], stream: bool) -> Any:
        raise RuntimeError(f"cannot reach {self.url}")
        yield ""  # a generator, as providers are


def test_a_failing_check_shows_no_password_or_query_value_of_the_url(
    hub: providerhub.Hub,
) -> None:
    hub.register(Tattler(), name="tattler")
    [result] = run_checks(hub, timeout=5)
    assert result.status == "failing"
    assert "cannot reach http://127.0.0.1:9/v1?key=***" in result.reason
    assert "pw-secret" not in result.reason and "k-secret" not in result.reason
    assert "user" not in result.reason
