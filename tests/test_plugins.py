"""Plugin discovery through real entry points: distributions written to a temporary
``sys.path`` entry, found by ``importlib.metadata`` as installed ones are."""

from __future__ import annotations

import sys
from typing import Any, Callable

import pytest

import providerhub
from providerhub.testing import OpenAIServer

from ._support import seed_module

HI = [{"role": "user", "content": "Hi"}]

HOOK_PLUGIN = """
from providerhub import hookimpl


class Echo:
    def __init__(self, name, models):
        self.name = name
        self.url = "http://" + name + ".invalid"
        self.model = models
        self.supports_stream = True
        self.needs_auth = False

    def _create_completion(self, model, messages, stream, **kwargs):
        yield self.name + " says " + messages[-1]["content"]


@hookimpl
def register_providers(register):
    register(Echo("echo-one", ["echo-model"]))
    register(Echo("echo-two", ["echo-model", "other-model"]))
"""


def test_installed_gravityengine_is_found_from_its_distribution() -> None:
    with providerhub.Hub() as hub:
        provider = hub.providers["gravityengine"]
        assert provider.distribution == "providerhub-gravityengine"
        assert provider.version
        assert provider.plugin == "gravityengine"
        assert provider.url == "https://gpt4.gravityengine.cc"
        assert provider.model == ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613")


def test_a_seed_contract_module_is_found_listed_and_routed_to(
    make_dist: Callable[..., Any], server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-seed",
        modules={"phtest_seed": seed_module(["seed-model"])},
        entry_points={"seedling": "phtest_seed"},
    )
    monkeypatch.setenv("PROVIDERHUB_SEEDLING_URL", server.url)
    with providerhub.Hub() as hub:
        assert "seedling" in hub.providers
        provider = hub.providers["seedling"]
        assert provider.distribution == "phtest-seed"
        assert provider.params == (
            "providerhub.providers.seedling supports: "
            "(model: str, messages: list, stream: bool, **kwargs)"
        )
        assert [p.name for p in hub.route("seed-model")] == ["seedling"]
        answer = hub.create("seed-model", HI)
    assert "You said: Hi" in answer
    assert server.requests[-1].json()["model"] == "seed-model"
    assert "phtest_seed" in sys.modules
    assert "providerhub" not in sys.modules["phtest_seed"].__dict__


def test_a_seed_module_that_needs_auth_gets_the_credential(
    make_dist: Callable[..., Any], server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-locked",
        modules={"phtest_locked": seed_module(["locked-model"], needs_auth=True)},
        entry_points={"locked": "phtest_locked"},
    )
    monkeypatch.setenv("PROVIDERHUB_LOCKED_URL", server.url)
    with providerhub.Hub() as hub:
        with pytest.raises(providerhub.NoProviderError) as info:
            hub.create("locked-model", HI)
        assert "PROVIDERHUB_LOCKED_API_KEY" in str(info.value)
        monkeypatch.setenv("PROVIDERHUB_LOCKED_API_KEY", "sk-test-seed-credential")
        hub.create("locked-model", HI)
    module = sys.modules["phtest_locked"]
    assert module.received[-1]["kwargs"]["auth"] == "sk-test-seed-credential"
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-test-seed-credential"


def test_a_hook_plugin_registers_several_providers(make_dist: Callable[..., Any]) -> None:
    make_dist(
        "phtest-echo", modules={"phtest_echo": HOOK_PLUGIN}, entry_points={"echo": "phtest_echo"}
    )
    with providerhub.Hub() as hub:
        assert {"echo-one", "echo-two"} <= set(hub.providers)
        assert hub.providers["echo-two"].plugin == "echo"
        assert hub.providers["echo-two"].distribution == "phtest-echo"
        assert [p.name for p in hub.route("echo-model")] == ["echo-one", "echo-two"]
        assert hub.create("other-model", HI) == "echo-two says Hi"
        assert hub.plugin_manager.has_plugin("echo")


def test_broken_plugins_are_reported_and_the_others_keep_working(
    make_dist: Callable[..., Any],
) -> None:
    make_dist(
        "phtest-broken",
        modules={
            "phtest_importfail": "raise ImportError('needs libfoo, which is missing')\n",
            "phtest_nocontract": "url = 'http://x.invalid'\n",
            "phtest_regfail": (
                "from providerhub import hookimpl\n"
                "from phtest_echo import Echo\n"
                "@hookimpl\n"
                "def register_providers(register):\n"
                "    register(Echo('half-registered', ['half-model']))\n"
                "    raise RuntimeError('config file unreadable')\n"
            ),
            "phtest_exits": "import sys\nsys.exit('no')\n",
        },
        entry_points={
            "importfail": "phtest_importfail",
            "nocontract": "phtest_nocontract",
            "regfail": "phtest_regfail",
            "exits": "phtest_exits",
        },
    )
    make_dist(
        "phtest-echo", modules={"phtest_echo": HOOK_PLUGIN}, entry_points={"echo": "phtest_echo"}
    )
    with providerhub.Hub() as hub:
        errors = {e.name: e for e in hub.plugin_errors}
        assert set(errors) == {"importfail", "nocontract", "regfail", "exits"}
        assert errors["importfail"].distribution == "phtest-broken"
        assert "ImportError: needs libfoo" in errors["importfail"].error
        assert "no 'model'" in errors["nocontract"].error
        assert "RuntimeError: config file unreadable" in errors["regfail"].error
        assert "SystemExit" in errors["exits"].error
        assert "half-registered" not in hub.providers  # all or nothing
        assert not hub.plugin_manager.has_plugin("regfail")
        assert hub.create("echo-model", HI) == "echo-one says Hi"
        assert "gravityengine" in hub.providers
        assert "plugin 'importfail' (from phtest-broken): failed to import: ImportError" in str(
            errors["importfail"]
        )


