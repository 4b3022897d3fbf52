"""``check_provider``: the conformance check a plugin author runs in one test.

It calls the provider the way the router does (through :meth:`providerhub.Provider.complete`,
with ``auth``, ``timeout`` and ``session``), but without the router's safety nets, so what
the provider itself does wrong shows: an untyped exception, a piece that is not ``str``, a
credential quoted in an error message.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import _settings as settings
from .._codecs.completions import Assembler, is_piece
from .._contract import missing_fields
from .._hub import Hub, _name_of
from .._plugins import discover
from .._provider import Provider
from .._redaction import redact
from .._timeout import Timeout
from .._transports import sync as transport
from ..errors import ProviderError, ProviderHubError
from ..types import ToolCallDelta
from ._server import OpenAIServer, RecordedRequest, Reply

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_PROMPT",
    "SERVER_CHUNKS",
    "ProviderCheckError",
    "ProviderCheckReport",
    "check_provider",
]

DEFAULT_PROMPT = "Reply with the single word OK."
"""The user message every call of :func:`check_provider` sends."""

SERVER_CHUNKS = ("Conformance", " check:", " ünïcode ✓", " done.")
"""What the local server answers with, one stream event per item; the provider must give
back exactly their concatenation."""

_CHAT_PATH = "/chat/completions"
_OPTIONAL_FIELDS: dict[str, type] = {"params": str, "honors_timeout": bool}


class ProviderCheckError(AssertionError):
    """A provider failed :func:`check_provider`.

    ``problems`` holds one line per problem, each starting with the check it belongs to
    (``contract:``, ``params:``, ``calls:``, ``non-stream:``, ``stream:``, ``errors:``,
    ``credentials:``, ``logs:``); the message lists them all, then the ``notes`` (what the
    check observed that is not a problem, such as why it took the provider for one of
    another protocol). ``name`` is the provider's name and ``openai_compatible`` how it was
    checked (None: it was not called). Nothing in it holds the credential the check gave
    the provider.
    """

    __module__ = "providerhub.testing"  # where it is imported from, and shown in tracebacks

    def __init__(
        self,
        name: str,
        problems: Sequence[str],
        *,
        openai_compatible: bool | None,
        notes: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.problems = list(problems)
        self.openai_compatible = openai_compatible
        self.notes = list(notes)
        count = len(self.problems)
        how = {
            True: "checked as an OpenAI-compatible provider, against a local server",
            False: "checked as a provider of another protocol, with a prompt",
            None: "not called",
        }[openai_compatible]
        lines = [f"provider {name!r} has {count} problem{'' if count == 1 else 's'} ({how}):"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines += [f"  note: {note}" for note in self.notes]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ProviderCheckReport:
    """What :func:`check_provider` found for a provider that passed.

    ``passed`` names each check that ran and passed; ``skipped`` says, one line each, what
    was not checked and why; ``notes`` holds observations that are not problems.
    """

    __module__ = "providerhub.testing"

    name: str
    model: str
    openai_compatible: bool
    passed: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        how = "OpenAI-compatible" if self.openai_compatible else "another protocol"
        lines = [f"provider {self.name!r} ({how}, model {self.model!r}) passed:"]
        lines += [f"  - {label}" for label in self.passed]
        lines += [f"  skipped {line}" for line in self.skipped]
        lines += [f"  note: {line}" for line in self.notes]
        return "\n".join(lines)


def check_provider(
    provider: object,
    *,
    prompt: str = DEFAULT_PROMPT,
    server: OpenAIServer | None = None,
    openai_compatible: bool | None = None,
    name: str | None = None,
    model: str | None = None,
    auth: str | None = None,
    timeout: float = 10.0,
) -> ProviderCheckReport:
    """Check that ``provider`` follows the provider contract and behaves; raise
    :class:`ProviderCheckError` listing every problem, or return a
    :class:`ProviderCheckReport`.

    ``provider`` is a module or object following the contract, or a
    :class:`providerhub.Provider` (a registered one keeps its name). The checks:

    - **contract**: the fields and their types (``missing_fields``,
      and ``params``/``honors_timeout`` when present);
    - **params**: registering it on a fresh :class:`providerhub.Hub` works and its
      ``params`` renders as ``providerhub.providers.<name> supports: (...)``;
    - **OpenAI-compatible providers**, pointed at a local :class:`OpenAIServer` through
      ``PROVIDERHUB_<NAME>_URL``: a non-stream call and (when ``supports_stream``) a stream
      call give back exactly the text the server sent, the stream in more than one piece
      and from a request saying ``"stream": true``, and each request carries the prompt;
      an HTTP 503, an HTML page and (when streaming) a stream cut short each raise a
      :class:`providerhub.ProviderError` naming the provider; an HTTP 401 whose body echoes
      the request's headers raises one whose str, repr, attributes and chained exceptions
      do not hold the fake credential given as ``auth``;
    - **other providers**: a non-stream call and (when ``supports_stream``) a stream call
      with ``prompt`` yield only ``str`` pieces and some text, and a call with a fake
      credential that fails raises a :class:`providerhub.ProviderError` without it;
    - **logs**: no log record made during the check holds the fake credential.

    ``openai_compatible`` says how to call it; ``None`` detects it: the provider is pointed
    at the local server and counts as OpenAI-compatible when a request arrives at a path
    ending in ``/chat/completions``. A provider that ignores ``PROVIDERHUB_<NAME>_URL``
    then goes to its real service, so pass ``False`` for those. The other-protocol calls go
    wherever the provider goes, with ``auth`` (default: ``PROVIDERHUB_<NAME>_API_KEY``) as
    the credential.

    ``server`` is a running :class:`OpenAIServer` with no replies queued (by default one is
    started and stopped); its ``responder`` is borrowed during the check. ``name`` is the
    provider's name (default: the :class:`providerhub.Provider`'s, else the name of the
    installed entry point that loads the module, else its ``name`` attribute, else its
    module's last dotted part). ``model`` defaults to the first of the provider's models.
    Each call gets ``timeout`` seconds.

    The check sets ``PROVIDERHUB_<NAME>_URL`` (and unsets ``PROVIDERHUB_<NAME>_API_KEY``,
    so a real credential is never sent to the local server) and lowers the root logger's
    level to DEBUG while it runs, restoring both after; do not run it concurrently with
    code that reads them.
    """
    if isinstance(provider, Provider):
        obj: Any = provider.obj
        resolved = provider.name if name is None else name
    else:
        obj = provider
        resolved = name if name is not None else _default_name(obj)
    run = _Run(resolved, timeout, prompt)
    declared_url = getattr(obj, "url", None)
    with _captured_logs() as records:
        try:
            target = _check_static(run, obj, provider)
            chosen = model if model is not None else _first_model(obj)
            if target is not None:
                _check_calls(run, target, chosen, server, openai_compatible, auth)
        finally:
            run.close()
            _restore_url(obj, declared_url)
    run.record("logs", _log_problems(records, run))
    if run.problems:
        raise ProviderCheckError(
            resolved, run.problems, openai_compatible=run.compatible, notes=run.notes
        )
    return ProviderCheckReport(
        name=resolved,
        model=run.model,
        openai_compatible=bool(run.compatible),
        passed=tuple(run.passed),
        skipped=tuple(run.skipped),
        notes=tuple(run.notes),
    )


# -- the state of one check ----------------------------------------------------------------


@dataclass
class _Outcome:
    """What one call of the provider did."""

    pieces: list[object] = field(default_factory=list)
    error: BaseException | None = None
    timed_out: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)

    def text(self) -> str:
        return "".join(p for p in self.pieces if isinstance(p, str))


class _Run:
    """The problems found so far, and what the calls share."""

    def __init__(self, name: str, timeout: float, prompt: str) -> None:
        self.name = name
        self.timeout = timeout
        self.messages = [{"role": "user", "content": prompt}]
        self.prompt = prompt
        # Random, so no provider can special-case it; shaped like a real key.
        self.fake_tail = secrets.token_hex(12)
        self.fake = f"sk-providerhub-check-{self.fake_tail}"
        self.model = "unknown-model"
        self.compatible: bool | None = None
        self.problems: list[str] = []
        self.passed: list[str] = []
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self._session: requests.Session | None = None

    def record(self, label: str, problems: Sequence[str], *, area: str | None = None) -> None:
        """Note the outcome of the check ``label``: passed when ``problems`` is empty, else
        one line per problem, starting with ``area`` (by default ``label``)."""
        if not problems:
            self.passed.append(label)
        for problem in problems:
            self.problems.append(f"{area or label}: {self.clean(problem)}")

    def skip(self, label: str, why: str) -> None:
        self.skipped.append(f"{label}: {why}")

    def clean(self, text: str) -> str:
        """``text`` on one line, with the fake credential (and anything that looks like a
        key) redacted."""
        return redact(" ".join(text.split()), [self.fake, self.fake_tail])

    def holds_fake(self, text: str) -> bool:
        return self.fake in text or self.fake_tail in text

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = transport.new_session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def call(
        self,
        p: Provider,
        stream: bool,
        *,
        auth: str | None,
        server: OpenAIServer | None = None,
        **params: Any,
    ) -> _Outcome:
        """Call ``p`` as the router would, in a worker thread given ``timeout`` seconds;
        ``params`` are the caller's (``tools=``, say)."""
        outcome = _Outcome()
        limit = Timeout(self.timeout, self.timeout, self.timeout)
        kwargs: dict[str, Any] = {"timeout": limit, "session": self.session, **params}
        if p.yields_pieces:
            kwargs["structured"] = True
        if auth:
            kwargs["auth"] = auth
        seen = len(server.requests) if server is not None else 0
        messages = [dict(m) for m in self.messages]

        def run() -> None:
            try:
                for piece in p.complete(self.model, messages, stream, **kwargs):
                    outcome.pieces.append(piece)
            except BaseException as exc:  # handed to the check, which judges it
                outcome.error = exc

        worker = threading.Thread(target=run, name=f"providerhub-check-{p.name}", daemon=True)
        worker.start()
        # A little grace, so that a provider keeping its timeout can report it itself.
        worker.join(self.timeout * 1.1 + 0.2)
        if worker.is_alive():
            outcome.timed_out = True
            outcome.pieces = list(outcome.pieces)
        if server is not None:
            outcome.requests = list(server.requests[seen:])
        return outcome


