"""Routing strategies through a real ``providerhub serve`` and the ``providerhub`` command:
the ``[routing]`` table of the configuration file applies to the gateway, whose
``/metrics`` shows each model's strategy and each provider's share, and ``providerhub
providers`` shows the strategies and the configured shares."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from providerhub.testing import OpenAIServer, Reply

from ._gateway import Gateway, clean_environment

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

MODEL = "team-model"
CALLS = 60


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIServer, OpenAIServer]]:
    with OpenAIServer() as big, OpenAIServer() as small:
        big.default = small.default = Reply.text("ok")
        yield big, small


@pytest.fixture(scope="module")
def env(
    upstreams: tuple[OpenAIServer, OpenAIServer], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    big, small = upstreams
    config = tmp_path_factory.mktemp("strategies") / "config.toml"
    config.write_text(
        f'[endpoints.big]\nurl = "{big.url}"\nmodels = ["{MODEL}", "solo"]\n\n'
        f'[endpoints.small]\nurl = "{small.url}"\nmodels = ["{MODEL}"]\n\n'
        f'[routing.models."{MODEL}"]\nstrategy = "weighted"\nweights = {{ big = 3, small = 1 }}\n',
        encoding="utf-8",
    )
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config), PROVIDERHUB_DISABLE_PLUGINS="gravityengine"
    )


def test_the_gateway_routes_by_the_table_and_shows_the_shares(
    upstreams: tuple[OpenAIServer, OpenAIServer], env: dict[str, str], tmp_path: Path
) -> None:
    big, small = upstreams
    gateway = Gateway(tmp_path, env)
    try:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        for _ in range(CALLS):
            status, _, answer = gateway.request(
                "POST", "/v1/chat/completions", body.encode(), {"Content-Type": "application/json"}
            )
            assert status == 200, answer
            assert json.loads(answer)["choices"][0]["message"]["content"] == "ok"
        status, _, metrics = gateway.request("GET", "/metrics")
        assert status == 200
        text = metrics.decode()
    finally:
        assert gateway.stop() == 0
    assert "Traceback" not in gateway.log(), gateway.log()
    assert f'providerhub_routing_strategy{{model="{MODEL}",strategy="weighted"}} 1' in text
    assert 'model="solo"' not in text  # one provider: nothing to share
    won = {
        provider: int(count)
        for provider, count in re.findall(
            rf'providerhub_provider_calls_won_total{{model="{MODEL}",provider="(\w+)"}} (\d+)',
            text,
        )
    }
    assert won == {"big": len(big.requests), "small": len(small.requests)}
    assert sum(won.values()) == CALLS
    assert won["big"] > won["small"] > 0  # 3:1 (P(fail) < 0.01% at 60 calls)


def test_providerhub_providers_shows_each_models_strategy(env: dict[str, str]) -> None:
    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "providerhub", "providers", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    text = run()
    assert "routing (strategy: providers, with each one's configured share):" in text
    assert f"  {MODEL}  weighted: big 75%, small 25%\n" in text
    assert "solo" not in text.partition("routing (")[2]
    [row] = json.loads(run("--json"))["routing"]
    assert row == {
        "model": MODEL,
        "strategy": "weighted",
        "providers": ["big", "small"],
        "shares": {"big": 0.75, "small": 0.25},
    }
