"""providerhub's client and the openai SDK against a real OpenAI-compatible server that
speaks tool calls: llama-cpp-python's server with ``chatml-function-calling``, on CPU, on
127.0.0.1 only.

The tests check the client against ``providerhub.testing.OpenAIServer``, whose dialects are
what we believe real servers send; this script checks that belief against one real server.
It makes a tiny random-weight GGUF model (``scripts/tiny_gguf.py``), starts
``python -m llama_cpp.server`` on it, and sends a forced tool call
(``tool_choice`` naming ``get_weather``), as a document and as a stream with
``stream_options={"include_usage": True}``, once through ``providerhub.Client`` and once
through the openai SDK. It prints what each got side by side, with what the server put on
the wire (as the SDK, which passes it through, shows it), and checks that providerhub's
answer is OpenAI-shaped: the call's name is ``get_weather``, its arguments are JSON that
the schema allows, the stream gives each call's id, type and name once, one chunk carries
``finish_reason``, usage is the server's (none when it sent none), and both clients read
the same call. It exits 1 on any mismatch, 2 when the set-up failed, and always stops the
server.

llama-cpp-python lives in a venv of its own (it compiles llama.cpp: about 15 minutes on
2 cores)::

    python3 -m venv /tmp/llama-venv
    /tmp/llama-venv/bin/pip install "llama-cpp-python[server]" gguf

then, from the dev environment of the main README (its dev extra has ``openai``)::

    .venv/bin/python scripts/real_server_tools.py --python /tmp/llama-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import openai

import providerhub
from providerhub.plugin import chat_completion

HERE = Path(__file__).resolve().parent
MODEL = "tiny"  # the server's --model_alias
CITIES = ["Oslo", "Bergen", "Tromso"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            # An enum and no extra properties keep the grammar's output short: a random
            # model would otherwise fill max_tokens with a string and cut the JSON.
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": CITIES}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The time in a zone.",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    },
]
MESSAGES: list[Any] = [
    # The handler lists the tools only inside a system message.
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Oslo?"},
]
FIELDS = ("id", "type", "name", "arguments")
FORCED = {"type": "function", "function": {"name": "get_weather"}}
SETUP = (
    'python3 -m venv /tmp/llama-venv && /tmp/llama-venv/bin/pip install "llama-cpp-python[server]"'
    " gguf"
)


class SetupError(Exception):
    """The server could not be had: no llama-cpp-python, no model, no answer."""


class Local:
    """The llama-cpp-python server as a providerhub provider, the way any
    OpenAI-compatible endpoint is one."""

    model: ClassVar[list[str]] = [MODEL]
    supports_stream = True
    needs_auth = False
    supports_tools = True
    yields_pieces = True
    honors_timeout = True

    def __init__(self, url: str) -> None:
        self.url = url

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        yield from chat_completion(
            "llama-cpp", self.url + "/v1/chat/completions", model, messages, stream, **kwargs
        )


# --- the server ---------------------------------------------------------------------------


def check_python(python: str) -> str:
    """The llama-cpp-python version of ``python``, or :class:`SetupError` saying how to
    make that venv."""
    try:
        done = subprocess.run(
            [python, "-c", "import gguf, llama_cpp; print(llama_cpp.__version__)"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except OSError as exc:
        raise SetupError(f"cannot run {python}: {exc}; make it with: {SETUP}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(f"{python} lacks llama-cpp-python or gguf ({last}); {SETUP}")
    return done.stdout.strip()


def make_model(python: str, path: Path, seed: int) -> None:
    done = subprocess.run(
        [python, str(HERE / "tiny_gguf.py"), str(path), "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SetupError(f"tiny_gguf.py failed:\n{done.stderr.strip()}")
    print(done.stdout.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_server(
    python: str, model: Path, port: int, seed: int, log: Path, wait: float
) -> subprocess.Popen[bytes]:
    """Start the server and return once ``GET /v1/models`` answers, or raise
    :class:`SetupError` with the end of its log (after stopping it)."""
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL,
        "--chat_format",
        "chatml-function-calling",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--seed",
        str(seed),
    ]
    print("$", " ".join(command))
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait
    url = f"http://127.0.0.1:{port}/v1/models"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(
                f"the server exited with {process.returncode}; its log ends:\n{tail(log)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet: poll again
        time.sleep(0.2)
    stop_server(process)
    raise SetupError(f"the server did not answer within {wait:.0f} s; its log ends:\n{tail(log)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- what each client got ------------------------------------------------------------------


def whole(answer: Any) -> dict[str, Any]:
    """What a caller reads of a document."""
    choice = answer.choices[0]
    usage = answer.usage
    return {
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "calls": [
            {
                "id": c.id,
                "type": c.type,
                "name": c.function.name,
                "arguments": c.function.arguments,
            }
            for c in choice.message.tool_calls or []
        ],
        "usage": None
        if usage is None
        else [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens],
    }


def streamed(chunks: list[Any]) -> dict[str, Any]:
    """What a stream holds, concatenated as the OpenAI docs say (every field of a call's
    fragments appended), with counts of what came how often: the wire's shape.
    ``read once`` is each call read as a server that repeats the id and the name in every
    fragment means them: its first id, type and name, its arguments concatenated."""
    content, finishes, usage, roles, legacy = "", [], None, 0, 0
    calls: dict[int, dict[str, Any]] = {}
    once: dict[int, dict[str, Any]] = {}
    fragments = {"fragments": 0, "with id": 0, "with type": 0, "with name": 0, "no index": 0}
    for chunk in chunks:
        if chunk.usage is not None:
            usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens]
            usage.append(chunk.usage.total_tokens)
        for choice in chunk.choices:
            delta = choice.delta
            roles += delta.role is not None
            content += delta.content or ""
            legacy += getattr(delta, "function_call", None) is not None
            if choice.finish_reason is not None:
                finishes.append(choice.finish_reason)
            for call in delta.tool_calls or []:
                name = call.function.name if call.function is not None else None
                arguments = call.function.arguments if call.function is not None else None
                fragments["fragments"] += 1
                fragments["with id"] += bool(call.id)
                fragments["with type"] += bool(call.type)
                fragments["with name"] += bool(name)
                fragments["no index"] += call.index is None
                index = call.index or 0
                entry = calls.setdefault(index, dict.fromkeys(FIELDS, ""))
                first = once.setdefault(index, dict.fromkeys(FIELDS, ""))
                for field, value in zip(FIELDS, (call.id, call.type, name, arguments)):
                    entry[field] += value or ""
                    if field == "arguments":
                        first[field] += value or ""
                    elif not first[field]:
                        first[field] = value or ""
    return {
        "chunks": len(chunks),
        "chunks with role": roles,
        "content": content or None,
        "finish_reasons": finishes,
        "calls": [calls[i] for i in sorted(calls)],
        "usage": usage,
        "legacy function_call deltas": legacy,
        **fragments,
        "read once": [once[i] for i in sorted(once)],
    }


# --- checks ---------------------------------------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def __call__(self, ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)


def arguments_ok(arguments: str) -> bool:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return False
    return isinstance(parsed, dict) and set(parsed) == {"city"} and parsed["city"] in CITIES


def parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return None


def check_document(check: Checks, who: str, doc: dict[str, Any]) -> None:
    calls = doc["calls"]
    check(len(calls) == 1, f"{who} document: one tool call (got {len(calls)})")
    if calls:
        call = calls[0]
        check(call["name"] == "get_weather", f"{who} document: the call is get_weather")
        check(call["type"] == "function", f"{who} document: its type is function")
        check(bool(call["id"]), f"{who} document: it has an id")
        check(
            arguments_ok(call["arguments"]),
            f"{who} document: its arguments are JSON the schema allows",
        )
    check(doc["finish_reason"] == "tool_calls", f"{who} document: finish_reason tool_calls")
    usage = doc["usage"]
    check(
        usage is not None and usage[0] > 0 and usage[0] + usage[1] == usage[2],
        f"{who} document: usage adds up",
    )


def check_stream(check: Checks, raw: dict[str, Any], ours: dict[str, Any]) -> None:
    calls = ours["calls"]
    check(len(calls) == 1, f"providerhub stream: one tool call (got {len(calls)})")
    if calls:
        call = calls[0]
        check(call["name"] == "get_weather", "providerhub stream: the name, once, is get_weather")
        check(call["type"] == "function", "providerhub stream: the type, once, is function")
        check(
            arguments_ok(call["arguments"]),
            "providerhub stream: the concatenated arguments are JSON the schema allows",
        )
    check(ours["with id"] == 1, f"providerhub stream: the id comes once ({ours['with id']})")
    check(ours["with name"] == 1, f"providerhub stream: the name comes once ({ours['with name']})")
    check(ours["no index"] == 0, "providerhub stream: every fragment has an index")
    check(ours["legacy function_call deltas"] == 0, "providerhub stream: no legacy function_call")
    check(ours["chunks with role"] == 1, "providerhub stream: one chunk carries the role")
    check(
        ours["finish_reasons"] == ["tool_calls"],
        f"providerhub stream: one finish_reason, tool_calls ({ours['finish_reasons']})",
    )
    check(
        ours["usage"] == raw["usage"],
        "providerhub stream: the usage the server sent, none when it sent none "
        f"(server: {raw['usage']}, providerhub: {ours['usage']})",
    )
    if raw["usage"] is None and ours["usage"] is not None:
        print(
            "         the server streamed no usage, yet providerhub's last chunk has a usage\n"
            "         whose counts are all None: openai.types.CompletionUsage rejects that, and\n"
            "         a document without usage gets usage None, not that"
        )
    theirs = raw["read once"]
    if calls and theirs:
        check(bool(calls[0]["id"]), f"providerhub stream: the call has an id ({calls[0]['id']})")
        check(
            (calls[0]["name"], parsed(calls[0]["arguments"]))
            == (theirs[0]["name"], parsed(theirs[0]["arguments"])),
            "providerhub stream and the SDK stream (read tolerantly) hold the same call",
        )


# --- printing -------------------------------------------------------------------------------


def side_by_side(title: str, left: dict[str, Any], right: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"  {'':28} {'providerhub':42} openai SDK (the wire)")
    for key in dict.fromkeys([*left, *right]):
        a, b = left.get(key, "-"), right.get(key, "-")
        if key in ("calls", "read once"):
            for i in range(max(len(a), len(b))):
                ca = a[i] if i < len(a) else {}
                cb = b[i] if i < len(b) else {}
                for field in FIELDS:
                    label = f"{key[:-1] if key == 'calls' else key} {i} {field}"
                    print(f"  {label:28} {show(ca.get(field)):42} {show(cb.get(field))}")
            continue
        print(f"  {key:28} {show(a):42} {show(b)}")


def show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- main -----------------------------------------------------------------------------------


def run(url: str, seed: int, max_tokens: int) -> Checks:
    check = Checks()
    params: dict[str, Any] = {
        "tools": TOOLS,
        "tool_choice": FORCED,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "seed": seed,
    }
    options = {"include_usage": True}
    sdk = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
    with providerhub.Hub(load_entrypoints=False) as hub:
        hub.register(Local(url), name="llama-cpp")
        client = providerhub.Client(hub)

        timings: dict[str, float] = {}

        def timed(label: str, call: Any) -> Any:
            started = time.monotonic()
            value = call()
            timings[label] = time.monotonic() - started
            return value

        ours_doc = timed(
            "providerhub document",
            lambda: client.chat.completions.create(model=MODEL, messages=MESSAGES, **params),
        )
        their_doc = timed(
            "SDK document",
            lambda: sdk.chat.completions.create(model=MODEL, messages=MESSAGES, **params),
        )
        ours_chunks = timed(
            "providerhub stream",
            lambda: list(
                client.chat.completions.create(
                    model=MODEL, messages=MESSAGES, stream=True, stream_options=options, **params
                )
            ),
        )
        their_chunks = timed(
            "SDK stream",
            lambda: list(
                sdk.chat.completions.create(  # type: ignore[call-overload]
                    model=MODEL, messages=MESSAGES, stream=True, stream_options=options, **params
                )
            ),
        )

    ours, theirs = whole(ours_doc), whole(their_doc)
    side_by_side("document (stream=False)", ours, theirs)
    print(f"  {'provider':28} {ours_doc.provider}")
    ours_s, theirs_s = streamed(ours_chunks), streamed(their_chunks)
    side_by_side("stream (stream=True, include_usage), deltas concatenated", ours_s, theirs_s)
    print("\nseconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))

    print("\nchecks")
    check_document(check, "providerhub", ours)
    check_document(check, "SDK", theirs)
    if ours["calls"] and theirs["calls"]:
        check(
            parsed(ours["calls"][0]["arguments"]) == parsed(theirs["calls"][0]["arguments"]),
            "documents: providerhub and the SDK read the same arguments",
        )
    check(
        (ours["finish_reason"], ours["usage"]) == (theirs["finish_reason"], theirs["usage"]),
        "documents: the same finish_reason and usage",
    )
    check(
        ours_doc.to_dict()["choices"][0]["message"].get("function_call") is None,
        "providerhub document: no legacy function_call in to_dict()",
    )
    check_stream(check, theirs_s, ours_s)
    return check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        default="/tmp/llama-venv/bin/python",
        help="the interpreter of a venv with llama-cpp-python[server] and gguf "
        "(default %(default)s)",
    )
    parser.add_argument("--model", type=Path, help="a GGUF model to use instead of a tiny one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and sampling")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--wait", type=float, default=120, help="seconds for the server to start")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="real-server-tools-"))
    log = work / "server.log"
    process: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        print(f"llama-cpp-python {check_python(args.python)} ({args.python})")
        model = args.model or work / "tiny-chatml.gguf"
        if args.model is None:
            make_model(args.python, model, args.seed)
        port = free_port()
        up = time.monotonic()
        process = start_server(args.python, model, port, args.seed, log, args.wait)
        print(f"the server answered after {time.monotonic() - up:.1f} s")
        checks = run(f"http://127.0.0.1:{port}", args.seed, args.max_tokens)
    except SetupError as exc:
        print(f"\nSET-UP FAILED: {exc}")
        if any(work.iterdir()):
            print(f"(this run's files, the server's log among them, are kept in {work})")
        else:
            work.rmdir()
        return 2
    except BaseException:
        print(f"(this run's files, the server's log among them, are kept in {work})")
        raise
    finally:
        if process is not None:
            stop_server(process)
            total = time.monotonic() - started
            print(f"\nserver stopped (exit {process.returncode}); {total:.1f} s in all")
    if checks.failed:
        print(f"{len(checks.failed)} of {checks.passed + len(checks.failed)} checks FAILED")
        print(f"(this run's files, the server's log among them, are kept in {work})")
        return 1
    print(f"all {checks.passed} checks passed")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
