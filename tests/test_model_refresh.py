"""``providerhub models --refresh``: each provider's list endpoint asked, in its dialect
(OpenAI's, Anthropic's, Gemini's), against real local servers; the answers cached in a
file that later hubs read, with no network call; failures one line each."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import providerhub
from providerhub.plugin import HTTPProvider

from ._internals import MODEL_LISTS, cache_path, cli, default_cache_dir, hub_module, refresh

KEY = "sk-list-test-8a7f3c"

Answer = tuple[int, Any]  # status, JSON document (or bytes, sent as they are)


class ListServer:
    """A threaded HTTP server on 127.0.0.1 that answers every GET with ``answer(path,
    query, headers)`` and keeps what it was asked in ``requests``. ``hang`` makes it
    wait, without answering, until it is stopped."""

    def __init__(self, answer: Callable[[str, dict[str, str], dict[str, str]], Answer]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.hang = False
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append((parts.path, query, headers))
                if owner.hang:
                    owner.stopping.wait(10)
                    return
                status, document = owner.answer(parts.path, query, headers)
                body = document if isinstance(document, bytes) else json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ListServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class Declared:
    """A provider of a dialect given by its codec key, as the Anthropic and Gemini plugins
    declare theirs: what the refresh reads of a declaration (``codec``, ``url``,
    ``path``, where the key goes)."""

    supports_stream = True
    needs_auth = True

    def __init__(self, codec: str, url: str, header: str) -> None:
        self.codec = codec
        self.url = url
        self.model = ["first-model"]
        self.key_header = header
        self.key_scheme = ""
        self.path = "/v1/messages"
        self.headers: dict[str, str] = {}

    def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
        yield "hi"


def bearer_models(*names: str) -> Callable[[str, dict[str, str], dict[str, str]], Answer]:
    """OpenAI's list, for requests that carry the key as a Bearer token."""

    def answer(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if headers.get("authorization") != f"Bearer {KEY}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "auth"}}
        if path != "/v1/models":
            return 404, {"error": {"message": "not found"}}
        return 200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}

    return answer


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PROVIDERHUB_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def default_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line's default hub, built afresh by the test's first command."""
    monkeypatch.setattr(hub_module, "_default_hub", None)
    yield
    if hub_module._default_hub is not None:
        hub_module._default_hub.close()
    hub_module._default_hub = None


def cli_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command, in this process, with a fresh default hub (as a new process has)."""
    hub_module._default_hub = None
    try:
        code = cli.main(list(args))
    finally:
        if hub_module._default_hub is not None:
            hub_module._default_hub.close()
        hub_module._default_hub = None
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_groq_is_asked_with_its_key_and_later_hubs_route_what_it_listed(
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("providerhub_openai_compatible")
    with ListServer(bearer_models("llama-3.3-70b-versatile", "brand-new-model")) as server:
        monkeypatch.setenv("PROVIDERHUB_GROQ_API_KEY", KEY)
        monkeypatch.setenv("PROVIDERHUB_GROQ_URL", server.url)
        monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "anthropic,gemini,gravityengine")
        code, out, _ = cli_run(capsys, "models", "--refresh", "-p", "groq")
        assert code == 0, out
        assert "groq  ok       2 models\n" in out
        assert f"to {cache_dir / 'models.json'}\n" in out
        assert KEY not in out
        [(path, _, headers)] = server.requests
        assert path == "/v1/models"
        assert headers["authorization"] == f"Bearer {KEY}"
    doc = json.loads((cache_dir / "models.json").read_text())
    assert doc["version"] == 1
    assert doc["providers"]["groq"]["models"] == ["llama-3.3-70b-versatile", "brand-new-model"]
    assert doc["providers"]["groq"]["url"] == server.url
    assert KEY not in json.dumps(doc)
    # A later hub reads the file, not the network (the server is gone).
    with providerhub.Hub() as hub:
        groq = hub.providers["groq"]
        assert groq.origin("brand-new-model") == "cache"
        assert groq.origin("llama-3.3-70b-versatile") == "plugin"
        assert [p.name for p in hub.route("brand-new-model")] == ["groq"]
    code, out, _ = cli_run(capsys, "models")
    assert code == 0
    assert "\nbrand-new-model " in "\n" + out and " groq (cache)\n" in out
    assert "(cache): listed by the provider when 'providerhub models --refresh' last asked" in out


