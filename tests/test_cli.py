"""The command line, run as a user runs it: a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._internals import build_parser
from ._support import seed_module


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    full_env = dict(
        os.environ
    )  # as the autouse fixture left it: no PROVIDERHUB_* of the developer's
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "providerhub", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=timeout,
    )


def test_providers_lists_gravityengine_with_its_distribution() -> None:
    result = run("providers")
    assert result.returncode == 0, result.stderr
    assert "gravityengine  [providerhub-gravityengine 0.1.0]  working, streams, no auth" in (
        result.stdout
    )
    assert "gpt-3.5-turbo-16k, gpt-3.5-turbo-0613" in result.stdout


def test_providers_json_reports_a_broken_plugin_and_still_lists_the_others(
    make_dist: Callable[..., Any], site_dir: Path
) -> None:
    make_dist(
        "phtest-broken",
        modules={"phtest_cli_broken": "import no_such_module_anywhere\n"},
        entry_points={"broken": "phtest_cli_broken"},
    )
    make_dist(
        "phtest-seed",
        modules={"phtest_cli_seed": seed_module(["seed-model"], needs_auth=True)},
        entry_points={"seedling": "phtest_cli_seed"},
    )
    result = run("providers", "--json", env={"PYTHONPATH": str(site_dir)})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    by_name = {p["name"]: p for p in doc["providers"]}
    assert by_name["gravityengine"]["distribution"] == "providerhub-gravityengine"
    assert by_name["seedling"]["needs_auth"] is True
    assert by_name["seedling"]["auth_variable"] == "PROVIDERHUB_SEEDLING_API_KEY"
    [error] = doc["plugin_errors"]
    assert error["plugin"] == "broken"
    assert error["distribution"] == "phtest-broken"
    assert "ModuleNotFoundError" in error["error"]
    text = run("providers", env={"PYTHONPATH": str(site_dir)}).stdout
    assert "error: plugin 'broken' (from phtest-broken): failed to import" in text


def test_models_and_params() -> None:
    models = run("models")
    assert models.returncode == 0
    # Columns as wide as the longest name of any installed plugin's models.
    assert ["gpt-3.5-turbo-16k", "gravityengine"] in [
        line.split() for line in models.stdout.splitlines()
    ]
    listed = json.loads(run("models", "--json").stdout)["models"]
    [entry] = [m for m in listed if m["model"] == "gpt-3.5-turbo-16k"]
    assert entry["providers"] == ["gravityengine"]
    aliased = run("models", env={"PROVIDERHUB_ALIASES": "fast=gpt-3.5-turbo-16k"})
    assert "aliases:\n" in aliased.stdout
    assert "fast  " in aliased.stdout and "-> gpt-3.5-turbo-16k" in aliased.stdout
    params = run("params")
    assert (
        "providerhub.providers.gravityengine supports: "
        "(model: str, messages: list, stream: bool, **kwargs)" in params.stdout
    )
    # Only gravityengine's entry: other installed plugins (anthropic, ...) have theirs.
    [entry] = [
        e for e in json.loads(run("params", "--json").stdout) if e["provider"] == "gravityengine"
    ]
    assert [p["name"] for p in entry["parameters"]] == ["model", "messages", "stream", "kwargs"]
    assert entry["parameters"][3]["kind"] == "var_keyword"
    assert entry["capabilities"] == {
        "supports_stream": True,
        "needs_auth": False,
        "supports_tools": True,
        "supports_vision": False,
        "supports_audio": False,
        "supports_json_schema": False,
    }


def test_an_environment_alias_hiding_a_served_model_is_shown_as_an_error() -> None:
    env = {"PROVIDERHUB_ALIASES": "gpt-3.5-turbo-16k=gpt-3.5-turbo-0613,fast=gpt-3.5-turbo-16k"}
    said = "error: PROVIDERHUB_ALIASES: gpt-3.5-turbo-16k=gpt-3.5-turbo-0613 was left out: "
    models = run("models", env=env)
    assert models.returncode == 0, models.stderr
    assert said in models.stdout
    assert "fast  " in models.stdout and "-> gpt-3.5-turbo-16k" in models.stdout
    assert said in run("providers", env=env).stdout
    for command in ("models", "providers"):
        [error] = json.loads(run(command, "--json", env=env).stdout)["alias_errors"]
        assert error.startswith(said.removeprefix("error: "))


def test_a_provider_url_is_printed_without_its_user_info_and_query() -> None:
    # Port 9 (discard) refuses on loopback: check fails fast, printing its reason.
    env = {"PROVIDERHUB_GRAVITYENGINE_URL": "http://user:s3cret-pw@127.0.0.1:9/x?key=k-abc123"}
    text = run("providers", env=env)
    assert "  url:    http://127.0.0.1:9/x\n" in text.stdout
    doc = json.loads(run("providers", "--json", env=env).stdout)
    [gravityengine] = [p for p in doc["providers"] if p["name"] == "gravityengine"]
    assert gravityengine["url"] == "http://127.0.0.1:9/x"
    checked = run("check", "--timeout", "5", env=env)
    assert checked.returncode == 1 and "could not connect to http://127.0.0.1:9/x" in checked.stdout
    checked_json = run("check", "--json", "--timeout", "5", env=env)
    for result in (text, checked, checked_json):
        assert "s3cret-pw" not in result.stdout + result.stderr
        assert "k-abc123" not in result.stdout + result.stderr
        assert "user" not in result.stdout + result.stderr


def test_chat_streams_from_the_routed_provider(server: OpenAIServer) -> None:
    server.script(Reply.text("Hello", " from", " the server"))
    env = {"PROVIDERHUB_GRAVITYENGINE_URL": server.url}
    result = run("chat", "-m", "gpt-3.5-turbo-16k", "-o", "temperature=0.2", "Hi", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from the server\n"
    body = server.requests[0].json()
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_chat_reads_the_prompt_from_stdin_and_can_wait_for_the_whole_answer(
    server: OpenAIServer,
) -> None:
    env = {"PROVIDERHUB_GRAVITYENGINE_URL": server.url}
    result = run(
        "chat",
        "-m",
        "gpt-3.5-turbo-16k",
        "-p",
        "Gravityengine",
        "--no-stream",
        "-",
        env=env,
        stdin="from stdin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("You said: from stdin\n")
    assert "stream" not in server.requests[0].json()


@pytest.mark.parametrize(
    ("args", "says", "code"),
    [
        (["chat", "-m", "gpt-3.5-turbo-16", "Hi"], "did you mean 'gpt-3.5-turbo-16k'", 1),
        (["chat", "-m", "gpt-3.5-turbo-16k", "-p", "nosuch", "Hi"], "no provider named", 2),
        (["chat", "-m", "gpt-3.5-turbo-16k", "-o", "nonsense", "Hi"], "KEY=VALUE", 2),
        (["chat", "-m", "gpt-3.5-turbo-16k", "-o", "colour=red", "Hi"], "'colour'", 2),
    ],
)
def test_errors_are_one_clear_line_without_traceback(args: list[str], says: str, code: int) -> None:
    result = run(*args)
    assert result.returncode == code
    assert result.stderr.startswith("providerhub: error: ")
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_provider_exits_non_zero_naming_it(server: OpenAIServer) -> None:
    server.script(Reply.error(503, "overloaded"))
    env = {"PROVIDERHUB_GRAVITYENGINE_URL": server.url}
    result = run("chat", "-m", "gpt-3.5-turbo-16k", "--retries", "0", "Hi", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("providerhub: error: gravityengine: HTTP 503")
    assert "Traceback" not in result.stderr


def test_demo_streams_from_a_local_stand_in() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "local stand-in server" in result.stdout
    assert "candidates ['gravityengine']" in result.stdout
    assert "You said: Hi! What are you?" in result.stdout
    assert "streamed by gravityengine" in result.stdout


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "providerhub"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("providerhub ")


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    text = parser.format_help()
    for command in ("providers", "models", "params", "chat", "demo"):
        assert command in text


def test_models_lists_embedding_models_apart(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[endpoints.local]\nurl = "http://127.0.0.1:9"\nembedding_models = ["embed-1"]\n',
        encoding="utf-8",
    )
    env = {"PROVIDERHUB_CONFIG": str(config)}
    text = run("models", env=env).stdout
    assert "\nembedding models:\nembed-1" in text and text.rstrip().endswith("local")
    doc = json.loads(run("models", "--json", env=env).stdout)
    assert doc["embedding_models"] == [{"model": "embed-1", "providers": ["local"]}]
    assert all(m["model"] != "embed-1" for m in doc["models"])
    assert "\n  embedding models: embed-1\n" in run("providers", env=env).stdout
    [local] = [
        p
        for p in json.loads(run("providers", "--json", env=env).stdout)["providers"]
        if p["name"] == "local"
    ]
    assert local["embedding_models"] == ["embed-1"] and local["models"] == []
