from __future__ import annotations

from typing import Any, Callable

import pytest

import providerhub
from providerhub import (
    AllProvidersFailedError,
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    PluginError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
)

HI = [{"role": "user", "content": "Hi"}]
Fake = Callable[..., Any]


def names(providers: list[providerhub.Provider]) -> list[str]:
    return [p.name for p in providers]


def test_route_picks_providers_listing_the_model_in_registration_order(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("b", ["m1", "m2"]))
    hub.register(fake("a", ["m2"]))
    hub.register(fake("c", ["m3"]))
    assert names(hub.route("m2")) == ["b", "a"]
    assert names(hub.route("m1")) == ["b"]


def test_unknown_model_suggests_close_names(hub: providerhub.Hub, fake: Fake) -> None:
    hub.register(fake("a", ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"]))
    with pytest.raises(ModelNotFoundError) as info:
        hub.route("gpt-3.5-turbo-16")
    assert "did you mean 'gpt-3.5-turbo-16k'" in str(info.value)
    assert isinstance(info.value, LookupError)
    with pytest.raises(ModelNotFoundError) as info:
        hub.route("GPT-3.5-TURBO-16K")
    assert info.value.suggestions == ["gpt-3.5-turbo-16k"]
    with pytest.raises(ModelNotFoundError) as info:
        hub.route("zzz")
    assert "providerhub models" in str(info.value)


def test_stream_needs_exclude_providers_that_cannot_stream(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("nostream", ["m"], stream=False))
    hub.register(fake("streamer", ["m"]))
    assert names(hub.route("m")) == ["nostream", "streamer"]
    assert names(hub.route("m", stream=True)) == ["streamer"]


def test_no_provider_error_explains_each_exclusion(hub: providerhub.Hub, fake: Fake) -> None:
    hub.register(fake("nostream", ["m"], stream=False))
    hub.register(fake("broken", ["m"], working=False))
    hub.register(fake("locked", ["m"], needs_auth=True))
    assert hub.route("m", stream=True) == []
    with pytest.raises(NoProviderError) as info:
        hub.create("m", HI, stream=True)
    err = info.value
    assert set(err.reasons) == {"nostream", "broken", "locked"}
    assert "pass stream=False" in err.reasons["nostream"]
    assert "not working" in err.reasons["broken"]
    assert "PROVIDERHUB_LOCKED_API_KEY" in err.reasons["locked"]
    assert "auth={'locked': ...}" in err.reasons["locked"]
    assert str(err).count("\n") == 3


def test_credentials_come_from_auth_or_the_environment(
    hub: providerhub.Hub, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = fake("my-locked.svc", ["m"], needs_auth=True)
    hub.register(locked)
    assert hub.route("m") == []
    assert names(hub.route("m", auth={"MY-LOCKED.SVC": "k1"})) == ["my-locked.svc"]
    assert names(hub.route("m", auth="k2", provider="my-locked.svc")) == ["my-locked.svc"]
    monkeypatch.setenv("PROVIDERHUB_MY_LOCKED_SVC_API_KEY", "k3")
    assert names(hub.route("m")) == ["my-locked.svc"]
    assert hub.create("m", HI) == "from my-locked.svc"
    assert locked.calls[-1]["auth"] == "k3"
    assert hub.create("m", HI, auth={"my-locked.svc": "k4"}) == "from my-locked.svc"
    assert locked.calls[-1]["auth"] == "k4"


def test_a_bare_string_credential_needs_one_named_provider(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("a", ["m"]))
    with pytest.raises(InvalidRequestError) as info:
        hub.create("m", HI, auth="secret-value")
    assert "provider='name'" in str(info.value)
    assert "secret-value" not in str(info.value)


def test_explicit_provider_pins_choice_and_order_case_insensitively(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("Alpha", ["m"]))
    hub.register(fake("beta", ["m"]))
    hub.register(fake("gamma", ["m"]))
    assert names(hub.route("m", provider="BETA")) == ["beta"]
    assert names(hub.route("m", provider=["gamma", "alpha"])) == ["gamma", "Alpha"]
    assert hub.create("m", HI, provider="alpha") == "from Alpha"
    with pytest.raises(InvalidRequestError) as info:
        hub.route("m", provider="gama")
    assert "did you mean 'gamma'" in str(info.value)


def test_a_pinned_provider_that_does_not_serve_the_model_is_explained(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("a", ["m1"]))
    hub.register(fake("b", ["m2"]))
    with pytest.raises(NoProviderError) as info:
        hub.create("m2", HI, provider="a")
    assert "does not serve 'm2' (it serves m1)" in info.value.reasons["a"]
    assert info.value.reasons["b"] == "not among the providers asked for"


def test_kwargs_reach_the_provider_with_timeout_and_session(
    hub: providerhub.Hub, fake: Fake
) -> None:
    prov = fake("a", ["m"])
    hub.register(prov)
    hub.create("m", HI, temperature=0.1, timeout=5)
    call = prov.calls[-1]
    assert call["temperature"] == 0.1
    limits = call["timeout"]
    assert isinstance(limits, providerhub.Timeout)
    assert 4 < limits.connect <= 5 and 4 < limits.read <= 5  # what is left of the total
    assert limits.total is not None and 4 < limits.total <= 5
    assert call["session"] is hub.session
    assert "auth" not in call
    assert call["messages"] == HI


def test_a_provider_without_kwargs_gets_only_what_it_names(hub: providerhub.Hub) -> None:
    class Strict:
        url = "http://strict.invalid"
        model = ["m"]
        supports_stream = False
        needs_auth = False

        def _create_completion(self, model: str, messages: list[Any], stream: bool) -> Any:
            yield "strict ok"

    hub.register(Strict(), name="strict")
    assert hub.create("m", HI) == "strict ok"


def test_falls_back_when_the_first_provider_fails_before_any_text(
    hub: providerhub.Hub, fake: Fake
) -> None:
    first = fake("first", ["m"], fail=ProviderConnectionError("first", "down"))
    hub.register(first)
    hub.register(fake("second", ["m"], ["Hel", "lo"]))
    assert hub.create("m", HI) == "Hello"
    stream = hub.create("m", HI, stream=True)
    assert list(stream) == ["Hel", "lo"]
    assert stream.provider == "second"
    assert len(first.calls) == 2


def test_a_stream_never_falls_back_after_text_reached_the_caller(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(
        fake("first", ["m"], ["one", "two"], fail=ConnectionResetError("gone"), fail_after=1)
    )
    second = fake("second", ["m"])
    hub.register(second)
    got = []
    with pytest.raises(ProviderError) as info:
        for piece in hub.create("m", HI, stream=True):
            got.append(piece)
    assert got == ["one"]
    assert info.value.provider == "first"
    assert second.calls == []


def test_non_stream_falls_back_even_after_partial_text_nobody_saw(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(
        fake("first", ["m"], ["one", "two"], fail=ConnectionResetError("gone"), fail_after=1)
    )
    hub.register(fake("second", ["m"], ["whole"]))
    assert hub.create("m", HI) == "whole"


def test_all_failed_lists_one_line_per_provider(hub: providerhub.Hub, fake: Fake) -> None:
    hub.register(fake("a", ["m"], fail=ProviderHTTPError("a", "HTTP 503", status_code=503)))
    hub.register(fake("b", ["m"], fail=KeyError("choices")))
    hub.register(fake("c", ["m"], [42]))
    with pytest.raises(AllProvidersFailedError) as info:
        hub.create("m", HI)
    err = info.value
    assert list(err.errors) == ["a", "b", "c"]
    lines = str(err).splitlines()
    assert lines[0] == "all 3 providers failed for model 'm':"
    assert lines[1].startswith("  a: HTTP 503")
    assert lines[2].startswith("  b: could not read the service's answer (KeyError")
    assert lines[3].startswith("  c: yielded int, not text")
    assert isinstance(err.errors["b"], ProviderResponseError)


def test_a_single_candidate_failure_is_raised_as_its_own_type(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("only", ["m"], fail=RuntimeError("boom")))
    with pytest.raises(ProviderError) as info:
        hub.create("m", HI)
    assert info.value.provider == "only"
    assert "raised RuntimeError: boom" in str(info.value)


def test_invalid_request_from_a_provider_is_not_retried_elsewhere(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("picky", ["m"], fail=InvalidRequestError("no 'foo' here")))
    other = fake("other", ["m"])
    hub.register(other)
    with pytest.raises(InvalidRequestError):
        hub.create("m", HI)
    assert other.calls == []


def test_empty_pieces_are_dropped_from_streams(hub: providerhub.Hub, fake: Fake) -> None:
    hub.register(fake("a", ["m"], ["", "x", "", "y"]))
    assert list(hub.create("m", HI, stream=True)) == ["x", "y"]


def test_non_string_piece_mid_stream_is_a_typed_error(hub: providerhub.Hub, fake: Fake) -> None:
    hub.register(fake("a", ["m"], ["x", b"bytes"]))
    stream = hub.create("m", HI, stream=True)
    assert next(stream) == "x"
    with pytest.raises(ProviderResponseError, match="yielded bytes"):
        next(stream)


def test_closing_a_stream_closes_the_provider_generator(hub: providerhub.Hub) -> None:
    closed = []

    class Slow:
        url = "http://slow.invalid"
        model = ["m"]
        supports_stream = True
        needs_auth = False
        honors_timeout = True  # called in the caller's thread, so closing is immediate

        def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
            try:
                yield "a"
                yield "b"
            finally:
                closed.append(True)

    hub.register(Slow(), name="slow")
    with hub.create("m", HI, stream=True) as stream:
        assert next(stream) == "a"
    assert closed == [True]


def test_duplicate_names_are_refused_and_unregister_frees_them(
    hub: providerhub.Hub, fake: Fake
) -> None:
    hub.register(fake("dup", ["m"]))
    with pytest.raises(PluginError, match="already registered"):
        hub.register(fake("DUP", ["m"]))
    hub.unregister("Dup")
    assert "dup" not in hub.providers
    with pytest.raises(ModelNotFoundError):
        hub.route("m")
    hub.register(fake("dup", ["m"]))
    assert names(hub.route("m")) == ["dup"]


def test_register_refuses_objects_that_break_the_contract(hub: providerhub.Hub) -> None:
    class Half:
        url = "http://half.invalid"
        model = "not-a-list"

    with pytest.raises(PluginError) as info:
        hub.register(Half(), name="half")
    message = str(info.value)
    assert "'model' is str" in message
    assert "no 'supports_stream'" in message
    assert "no callable '_create_completion'" in message


def test_disabled_providers_are_excluded_with_the_variable_named(
    hub: providerhub.Hub, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDERHUB_DISABLE_PLUGINS", "off, other")
    hub.register(fake("off", ["m"]))
    assert hub.providers["off"].working is False
    with pytest.raises(NoProviderError) as info:
        hub.create("m", HI)
    assert "PROVIDERHUB_DISABLE_PLUGINS" in info.value.reasons["off"]


def test_url_override_from_the_environment(
    hub: providerhub.Hub, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    prov = fake("Over-ride", ["m"])
    hub.register(prov)
    assert hub.providers["Over-ride"].url == "http://Over-ride.invalid"
    monkeypatch.setenv("PROVIDERHUB_OVER_RIDE_URL", "http://127.0.0.1:1234/")
    assert hub.providers["Over-ride"].url == "http://127.0.0.1:1234"
    hub.create("m", HI)
    assert prov.url == "http://127.0.0.1:1234"  # written where a seed module reads it
    monkeypatch.delenv("PROVIDERHUB_OVER_RIDE_URL")
    hub.create("m", HI)
    assert prov.url == "http://Over-ride.invalid"


def test_module_level_create_uses_the_default_hub(
    monkeypatch: pytest.MonkeyPatch, fake: Fake
) -> None:
    from ._internals import hub_module

    own = providerhub.Hub(load_entrypoints=False)
    own.register(fake("default-one", ["m"]))
    monkeypatch.setattr(hub_module, "_default_hub", own)
    assert providerhub.get_hub() is own
    assert providerhub.create("m", HI) == "from default-one"
    assert list(providerhub.create("m", HI, stream=True)) == ["from default-one"]


def test_a_provider_may_name_its_own_credential_variable(
    hub: providerhub.Hub, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = fake("own-var", ["m"], needs_auth=True)
    locked.api_key_env = "OWN_VAR_KEY"
    hub.register(locked)
    with pytest.raises(NoProviderError) as info:
        hub.create("m", HI)
    assert "set OWN_VAR_KEY or pass auth={'own-var': ...}" in info.value.reasons["own-var"]
    monkeypatch.setenv("OWN_VAR_KEY", "k-own")
    hub.create("m", HI)
    assert locked.calls[-1]["auth"] == "k-own"
    monkeypatch.setenv("PROVIDERHUB_OWN_VAR_API_KEY", "k-scheme")
    hub.create("m", HI)
    assert locked.calls[-1]["auth"] == "k-scheme"  # the common scheme comes first


def test_provider_slash_model_and_colon_pin_the_provider(hub: providerhub.Hub, fake: Fake) -> None:
    a = fake("a", ["m", "tag:1b"])
    b = fake("b", ["m"])
    hub.register(a)
    hub.register(b)
    assert names(hub.route("b/m")) == ["b"]
    assert names(hub.route("B:m")) == ["b"]
    assert hub.create("b/m", HI) == "from b"
    assert b.calls[-1]["model"] == "m"  # the provider is asked for its own model name
    assert names(hub.route("tag:1b")) == ["a"]  # a model that holds a colon stays whole
    assert names(hub.route("b/m", provider="b")) == ["b"]
    with pytest.raises(InvalidRequestError, match="pins the provider 'b'"):
        hub.route("b/m", provider="a")
    with pytest.raises(NoProviderError):
        hub.create("b/tag:1b", HI)  # b does not serve it
    with pytest.raises(ModelNotFoundError):
        hub.route("nosuch/m")


def test_aliases_stand_for_models(
    hub: providerhub.Hub, fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.register(fake("a", ["gpt-3.5-turbo-16k"]))
    hub.register(fake("b", ["gpt-3.5-turbo-16k"]))
    hub.alias("fast", "gpt-3.5-turbo-16k")
    hub.alias("fast-b", "b/gpt-3.5-turbo-16k")
    assert names(hub.route("fast")) == ["a", "b"]
    assert names(hub.route("fast-b")) == ["b"]
    assert names(hub.route("a/fast")) == ["a"]
    assert dict(hub.aliases) == {"fast": "gpt-3.5-turbo-16k", "fast-b": "b/gpt-3.5-turbo-16k"}
    with pytest.raises(ConfigurationError, match="would hide it"):
        hub.alias("gpt-3.5-turbo-16k", "other")
    hub.unalias("fast")
    with pytest.raises(ModelNotFoundError):
        hub.route("fast")
    monkeypatch.setenv("PROVIDERHUB_ALIASES", "quick=gpt-3.5-turbo-16k, big = b/gpt-3.5-turbo-16k")
    assert dict(providerhub.Hub(load_entrypoints=False).aliases) == {
        "quick": "gpt-3.5-turbo-16k",
        "big": "b/gpt-3.5-turbo-16k",
    }
    monkeypatch.setenv("PROVIDERHUB_ALIASES", "broken")
    with pytest.raises(ConfigurationError, match="PROVIDERHUB_ALIASES"):
        providerhub.Hub(load_entrypoints=False)
