from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, Optional

import providerhub

from ._internals import NO_DEFAULT, describe, render


def test_gravityengine_params_are_the_seed_line() -> None:
    import providerhub_gravityengine as ge

    expected = (
        "providerhub.providers.gravityengine supports: "
        "(model: str, messages: list, stream: bool, **kwargs)"
    )
    assert ge.params == expected
    assert render("gravityengine", ge._create_completion) == expected


def test_defaults_and_keyword_only_parameters_follow_the_positional_ones() -> None:
    def completion(
        model: str,
        messages: list,  # type: ignore[type-arg]
        stream: bool,
        temperature: float = 0.7,
        *,
        top_p: Optional[float] = None,  # noqa: UP045  # the rendering of typing.Optional
        **kwargs: Any,
    ) -> Iterator[str]:
        yield ""

    assert render("x", completion) == (
        "providerhub.providers.x supports: (model: str, messages: list, stream: bool, "
        "temperature: float = 0.7, *, top_p: Optional[float] = None, **kwargs)"
    )


def test_unannotated_parameters_render_without_a_type_instead_of_crashing() -> None:
    def completion(model, messages, stream, **kwargs):  # type: ignore[no-untyped-def]
        yield ""

    assert render("seedlike", completion) == (
        "providerhub.providers.seedlike supports: (model, messages, stream, **kwargs)"
    )


def test_an_unresolvable_annotation_renders_as_written() -> None:
    # With postponed annotations (this module's), the annotation is the text "NoSuchType".
    def completion(model: NoSuchType, messages: list, stream: bool):  # type: ignore[name-defined,no-untyped-def,type-arg]  # noqa: F821
        yield ""

    assert "model: NoSuchType" in render("x", completion)


def test_structured_form_lists_name_type_kind_and_default() -> None:
    def completion(model: str, n: int = 1, *args: Any, flag: bool, **kwargs: Any) -> Any:
        return iter(())

    params = describe(completion)
    assert [p.as_dict() for p in params] == [
        {"name": "model", "type": "str", "kind": "positional"},
        {"name": "n", "type": "int", "kind": "positional", "default": 1},
        {"name": "args", "type": "Any", "kind": "var_positional"},
        {"name": "flag", "type": "bool", "kind": "keyword"},
        {"name": "kwargs", "type": "Any", "kind": "var_keyword"},
    ]
    assert params[0].default is NO_DEFAULT
    assert render("x", completion).endswith("(model: str, n: int = 1, *args, flag: bool, **kwargs)")


def test_a_module_that_defines_params_keeps_its_own_string(hub: providerhub.Hub) -> None:
    module = types.ModuleType("legacy")
    module.url = "http://legacy.invalid"  # type: ignore[attr-defined]
    module.model = ["m"]  # type: ignore[attr-defined]
    module.supports_stream = False  # type: ignore[attr-defined]
    module.needs_auth = False  # type: ignore[attr-defined]
    module._create_completion = lambda model, messages, stream, **kw: iter(["x"])  # type: ignore[attr-defined]
    module.params = "g4f.Providers.Legacy supports: (model: str)"  # type: ignore[attr-defined]
    provider = hub.register(module)
    assert provider.params == "g4f.Providers.Legacy supports: (model: str)"
    assert provider.name == "legacy"


def test_a_provider_object_gets_params_by_introspection(hub: providerhub.Hub, fake: Any) -> None:
    provider = hub.register(fake("objprov", ["m"]))
    assert provider.params == (
        "providerhub.providers.objprov supports: "
        "(model: str, messages: list[Any], stream: bool, **kwargs)"
    )
