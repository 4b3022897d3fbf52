"""Spend: real usage documents of OpenAI, Anthropic and Gemini, read by each codec's
usage reader, priced exactly (golden values worked out by hand), and prices checked as
they are declared or configured."""

from __future__ import annotations

import types
from decimal import Decimal
from typing import Any, Callable

import pytest

import providerhub
from providerhub.plugin import HTTPProvider, PluginError, Price
from providerhub.types import Usage
from tests import _internals as internals

spend = internals._spend

GPT_4O = Price(input=2.5, output=10, cached_input=1.25)
GPT_4O_MINI = Price(input=0.15, output=0.6, cached_input=0.075)
GPT_41 = Price(input=2, output=8, cached_input=0.5)
GPT_41_MINI = Price(input=0.4, output=1.6, cached_input=0.1)
O4_MINI = Price(input=1.1, output=4.4, cached_input=0.275)
HAIKU_45 = Price(input=1, output=5, cached_input=0.1, cache_write=1.25)
OPUS_45 = Price(input=5, output=25, cached_input=0.5, cache_write=6.25)
FLASH_25 = Price(input=0.3, output=2.5, cached_input=0.03)
FLASH_LITE_25 = Price(input=0.1, output=0.4, cached_input=0.01)
FLASH_LITE_20 = Price(input=0.075, output=0.3)


def openai(doc: Any) -> Usage | None:
    usage: Usage | None = internals.openai_usage(doc)
    return usage


def anthropic(*events: Any) -> Usage | None:
    """The usage of a stream's events (message_start's, then message_delta's), merged as
    the codec merges them; one document's usage when one is given."""
    counts: dict[str, int] = {}
    usage = None
    for doc in events:
        usage = internals.anthropic_usage(doc, counts)
    return usage


def gemini(doc: Any) -> Usage | None:
    usage: Usage | None = internals.gemini_usage(doc)
    return usage