# -- static checks -------------------------------------------------------------------------


def _check_static(run: _Run, obj: Any, given: object) -> Provider | None:
    """The contract and ``params`` checks; returns the Provider to call, or None."""
    contract = list(missing_fields(obj))
    for attr, kind in _OPTIONAL_FIELDS.items():
        value = getattr(obj, attr, None)
        if value is not None and not isinstance(value, kind):
            contract.append(f"{attr!r} is {type(value).__name__}, not {kind.__name__}")
    run.record("contract", contract)
    if getattr(obj, "working", True) is False:
        run.notes.append("working is False: the router leaves it out until it is True")

    if isinstance(given, Provider):
        target: Provider | None = given
        run.record("params", _params_problems(given, run.name))
        return target
    if contract:
        run.skip("params", "the contract problems above keep a hub from registering it")
        try:
            return Provider(obj, run.name)
        except Exception:
            run.skip("calls", "the contract problems above leave nothing to call")
            return None
    with Hub(load_entrypoints=False) as hub:
        try:
            target = hub.register(obj, run.name)
        except ProviderHubError as exc:
            run.record("params", [f"a hub refused to register it: {exc}"])
            return None
    run.record("params", _params_problems(target, run.name))
    return target


def _params_problems(p: Provider, name: str) -> list[str]:
    try:
        text = p.params
    except Exception as exc:
        return [f"could not be rendered: {_describe(exc)}"]
    expected = f"providerhub.providers.{name} supports: ("
    if not isinstance(text, str) or not text.startswith(expected):
        return [
            f"is {text!r}; it should start with {expected!r} (build it with "
            f"providerhub.plugin.render_params({name!r}, _create_completion))"
        ]
    return []


