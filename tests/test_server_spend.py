"""Spend and budgets through a real ``providerhub serve``: each answer's tokens and cost in
``/metrics`` by provider, model and client key (whole, streamed, unpriced), a stream's
usage asked for upstream without the client seeing it, and a key's budget refused with
429 once spent, in one process and exactly across two processes sharing a real
redis-server."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from providerhub.errors import ConfigurationError
from providerhub.testing import AnthropicReply, AnthropicServer, FakeClock, OpenAIServer, Reply

from . import _internals as internals
from ._gateway import Gateway, clean_environment
from ._redis import RedisServer

pytest.importorskip("uvicorn")
pytest.importorskip("aiohttp")

PRICED = "priced-model"  # 2.5 / 10 / 1.25 USD per million tokens, from the file
FREE = "free-model"  # no price anywhere
TEAM_KEY = "sk-client-team"  # budget_usd = 1 per day
OPEN_KEY = "sk-client-open"  # no budget
MESSAGES = [{"role": "user", "content": "Hi"}]

CACHED_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 400},
    "completion_tokens_details": {"reasoning_tokens": 200},
}
"""600 x 2.5 + 400 x 1.25 + 500 x 10 micro-dollars: 0.007 USD."""

TENTH = {"prompt_tokens": 40000, "completion_tokens": 0, "total_tokens": 40000}
"""40,000 x 2.5 micro-dollars: 0.1 USD, whose tenfold float sum is 0.9999999999999999."""


def _config(tmp: Path, upstream: OpenAIServer) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f"""
[endpoints.acme]
url = "{upstream.url}"
models = ["{PRICED}", "{FREE}"]
embedding_models = ["embed-model"]

[prices."embed-model"]
input = 0.02
output = 0

[prices."{PRICED}"]
input = 2.5
output = 10
cached_input = 1.25

[[server.keys]]
name = "team"
sha256 = "{hashlib.sha256(TEAM_KEY.encode()).hexdigest()}"
budget_usd = 1
budget_period = "day"

