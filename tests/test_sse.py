from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._internals import Event, EventTooLargeError, SSEParser


def parse(*chunks: bytes) -> list[Event]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events


def test_data_lines_of_one_event_join_with_newlines() -> None:
    assert parse(b"data: a\ndata: b\n\n") == [Event("a\nb")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_understood(newline: bytes) -> None:
    stream = newline.join([b"event: delta", b"data: x", b"", b"data: y", b"", b""])
    assert parse(stream) == [Event("x", "delta"), Event("y")]


def test_a_crlf_split_between_reads_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [Event("a"), Event("b")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\nretry: 100\nfoo: bar\ndata: x\n\n:\n\n"
    assert parse(stream) == [Event("x")]


def test_an_event_without_data_is_not_dispatched_and_resets_its_type() -> None:
    assert parse(b"event: ping\n\ndata: x\n\n") == [Event("x", "message")]


def test_field_without_colon_and_value_without_space() -> None:
    assert parse(b"data\ndata:x\n\n") == [Event("\nx")]


def test_ids_carry_over_to_later_events() -> None:
    assert parse(b"id: 7\ndata: a\n\ndata: b\n\n") == [Event("a", id="7"), Event("b", id="7")]


def test_utf8_split_across_reads_arrives_whole() -> None:
    raw = "data: Привет, 世界 😀\n\n".encode()
    for cut in range(1, len(raw)):
        assert parse(raw[:cut], raw[cut:]) == [Event("Привет, 世界 😀")], cut


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert parse(b"data: \xff\xfe\n\n") == [Event("\ufffd\ufffd")]


def test_a_partial_event_at_the_end_is_held_back() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: unfinished") == [Event("a")]
    assert parser.feed(b"\n") == []


def test_an_event_past_the_limit_raises() -> None:
    parser = SSEParser(max_event_bytes=100)
    with pytest.raises(EventTooLargeError):
        parser.feed(b"data: " + b"x" * 60 + b"\n" + b"data: " + b"y" * 60 + b"\n")


def test_a_line_that_never_ends_raises_past_the_limit() -> None:
    parser = SSEParser(max_event_bytes=100)
    parser.feed(b"data: " + b"x" * 50)
    with pytest.raises(EventTooLargeError):
        parser.feed(b"x" * 60)


event_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=20
)


@given(
    st.lists(
        st.tuples(
            st.lists(event_text, min_size=1, max_size=3), st.sampled_from(["\n", "\r\n", "\r"])
        ),
        max_size=6,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_split_of_a_stream_gives_the_same_events(
    events: list[tuple[list[str], str]], cuts: list[int]
) -> None:
    stream = "".join(
        "".join(f"data: {line}{nl}" for line in lines) + nl for lines, nl in events
    ).encode()
    whole = parse(stream)
    assert [e.data for e in whole] == ["\n".join(lines) for lines, _ in events]
    points = sorted({min(c, len(stream)) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]
    assert parse(*pieces) == whole


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_raise_nothing_but_our_error(chunks: list[bytes]) -> None:
    parser = SSEParser(max_event_bytes=64)
    try:
        for chunk in chunks:
            for event in parser.feed(chunk):
                assert isinstance(event.data, str)
    except EventTooLargeError:
        pass


def test_events_are_events_on_the_fast_path_and_the_slow_one_and_by_the_fallback() -> None:
    from ._internals import _speedups

    fast = SSEParser().feed(b"data: a\n\n")
    slow = SSEParser().feed(b"event: delta\nid: 7\ndata: b\n\n")
    for event in [*fast, *slow]:
        assert type(event) is Event
    assert (fast[0].data, fast[0].event, fast[0].id) == ("a", "message", None)
    assert (slow[0].data, slow[0].event, slow[0].id) == ("b", "delta", "7")
    # The plain constructor, used where tuple.__new__ would not build an Event.
    fields = ("x", "message", None)
    assert _speedups.builds(_speedups.plain_new, Event, fields)
    assert not _speedups.builds(lambda cls, fields: fields, Event, fields)
    assert not _speedups.builds(None, Event, fields)


def test_an_event_too_large_keeps_the_events_before_it() -> None:
    for tail in (b"data: " + b"x" * 100 + b"\n\n", b"data: " + b"x" * 100):
        with pytest.raises(EventTooLargeError) as info:
            SSEParser(max_event_bytes=50).feed(b"data: a\n\ndata: b\n\n" + tail)
        assert [event.data for event in info.value.events] == ["a", "b"]


def test_a_lone_data_event_is_read_without_building_it() -> None:
    parser = SSEParser()
    assert parser.lone_data(b"data: {}\n\n") == "{}"
    assert parser.lone_data(b"data: a\ndata: b\n\n") is None  # two lines
    assert parser.lone_data(b"event: x\ndata: a\n\n") is None
    assert parser.lone_data(b"data: a\r\n\r\n") is None
    parser.feed(b"data: a")  # pending: what follows continues it
    assert parser.lone_data(b"data: b\n\n") is None
    assert [e.data for e in parser.feed(b"\n\n")] == ["a"]