# -- calls ---------------------------------------------------------------------------------


def _check_calls(
    run: _Run,
    p: Provider,
    model: str | None,
    server: OpenAIServer | None,
    openai_compatible: bool | None,
    auth: str | None,
) -> None:
    if model is None:
        run.record("calls", ["it lists no model to call: list one in 'model', or pass model="])
        return
    run.model = model
    if openai_compatible is False:
        run.compatible = False
        _check_by_prompt(run, p, auth)
        return
    own = server is None
    srv = OpenAIServer() if server is None else server
    if not own and srv.pending:
        raise ValueError("check_provider needs a server with no replies queued by script()")
    srv.start()
    script = _Script(srv.responder)
    srv.responder = script
    try:
        with _environment(
            {settings.url_variable(p.name): srv.url, settings.api_key_variable(p.name): None}
        ):
            detected = _check_against_server(run, p, srv, script, insist=openai_compatible)
    finally:
        srv.responder = script.previous
        if own:
            srv.stop()
    if not detected:
        run.compatible = False
        run.notes.append(
            "no request reached the local OpenAI-compatible server at a path ending in "
            f"{_CHAT_PATH}, so the provider was checked with the prompt; pass "
            "openai_compatible=True to insist, or False to skip the detection"
        )
        _check_by_prompt(run, p, auth)