[[server.keys]]
name = "open"
sha256 = "{hashlib.sha256(OPEN_KEY.encode()).hexdigest()}"
""",
        encoding="utf-8",
    )
    return config


def _env(config: Path, **extra: str) -> dict[str, str]:
    return clean_environment(
        PROVIDERHUB_CONFIG=str(config),
        PROVIDERHUB_DISABLE_PLUGINS="gravityengine,anthropic,gemini",
        **extra,
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def _chat(
    gateway: Gateway, key: str, model: str = PRICED, **fields: Any
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": model, "messages": MESSAGES, **fields}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return gateway.request("POST", "/v1/chat/completions", body, headers)


def _metrics(gateway: Gateway) -> dict[str, str]:
    status, _, body = gateway.request("GET", "/metrics")
    assert status == 200
    found = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = value
    return found


def _spend(key: str, model: str = PRICED) -> str:
    return f'providerhub_spend_usd_total{{provider="acme",model="{model}",key="{key}"}}'


def _tokens(kind: str, key: str = "open") -> str:
    return f'providerhub_tokens_total{{provider="acme",model="{PRICED}",key="{key}",type="{kind}"}}'


def _seconds_to_midnight() -> float:
    now = time.time()
    return math.ceil(now / 86400) * 86400 - now


@pytest.mark.slow  # serve processes
def test_answers_whole_and_streamed_are_priced_in_the_metrics(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    gateway = Gateway(tmp_path, _env(_config(tmp_path, upstream)))
    try:
        upstream.script(Reply.text("Hello", usage=CACHED_USAGE))
        status, _, body = _chat(gateway, OPEN_KEY)
        assert status == 200
        # The client sees the usage's details, as OpenAI sends them.
        assert json.loads(body)["usage"]["prompt_tokens_details"] == {"cached_tokens": 400}

        # A stream the client asked no usage of: asked upstream, kept from the client.
        upstream.requests.clear()
        upstream.script(Reply.text("Hel", "lo", usage=CACHED_USAGE))
        status, _, body = _chat(gateway, OPEN_KEY, stream=True)
        assert status == 200
        assert upstream.requests[-1].json()["stream_options"] == {"include_usage": True}
        events = [e for e in body.split(b"\n\n") if e.startswith(b"data: {")]
        assert events and all(b'"usage"' not in e for e in events)
        assert body.endswith(b"data: [DONE]\n\n")

        # One that asked for it gets its usage chunk.
        upstream.script(Reply.text("Hi", usage=CACHED_USAGE))
        status, _, body = _chat(
            gateway, OPEN_KEY, stream=True, stream_options={"include_usage": True}
        )
        assert status == 200
        last = json.loads([e for e in body.split(b"\n\n") if e.startswith(b"data: {")][-1][6:])
        assert last["choices"] == [] and last["usage"]["total_tokens"] == 1500

        # No price, and no usage: counted as such, never guessed.
        upstream.script(Reply.text("x", usage=CACHED_USAGE), Reply.text("y"))
        assert _chat(gateway, OPEN_KEY, FREE)[0] == 200
        assert _chat(gateway, OPEN_KEY)[0] == 200

        # Embeddings: their prompt tokens, at the input price (one token a word here).
        doc = {"model": "embed-model", "input": "one two three"}
        headers = {"Authorization": f"Bearer {OPEN_KEY}", "Content-Type": "application/json"}
        status, _, body = gateway.request(
            "POST", "/v1/embeddings", json.dumps(doc).encode(), headers
        )
        assert status == 200 and json.loads(body)["usage"]["prompt_tokens"] == 3

        metrics = _metrics(gateway)
        assert Decimal(metrics[_spend("open", "embed-model")]) == Decimal("0.00000006")
        assert Decimal(metrics[_spend("open")]) == Decimal("0.021")  # 3 x 0.007, exactly
        assert metrics[_tokens("prompt")] == "3000"
        assert metrics[_tokens("completion")] == "1500"
        assert metrics[_tokens("cached")] == "1200"
        assert metrics[_tokens("reasoning")] == "600"
        unpriced = (
            'providerhub_unpriced_answers_total{provider="acme",model="%s",key="open",reason="%s"}'
        )
        assert metrics[unpriced % (FREE, "no_price")] == "1"
        assert metrics[unpriced % (PRICED, "no_usage")] == "1"
        assert _spend("open", FREE) not in metrics
    finally:
        assert gateway.stop() == 0


@pytest.mark.slow  # serve processes
def test_a_key_over_its_budget_gets_429_before_any_provider_is_asked(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    gateway = Gateway(tmp_path, _env(_config(tmp_path, upstream)))
    try:
        upstream.requests.clear()
        upstream.script(*(Reply.text("ok", usage=TENTH) for _ in range(10)))
        statuses = [_chat(gateway, TEAM_KEY)[0] for _ in range(10)]
        assert statuses == [200] * 10
        asked = len(upstream.requests)
        status, headers, body = _chat(gateway, TEAM_KEY, stream=True)
        assert status == 429
        assert len(upstream.requests) == asked  # no provider was asked
        error = json.loads(body)["error"]
        assert error["code"] == "budget_exceeded"
        assert (
            "'team' has spent 1 USD of its budget of 1 USD for this day (UTC)" in error["message"]
        )
        assert "resets at " in error["message"] and "T00:00:00Z" in error["message"]
        assert abs(int(headers["retry-after"]) - _seconds_to_midnight()) <= 2
        # Another key is not held by this one's budget.
        upstream.script(Reply.text("ok", usage=TENTH))
        assert _chat(gateway, OPEN_KEY)[0] == 200
        assert Decimal(_metrics(gateway)[_spend("team")]) == Decimal(1)
    finally:
        assert gateway.stop() == 0


@pytest.mark.slow  # serve processes
def test_the_openai_sdk_reads_the_budget_refusal_as_a_rate_limit(
    upstream: OpenAIServer, tmp_path: Path
) -> None:
    openai = pytest.importorskip("openai")
    gateway = Gateway(tmp_path, _env(_config(tmp_path, upstream)))
    try:
        upstream.script(Reply.text("ok", usage=CACHED_USAGE))
        upstream.script(*(Reply.text("ok", usage=TENTH) for _ in range(10)))
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=TEAM_KEY, max_retries=0)
        # The SDK reads the usage's details as OpenAI's own.
        usage = client.chat.completions.create(model=PRICED, messages=MESSAGES).usage
        assert usage is not None and usage.prompt_tokens_details is not None
        assert usage.prompt_tokens_details.cached_tokens == 400
        assert usage.completion_tokens_details is not None
        assert usage.completion_tokens_details.reasoning_tokens == 200
        for _ in range(9):  # 0.007 + 9 x 0.1 + the last below: over 1 USD
            client.chat.completions.create(model=PRICED, messages=MESSAGES)
        client.chat.completions.create(model=PRICED, messages=MESSAGES)
        with pytest.raises(openai.RateLimitError, match="budget"):
            client.chat.completions.create(model=PRICED, messages=MESSAGES)
        client.close()
    finally:
        assert gateway.stop() == 0


@pytest.mark.slow  # serve processes
def test_a_budget_is_exact_across_two_servers_sharing_redis(
    upstream: OpenAIServer, redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    env = _env(_config(tmp_path, upstream), PROVIDERHUB_REDIS_URL=redis_url)
    first = Gateway(tmp_path, env)
    try:
        second = Gateway(tmp_path, env)
    except BaseException:
        first.stop()
        raise
    try:
        replicas = (first, second)
        upstream.requests.clear()
        upstream.script(*(Reply.text("ok", usage=TENTH) for _ in range(10)))
        # Ten tenths of a dollar, alternating: exactly the budget, so the eleventh (on
        # either server) is refused; summed as floats they would come to 0.9999999999999999.
        statuses = [_chat(replicas[i % 2], TEAM_KEY)[0] for i in range(12)]
        assert statuses == [200] * 10 + [429, 429]
        assert len(upstream.requests) == 10
        day = time.strftime("%Y-%m-%d", time.gmtime())
        with redis_server.client() as client:
            key = f"providerhub:{{b:team}}:spend:{day}"
            assert client.get(key) == str(10**12).encode()  # picodollars, exactly 1 USD
            ttl = client.ttl(key)
        assert _seconds_to_midnight() < ttl <= _seconds_to_midnight() + 86400 + 2
        # Each server's metrics count what it served: half of it each.
        assert Decimal(_metrics(first)[_spend("team")]) == Decimal("0.5")
        assert Decimal(_metrics(second)[_spend("team")]) == Decimal("0.5")
    finally:
        assert [first.stop(), second.stop()] == [0, 0]


@pytest.mark.slow  # a serve process
def test_anthropic_answers_passed_through_and_translated_are_priced_by_the_plugin(
    tmp_path: Path,
) -> None:
    pytest.importorskip("providerhub_anthropic")
    usage = {
        "input_tokens": 10,
        "cache_read_input_tokens": 5000,
        "cache_creation_input_tokens": 0,
        "output_tokens": 200,
    }
    model = "claude-haiku-4-5"  # 1 / 5 USD, cache reads 0.1: 0.00151 USD an answer
    with AnthropicServer(api_key="sk-ant-upstream") as upstream:
        (tmp_path / "config.toml").write_text("", encoding="utf-8")
        env = clean_environment(
            PROVIDERHUB_CONFIG=str(tmp_path / "config.toml"),
            PROVIDERHUB_ANTHROPIC_URL=upstream.url,
            PROVIDERHUB_ANTHROPIC_API_KEY="sk-ant-upstream",
            PROVIDERHUB_DISABLE_PLUGINS="gravityengine,gemini,openai-compatible",
        )
        gateway = Gateway(tmp_path, env)
        try:
            upstream.script(*(AnthropicReply.text("Hi", usage=usage) for _ in range(3)))
            headers = {"Content-Type": "application/json"}
            for stream in (False, True):  # /v1/messages: passed through, whole and streamed
                doc = {"model": model, "max_tokens": 64, "messages": MESSAGES, "stream": stream}
                status, _, body = gateway.request(
                    "POST", "/v1/messages", json.dumps(doc).encode(), headers
                )
                assert status == 200, body
            doc = {"model": model, "messages": MESSAGES, "stream": True}  # translated
            status, _, body = gateway.request(
                "POST", "/v1/chat/completions", json.dumps(doc).encode(), headers
            )
            assert status == 200 and b'"usage"' not in body
            metrics = _metrics(gateway)
            labels = f'provider="anthropic",model="{model}",key=""'
            assert Decimal(metrics[f"providerhub_spend_usd_total{{{labels}}}"]) == Decimal(
                "0.00453"
            )
            assert metrics[f'providerhub_tokens_total{{{labels},type="cached"}}'] == "15000"
        finally:
            assert gateway.stop() == 0


def test_periods_and_their_ends_are_utc_days_and_months() -> None:
    period_of = internals.keys_module.period_of
    # 2026-12-31 23:59:59 UTC
    now = 1798761599.0
    assert period_of("day", now) == ("2026-12-31", 1798761600.0)
    assert period_of("month", now) == ("2026-12", 1798761600.0)
    assert period_of("month", 1771000000.0) == ("2026-02", 1772323200.0)  # to March 1st


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budget_usd = -1", "budget_usd must be a positive number"),
        ("budget_usd = true", "budget_usd must be a positive number"),
        ('budget_usd = 5\nbudget_period = "week"', 'budget_period must be "month" or "day"'),
        ('budget_period = "day"', "budget_period needs budget_usd"),
    ],
)
def test_a_wrong_budget_is_refused_at_start(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.toml"
    digest = hashlib.sha256(b"k").hexdigest()
    config.write_text(f'[[server.keys]]\nsha256 = "{digest}"\n{text}\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        internals._config.load({"PROVIDERHUB_CONFIG": str(config)})


def test_a_wrong_price_in_the_file_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[prices."m"]\ninput = 1\noutput = "ten"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\[prices\] 'm': output must be"):
        internals._config.load({"PROVIDERHUB_CONFIG": str(config)})
    config.write_text('[prices."m"]\ninput = 1\noutput = 10\n', encoding="utf-8")
    by_model, _ = internals._config.load({"PROVIDERHUB_CONFIG": str(config)}).prices
    assert set(by_model) == {"m"}


def _budgeted(period: str = "day") -> Any:
    return internals._config.ClientKey(b"\0" * 32, "team", None, 10**12, period)


def test_a_budget_holds_until_its_period_ends_then_starts_again() -> None:
    import asyncio

    clock = FakeClock(start=1798761599.0)  # 2026-12-31 23:59:59 UTC
    key = _budgeted()
    keys = internals.Keys((key,), internals.MemoryLimiter(), clock=clock)

    async def run() -> list[Any]:
        seen = [await keys.over_budget(key)]
        await keys.spend(key, 10**12 - 1)
        seen.append(await keys.over_budget(key))  # a picodollar short: still in
        await keys.spend(key, 1)
        seen.append(await keys.over_budget(key))
        clock.advance(1)  # 2027-01-01 00:00:00: a new day
        seen.append(await keys.over_budget(key))
        return seen

    first, short, over, next_day = asyncio.run(run())
    assert (first, short, next_day) == (None, None, None)
    assert over is not None and (over.spent, over.budget, over.retry_after) == (10**12, 10**12, 1)
    failure = internals._errors.over_budget(over)
    assert failure.status == 429 and failure.retry_after == 1
    assert "resets at 2027-01-01T00:00:00Z, in 1 s" in failure.message


@pytest.mark.parametrize("fail_closed", [False, True])
def test_a_budget_while_redis_is_down_is_counted_here_or_refused(fail_closed: bool) -> None:
    import asyncio

    from ._redis import free_port

    state = internals.RedisState(f"redis://127.0.0.1:{free_port()}/0", fail_closed=fail_closed)
    key = _budgeted("month")
    keys = internals.Keys((key,), state.limiter, state.budgets())

    async def run() -> tuple[Any, Any]:
        before = await keys.over_budget(key)
        await keys.spend(key, 10**12)  # Redis is down: counted in this process
        after = await keys.over_budget(key)
        await state.aclose()
        return before, after

    before, after = asyncio.run(run())
    if fail_closed:
        assert before == after and type(before).__name__ == "Refusal"
        failure = internals._errors.over_budget(before)
        assert failure.status == 503 and "budget of this client key cannot be counted" in (
            failure.message
        )
    else:
        assert before is None and after is not None and after.spent == 10**12
