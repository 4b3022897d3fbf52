"""The speed tricks of ``providerhub._speedups``: each gives what the plain way gives, and
falls back to the plain way where what it relies on is not there."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest

from ._internals import _speedups

NAMES = ("PROVIDERHUB_SPEEDUP_SET", "PROVIDERHUB_SPEEDUP_UNSET", "PROVIDERHUB_SPEEDUP_EMPTY")


class Environment(Mapping[str, str]):
    """A mapping of variables without ``os.environ``'s private parts."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAMES[0], "sk-é")
    monkeypatch.delenv(NAMES[1], raising=False)
    monkeypatch.setenv(NAMES[2], "")


def test_the_environment_getter_reads_os_environ_as_it_is_at_each_call(
    variables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    getenv = _speedups.environment_getter()
    assert getenv is not os.environ.get  # the speed-up, on CPython
    assert [getenv(name) for name in NAMES] == [os.environ.get(name) for name in NAMES]
    assert [getenv(name) for name in NAMES] == ["sk-é", None, ""]
    monkeypatch.setenv(NAMES[1], "now")
    monkeypatch.delenv(NAMES[0])
    assert getenv(NAMES[1]) == "now" and getenv(NAMES[0]) is None
    assert _speedups.getenv(NAMES[1]) == "now"


def test_without_os_environs_parts_the_getter_reads_the_plain_way() -> None:
    environment = Environment({NAMES[0]: "sk-é", NAMES[2]: ""})
    getenv = _speedups.environment_getter(environment)
    assert getenv == environment.get
    assert [getenv(name) for name in NAMES] == ["sk-é", None, ""]
    environment.values[NAMES[1]] = "now"
    assert getenv(NAMES[1]) == "now"


def test_the_environment_reader_follows_os_environ(
    variables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = _speedups.environment_reader(NAMES)
    first = read()
    assert [value is None for value in first] == [False, True, False]
    assert read() == first
    monkeypatch.setenv(NAMES[1], "now")
    assert read() != first and read()[1] is not None
    monkeypatch.setenv(NAMES[0], "other")
    assert read()[0] != first[0]


def test_without_os_environs_parts_the_reader_reads_the_plain_way() -> None:
    environment = Environment({NAMES[0]: "sk-é", NAMES[2]: ""})
    read = _speedups.environment_reader(iter(NAMES), environment)
    assert read() == ("sk-é", None, "")
    environment.values[NAMES[1]] = "now"
    assert read() == ("sk-é", "now", "")