class _Script:
    """The server's responder during a check: answers every request with :attr:`reply`."""

    def __init__(self, previous: Callable[[int, RecordedRequest], Reply] | None) -> None:
        self.previous = previous
        self.reply = Reply()

    def __call__(self, number: int, request: RecordedRequest) -> Reply:
        return self.reply


def _reached_chat(outcome: _Outcome) -> list[RecordedRequest]:
    return [r for r in outcome.requests if r.path.rstrip("/").endswith(_CHAT_PATH)]


def _check_against_server(
    run: _Run, p: Provider, srv: OpenAIServer, script: _Script, *, insist: bool | None
) -> bool:
    """The OpenAI-compatible checks. Returns False, having checked nothing, when detecting
    (``insist`` None) and the provider did not call the server's chat completions path."""
    auth = run.fake if p.needs_auth else None
    expected = "".join(SERVER_CHUNKS)

    script.reply = Reply.text(*SERVER_CHUNKS)
    outcome = run.call(p, False, auth=auth, server=srv)
    reached = _reached_chat(outcome)
    if not reached:
        if insist is None:
            return False
        run.record(
            "non-stream",
            [
                f"no request reached the local server at a path ending in {_CHAT_PATH}: "
                f"the provider must build its endpoint from the url that "
                f"{settings.url_variable(p.name)} overrides (the module's 'url', or "
                "providerhub.plugin.base_url)"
            ],
        )
        run.skip("stream, errors, credentials", "the provider never reached the local server")
        run.compatible = True
        return True
    run.compatible = True
    run.record("non-stream", _served_problems(run, outcome, reached, expected, stream=False))

    if p.supports_stream:
        script.reply = Reply.text(*SERVER_CHUNKS)
        outcome = run.call(p, True, auth=auth, server=srv)
        run.record(
            "stream", _served_problems(run, outcome, _reached_chat(outcome), expected, stream=True)
        )
    else:
        run.skip("stream", "supports_stream is False")

    if p.capabilities["supports_tools"]:
        _check_tools(run, p, srv, script, auth)
    else:
        run.skip("tools", "supports_tools is not True")

    failures: list[tuple[str, Reply, bool]] = [
        ("HTTP 503", Reply.error(503, "overloaded"), False),
        ("an HTML page", Reply.html(), False),
    ]
    if p.supports_stream:
        failures.append(
            ("a stream cut short", Reply.text(*SERVER_CHUNKS, fault="cut", after=2), True)
        )
    for label, reply, stream in failures:
        script.reply = reply
        outcome = run.call(p, stream, auth=auth, server=srv)
        run.record(f"errors: {label}", _failure_problems(run, outcome, label), area="errors")

    script.reply = Reply(status=401, body=_echo_request, content_type="application/json")
    outcome = run.call(p, False, auth=run.fake, server=srv)
    problems = _failure_problems(run, outcome, "HTTP 401")
    if outcome.error is not None:
        problems += _leak_problems(run, outcome.error)
    sent = any(run.holds_fake(json.dumps([r.path, dict(r.headers)])) for r in outcome.requests)
    if not sent:
        run.notes.append("credentials: the credential given as auth was not sent to the server")
    run.record("credentials", problems)
    return True


