"""A Timeout is a (connect, read) tuple with a total: equality and hashing count all three."""

from __future__ import annotations

import operator

from providerhub import Timeout


def test_timeouts_that_differ_only_in_total_are_not_equal() -> None:
    assert Timeout(1, 2, 3) != Timeout(1, 2)
    assert not operator.eq(Timeout(1, 2, 3), Timeout(1, 2))
    assert Timeout(1, 2, 3) != Timeout(1, 2, 4)
    assert Timeout(1, 2, 3) == Timeout(1.0, 2.0, 3.0)
    assert not operator.ne(Timeout(1, 2, 3), Timeout(1, 2, 3))


def test_equal_timeouts_hash_alike_and_unequal_ones_are_kept_apart_in_a_set() -> None:
    assert hash(Timeout(1, 2, 3)) == hash(Timeout(1.0, 2.0, 3.0))
    assert len({Timeout(1, 2), Timeout(1, 2, 3), Timeout(1, 2, 3.0), Timeout(1, 2, 4)}) == 3
    assert {Timeout(1, 2, 3): "a"}.get(Timeout(1, 2)) is None


def test_a_plain_pair_equals_only_a_timeout_without_total() -> None:
    # The pair is what requests is handed; a Timeout without total is no more than that.
    pair = (1.0, 2.0)
    assert operator.eq(Timeout(1, 2), pair) and operator.eq(pair, Timeout(1, 2))
    assert hash(Timeout(1, 2)) == hash(pair)
    assert operator.ne(Timeout(1, 2, 3), pair) and operator.ne(pair, Timeout(1, 2, 3))
    assert not operator.eq(pair, Timeout(1, 2, 3))
    assert Timeout(1, 2) != "Timeout(1, 2)"
