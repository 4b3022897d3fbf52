"""What an answer cost: prices per model, and a usage turned into US dollars, exactly.

No I/O and no clock: the gateway (:mod:`providerhub.server`) counts and budgets with it.

A :class:`Price` is US dollars per million tokens, for the prompt's tokens (``input``),
the answer's (``output``, reasoning tokens included, as every provider bills them), the
prompt's tokens read from the provider's cache (``cached_input``, ``input`` when not
given) and those written to it (``cache_write``, Anthropic's cache creation; ``input``
when not given). A price is taken to a millionth of a dollar per million tokens, so that
one token costs a whole number of picodollars (10^-12 USD): every cost is a whole number
of picodollars, added up with no rounding at all. A price with more decimals is refused.

Prices come from the plugins' declarations (``HTTPProvider(prices=...)``, or a
seed-contract module's ``prices`` attribute) and from the configuration file's
``[prices]`` table, which overrides them::

    [prices."gpt-4o"]                 # this model, whichever provider serves it
    input = 2.5
    output = 10
    cached_input = 1.25

    [prices.groq."llama-3.3-70b-versatile"]   # this model at this provider only
    input = 0.59
    output = 0.79

An answer without usage, or of a model without a price, costs nothing and is counted as
such (:data:`NO_USAGE`, :data:`NO_PRICE`), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Union

from .types import Usage

__all__ = [
    "NO_PRICE",
    "NO_USAGE",
    "PICODOLLARS",
    "PRICE_FIELDS",
    "Price",
    "Prices",
    "cost",
    "declared_prices",
    "plain",
    "prices_from_table",
    "usd",
]

PICODOLLARS = 10**12
"""Picodollars in a dollar: the unit every cost is counted in."""

NO_USAGE = "no_usage"
"""Why an answer was not priced: the provider did not report its usage."""
NO_PRICE = "no_price"
"""Why an answer was not priced: no price is known for its model at its provider."""

PRICE_FIELDS = ("input", "output", "cached_input", "cache_write")
"""The fields of a price, US dollars per million tokens each."""

Dollars = Union[int, float, str, Decimal]


def _per_token(value: Any, field: str) -> int:
    """Picodollars per token of ``value`` dollars per million tokens."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"{field} must be a number of US dollars per million tokens")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number of US dollars per million tokens")
    try:
        # str() of a float is its shortest repr: 2.5 is Decimal("2.5"), not 2.49999...
        dollars = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{field} must be a number of US dollars per million tokens") from None
    if not dollars.is_finite() or dollars < 0:
        raise ValueError(f"{field} must be a number of dollars, 0 or more, not {value!r}")
    pico = dollars * 10**6  # per token: dollars / 10**6 tokens * 10**12
    if pico != pico.to_integral_value():
        raise ValueError(
            f"{field} = {value!r} has more decimals than a millionth of a dollar per million "
            "tokens, the finest price counted"
        )
    return int(pico)


class Price:
    """A model's price: US dollars per million tokens for ``input`` (the prompt),
    ``output`` (the answer, reasoning included), ``cached_input`` (prompt tokens read
    from the provider's cache; ``input`` when None) and ``cache_write`` (prompt tokens
    written to it; ``input`` when None). Numbers, decimal strings or
    :class:`~decimal.Decimal`, at most six decimals; a wrong one raises ``ValueError``
    naming the field."""

    __slots__ = ("_cached", "_input", "_output", "_write")

    def __init__(
        self,
        input: Dollars,
        output: Dollars,
        cached_input: Dollars | None = None,
        cache_write: Dollars | None = None,
    ) -> None:
        self._input = _per_token(input, "input")
        self._output = _per_token(output, "output")
        cached = None if cached_input is None else _per_token(cached_input, "cached_input")
        write = None if cache_write is None else _per_token(cache_write, "cache_write")
        self._cached = self._input if cached is None else cached
        self._write = self._input if write is None else write

    @property
    def input(self) -> Decimal:
        return usd(self._input * 10**6)

    @property
    def output(self) -> Decimal:
        return usd(self._output * 10**6)

    @property
    def cached_input(self) -> Decimal:
        return usd(self._cached * 10**6)

    @property
    def cache_write(self) -> Decimal:
        return usd(self._write * 10**6)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Price):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[int, int, int, int]:
        return (self._input, self._output, self._cached, self._write)

    def __repr__(self) -> str:
        return (
            f"Price(input={plain(self.input)}, output={plain(self.output)}, "
            f"cached_input={plain(self.cached_input)}, cache_write={plain(self.cache_write)})"
        )

    def picodollars(self, usage: Usage) -> int | None:
        """What ``usage`` costs at this price, in picodollars; None when it counts no
        tokens at all (a usage of None counts)."""
        prompt = usage.prompt_tokens
        completion = usage.completion_tokens
        if completion is None and prompt is not None and usage.total_tokens is not None:
            completion = max(usage.total_tokens - prompt, 0)
        if prompt is None and completion is None:
            if usage.total_tokens is None:
                return None
            prompt = usage.total_tokens  # a total alone: priced as prompt tokens, the cheaper
        prompt = prompt or 0
        cached = usage.cached_tokens or 0
        written = usage.cache_creation_tokens or 0
        # Both are counted in prompt_tokens: only the rest is billed at the input price.
        plain = max(prompt - cached - written, 0)
        return (
            plain * self._input
            + cached * self._cached
            + written * self._write
            + (completion or 0) * self._output
        )