GOLDEN: list[tuple[str, Callable[..., Usage | None], tuple[Any, ...], Price | None, str]] = [
    (
        "openai plain",
        openai,
        ({"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},),
        GPT_4O,
        "0.0075",
    ),
    (
        "openai cached prompt tokens",
        openai,
        (
            {
                "prompt_tokens": 1000,
                "completion_tokens": 500,
                "total_tokens": 1500,
                "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 0},
            },
        ),
        GPT_4O,
        "0.007",
    ),
    (
        "openai o4-mini reasoning and cache",
        openai,
        (
            {
                "prompt_tokens": 2000,
                "completion_tokens": 3000,
                "total_tokens": 5000,
                "prompt_tokens_details": {"cached_tokens": 1024},
                "completion_tokens_details": {"reasoning_tokens": 2560},
            },
        ),
        O4_MINI,
        "0.0145552",
    ),
    (
        "openai every detail zero",
        openai,
        (
            {
                "prompt_tokens": 19,
                "completion_tokens": 10,
                "total_tokens": 29,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        ),
        GPT_4O_MINI,
        "0.00000885",
    ),
    (
        "openai nearly all cached",
        openai,
        (
            {
                "prompt_tokens": 2100,
                "completion_tokens": 1,
                "total_tokens": 2101,
                "prompt_tokens_details": {"cached_tokens": 2048},
            },
        ),
        GPT_41,
        "0.001136",
    ),
    (
        "openai zero tokens",
        openai,
        ({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},),
        GPT_41_MINI,
        "0",
    ),
    ("openai usage null", openai, (None,), GPT_4O, spend.NO_USAGE),
    ("openai usage empty", openai, ({},), GPT_4O, spend.NO_USAGE),
    ("openai total only", openai, ({"total_tokens": 100},), GPT_4O, "0.00025"),
    (
        "openai no completion_tokens",
        openai,
        ({"prompt_tokens": 100, "total_tokens": 150},),
        GPT_4O,
        "0.00075",
    ),
    (
        "openai huge counts",
        openai,
        ({"prompt_tokens": 10**12, "completion_tokens": 10**12, "total_tokens": 2 * 10**12},),
        GPT_4O,
        "12500000",
    ),
    (
        "a model with no price",
        openai,
        ({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},),
        None,
        spend.NO_PRICE,
    ),
    (
        "anthropic plain",
        anthropic,
        ({"input_tokens": 25, "output_tokens": 120},),
        HAIKU_45,
        "0.000625",
    ),
    (
        "anthropic cache read",
        anthropic,
        (
            {
                "input_tokens": 10,
                "cache_read_input_tokens": 5000,
                "cache_creation_input_tokens": 0,
                "output_tokens": 200,
            },
        ),
        HAIKU_45,
        "0.00151",
    ),
    (
        "anthropic cache creation",
        anthropic,
        (
            {
                "input_tokens": 3,
                "cache_creation_input_tokens": 4000,
                "cache_read_input_tokens": 0,
                "output_tokens": 50,
            },
        ),
        HAIKU_45,
        "0.005253",
    ),
    (
        "anthropic opus read, creation and thinking",
        anthropic,
        (
            {
                "input_tokens": 100,
                "cache_read_input_tokens": 20000,
                "cache_creation_input_tokens": 1000,
                "output_tokens": 1500,
            },
        ),
        OPUS_45,
        "0.05425",
    ),
    (
        "anthropic stream, message_start then message_delta",
        anthropic,
        (
            {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 2,
            },
            {"output_tokens": 89},
        ),
        HAIKU_45,
        "0.000917",
    ),
    (
        "gemini plain",
        gemini,
        ({"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 20},),
        FLASH_25,
        "0.0000324",
    ),
    (
        "gemini thoughts",
        gemini,
        (
            {
                "promptTokenCount": 10,
                "candidatesTokenCount": 100,
                "thoughtsTokenCount": 900,
                "totalTokenCount": 1010,
            },
        ),
        FLASH_25,
        "0.002503",
    ),
    (
        "gemini cached content",
        gemini,
        (
            {
                "promptTokenCount": 10000,
                "cachedContentTokenCount": 8000,
                "candidatesTokenCount": 50,
                "totalTokenCount": 10050,
            },
        ),
        FLASH_25,
        "0.000965",
    ),
    (
        "gemini prompt only (a blocked prompt)",
        gemini,
        ({"promptTokenCount": 7, "totalTokenCount": 7},),
        FLASH_LITE_25,
        "0.0000007",
    ),
    (
        "gemini cache read with no cached price",
        gemini,
        (
            {
                "promptTokenCount": 200,
                "cachedContentTokenCount": 100,
                "candidatesTokenCount": 10,
                "totalTokenCount": 210,
            },
        ),
        FLASH_LITE_20,
        "0.000018",
    ),
    ("gemini no usageMetadata", gemini, (None,), FLASH_25, spend.NO_USAGE),
]


@pytest.mark.parametrize(
    ("reader", "docs", "price", "expected"),
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_golden_costs(
    reader: Callable[..., Usage | None], docs: tuple[Any, ...], price: Price | None, expected: str
) -> None:
    found = spend.cost(reader(*docs), price)
    if expected in (spend.NO_USAGE, spend.NO_PRICE):
        assert found == expected
        return
    assert isinstance(found, int)
    dollars = spend.usd(found)
    assert abs(dollars - Decimal(expected)) <= Decimal("1e-9")
    assert dollars == Decimal(expected)  # and in fact exactly


def test_there_are_at_least_twenty_golden_shapes() -> None:
    assert len(GOLDEN) >= 20


def test_the_readers_fill_in_the_details_and_openai_json_carries_them() -> None:
    usage = openai(
        {
            "prompt_tokens": 2000,
            "completion_tokens": 3000,
            "total_tokens": 5000,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 2560},
        }
    )
    assert usage == Usage(2000, 3000, 5000, cached_tokens=1024, reasoning_tokens=2560)
    assert usage.to_dict()["prompt_tokens_details"] == {"cached_tokens": 1024}
    assert usage.to_dict()["completion_tokens_details"] == {"reasoning_tokens": 2560}
    assert Usage.from_dict(usage.to_dict()) == usage
    # Without details, the JSON is what it always was.
    assert Usage(1, 2, 3).to_dict() == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }
    created = anthropic({"input_tokens": 1, "cache_creation_input_tokens": 4, "output_tokens": 1})
    assert created is not None and created.cache_creation_tokens == 4
    assert created.prompt_tokens == 5


def test_cost_is_exact_where_floats_are_not() -> None:
    # 0.1 + 0.2 dollars: a float sum is off; picodollars are not.
    price = Price(input="0.1", output="0.2")
    total = sum(spend.cost(Usage(10**6, 0, 10**6), price) for _ in range(3))
    assert spend.usd(total) == Decimal("0.3")
    assert spend.cost(Usage(10**6, 10**6, 2 * 10**6), price) == 3 * 10**11


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": -1, "output": 1}, "0 or more"),
        ({"input": "0.0000001", "output": 1}, "millionth of a dollar"),
        ({"input": True, "output": 1}, "number of US dollars"),
        ({"input": float("nan"), "output": 1}, "finite"),
        ({"input": "two", "output": 1}, "number of US dollars"),
    ],
)
def test_a_wrong_price_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Price(**fields)
    assert "input" in str(caught.value)


def test_a_declaration_checks_its_prices() -> None:
    with pytest.raises(PluginError, match=r"prices\['m'\]: output is required"):
        HTTPProvider(name="x", url="https://a.example", models=["m"], prices={"m": {"input": 1}})
    with pytest.raises(PluginError, match="unknown field 'cached'"):
        HTTPProvider(
            name="x",
            url="https://a.example",
            models=["m"],
            prices={"m": {"input": 1, "output": 2, "cached": 1}},
        )
    ok = HTTPProvider(name="x", url="https://a.example", models=["m"], prices={"m": GPT_4O})
    assert ok.prices == {"m": GPT_4O}


def test_the_configuration_table_overrides_the_declared_prices() -> None:
    by_model, by_provider = spend.prices_from_table(
        {
            "gpt-4o": {"input": 5, "output": 20},
            "groq": {"llama-3.3-70b-versatile": {"input": 0.5, "output": 0.75}},
        }
    )
    prices = spend.Prices(
        {"openai": {"gpt-4o": GPT_4O, "gpt-4o-mini": GPT_4O_MINI}},
        by_model,
        by_provider,
    )
    assert prices.find("openai", "gpt-4o") == Price(5, 20)
    assert prices.find("azure", "gpt-4o") == Price(5, 20)
    assert prices.find("openai", "gpt-4o-mini") == GPT_4O_MINI
    assert prices.find("groq", "llama-3.3-70b-versatile") == Price(0.5, 0.75)
    assert prices.find("other", "llama-3.3-70b-versatile") is None
    with pytest.raises(ValueError, match=r"\[prices\] 'm': input is required"):
        spend.prices_from_table({"m": {"output": 1}})
    with pytest.raises(ValueError, match="must be a table"):
        spend.prices_from_table({"m": 3})


def _module(prices: Any) -> types.ModuleType:
    module = types.ModuleType("seeded")
    module.url = "http://seeded.invalid"  # type: ignore[attr-defined]
    module.model = ["m"]  # type: ignore[attr-defined]
    module.supports_stream = False  # type: ignore[attr-defined]
    module.needs_auth = False  # type: ignore[attr-defined]
    module._create_completion = lambda model, messages, stream, **kw: iter(["x"])  # type: ignore[attr-defined]
    module.prices = prices  # type: ignore[attr-defined]
    return module


def test_a_seed_contract_module_declares_prices_by_attribute() -> None:
    with providerhub.Hub(load_entrypoints=False) as hub:
        provider = hub.register(_module({"m": {"input": 1, "output": "2.5"}}))
        assert provider.prices == {"m": Price(1, 2.5)}
        with pytest.raises(PluginError, match=r"provider 'other': prices\['m'\]: input must be"):
            hub.register(_module({"m": {"input": -1, "output": 1}}), "other")


def test_the_plugins_ship_the_prices_they_are_sure_of() -> None:
    anthropic_plugin = pytest.importorskip("providerhub_anthropic")
    gemini_plugin = pytest.importorskip("providerhub_gemini")
    assert anthropic_plugin.provider.prices["claude-haiku-4-5"] == HAIKU_45
    assert anthropic_plugin.provider.prices["claude-opus-4-5-20251101"] == OPUS_45
    assert gemini_plugin.provider.prices["gemini-2.5-flash"] == FLASH_25
    assert gemini_plugin.provider.prices["gemini-2.5-flash-lite"] == FLASH_LITE_25
    assert "gemini-2.5-pro" not in gemini_plugin.provider.prices  # priced by prompt length