def test_anthropic_lists_are_read_page_after_page(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_CLAUDE_API_KEY", KEY)
    pages = {
        None: {"data": [{"id": "claude-a"}, {"id": "claude-b"}], "has_more": True,
               "first_id": "claude-a", "last_id": "claude-b"},
        "claude-b": {"data": [{"id": "claude-c"}], "has_more": False,
                     "first_id": "claude-c", "last_id": "claude-c"},
    }  # fmt: skip

    def answer(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
        return 200, pages[query.get("after_id")]

    with ListServer(answer) as server, providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Declared("anthropic-messages", server.url, "x-api-key"), name="claude")
        [listed], _ = refresh(hub, timeout=5, path=cache_dir / "models.json")
        assert listed.status == "ok"
        assert listed.models == ("claude-a", "claude-b", "claude-c")
        assert [(p, q) for p, q, _ in server.requests] == [
            ("/v1/models", {"limit": "1000"}),
            ("/v1/models", {"limit": "1000", "after_id": "claude-b"}),
        ]
        assert "authorization" not in server.requests[0][2]
    with providerhub.Hub(load_entrypoints=False) as later:
        provider = later.register(Declared("anthropic-messages", server.url, "x-api-key"), "claude")
        assert provider.model == ("first-model", "claude-a", "claude-b", "claude-c")


def test_gemini_lists_keep_generate_content_models_without_their_prefix(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_GEMINI_API_KEY", KEY)

    def model(name: str, *methods: str) -> dict[str, Any]:
        return {"name": f"models/{name}", "supportedGenerationMethods": list(methods)}

    pages = {
        None: {
            "models": [
                model("gemini-2.5-flash", "generateContent", "countTokens"),
                model("text-embedding-004", "embedContent"),
            ],
            "nextPageToken": "page-2",
        },
        "page-2": {"models": [model("gemini-2.5-pro", "generateContent")]},
    }

    def answer(path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        assert path == "/v1beta/models"
        assert "key" not in query  # the key travels in a header, never in the url
        if headers.get("x-goog-api-key") != KEY:
            return 403, {"error": {"code": 403, "message": "API key not valid."}}
        return 200, pages[query.get("pageToken")]

    with ListServer(answer) as server, providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Declared("gemini", server.url, "x-goog-api-key"), name="gemini")
        [listed], _ = refresh(hub, timeout=5, path=cache_dir / "models.json")
    assert listed.status == "ok", listed.reason
    assert listed.models == ("gemini-2.5-flash", "gemini-2.5-pro")
    assert [q.get("pageToken") for _, q, _ in server.requests] == [None, "page-2"]
    assert all(q["pageSize"] == "1000" for _, q, _ in server.requests)


def test_each_dialect_has_its_list() -> None:
    assert set(MODEL_LISTS) >= {"openai-chat", "anthropic-messages", "gemini"}


def test_a_refused_key_fails_that_provider_only_and_keeps_its_last_list(
    monkeypatch: pytest.MonkeyPatch, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ListServer(bearer_models("good-model")) as server, providerhub.Hub(False) as hub:
        hub.register(HTTPProvider(name="good", url=server.url, models=["g"]))
        hub.register(HTTPProvider(name="bad", url=server.url, models=["b"]))
        monkeypatch.setenv("PROVIDERHUB_GOOD_API_KEY", KEY)
        monkeypatch.setenv("PROVIDERHUB_BAD_API_KEY", KEY)
        refresh(hub, timeout=5)  # both answer
        monkeypatch.setenv("PROVIDERHUB_BAD_API_KEY", "sk-wrong-key-0000")
        results, _ = refresh(hub, timeout=5)
    good, bad = results
    assert good.status == "ok" and good.models == ("good-model",)
    assert bad.status == "failed"
    assert bad.reason.startswith("bad: HTTP 401")
    assert "Incorrect API key provided" in bad.reason
    assert "set PROVIDERHUB_BAD_API_KEY" in bad.reason
    assert "sk-wrong-key-0000" not in bad.reason
    doc = json.loads((cache_dir / "models.json").read_text())
    assert doc["providers"]["bad"]["models"] == ["good-model"]  # its last good answer
    assert doc["errors"]["bad"]["error"] == bad.reason
    assert "good" not in doc["errors"]
    assert "sk-wrong-key-0000" not in json.dumps(doc)


def test_the_command_exits_1_naming_the_failure(
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
    tmp_path: Path,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    with ListServer(bearer_models("m")) as server:
        config.write_text(
            f'[endpoints.local]\nurl = "{server.url}"\nmodels = ["m"]\n'
            f'api_key_env = "LOCAL_TEST_KEY"\n'
            f'[endpoints.moved]\nurl = "{server.url}"\npath = "/api/chat/completions"\n'
            'models = ["m"]\n'
        )
        monkeypatch.setenv("PROVIDERHUB_CONFIG", str(config))
        monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "anthropic,gemini,gravityengine")
        monkeypatch.setenv("LOCAL_TEST_KEY", "sk-rejected-1234")
        monkeypatch.setenv("PROVIDERHUB_MOVED_API_KEY", KEY)
        code, out, err = cli_run(capsys, "models", "--refresh")
    assert code == 1
    assert "Traceback" not in out + err
    lines = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert lines["local"].startswith("failed   local: HTTP 401")
    assert "set LOCAL_TEST_KEY" in lines["local"]
    assert lines["moved"].startswith("failed   moved: HTTP 404")
    assert "/api/models: the service lists no models there" in lines["moved"]
    assert "PROVIDERHUB_MOVED_MODELS" in lines["moved"]
    assert "sk-rejected-1234" not in out + err
    assert sorted(p for p, _, _ in server.requests) == ["/api/models", "/v1/models"]


def test_a_server_that_never_answers_fails_within_the_timeout(cache_dir: Path) -> None:
    threads = threading.active_count()
    with ListServer(bearer_models()) as server, providerhub.Hub(load_entrypoints=False) as hub:
        server.hang = True
        hub.register(HTTPProvider(name="stuck", url=server.url, models=["s"]))
        started = time.monotonic()
        [listed], _ = refresh(hub, timeout=0.5)
        took = time.monotonic() - started
    assert listed.status == "failed"
    assert listed.reason.startswith("stuck: no whole answer from http://127.0.0.1:")
    assert "/v1/models within 0.5 s" in listed.reason
    assert took < 3
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= threads


def test_a_corrupt_cache_is_ignored_with_a_warning(
    cache_dir: Path,
    caplog: pytest.LogCaptureFixture,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache_dir.mkdir()
    (cache_dir / "models.json").write_text('{"version": 1, "providers": {"x": {"models": [')
    warnings = caplog.at_level(logging.WARNING, logger="providerhub.models")
    with warnings, providerhub.Hub(load_entrypoints=False) as hub:
        provider = hub.register(HTTPProvider(name="x", url="http://127.0.0.1:9", models=["a"]))
        assert provider.model == ("a",)
        assert hub.model_cache.problem is not None
        assert "is not JSON; ignored" in hub.model_cache.problem
    assert any("is not JSON" in r.getMessage() for r in caplog.records)
    code, out, _ = cli_run(capsys, "models")
    assert code == 0
    assert f"warning: the models cache {cache_dir / 'models.json'} is not JSON; ignored" in out
    # A file of another shape is ignored the same way.
    (cache_dir / "models.json").write_text(
        '{"version": 1, "providers": {"x": {"models": ["a b"]}}}'
    )
    with providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(HTTPProvider(name="x", url="http://127.0.0.1:9", models=["a"]))
        assert "no valid list of model names for 'x'" in str(hub.model_cache.problem)


def test_a_hub_reads_the_cache_once_and_never_the_network(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir.mkdir()
    document = {"version": 1, "fetched_at": "2026-12-07T00:00:00Z",
                "providers": {"acme": {"url": "x", "fetched_at": "x", "models": ["acme-new"]}},
                "errors": {}}  # fmt: skip
    (cache_dir / "models.json").write_text(json.dumps(document))
    monkeypatch.setenv("PROVIDERHUB_ACME_MODELS", "acme-env,acme-new")
    with ListServer(bearer_models()) as server:
        with providerhub.Hub(load_entrypoints=False) as hub:
            provider = hub.register(HTTPProvider(name="ACME", url=server.url, models=["acme-1"]))
            assert provider.model == ("acme-1", "acme-env", "acme-new")
            assert provider.origin("acme-new") == "env"  # the variable comes first
            assert hub.model_cache.fetched_at == "2026-12-07T00:00:00Z"
        assert server.requests == []


def test_the_cache_directory_follows_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    linux = default_cache_dir(platform="linux", environ={}, home="/home/me")
    assert str(linux) == "/home/me/.cache/providerhub"
    xdg = default_cache_dir(platform="linux", environ={"XDG_CACHE_HOME": "/xdg"}, home="/h")
    assert str(xdg) == "/xdg/providerhub"
    relative = default_cache_dir(platform="linux", environ={"XDG_CACHE_HOME": "rel"}, home="/h")
    assert str(relative) == "/h/.cache/providerhub"
    mac = default_cache_dir(platform="darwin", environ={}, home="/Users/me")
    assert str(mac) == "/Users/me/Library/Caches/providerhub"
    windows = default_cache_dir(platform="win32", environ={"LOCALAPPDATA": "C:\\Local"})
    assert str(windows) == "C:\\Local\\providerhub\\Cache"
    assert cache_path({"PROVIDERHUB_CACHE_DIR": "/somewhere"}) == Path("/somewhere/models.json")


def test_a_cache_that_cannot_be_written_is_said_after_the_results(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("providerhub_openai_compatible")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PROVIDERHUB_CACHE_DIR", str(blocker))
    monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "anthropic,gemini,gravityengine")
    with ListServer(bearer_models("m")) as server:
        monkeypatch.setenv("PROVIDERHUB_OLLAMA_URL", server.url)
        monkeypatch.setenv("PROVIDERHUB_OLLAMA_API_KEY", KEY)
        code, out, err = cli_run(capsys, "models", "--refresh")
    assert code == 2
    assert "ollama  ok       1 models\n" in out
    assert "providerhub: error: the models cache cannot be written" in err
    assert "set PROVIDERHUB_CACHE_DIR to a directory you can write" in err


def test_the_anthropic_and_gemini_plugins_refresh_from_their_own_list_endpoints(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    default_hub: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("providerhub_anthropic")
    pytest.importorskip("providerhub_gemini")
    from providerhub.testing import AnthropicServer, GeminiServer

    monkeypatch.setenv("PROVIDERHUB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "gravityengine")
    claude = AnthropicServer(api_key="sk-ant-list", models=["claude-next-9", "claude-opus-5-5"])
    gemini = GeminiServer(api_key="g-list", models=["gemini-next-9", "text-embedding-004"])
    with claude, gemini:
        monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_URL", claude.url)
        monkeypatch.setenv("PROVIDERHUB_ANTHROPIC_API_KEY", "sk-ant-list")
        monkeypatch.setenv("PROVIDERHUB_GEMINI_URL", gemini.url)
        monkeypatch.setenv("PROVIDERHUB_GEMINI_API_KEY", "g-list")
        code, out, err = cli_run(capsys, "models", "--refresh")
        assert code == 0, err
        assert "anthropic  ok       2 models\n" in out and "gemini     ok       1 models\n" in out
        # Each list was asked with its provider's own key header, never in the URL.
        assert claude.requests[-1].headers["x-api-key"] == "sk-ant-list"
        assert gemini.requests[-1].headers["x-goog-api-key"] == "g-list"
        assert "g-list" not in gemini.requests[-1].path
    code, out, _ = cli_run(capsys, "models")
    assert code == 0
    # A model the plugin did not know is served from the cache; the embedding model,
    # which cannot generate content, is not among the chat models.
    assert re.search(r"^claude-next-9 +anthropic \(cache\)$", out, re.MULTILINE)
    assert re.search(r"^gemini-next-9 +gemini \(cache\)$", out, re.MULTILINE)
    assert not re.search(r"^text-embedding-004 +gemini", out, re.MULTILINE)
