"""The configuration file: where it is looked for, and every check of its fields, seen as
a user sees it, in ``hub.plugin_errors`` while the valid entries and the other plugins
load."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

import pytest

import providerhub
from providerhub_openai_compatible import (
    ConfigError,
    Endpoint,
    Problem,
    check,
    config_path,
    default_config_path,
    load,
)

WriteConfig = Callable[[str], Path]  # the conftest's fixtures
MakeHub = Callable[[str], providerhub.Hub]

PLUGIN = "openai-compatible"


def plugin_errors(hub: providerhub.Hub) -> list[str]:
    """The errors of this plugin in ``hub``, one per problem, after checking that the other
    plugins loaded."""
    assert "gravityengine" in hub.providers
    failures = [f for f in hub.plugin_errors if f.name == PLUGIN]
    assert all(f.distribution == "providerhub-openai-compatible" for f in failures)
    return [f.error for f in failures]


def plugin_error(hub: providerhub.Hub) -> str:
    """The one error of this plugin in ``hub``."""
    [error] = plugin_errors(hub)
    return error


def endpoint_names(hub: providerhub.Hub) -> list[str]:
    return [p.name for p in hub.providers.values() if p.plugin == PLUGIN]


# -- where the file is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, PurePosixPath("/home/u/.config/providerhub/config.toml")),
        (
            "linux",
            {"XDG_CONFIG_HOME": "/xdg"},
            PurePosixPath("/xdg/providerhub/config.toml"),
        ),
        # The XDG specification: a relative XDG_CONFIG_HOME is invalid and ignored.
        (
            "linux",
            {"XDG_CONFIG_HOME": "relative/dir"},
            PurePosixPath("/home/u/.config/providerhub/config.toml"),
        ),
        ("freebsd14", {}, PurePosixPath("/home/u/.config/providerhub/config.toml")),
        (
            "darwin",
            {"XDG_CONFIG_HOME": "/xdg"},
            PurePosixPath("/home/u/Library/Application Support/providerhub/config.toml"),
        ),
        (
            "win32",
            {"APPDATA": "C:\\Users\\u\\AppData\\Roaming"},
            PureWindowsPath("C:\\Users\\u\\AppData\\Roaming\\providerhub\\config.toml"),
        ),
        (
            "win32",
            {},
            PureWindowsPath("C:\\Users\\u\\AppData\\Roaming\\providerhub\\config.toml"),
        ),
    ],
)
def test_the_default_file_is_in_the_platforms_config_directory(
    platform: str, environ: dict[str, str], expected: object
) -> None:
    home = "C:\\Users\\u" if platform == "win32" else "/home/u"
    found = default_config_path(platform=platform, environ=environ, home=home)
    assert found == expected
    assert type(found) is type(expected)


def test_providerhub_config_names_the_file() -> None:
    assert config_path({"PROVIDERHUB_CONFIG": "/etc/ph.toml"}) == (Path("/etc/ph.toml"), True)
    home = Path.home()
    assert config_path({"PROVIDERHUB_CONFIG": "~/ph.toml"}) == (home / "ph.toml", True)
    # Empty counts as unset, as for every providerhub variable.
    assert config_path({"PROVIDERHUB_CONFIG": "", "XDG_CONFIG_HOME": "/xdg"}) == (
        Path("/xdg/providerhub/config.toml"),
        False,
    )


def test_a_missing_default_file_means_no_endpoints_and_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVIDERHUB_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    assert load() == []
    with providerhub.Hub() as hub:
        assert [f for f in hub.plugin_errors if f.name == PLUGIN] == []
        assert endpoint_names(hub) == []
        assert "gravityengine" in hub.providers


def test_the_default_file_is_read_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVIDERHUB_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "providerhub").mkdir()
    (tmp_path / "providerhub" / "config.toml").write_text(
        '[endpoints.homemade]\nurl = "http://127.0.0.1:8080"\nmodels = ["home-model"]\n'
    )
    with providerhub.Hub() as hub:
        assert endpoint_names(hub) == ["homemade"]


def test_a_missing_file_named_by_providerhub_config_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such.toml"
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(missing))
    with providerhub.Hub() as hub:
        error = plugin_error(hub)
        assert endpoint_names(hub) == []
    assert error == f"{missing}: no such file (named by PROVIDERHUB_CONFIG)"


def test_a_file_given_to_load_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file$"):
        load(tmp_path / "absent.toml")
    assert load(tmp_path / "absent.toml", required=False) == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'[endpoints.x]\nurl = "http://h"\nmodels = [\n', "is not valid TOML: "),
        (b"[endpoints.x]\nurl = http://h\n", "(at line 2, column 7)"),
        (b'[endpoints.x]\nurl = "\xff"\n', "is not UTF-8 text (line 2)"),
    ],
)
def test_a_file_that_is_not_toml_is_reported_with_the_line(
    write_config: WriteConfig, content: bytes, says: str
) -> None:
    path = write_config("")
    path.write_bytes(content)
    with providerhub.Hub() as hub:
        error = plugin_error(hub)
        assert endpoint_names(hub) == []
    assert error.startswith(f"{path}: is not ")
    assert says in error


def test_a_directory_is_not_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDERHUB_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory, not a TOML file"):
        load()
    with providerhub.Hub() as hub:
        assert plugin_error(hub) == f"{tmp_path}: is a directory, not a TOML file"


def test_an_empty_file_or_one_without_endpoints_is_fine(write_config: WriteConfig) -> None:
    assert load(write_config("")) == []
    assert load(write_config("[endpoints]\n")) == []
    # Other tables belong to other parts of providerhub, and are left alone.
    assert load(write_config('[routing]\norder = ["a"]\n')) == []


def test_an_endpoint_with_only_the_required_fields_gets_the_defaults(
    write_config: WriteConfig,
) -> None:
    path = write_config('[endpoints.x]\nurl = "http://h:1/"\nmodels = ["m"]\n')
    assert load() == [
        Endpoint(
            name="x",
            url="http://h:1",
            models=("m",),
            source=str(path),
            path="/v1/chat/completions",
            api_key_env=None,
            stream=True,
            headers={},
        )
    ]


def test_a_query_may_end_the_path(write_config: WriteConfig) -> None:
    write_config(
        '[endpoints.azure]\nurl = "https://r.example.com/openai"\n'
        'path = "/deployments/d/chat/completions?api-version=2024-06-01"\nmodels = ["d"]\n'
    )
    [endpoint] = load()
    assert endpoint.path == "/deployments/d/chat/completions?api-version=2024-06-01"


# -- every field checked, each error naming the file, the entry and the field --------------

GOOD = {"url": '"http://localhost:11434"', "models": '["llama3"]'}


def entry(name: str = "ollama", **fields: str) -> str:
    """An ``[endpoints.<name>]`` table: the good fields, replaced or (with "") removed by
    ``fields``."""
    merged = {**GOOD, **fields}
    lines = [f"[endpoints.{name}]"] + [f"{k} = {v}" for k, v in merged.items() if v]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("toml", "where", "says"),
    [
        (
            entry(models='"llama3"'),
            "[endpoints.ollama] models",
            'must be a non-empty list of model names, not "llama3"',
        ),
        (entry(models="[]"), "[endpoints.ollama] models", "non-empty list of model names, not []"),
        (entry(models='["a", 3]'), "[endpoints.ollama] models", "item 2 must be a non-empty"),
        (entry(models='["a", " "]'), "[endpoints.ollama] models", "item 2 must be a non-empty"),
        (entry(models='[" a"]'), "[endpoints.ollama] models", "item 1 has spaces around it"),
        (entry(models='["a", "a"]'), "[endpoints.ollama] models", 'lists "a" twice'),
        (entry(models=""), "[endpoints.ollama] models", "missing: the model names it serves"),
        (entry(url=""), "[endpoints.ollama] url", "missing: the base URL of the server"),
        (entry(url="11434"), "[endpoints.ollama] url", "must be a string"),
        (
            entry(url='"localhost:11434"'),
            "[endpoints.ollama] url",
            'must be an http:// or https:// URL with a host, like "http://localhost:11434", '
            'not "localhost:11434"',
        ),
        (entry(url='"ftp://h"'), "[endpoints.ollama] url", "must be an http:// or https://"),
        (entry(url='"http://"'), "[endpoints.ollama] url", "URL with a host"),
        (entry(url='"http://h:99999"'), "[endpoints.ollama] url", "is not a valid URL"),
        (entry(url='"http://h x"'), "[endpoints.ollama] url", "without spaces"),
        (entry(url='"http://h/?a=1"'), "[endpoints.ollama] url", "must not have a query"),
        (entry(url='"http://h/#top"'), "[endpoints.ollama] url", "or a fragment"),
        (
            entry(url='"http://h/v1"'),
            "[endpoints.ollama] url",
            "ends with /v1 and path starts with /v1/, so requests would go to "
            "http://h/v1/v1/chat/completions: drop /v1 from url",
        ),
        (entry(path='"v1/chat"'), "[endpoints.ollama] path", 'must start with "/"'),
        (entry(path="1"), "[endpoints.ollama] path", "must be a string"),
        (entry(stream='"yes"'), "[endpoints.ollama] stream", 'must be true or false, not "yes"'),
        (entry(stream="1"), "[endpoints.ollama] stream", "must be true or false, not 1"),
        (entry(tools='"no"'), "[endpoints.ollama] tools", 'must be true or false, not "no"'),
        (entry(vision="1"), "[endpoints.ollama] vision", "must be true or false, not 1"),
        (
            entry(api_key_env='"OLLAMA API KEY"'),
            "[endpoints.ollama] api_key_env",
            "must be the name of the environment variable that holds the key",
        ),
        (entry(api_key_env='"1ABC"'), "[endpoints.ollama] api_key_env", "not starting with"),
        (entry(api_key_env="true"), "[endpoints.ollama] api_key_env", "a boolean was given"),
        (entry(headers='"X-Team: a"'), "[endpoints.ollama] headers", "must be a table"),
        (
            entry(headers='{ "X Team" = "a" }'),
            "[endpoints.ollama] headers",
            '"X Team" is not a valid HTTP header name',
        ),
        (entry(headers='{ "X-Num" = 3 }'), "[endpoints.ollama] headers", "X-Num must be a string"),
        (
            entry(headers='{ "X-A" = "a\\nb" }'),
            "[endpoints.ollama] headers",
            "X-A holds a line break",
        ),
        (
            entry(headers='{ "X-A" = "1", "x-a" = "2" }'),
            "[endpoints.ollama] headers",
            "sets X-A twice",
        ),
        (
            entry(headers='{ authorization = "Bearer abc" }'),
            "[endpoints.ollama] headers",
            "must not set Authorization: name the variable holding the key in api_key_env",
        ),
        (
            entry(headers='{ Accept = "text/plain" }'),
            "[endpoints.ollama] headers",
            "must not set Accept",
        ),
        (
            entry(headers='{ Host = "other.example.com" }'),
            "[endpoints.ollama] headers",
            "must not set Host: it describes the connection or the framing of the body",
        ),
        (
            entry(headers='{ "transfer-encoding" = "chunked" }'),
            "[endpoints.ollama] headers",
            "must not set transfer-encoding: it describes the connection",
        ),
        (
            entry(headers='{ "Content-Length" = "0" }'),
            "[endpoints.ollama] headers",
            "must not set Content-Length",
        ),
        *(
            (
                entry(headers=f'{{ "{name}" = "x" }}'),
                "[endpoints.ollama] headers",
                f"must not set {name}: it describes the connection",
            )
            for name in ("Connection", "Upgrade", "TE", "Trailer", "Keep-Alive")
        ),
        (
            entry(headers='{ "Proxy-Authorization" = "Basic dTpw" }'),
            "[endpoints.ollama] headers",
            "must not set Proxy-Authorization: headers for a proxy go through the proxy",
        ),
        (
            entry(headers='{ "proxy-connection" = "keep-alive" }'),
            "[endpoints.ollama] headers",
            "must not set proxy-connection",
        ),
        (
            entry(extra_parameters='"top_k"'),
            "[endpoints.ollama] extra_parameters",
            'must be a list of parameter names, like ["priority", "request_id"], not "top_k"',
        ),
        (
            entry(extra_parameters='["top k"]'),
            "[endpoints.ollama] extra_parameters",
            "item 1 must be a parameter name",
        ),
        (
            entry(extra_parameters='["top_k", "top_k"]'),
            "[endpoints.ollama] extra_parameters",
            'lists "top_k" twice',
        ),
        (
            entry(extra_parameters='["stream"]'),
            "[endpoints.ollama] extra_parameters",
            '"stream" is an argument of create() itself',
        ),
        *(
            (
                entry(extra_parameters=f'["{name}"]'),
                "[endpoints.ollama] extra_parameters",
                f'"{name}" is a provider option, which providerhub sets',
            )
            for name in ("headers", "max_body_bytes", "defaults", "session")
        ),
        (
            entry(rpm='"60"'),
            "[endpoints.ollama] rpm",
            'must be a whole number of requests per minute, at least 1, like 60, not "60" '
            "(leave it out for no limit)",
        ),
        (entry(rpm="0"), "[endpoints.ollama] rpm", "at least 1, like 60, not 0"),
        (entry(rpm="-5"), "[endpoints.ollama] rpm", "at least 1, like 60, not -5"),
        (entry(rpm="2.5"), "[endpoints.ollama] rpm", "a whole number of requests"),
        (entry(rpm="true"), "[endpoints.ollama] rpm", "a whole number of requests"),
        (
            entry(tpm="1e5"),
            "[endpoints.ollama] tpm",
            "must be a whole number of tokens per minute, at least 1, like 100000, not 100000.0",
        ),
        (entry(tpm="0"), "[endpoints.ollama] tpm", "tokens per minute, at least 1"),
        (entry(tpm="[1000]"), "[endpoints.ollama] tpm", "not [1000]"),
        (entry(rpn="5"), "[endpoints.ollama] rpn", "unknown field; did you mean rpm?"),
        (
            entry(modles='["x"]'),
            "[endpoints.ollama] modles",
            "unknown field; did you mean models? (the fields are url, path, models, "
            "api_key_env, stream, tools, vision, json_schema, headers, extra_parameters, rpm, "
            "tpm, embedding_models)",
        ),
        (
            entry(api_key='"sk-abc"'),
            "[endpoints.ollama] api_key",
            "unknown field: the file holds no keys",
        ),
        (entry(colour='"red"'), "[endpoints.ollama] colour", "unknown field (the fields are url,"),
        (
            '[endpoints]\nollama = "http://localhost:11434"\n',
            "[endpoints.ollama]",
            "must be a table of fields (url, path, models, api_key_env, stream, tools, "
            "vision, json_schema, headers, extra_parameters, rpm, tpm, embedding_models), "
            'not "http',
        ),
        (entry(name='"my server"'), '[endpoints."my server"]', "is not a valid provider name"),
        (entry(name="-x"), "[endpoints.-x]", "is not a valid provider name"),
        ('[[endpoints]]\nurl = "http://h"\n', "endpoints", "an array of tables ([[endpoints]])"),
        ("endpoints = 3\n", "endpoints", "must be a table of [endpoints.<name>] tables, not 3"),
        ('[endpoint.x]\nurl = "http://h"\n', "endpoint", "unknown table; did you mean endpoints?"),
    ],
)
def test_each_bad_field_is_reported_naming_file_entry_and_field(
    make_hub: MakeHub, toml: str, where: str, says: str
) -> None:
    # A valid entry follows the bad one, and loads, unless the whole [endpoints] table is
    # wrong (then there is no room for one).
    whole_table = where == "endpoints"
    hub = make_hub(toml if whole_table else toml + entry("sound"))
    error = plugin_error(hub)
    path = os.environ["PROVIDERHUB_CONFIG"]
    assert error.startswith(f"{path}: {where}: ")
    assert says in error
    assert endpoint_names(hub) == ([] if whole_table else ["sound"])


def test_each_problem_is_reported_apart_and_the_valid_entries_load(
    make_hub: MakeHub,
) -> None:
    hub = make_hub(
        entry("good")
        + entry("bad-models", models='"llama3"')
        + entry("also-good", models='["qwen2.5"]')
        + entry("bad-url", url='"localhost"', stream='"no"')
    )
    path = os.environ["PROVIDERHUB_CONFIG"]
    errors = plugin_errors(hub)
    assert [error.split(": ")[:2] for error in errors] == [
        [path, "[endpoints.bad-models] models"],
        [path, "[endpoints.bad-url] url"],
        [path, "[endpoints.bad-url] stream"],
    ]
    assert errors[0] == (
        f"{path}: [endpoints.bad-models] models: must be a non-empty list of model names, "
        'not "llama3"'
    )
    # The valid entries load, in the file's order, and serve their models.
    assert endpoint_names(hub) == ["good", "also-good"]
    assert hub.models()["qwen2.5"] == ["also-good"]
    assert [p.name for p in hub.route("llama3")] == ["good"]


def test_load_is_all_or_nothing(write_config: WriteConfig) -> None:
    path = write_config(
        entry("good") + entry("bad-models", models='"llama3"') + entry("bad-url", url="1")
    )
    with pytest.raises(ConfigError) as info:
        load()
    assert [(p.entry, p.field) for p in info.value.problems] == [
        ("bad-models", "models"),
        ("bad-url", "url"),
    ]
    assert info.value.problems[0] == Problem(
        str(path), "bad-models", "models", 'must be a non-empty list of model names, not "llama3"'
    )
    assert str(info.value) == (
        f"2 problems: {path}: [endpoints.bad-models] models: must be a non-empty list of model "
        f'names, not "llama3"; {path}: [endpoints.bad-url] url: must be a string, like '
        '"http://localhost:11434", not 1'
    )


@pytest.mark.parametrize(
    ("toml", "secret"),
    [
        (entry(api_key_env='"sk-live-1234567890abcdef"'), "sk-live-1234567890abcdef"),
        (entry(headers='{ Authorization = "Bearer tok-998877" }'), "tok-998877"),
        (entry(headers='{ "Proxy-Authorization" = "Basic cHJveHk6cHc=" }'), "cHJveHk6cHc="),
        (entry(headers='{ "X-Api-Key" = "k-55\\n66" }'), "k-55"),
        (entry(url='"http://user:pa55word@h"'), "pa55word"),
        (entry(url='"http://h/?key=abc123secret"'), "abc123secret"),
        (entry(url='"localhost:1?key=abc123secret"'), "abc123secret"),
    ],
)
def test_a_secret_put_in_the_file_is_not_repeated_in_the_error(
    make_hub: MakeHub, toml: str, secret: str
) -> None:
    hub = make_hub(toml)
    errors = plugin_errors(hub)
    assert errors
    assert all("[endpoints.ollama]" in error for error in errors)
    assert not any(secret in error for error in errors)


def test_check_keeps_the_valid_entries_and_lists_the_problems_of_the_others(
    write_config: WriteConfig,
) -> None:
    path = write_config(entry("good") + entry("bad", stream='"no"') + "[endpoint.typo]\n")
    endpoints, problems = check()
    assert [e.name for e in endpoints] == ["good"]
    assert [str(p) for p in problems] == [
        f"{path}: endpoint: unknown table; did you mean endpoints?",
        f'{path}: [endpoints.bad] stream: must be true or false, not "no"',
    ]
    path.unlink()
    with pytest.raises(ConfigError, match="no such file"):
        check()


def test_names_sharing_their_variables_are_refused(make_hub: MakeHub) -> None:
    hub = make_hub(entry("my-llm") + entry("My_LLM") + entry("MY-llm", url="1"))
    path = os.environ["PROVIDERHUB_CONFIG"]
    clash = (
        "clashes with [endpoints.my-llm]: the two names share the variables "
        "PROVIDERHUB_MY_LLM_URL and PROVIDERHUB_MY_LLM_API_KEY (and provider names ignore "
        "case); rename one"
    )
    assert plugin_errors(hub) == [
        f"{path}: [endpoints.My_LLM]: {clash}",
        f'{path}: [endpoints.MY-llm] url: must be a string, like "http://localhost:11434", not 1',
        f"{path}: [endpoints.MY-llm]: {clash}",
    ]
    # The first keeps the name; the later one is left out though its fields are right.
    assert endpoint_names(hub) == ["my-llm"]
    assert [e.name for e in check()[0]] == ["my-llm"]


def test_a_name_another_plugin_has_is_reported_and_the_rest_of_the_file_loads(
    make_hub: MakeHub,
) -> None:
    import providerhub_gravityengine

    hub = make_hub(entry("gravityengine") + entry("mine"))
    assert hub.providers["gravityengine"].obj is providerhub_gravityengine
    assert endpoint_names(hub) == ["mine"]
    error = plugin_error(hub)
    assert "a provider named 'gravityengine' is already registered" in error
    assert "providerhub-gravityengine" in error


# -- the documented entries ----------------------------------------------------------------

PLUGIN_DIR = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    PLUGIN_DIR / "README.md",
    PLUGIN_DIR.parent.parent / "docs" / "plugins" / "openai-compatible.md",
    PLUGIN_DIR.parent.parent / "docs" / "configuration.md",
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_toml_example_in_the_docs_is_a_valid_file(
    document: Path, write_config: WriteConfig
) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", document.read_text(encoding="utf-8"), re.S)
    assert blocks
    found: dict[str, Endpoint] = {}
    # Later blocks (the ready-made entries) replace the field-by-field example of one name.
    for block in blocks:
        write_config(block)
        for endpoint in load():
            found[endpoint.name] = endpoint
    if document.name != "configuration.md":
        # The ready-made entries the issue asks for, at each server's usual address.
        addresses = {name: (e.url, e.path, e.api_key_env) for name, e in found.items()}
        assert addresses == {
            "ollama": ("http://localhost:11434", "/v1/chat/completions", None),
            "llama-cpp": ("http://localhost:8080", "/v1/chat/completions", None),
            "vllm": ("http://localhost:8000", "/v1/chat/completions", None),
            "lm-studio": ("http://localhost:1234", "/v1/chat/completions", None),
            "openai": ("https://api.openai.com", "/v1/chat/completions", "OPENAI_API_KEY"),
        }


def test_endpoints_take_tools_unless_the_entry_says_tools_false(write_config: WriteConfig) -> None:
    write_config(
        '[endpoints.a]\nurl = "http://h:1"\nmodels = ["m"]\n'
        '[endpoints.b]\nurl = "http://h:2"\nmodels = ["m"]\ntools = false\nvision = true\n'
    )
    with providerhub.Hub() as hub:
        a, b = hub.providers["a"], hub.providers["b"]
        assert (a.capabilities["supports_tools"], a.capabilities["supports_vision"]) == (
            True,
            False,
        )
        assert (b.capabilities["supports_tools"], b.capabilities["supports_vision"]) == (
            False,
            True,
        )
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        assert [p.name for p in hub.route("m")] == ["a", "b"]
        with pytest.raises(providerhub.NoProviderError):
            hub.create("m", [{"role": "user", "content": "x"}], tools=tools, provider="b")


def test_rpm_and_tpm_become_the_providers_limits(write_config: WriteConfig) -> None:
    path = write_config(
        '[endpoints.a]\nurl = "http://h:1"\nmodels = ["m"]\nrpm = 60\ntpm = 100000\n'
        '[endpoints.b]\nurl = "http://h:2"\nmodels = ["m"]\nrpm = 1\n'
        '[endpoints.c]\nurl = "http://h:3"\nmodels = ["m"]\n'
    )
    a, b, c = load()
    assert (a.rpm, a.tpm, b.rpm, b.tpm, c.rpm, c.tpm) == (60, 100000, 1, None, None, None)
    assert a == Endpoint("a", "http://h:1", ("m",), str(path), rpm=60, tpm=100000)
    with providerhub.Hub() as hub:
        limits = {name: hub.providers[name].limits for name in "abc"}
        assert {name: (lim.rpm, lim.tpm) for name, lim in limits.items()} == {
            "a": (60, 100000),
            "b": (1, None),
            "c": (None, None),
        }
        assert not limits["c"]  # no limit: the router takes no count for it
