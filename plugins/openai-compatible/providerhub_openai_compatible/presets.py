"""The catalog: OpenAI-compatible services and local servers known by name, each a
provider of that name once its variable is set, with no configuration file.

A service is active when its key is set: ``PROVIDERHUB_<NAME>_API_KEY``, or the variable
the service's own SDK and documentation use (``GROQ_API_KEY``, ...), which a user of the
service has most likely set already. A local server is active when
``PROVIDERHUB_<NAME>_URL`` says where it listens (its preset url is only the server's
default address: a server that is not running should not be tried). An entry of the
configuration file of the same name replaces the preset whole. A preset that is not
active is not registered, and is offered instead, naming the variables that activate it.

The models are a few current ones of each service, for routing with no configuration;
``PROVIDERHUB_<NAME>_MODELS`` adds others, and ``providerhub models --refresh`` asks the
service for all of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import NamedTuple

from providerhub.plugin import (
    Offer,
    Price,
    Register,
    api_key_variable,
    base_url,
    credential,
    url_variable,
)

from .config import DEFAULT_PATH, Endpoint
from .provider import EndpointProvider

__all__ = [
    "PRESETS",
    "SOURCE",
    "Preset",
    "activating_variables",
    "is_active",
    "key",
    "register_active",
]

SOURCE = "the catalog"
"""What an endpoint made from a preset names as its ``source``."""


class Preset(NamedTuple):
    """One service or local server of the catalog: its ``name`` (the provider's), base
    ``url``, a few ``models``, the capabilities it takes (``tools``, ``vision``,
    ``json_schema``; every preset streams), ``key_env``, the service's own key
    variable (None for a local server, which needs no key), and ``prices``, the list
    prices of those of its models whose price is known (US dollars per million tokens)."""

    name: str
    url: str
    models: tuple[str, ...]
    tools: bool = True
    vision: bool = False
    json_schema: bool = False
    key_env: str | None = None
    prices: Mapping[str, Price] = MappingProxyType({})

    @property
    def local(self) -> bool:
        """Whether it is a server on the user's machine, activated by its url."""
        return self.key_env is None

    def endpoint(self) -> Endpoint:
        """The endpoint the preset stands for."""
        return Endpoint(
            name=self.name,
            url=self.url,
            models=self.models,
            source=SOURCE,
            path=DEFAULT_PATH,
            api_key_env=self.key_env,
            tools=self.tools,
            vision=self.vision,
            json_schema=self.json_schema,
            prices=self.prices,
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "openai",
            "https://api.openai.com",
            ("gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-4o-mini", "o4-mini"),
            vision=True,
            json_schema=True,
            key_env="OPENAI_API_KEY",
            # OpenAI's list prices (openai.com/api/pricing, standard tier), USD per
            # million tokens: input, output, cached input.
            prices={
                "gpt-4.1": Price(input=2, output=8, cached_input=0.5),
                "gpt-4.1-mini": Price(input=0.4, output=1.6, cached_input=0.1),
                "gpt-4o": Price(input=2.5, output=10, cached_input=1.25),
                "gpt-4o-mini": Price(input=0.15, output=0.6, cached_input=0.075),
                "o4-mini": Price(input=1.1, output=4.4, cached_input=0.275),
            },
        ),
        Preset(
            "groq",
            "https://api.groq.com/openai",
            (
                "llama-3.3-70b-versatile",
                "llama-3.1-8b-instant",
                "openai/gpt-oss-120b",
                "meta-llama/llama-4-scout-17b-16e-instruct",
            ),
            vision=True,
            json_schema=True,
            key_env="GROQ_API_KEY",
            # Groq's list prices (groq.com/pricing), USD per million tokens; the other
            # two models are left out, their prices not known for sure here.
            prices={
                "llama-3.3-70b-versatile": Price(input=0.59, output=0.79),
                "llama-3.1-8b-instant": Price(input=0.05, output=0.08),
            },
        ),
        Preset(
            "mistral",
            "https://api.mistral.ai",
            (
                "mistral-large-latest",
                "mistral-medium-latest",
                "mistral-small-latest",
                "codestral-latest",
            ),
            vision=True,
            json_schema=True,
            key_env="MISTRAL_API_KEY",
        ),
        Preset(
            "deepseek",
            "https://api.deepseek.com",
            ("deepseek-chat", "deepseek-reasoner"),
            # JSON mode only (json_object), no json_schema; text only.
            key_env="DEEPSEEK_API_KEY",
        ),
        Preset(
            "together",
            "https://api.together.xyz",
            (
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "deepseek-ai/DeepSeek-V3",
                "Qwen/Qwen2.5-72B-Instruct-Turbo",
            ),
            vision=True,
            json_schema=True,
            key_env="TOGETHER_API_KEY",
        ),
        Preset(
            "fireworks",
            "https://api.fireworks.ai/inference",
            (
                "accounts/fireworks/models/llama-v3p3-70b-instruct",
                "accounts/fireworks/models/deepseek-v3",
                "accounts/fireworks/models/qwen3-235b-a22b",
            ),
            vision=True,
            json_schema=True,
            key_env="FIREWORKS_API_KEY",
        ),
        Preset(
            "openrouter",
            "https://openrouter.ai/api",
            (
                "openai/gpt-4o-mini",
                "anthropic/claude-sonnet-4",
                "google/gemini-2.5-flash",
                "meta-llama/llama-3.3-70b-instruct",
            ),
            vision=True,
            json_schema=True,
            key_env="OPENROUTER_API_KEY",
        ),
        Preset(
            "xai",
            "https://api.x.ai",
            ("grok-4", "grok-3", "grok-3-mini"),
            vision=True,
            json_schema=True,
            key_env="XAI_API_KEY",
        ),
        Preset(
            "cerebras",
            "https://api.cerebras.ai",
            ("llama-3.3-70b", "llama3.1-8b", "qwen-3-32b", "gpt-oss-120b"),
            json_schema=True,
            key_env="CEREBRAS_API_KEY",
        ),
        # Local servers: the models are examples; each serves what it has loaded.
        Preset(
            "ollama",
            "http://localhost:11434",
            ("llama3.2", "qwen2.5", "gemma3"),
            vision=True,
            json_schema=True,
        ),
        Preset(
            "lmstudio",
            "http://localhost:1234",
            ("qwen2.5-7b-instruct", "llama-3.2-3b-instruct"),
            vision=True,
            json_schema=True,
        ),
        Preset("vllm", "http://localhost:8000", ("Qwen/Qwen2.5-7B-Instruct",), json_schema=True),
        # llama-server answers any model name with the model it loaded.
        Preset("llamacpp", "http://localhost:8080", ("default",), json_schema=True),
    )
}
"""The catalog, by name, in the order ``providerhub providers`` lists it."""


