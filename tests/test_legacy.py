"""Old gpt4free-layout provider modules, loaded unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import providerhub
from providerhub import legacy
from providerhub.testing import OpenAIServer, Reply

# The seed module as the old library shipped it: relative import from the package root,
# a params string of its own, requests with no timeout.
OLD_GRAVITYENGINE = """
import os, requests
from ...typing import sha256, Dict, get_type_hints

url = 'https://gpt4.gravityengine.cc'
model = ['gpt-3.5-turbo-16k', 'gpt-3.5-turbo-0613']
supports_stream = True
needs_auth = False

def _create_completion(model: str, messages: list, stream: bool, **kwargs):
    headers = {
        'Content-Type': 'application/json',
    }
    data = {
        'model': model,
        'temperature': 0.7,
        'presence_penalty': 0,
        'messages': messages,
    }
    response = requests.post(url + '/api/openai/v1/chat/completions', headers=headers,
                             json=data, stream=True)

    yield response.json()['choices'][0]['message']['content']

params = f'g4f.Providers.{os.path.basename(__file__)[:-3]} supports: ' + \\
    '(%s)' % ', '.join([f"{name}: {get_type_hints(_create_completion)[name].__name__}" for name in _create_completion.__code__.co_varnames[:_create_completion.__code__.co_argcount]])
"""  # noqa: E501


@pytest.fixture
def old_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "Providers"
    folder.mkdir()
    (folder / "Gravityold.py").write_text(textwrap.dedent(OLD_GRAVITYENGINE))
    (folder / "Broken.py").write_text("from ...typing import NoSuchThing\n")
    (folder / "_helpers.py").write_text("raise RuntimeError('not a provider')\n")
    return folder


def test_an_old_module_loads_unchanged_keeps_its_params_and_routes(
    old_dir: Path, hub: providerhub.Hub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = legacy.load(old_dir / "Gravityold.py", hub=hub)
    assert provider.name == "Gravityold"
    assert provider.params == (
        "g4f.Providers.Gravityold supports: (model: str, messages: list, stream: bool)"
    )
    assert hub.providers["gravityold"] is provider
    monkeypatch.setenv("PROVIDERHUB_GRAVITYOLD_URL", server.url)
    server.script(Reply.text("old", " module"))
    assert hub.create("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}]) == "old module"
    assert server.requests[0].path == "/api/openai/v1/chat/completions"
    assert server.requests[0].json()["temperature"] == 0.7
    assert provider.obj.url == "https://gpt4.gravityengine.cc"  # the module is unchanged


def test_load_takes_a_module_and_a_name_and_uses_the_default_hub(
    old_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ._internals import hub_module

    own = providerhub.Hub(load_entrypoints=False)
    monkeypatch.setattr(hub_module, "_default_hub", own)
    first = legacy.load(str(old_dir / "Gravityold.py"), name="old-one")
    again = legacy.load(first.obj, name="old-two")
    assert set(own.providers) == {"old-one", "old-two"}
    assert again.obj is first.obj


def test_load_dir_reports_a_broken_file_and_loads_the_rest(
    old_dir: Path, hub: providerhub.Hub
) -> None:
    loaded = legacy.load_dir(old_dir, hub=hub)
    assert [p.name for p in loaded] == ["Gravityold"]
    [failure] = hub.plugin_errors
    assert failure.name == "Broken"
    assert "ImportError" in failure.error and "NoSuchThing" in failure.error
    with pytest.raises(providerhub.PluginError):
        legacy.load_dir(old_dir / "nope", hub=hub)
    with pytest.raises(providerhub.PluginError, match="not a Python file"):
        legacy.load(old_dir / "missing.py", hub=hub)


@pytest.mark.slow  # runs the command line in a subprocess
def test_providers_legacy_dir_lists_them(old_dir: Path) -> None:
    env = dict(os.environ)  # as the autouse fixture left it: no PROVIDERHUB_* of the developer's
    result = subprocess.run(
        [sys.executable, "-m", "providerhub", "providers", "--legacy-dir", str(old_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Gravityold  [registered in code]" in result.stdout
    assert "gravityengine  [providerhub-gravityengine" in result.stdout
    assert f"error: plugin 'Broken' (from legacy file {old_dir / 'Broken.py'})" in result.stdout


def test_a_module_that_exits_while_imported_raises_a_typed_error_not_system_exit(
    old_dir: Path, hub: providerhub.Hub
) -> None:
    quitter = old_dir / "Quitter.py"
    quitter.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(providerhub.PluginError) as caught:
        legacy.load(quitter, hub=hub)
    assert str(caught.value) == f"legacy module {quitter} failed to import: SystemExit: 3"
    assert isinstance(caught.value.__cause__, SystemExit)
    assert f"{legacy.ROOT}.Provider.Providers.Quitter" not in sys.modules
    assert "Quitter" not in hub.providers
    interrupted = old_dir / "Interrupted.py"
    interrupted.write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):  # the user's, not the module's: it goes through
        legacy.load(interrupted, hub=hub)
    interrupted.unlink()
    loaded = legacy.load_dir(old_dir, hub=hub)
    assert [p.name for p in loaded] == ["Gravityold"]
    assert {f.name: f.error for f in hub.plugin_errors}["Quitter"] == (
        "failed to import: SystemExit: 3"
    )


@pytest.mark.slow  # runs the command line in a subprocess
def test_what_a_module_prints_while_imported_keeps_out_of_providers_json(old_dir: Path) -> None:
    (old_dir / "Chatty.py").write_text(
        (old_dir / "Gravityold.py").read_text() + "\nprint('loading Chatty, hello!')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "providerhub", "providers", "--json", "--legacy-dir", str(old_dir)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # nothing else on standard output
    assert {"Chatty", "Gravityold"} <= {p["name"] for p in doc["providers"]}
    assert "loading Chatty, hello!" in result.stderr