def test_two_plugins_with_one_provider_name_report_the_second(
    make_dist: Callable[..., Any],
) -> None:
    make_dist(
        "phtest-a", modules={"phtest_a": seed_module(["m"])}, entry_points={"same": "phtest_a"}
    )
    make_dist(
        "phtest-b", modules={"phtest_b": seed_module(["m"])}, entry_points={"same": "phtest_b"}
    )
    with providerhub.Hub() as hub:
        assert hub.providers["same"].distribution == "phtest-a"
        [error] = [e for e in hub.plugin_errors if e.name == "same"]
        assert error.distribution == "phtest-b"
        assert "already registered (from phtest-a)" in error.error


def test_plugins_register_in_entry_point_name_order(make_dist: Callable[..., Any]) -> None:
    make_dist(
        "phtest-order",
        modules={"phtest_z": seed_module(["shared"]), "phtest_y": seed_module(["shared"])},
        entry_points={"zeta": "phtest_z", "alpha": "phtest_y"},
    )
    with providerhub.Hub() as hub:
        assert [p.name for p in hub.route("shared")] == ["alpha", "zeta"]


def test_disabled_plugins_are_not_even_imported(
    make_dist: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-off",
        modules={"phtest_off": "raise RuntimeError('must not be imported')\n"},
        entry_points={"off": "phtest_off"},
    )
    monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "OFF,gravityengine")
    with providerhub.Hub() as hub:
        assert hub.plugin_errors == []
        assert hub.disabled_plugins == ["gravityengine", "off"]
        assert "gravityengine" not in hub.providers
    assert "phtest_off" not in sys.modules


def test_each_hub_has_its_own_plugin_manager() -> None:
    with providerhub.Hub() as one, providerhub.Hub() as two:
        assert one.plugin_manager is not two.plugin_manager
        assert set(one.providers) == set(two.providers)


def test_a_url_override_reaches_a_seed_module_without_changing_it(
    make_dist: Callable[..., Any], server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-seedurl",
        modules={"phtest_seedurl": seed_module(["url-model"])},
        entry_points={"seedurl": "phtest_seedurl"},
    )
    monkeypatch.setenv("PROVIDERHUB_SEEDURL_URL", server.url)
    with providerhub.Hub() as hub:
        assert "You said: Hi" in hub.create("url-model", HI)
    module = sys.modules["phtest_seedurl"]
    assert module.url == "http://127.0.0.1:9"  # as declared: other users see no change
    assert len(module.received) == 1  # the module's own state is shared, not copied


def test_a_plugin_may_report_a_problem_and_keep_its_other_providers(
    make_dist: Callable[..., Any],
) -> None:
    make_dist(
        "phtest-partial",
        modules={
            "phtest_partial": (
                "from providerhub import hookimpl\n"
                "from phtest_echo import Echo\n"
                "@hookimpl\n"
                "def register_providers(register, report):\n"
                "    register(Echo('kept', ['kept-model']))\n"
                "    report('[endpoints.bad] url: must start with http')\n"
            ),
            "phtest_echo": HOOK_PLUGIN,
        },
        entry_points={"partial": "phtest_partial"},
    )
    with providerhub.Hub() as hub:
        assert "kept" in hub.providers
        [error] = [e for e in hub.plugin_errors if e.name == "partial"]
        assert error.error == "[endpoints.bad] url: must start with http"
        assert error.distribution == "phtest-partial"


def test_an_environment_alias_cannot_hide_a_model_a_plugin_serves(
    make_dist: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist(
        "phtest-hooks-alias",
        modules={"phtest_hooks_alias": HOOK_PLUGIN},
        entry_points={"echoes": "phtest_hooks_alias"},
    )
    # echo-model is served by the plugin, loaded after the variable is read.
    monkeypatch.setenv("PROVIDERHUB_ALIASES", "echo-model=other-model, quick=other-model")
    with providerhub.Hub(retries=0) as hub:
        assert dict(hub.aliases) == {"quick": "other-model"}  # the other alias still applies
        [error] = hub.alias_errors
        assert error.startswith("PROVIDERHUB_ALIASES: echo-model=other-model was left out: ")
        assert "a model a provider serves" in error
        assert hub.create("echo-model", HI, provider="echo-one") == "echo-one says Hi"
        assert [p.name for p in hub.route("quick")] == ["echo-two"]