def usd(picodollars: int) -> Decimal:
    """``picodollars`` as US dollars, exactly."""
    return Decimal(picodollars).scaleb(-12)


def plain(dollars: Decimal) -> str:
    """``dollars`` written out with no exponent and no trailing zeros: ``0.0123``."""
    text = format(dollars, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost(usage: Usage | None, price: Price | None) -> int | str:
    """What an answer with ``usage`` cost at ``price``, in picodollars; or why it could
    not be priced: :data:`NO_USAGE` (no usage, or one that counts no tokens) or
    :data:`NO_PRICE`. Zero tokens cost 0."""
    if usage is None:
        return NO_USAGE
    if price is None:
        return NO_PRICE
    found = price.picodollars(usage)
    return NO_USAGE if found is None else found


def _price_of(value: Any, where: str) -> Price:
    if isinstance(value, Price):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a table of {', '.join(PRICE_FIELDS)}")
    unknown = sorted(set(value) - set(PRICE_FIELDS))
    if unknown:
        raise ValueError(
            f"{where}: unknown field {unknown[0]!r} (the fields are {', '.join(PRICE_FIELDS)})"
        )
    for required in ("input", "output"):
        if required not in value:
            raise ValueError(f"{where}: {required} is required (US dollars per million tokens)")
    try:
        return Price(**value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def declared_prices(value: Any, who: str) -> dict[str, Price]:
    """A declaration's ``prices``, model name to :class:`Price` (or to a mapping of its
    fields), checked; ``ValueError`` naming ``who`` and the model otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{who}: prices must map model names to Price(...)")
    out = {}
    for model, price in value.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"{who}: prices has a key that is not a model name: {model!r}")
        out[model] = _price_of(price, f"{who}: prices[{model!r}]")
    return out


def _is_price_table(value: Mapping[str, Any]) -> bool:
    return any(field in value for field in PRICE_FIELDS)


def prices_from_table(
    table: Any, where: str = "[prices]"
) -> tuple[dict[str, Price], dict[tuple[str, str], Price]]:
    """The configuration file's ``[prices]`` table: prices by model (``[prices."m"]``)
    and by provider and model (``[prices.provider."m"]``). ``ValueError`` saying where
    and what for a wrong entry."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table of models")
    by_model: dict[str, Price] = {}
    by_provider: dict[tuple[str, str], Price] = {}
    for name, value in table.items():
        at = f"{where} {name!r}"
        if not isinstance(value, Mapping):
            raise ValueError(f"{at} must be a table: input, output, and optionally cached_input")
        if _is_price_table(value):
            by_model[name] = _price_of(value, at)
            continue
        if not value:
            raise ValueError(f"{at} is empty: a price needs input and output")
        for model, price in value.items():
            by_provider[(name, model)] = _price_of(price, f"{where} {name!r} {model!r}")
    return by_model, by_provider


class Prices:
    """Every price known: the configuration file's (by provider and model, then by model),
    then the plugins' declarations (by provider and model)."""

    def __init__(
        self,
        declared: Mapping[str, Mapping[str, Price]] | None = None,
        by_model: Mapping[str, Price] | None = None,
        by_provider: Mapping[tuple[str, str], Price] | None = None,
    ) -> None:
        self._declared = {
            (provider, model): price
            for provider, prices in (declared or {}).items()
            for model, price in prices.items()
        }
        self._by_model = dict(by_model or {})
        self._by_provider = dict(by_provider or {})

    def __bool__(self) -> bool:
        return bool(self._declared or self._by_model or self._by_provider)

    def find(self, provider: str | None, model: str) -> Price | None:
        """The price of ``model`` served by ``provider``, or None when none is known."""
        if provider is not None:
            found = self._by_provider.get((provider, model))
            if found is not None:
                return found
        found = self._by_model.get(model)
        if found is not None or provider is None:
            return found
        return self._declared.get((provider, model))
