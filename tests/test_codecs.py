"""The OpenAI chat codec on its own: requests encoded and answers decoded from bytes, with
no server, no socket and no clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

import providerhub
from providerhub.types import Finish, FunctionDelta, Reasoning, ToolCallDelta, Usage

from ._internals import CODEC, Call, ChatStreamDecoder, Request, _speedups

HI = [{"role": "user", "content": "Hi"}]
URL = "https://user:s3cretpass@api.example/v1/chat/completions"
KEY = "sk-codec-test-credential"


def _event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    doc = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\n\n"


# A stream as servers send it: a role event, text with multi-byte characters, a comment,
# CRLF line ends, a tool call in fragments, the finish, a usage-only event and [DONE].
RECORDED = b"".join(
    [
        _event({"role": "assistant", "content": ""}),
        _event({"content": "Hé"}),
        b": keep-alive\n\n",
        _event({"content": " wörld 🌍"}).replace(b"\n", b"\r\n"),
        _event(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        _event({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        _event({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        _event({}, "tool_calls"),
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,'
        b'"total_tokens":8}}\n\n',
        b"data: [DONE]\n\n",
    ]
)
EXPECTED = [
    "Hé",
    " wörld 🌍",
    ToolCallDelta(0, "call_1", "function", FunctionDelta("f", "")),
    ToolCallDelta(0, None, None, FunctionDelta(None, '{"a":')),
    ToolCallDelta(0, None, None, FunctionDelta(None, "1}")),
    Finish("tool_calls"),
    Usage(3, 5, 8),
]


def _request(stream: bool = True, structured: bool = True, **params: Any) -> Request:
    return CODEC.encode(Call("p", URL, "m", HI, stream, params, auth=KEY, structured=structured))


def _decode(chunks: list[bytes], **options: Any) -> list[Any]:
    decoder = CODEC.decoder(_request(**options), URL)
    pieces: list[Any] = []
    for chunk in chunks:
        pieces += decoder.feed(chunk)
        if decoder.done:
            break
    return pieces + decoder.end()


def test_a_recorded_stream_split_at_every_byte_gives_the_same_pieces() -> None:
    assert _decode([RECORDED]) == EXPECTED
    for cut in range(1, len(RECORDED)):
        assert _decode([RECORDED[:cut], RECORDED[cut:]]) == EXPECTED, cut
    assert _decode([RECORDED[i : i + 1] for i in range(len(RECORDED))]) == EXPECTED
    # One event a chunk, as servers that flush each token send them.
    events = [event + b"\n\n" for event in RECORDED.replace(b"\r\n", b"\n").split(b"\n\n")]
    assert _decode(events[:-1]) == EXPECTED


def test_without_structured_the_decoder_gives_text_only() -> None:
    assert _decode([RECORDED], structured=False) == ["Hé", " wörld 🌍"]


def test_an_error_event_mid_stream_comes_after_the_pieces_before_it() -> None:
    error = b'event: error\ndata: {"error":{"message":"overloaded, key ' + KEY.encode() + b'"}}\n\n'
    decoder = CODEC.decoder(_request(), URL)
    assert decoder.feed(_event({"content": "a"}) + error + _event({"content": "b"})) == ["a"]
    assert decoder.done and decoder.started
    assert decoder.feed(_event({"content": "c"})) == []
    with pytest.raises(providerhub.ProviderResponseError, match="answered with an error") as info:
        decoder.end()
    assert "overloaded" in str(info.value) and KEY not in str(info.value)
    # Alone in its chunk, it is raised at once.
    decoder = CODEC.decoder(_request(), URL)
    with pytest.raises(providerhub.ProviderResponseError, match="answered with an error"):
        decoder.feed(error)


def test_a_stream_that_ends_without_done_or_a_finish_is_interrupted() -> None:
    decoder = CODEC.decoder(_request(), URL)
    assert decoder.feed(_event({"content": "a"})) == ["a"]
    assert not decoder.done
    with pytest.raises(providerhub.StreamInterruptedError, match="before \\[DONE\\]") as info:
        decoder.end()
    assert "s3cretpass" not in str(info.value)
    # A finish reason is an end too, [DONE] or not.
    assert _decode([_event({"content": "a"}, "stop")]) == ["a", Finish("stop")]


def test_malformed_events_and_oversized_ones_are_typed_errors() -> None:
    for bad, message in [
        (b"data: {not json\n\n", "not JSON"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
        (b'data: {"choices":[{"index":0,"delta":"x"}]}\n\n', "malformed"),
    ]:
        with pytest.raises(providerhub.ProviderResponseError, match=message):
            CODEC.decoder(_request(), URL).feed(bad)
    small = CODEC.encode(Call("p", URL, "m", HI, True, {}, max_event_bytes=100))
    with pytest.raises(providerhub.ProviderResponseError, match="larger than 100 bytes"):
        CODEC.decoder(small, URL).feed(b"data: " + b"x" * 200)
    # After a piece in the same chunk, the piece first: the stream had begun.
    for tail in (b"data: " + b"x" * 200 + b"\n\n", b"data: " + b"x" * 200):
        decoder = CODEC.decoder(small, URL)
        assert decoder.feed(_event({"content": "a"}) + tail) == ["a"]
        with pytest.raises(providerhub.ProviderResponseError, match="larger than 100 bytes"):
            decoder.end()


def _both_ways(chunks: list[bytes], max_event_bytes: int = 1 << 20) -> list[Any]:
    """What a decoder gives for ``chunks`` (pieces, then the error or the end), checked
    to be what one gives that parses every event in full; and whether the first read a
    chunk by its template."""
    results = []
    for templates in (True, False):
        decoder = ChatStreamDecoder("p", URL, [KEY], max_event_bytes, True, templates)
        got: list[Any] = []
        try:
            for chunk in chunks:
                got += decoder.feed(chunk)
                if decoder.done:
                    break
            got += decoder.end()
        except providerhub.ProviderError as exc:
            got.append((type(exc), str(exc)))
        got.append((decoder.started, decoder.done))
        results.append((got, decoder._template is not None))
    (fast, learned), (full, _) = results
    assert fast == full
    return [*fast, learned]


def _chunk(content: Any, **fields: Any) -> bytes:
    """A text event as OpenAI sends it: id, time, model and empty fields around it."""
    doc = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "system_fingerprint": None,
        "choices": [
            {"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}
        ],
        **fields,
    }
    return b"data: " + json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def test_text_events_read_by_their_template_give_what_the_full_parse_gives() -> None:
    texts = ["Hello", " wörld", "", " 🌍", "a\nb", 'say "hi"', "back\\slash", "tab\t"]
    events = [_chunk(t) + b"\n\n" for t in texts]
    done = b"data: [DONE]\n\n"
    # Escapes as a server that writes ASCII only sends them, a lone surrogate (which
    # orjson refuses and the standard library reads), bytes that are not UTF-8, a raw
    # control character (not JSON), a field that changes, usage on a text event, an
    # index other than 0, a finish: each against the template of the events before it.
    odd = [
        _chunk("x").replace(b'"x"', b'"\\u00e9t\\u00e9"'),
        _chunk("x").replace(b'"x"', b'"\\ud800"'),
        _chunk("x").replace(b'"x"', b'"\xff\xfeok"'),
        _chunk("x").replace(b'"x"', b'"a\x01b"'),
        _chunk("x").replace(b'"m"', b'"m2"'),
        _chunk("x", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
        _chunk("x").replace(b'"index":0', b'"index":1'),
        _chunk("x").replace(b'"finish_reason":null', b'"finish_reason":"stop"'),
    ]
    for extra in odd:
        stream = [*events, extra + b"\n\n", events[0], done]
        result = _both_ways(stream)
        assert result[-1], "the events after the first were read by the template"
        assert result[:3] == ["Hello", " wörld", " 🌍"]
    # Several events to a chunk, split anywhere: the same pieces.
    whole = b"".join([*events, *odd[:4], events[1], done])
    for cut in range(1, len(whole), 3):
        result = _both_ways([events[0], whole[:cut], whole[cut:]])
        assert result[:2] == ["Hello", "Hello"] and result[-1]
    # A whole stream in one chunk: the events after the first text are read by template;
    # before it, a usage-only event and an empty text (the stream has not begun).
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0}}\n\n'
    assert _both_ways([b"".join([*events, *odd[:4], done])])[-1]
    assert _both_ways([usage + events[2] + events[0], usage + events[2]])[-1]
    assert _both_ways([usage + events[2]])[-2:] == [(False, False), False]  # not begun
    # An event past max_event_bytes is refused either way.
    assert "larger than" in str(_both_ways([*events, _chunk("y" * 400) + b"\n\n"], 300))


def test_a_template_is_not_taken_where_another_field_could_hold_the_text() -> None:
    # The text of the delta written with an escape, the same text plainly in another
    # "content": that one would be taken for the text, so no template is learned.
    lure = _chunk("x", logprobs={"content": "hi"}).replace(b'"x"', b'"\\u0068i"')
    other = _chunk("x", logprobs={"content": "bye"}).replace(b'"x"', b'"\\u0068i"')
    result = _both_ways([lure + b"\n\n", other + b"\n\n", b"data: [DONE]\n\n"])
    assert result[:2] == ["hi", "hi"] and not result[-1]
    # A document that holds NaN: the same bytes never parse equal, no template.
    nan = _chunk("x", x=1).replace(b'"x":1', b'"x":NaN')
    assert not _both_ways([nan + b"\n\n", nan + b"\n\n"])[-1]


def test_encode_makes_the_request_and_names_what_cannot_be_sent() -> None:
    request = _request(temperature=0.5)
    assert (request.method, request.url) == ("POST", URL)
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "text/event-stream"
    assert json.loads(request.body) == {
        "model": "m",
        "messages": HI,
        "temperature": 0.5,
        "stream": True,
    }
    assert KEY in request.secrets and "s3cretpass" in request.secrets
    with pytest.raises(providerhub.InvalidRequestError, match="did you mean 'temperature'"):
        _request(temprature=1)
    with pytest.raises(providerhub.InvalidRequestError, match=r"parameter 'seed' .* JSON"):
        _request(seed={1, 2})
    with pytest.raises(providerhub.InvalidRequestError, match="non-empty string"):
        CODEC.encode(Call("p", URL, "m", HI, False, {}, auth=""))


def test_documents_and_error_statuses_decode_to_pieces_and_typed_errors() -> None:
    request = _request(stream=False)
    doc = {
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    body = json.dumps(doc).encode()
    assert CODEC.decode(request, URL, 200, "application/json", body) == [
        "hi",
        Usage(1, 1, 2),
        Finish("stop"),
    ]
    assert not CODEC.streams(request, "text/event-stream")
    assert CODEC.streams(_request(), "Text/Event-Stream; charset=utf-8")
    with pytest.raises(providerhub.ProviderResponseError, match="HTML page"):
        CODEC.decode(request, URL, 200, "text/html", b"<html>")
    tight = CODEC.encode(Call("p", URL, "m", HI, False, {}, max_body_bytes=10))
    with pytest.raises(providerhub.ProviderResponseError, match="larger than 10 bytes"):
        CODEC.decode(tight, URL, 200, "application/json", body[:11])
    error = CODEC.error(
        request,
        URL,
        429,
        "Too Many Requests",
        {"Retry-After": "7"},
        b'{"error":{"message":"slow"}}',
    )
    assert isinstance(error, providerhub.RateLimitError)
    assert error.retry_after == 7 and "slow" in str(error) and "s3cretpass" not in str(error)
    denied = CODEC.error(request, URL, 401, None, {}, b"")
    assert isinstance(denied, providerhub.AuthenticationError)
    assert "PROVIDERHUB_P_API_KEY" in str(denied)


def test_the_json_scanner_falls_back_to_json_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _speedups.scan_json is not json.loads  # the trick is on, on this Python
    assert _speedups._scans(_speedups.scan_json) and _speedups._scans(json.loads)
    assert not _speedups._scans(lambda text: None)

    def missing(decoder: Any) -> Any:
        raise AttributeError("no make_scanner here")

    monkeypatch.setattr(json.scanner, "make_scanner", missing)
    assert _speedups._json_scanner() is json.loads


def test_reasoning_content_as_vllm_and_deepseek_send_it_is_a_piece_of_its_own() -> None:
    stream = [
        _event({"role": "assistant", "content": None, "reasoning_content": "Hm, "}),
        _event({"content": None, "reasoning_content": "six times seven"}),
        _event({"content": "42"}, "stop"),
        b"data: [DONE]\n\n",
    ]
    assert _decode(stream) == [
        Reasoning("Hm, "),
        Reasoning("six times seven"),
        "42",
        Finish("stop"),
    ]
    assert _decode(stream, structured=False) == ["42"]
    message = {"content": "42", "reasoning_content": "Hm"}
    doc = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    decoded = CODEC.decode(_request(stream=False), URL, 200, None, json.dumps(doc).encode())
    assert decoded == [Reasoning("Hm"), "42", Finish("stop")]
    with pytest.raises(providerhub.ProviderResponseError, match="malformed"):
        CODEC.decoder(_request(), URL).feed(_event({"reasoning_content": 5}))