TOOL_CALL = {"id": "call_check", "name": "get_weather", "arguments": {"city": "Oslo"}}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _check_tools(
    run: _Run, p: Provider, srv: OpenAIServer, script: _Script, auth: str | None
) -> None:
    """A provider that declares ``supports_tools`` must pass ``tools`` on and give back the
    server's tool call, usage and finish reason as structured pieces, in a document and,
    when it streams, in a stream that repeats the call's id and name (as llama.cpp does)."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    for stream in [False, True] if p.supports_stream else [False]:
        script.reply = Reply.tools(TOOL_CALL, usage=USAGE, dialect="llama.cpp")
        extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if stream else {}
        outcome = run.call(p, stream, auth=auth, server=srv, tools=tools, **extra)
        problems = _outcome_problems(run, outcome)
        reached = _reached_chat(outcome)
        if reached and _json_body(reached[-1]).get("tools") != tools:
            problems.append("the request did not carry the tools it was given")
        if outcome.error is None and not outcome.timed_out:
            problems += _structured_problems(outcome, stream=stream)
        run.record("tools" + (" (stream)" if stream else ""), problems, area="tools")


def _structured_problems(outcome: _Outcome, *, stream: bool) -> list[str]:
    assembler = Assembler()
    for piece in outcome.pieces:
        if is_piece(piece):
            assembler.add(piece)  # type: ignore[arg-type]
    r = assembler.completion("check", None)
    calls = r.choices[0].message.tool_calls or []
    problems = []
    got = [(c.id, c.function.name, c.function.arguments) for c in calls]
    want = [(TOOL_CALL["id"], TOOL_CALL["name"], json.dumps(TOOL_CALL["arguments"]))]
    if [(i, n, _loads_or_none(a)) for i, n, a in got] != [
        (i, n, _loads_or_none(a)) for i, n, a in want
    ]:
        problems.append(
            f"gave the tool calls {got!r}, but the server sent {want!r}: yield "
            "providerhub.plugin.ToolCallDelta pieces (declare yields_pieces = True and pass "
            "the structured=True the router then gives on to chat_completion)"
        )
    if stream and sum(1 for p in outcome.pieces if isinstance(p, ToolCallDelta) and p.id) > 1:
        problems.append("gave the tool call's id more than once: give it in the first fragment")
    if assembler.finish_reason != "tool_calls":
        problems.append(
            f"gave the finish reason {assembler.finish_reason!r}, but the server sent "
            "'tool_calls': yield providerhub.plugin.Finish"
        )
    if r.usage is None or r.usage.to_dict() != USAGE:
        problems.append(
            f"gave the usage {r.usage!r}, but the server sent {USAGE!r}: yield "
            "providerhub.plugin.Usage"
        )
    return problems


def _loads_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _echo_request(request: RecordedRequest) -> str:
    """An error body quoting the request's path and headers, credential and all, as some
    services do."""
    echoed = f"invalid credential; request was {request.path} with headers {dict(request.headers)}"
    return json.dumps({"error": {"message": echoed, "type": "invalid_request_error"}})


def _served_problems(
    run: _Run, outcome: _Outcome, reached: list[RecordedRequest], expected: str, *, stream: bool
) -> list[str]:
    problems = _outcome_problems(run, outcome)
    if outcome.error is None and not outcome.timed_out:
        text = outcome.text()
        if text != expected:
            problems.append(f"gave {text!r}, but the server sent {expected!r}")
        elif stream and len(outcome.pieces) == 1:
            problems.append(
                "gave the whole text as one piece: with supports_stream = True, yield each "
                "piece as it arrives"
            )
    if reached:
        body = _json_body(reached[-1])
        if not _holds_prompt(body, run.prompt):
            problems.append("the request's messages do not hold the prompt it was given")
        if stream and body.get("stream") is not True:
            problems.append('asked for stream=True, but the request did not say "stream": true')
    return problems


def _failure_problems(run: _Run, outcome: _Outcome, label: str) -> list[str]:
    if outcome.timed_out:
        return [f"on {label}, it did not finish within {run.timeout:g} s"]
    if outcome.error is None:
        return [
            f"on {label}, it raised nothing (it gave {outcome.text()!r}); raise a "
            "providerhub.ProviderError"
        ]
    return [f"on {label}, {problem}" for problem in _typed_problems(run, outcome.error)]


def _check_by_prompt(run: _Run, p: Provider, auth: str | None) -> None:
    """The checks of a provider that is not OpenAI-compatible: real calls with the prompt."""
    credential = p.credential(auth)
    if p.needs_auth and not credential:
        run.record(
            "calls",
            [
                f"needs_auth is True, but no credential is at hand: pass auth= or set "
                f"{settings.api_key_variable(p.name)}"
            ],
        )
    else:
        for label, stream in (("non-stream", False), ("stream", True)):
            if stream and not p.supports_stream:
                run.skip("stream", "supports_stream is False")
                continue
            outcome = run.call(p, stream, auth=credential)
            problems = _outcome_problems(run, outcome)
            if not problems and not outcome.text():
                problems.append("yielded no text")
            run.record(label, problems)

    outcome = run.call(p, False, auth=run.fake)
    if outcome.timed_out:
        run.record("credentials", [f"did not finish within {run.timeout:g} s"])
        return
    if outcome.error is None:
        run.notes.append(
            "credentials: the call with a fake credential did not fail, so no error message "
            "could be checked for it"
        )
        run.record("credentials", [])
        return
    run.record(
        "credentials", _typed_problems(run, outcome.error) + _leak_problems(run, outcome.error)
    )


def _outcome_problems(run: _Run, outcome: _Outcome) -> list[str]:
    problems = []
    wrong = sorted({type(piece).__name__ for piece in outcome.pieces if not is_piece(piece)})
    if wrong:
        problems.append(f"yielded {', '.join(wrong)}, not str or a piece of providerhub.types")
    if outcome.timed_out:
        problems.append(f"did not finish within {run.timeout:g} s")
    elif outcome.error is not None:
        typed = _typed_problems(run, outcome.error)
        problems += typed or [f"failed: {_describe(outcome.error)}"]
    return problems


def _typed_problems(run: _Run, exc: BaseException) -> list[str]:
    if not isinstance(exc, ProviderError):
        return [
            f"raised {_describe(exc)}, not a providerhub.ProviderError (raise one of "
            "providerhub.errors' ProviderError types, naming the provider)"
        ]
    if exc.provider != run.name:
        return [f"raised {type(exc).__name__} naming provider {exc.provider!r}, not {run.name!r}"]
    return []


def _leak_problems(run: _Run, exc: BaseException) -> list[str]:
    problems = []
    for depth, err in enumerate(_chain(exc)):
        places = [
            place
            for place, text in (
                ("str", _safe(str, err)),
                ("repr", _safe(repr, err)),
                ("attributes", _safe(lambda e: repr(vars(e)), err)),
            )
            if run.holds_fake(text)
        ]
        if places:
            which = f"the {type(err).__name__} it raised"
            if depth:
                which = f"the {type(err).__name__} chained to the error it raised"
            problems.append(
                f"{which} holds the credential it was given (in its {', '.join(places)}); "
                "redact it, e.g. with providerhub.plugin.redact(text, [credential])"
            )
    return problems


def _log_problems(records: list[logging.LogRecord], run: _Run) -> list[str]:
    formatter = logging.Formatter("%(message)s")
    leaking = sorted({r.name for r in records if run.holds_fake(_safe(formatter.format, r))})
    return [f"a record of logger {name!r} holds the credential" for name in leaking]


# -- helpers -------------------------------------------------------------------------------


def _default_name(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        for ep in discover():
            module, _, attr = ep.value.partition(":")
            if module.strip() == obj.__name__ and not attr.strip():
                return ep.name
    return _name_of(obj, None)


def _first_model(obj: Any) -> str | None:
    models = getattr(obj, "model", None)
    if isinstance(models, str):
        return models
    if isinstance(models, (list, tuple)):
        return next((m for m in models if isinstance(m, str)), None)
    return None


def _restore_url(obj: Any, declared: object) -> None:
    """Undo the url override :meth:`Provider.complete` writes into a provider object."""
    if isinstance(obj, types.ModuleType) or getattr(obj, "url", None) == declared:
        return
    try:
        obj.url = declared
    except (AttributeError, TypeError):
        pass


def _json_body(request: RecordedRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _holds_prompt(body: Mapping[str, Any], prompt: str) -> bool:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    return any(isinstance(m, dict) and m.get("content") == prompt for m in messages)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions a traceback of it would show."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def _safe(func: Any, value: Any) -> str:
    try:
        return str(func(value))
    except Exception:
        return ""


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables, restoring them after."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: Mapping[str, str | None]) -> None:
    """Set each of ``values`` in ``os.environ``, unsetting those that are None."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every log record made meanwhile (from loggers without a level of their own)."""
    root = logging.getLogger()
    handler = _Records()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