def activating_variables(preset: Preset) -> tuple[str, ...]:
    """The environment variables any one of which activates ``preset``."""
    if preset.key_env is None:
        return (url_variable(preset.name),)
    return (api_key_variable(preset.name), preset.key_env)


def is_active(preset: Preset) -> bool:
    """Whether one of :func:`activating_variables` is set (an empty value counts as
    unset), read as providerhub reads them, through its fast path to the environment."""
    if preset.key_env is None:
        return bool(base_url(preset.name, ""))
    return credential(preset.name, api_key_env=preset.key_env) is not None


def key(name: str) -> str:
    """What two names share when they share their variables (``lm-studio``,
    ``LM_STUDIO``): an entry of the file replaces the preset of the same key."""
    return url_variable(name)


def register_active(register: Register, offer: Offer, named: Collection[str]) -> None:
    """``register`` each active preset whose :func:`key` is not in ``named`` (the file's
    entries), and ``offer`` each inactive one with the variables that would activate it."""
    for preset in PRESETS.values():
        if key(preset.name) in named:
            continue
        if is_active(preset):
            register(EndpointProvider(preset.endpoint()), name=preset.name)
        else:
            offer(
                preset.name,
                activate=activating_variables(preset),
                url=preset.url,
                models=preset.models,
            )
