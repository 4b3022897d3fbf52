"""The ``providerhub`` command: list providers, models and params, chat, and a demo.

Every failure prints one line, ``providerhub: error: ...``, and exits non-zero: 2 for a
usage mistake, 1 for anything else.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import __version__
from ._check import run_checks
from ._hub import Hub, get_hub
from ._provider import Provider
from ._redaction import safe_url
from ._state.store import StateStatus
from .errors import ConfigurationError, InvalidRequestError, PluginError, ProviderHubError
from .legacy import load_dir

__all__ = ["build_parser", "main"]

DEMO_MODEL = "gpt-3.5-turbo-16k"
DEMO_PROVIDER = "gravityengine"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="providerhub",
        description="Route chat completions across the LLM providers installed as plugins.",
    )
    parser.add_argument("--version", action="version", version=f"providerhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_listings(sub)
    _add_chat(sub)
    _add_check(sub)
    sub.add_parser(
        "demo",
        help="start a local stand-in server and stream a routed chat through gravityengine",
    )
    _add_serve(sub)
    return parser


def _add_listings(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``providers``, ``models`` and ``params``: what is installed."""
    providers = sub.add_parser("providers", help="list installed providers and plugin errors")
    providers.add_argument("--json", action="store_true", help="print JSON")
    providers.add_argument(
        "--legacy-dir",
        metavar="DIR",
        help="also load the old gpt4free-layout provider modules (*.py) of DIR",
    )

    models = sub.add_parser(
        "models",
        help="list models (embedding models apart) and the providers serving each; "
        "--refresh asks each provider",
        description="List every model with the providers serving it, and where each has "
        "it from: its plugin, PROVIDERHUB_<NAME>_MODELS (env), or the models cache "
        "(cache); embedding models apart. --refresh asks each provider's list endpoint "
        "instead, writes the answers to the cache (models.json in PROVIDERHUB_CACHE_DIR, "
        "else the user's cache directory), which later hubs read, and exits 1 if any "
        "provider failed.",
    )
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument(
        "--refresh",
        action="store_true",
        help="ask each provider which models it serves and cache the answers",
    )
    models.add_argument(
        "-p", "--provider", action="append", help="with --refresh: ask only this provider"
    )
    models.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="with --refresh: seconds for each provider, all pages included (default 15)",
    )

    params = sub.add_parser("params", help="list what each provider's completion accepts")
    params.add_argument("--json", action="store_true", help="print JSON")


def _add_chat(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``chat``: one prompt, its answer printed as it arrives."""
    chat = sub.add_parser("chat", help="send one prompt and print the answer as it arrives")
    chat.add_argument("-m", "--model", required=True, help="model name")
    chat.add_argument(
        "-p",
        "--provider",
        action="append",
        help="provider to use (repeat to give a fallback order)",
    )
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for the provider, e.g. -o temperature=0.2 (VALUE is read as JSON "
        "when it parses, else as text)",
    )
    chat.add_argument("--timeout", type=float, help="seconds for the whole call")
    chat.add_argument(
        "--retries", type=int, help="retries of each provider for transient failures (default 2)"
    )
    chat.add_argument("prompt", help="the prompt; '-' reads it from standard input")


def _add_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``check``: a short prompt to every provider and model."""
    check = sub.add_parser(
        "check",
        help="send a short prompt, asking for at most 16 tokens back, to every provider and "
        "model; exit 1 if any fails",
    )
    check.add_argument("-p", "--provider", action="append", help="check only this provider")
    check.add_argument("-m", "--model", action="append", help="check only this model")
    check.add_argument(
        "--timeout", type=float, default=15.0, help="seconds for each check (default 15)"
    )
    check.add_argument("--workers", type=int, default=8, help="checks at the same time (default 8)")
    check.add_argument("--json", action="store_true", help="print JSON")


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``serve``: the OpenAI-compatible gateway."""
    serve = sub.add_parser(
        "serve",
        help="run an OpenAI-compatible server over the installed providers "
        '(pip install "providerhub[server]")',
        description="Serve OpenAI's chat completions and models API at http://HOST:PORT/v1. "
        "Client keys: PROVIDERHUB_SERVER_API_KEYS, or [[server.keys]] in the configuration "
        "file (see docs/server.md). SIGTERM stops accepting connections, lets the requests "
        "under way finish for up to --drain-timeout seconds, then exits 0.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on; 0 picks a free one (default 8000)",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1)", metavar="N"
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds the requests under way may take to finish after SIGTERM (default 30)",
    )
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen on an address other machines can reach with no client key set",
    )


def help_texts() -> dict[str, str]:
    """``--help`` of the command and of each subcommand, keyed by the command line that
    prints it; the docs' CLI reference is made from these, so it cannot drift."""
    parser = build_parser()
    texts = {"providerhub": parser.format_help()}
    # argparse has no public way to list subcommands; its actions hold them.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                texts[f"providerhub {name}"] = sub.format_help()
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = COMMANDS[args.command](args, sys.stdout)
        return result
    except ProviderHubError as exc:
        _error(str(exc))
        # 2: what was asked, or how it is set up, cannot work; 1: it failed.
        return 2 if isinstance(exc, (InvalidRequestError, ConfigurationError)) else 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing more can be said to it.
        sys.stderr.close()
        return 1


def _error(message: str) -> None:
    lines = message.splitlines() or [""]
    print(f"providerhub: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line.strip()}", file=sys.stderr)


def _providers(args: argparse.Namespace, out: TextIO) -> int:
    hub = get_hub()
    if args.legacy_dir:
        load_dir(args.legacy_dir, hub=hub)
    rows = [_provider_row(hub, p) for p in hub.providers.values()]
    errors = [
        {"plugin": e.name, "distribution": e.distribution, "error": e.error}
        for e in hub.plugin_errors
    ]
    status = hub.state.check()
    if args.json:
        doc = {
            "state": {**dataclasses.asdict(status), "describe": status.describe()},
            "providers": rows,
            "plugin_errors": errors,
            "available": [dataclasses.asdict(a) for a in hub.available],
            "disabled_plugins": hub.disabled_plugins,
            "alias_errors": hub.alias_errors,
            "routing": _routing_rows(hub),
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0
    _write_providers(out, rows)
    _write_routing(out, _routing_rows(hub))
    _write_available(out, hub)
    _write_state(out, status)
    for name in hub.disabled_plugins:
        out.write(f"{name}  skipped: named in PROVIDERHUB_DISABLE_PLUGINS\n")
    for e in hub.plugin_errors:
        out.write(f"error: {e}\n")
    for alias_error in hub.alias_errors:
        out.write(f"error: {alias_error}\n")
    return 0


def _provider_row(hub: Hub, p: Provider) -> dict[str, Any]:
    """What ``providers --json`` says of ``p``."""
    return {
        "name": p.name,
        "distribution": p.distribution,
        "version": p.version,
        # Without user info and query: PROVIDERHUB_<NAME>_URL may carry a password.
        "url": safe_url(p.url),
        "models": list(p.model),
        "added_models": dict(p.added),
        "embedding_models": list(p.embedding_models),
        "stream": p.supports_stream,
        "needs_auth": p.needs_auth,
        "auth_variable": p.api_key_variable,
        "working": p.working,
        "disabled": p.disabled,
        "cooldown": _cooldown(hub, p.name),
    }


def _write_providers(out: TextIO, rows: list[dict[str, Any]]) -> None:
    """The providers of ``rows`` (:func:`_provider_row`), a few lines each."""
    if not rows:
        out.write("no providers installed (pip install providerhub-gravityengine, for one)\n")
    for row in rows:
        origin = row["distribution"] or "registered in code"
        if row["version"]:
            origin += f" {row['version']}"
        state = "working" if row["working"] else ("disabled" if row["disabled"] else "not working")
        auth = f"needs auth ({row['auth_variable']})" if row["needs_auth"] else "no auth"
        stream = "streams" if row["stream"] else "no stream"
        out.write(f"{row['name']}  [{origin}]  {state}, {stream}, {auth}\n")
        out.write(f"  url:    {row['url']}\n")
        added = row["added_models"]
        shown = [m if m not in added else f"{m} ({added[m]})" for m in row["models"]]
        out.write(f"  models: {', '.join(shown)}\n")
        if row["embedding_models"]:
            out.write(f"  embedding models: {', '.join(row['embedding_models'])}\n")
        if row["cooldown"]:
            cooldown = row["cooldown"]
            out.write(
                f"  cooldown: {cooldown['remaining']:.0f} s left, after "
                f"{cooldown['failures']} failures in a row (last: {cooldown['last_error']})\n"
            )


def _routing_rows(hub: Hub) -> list[dict[str, Any]]:
    """Each model that more than one provider serves, or that has a strategy of its own:
    its routing strategy, its providers in registration order, and the share of first
    tries each is configured to get (``weighted``; None for a strategy that learns)."""
    configured = hub.routing.configured()
    rows = []
    for model, names in hub.models().items():
        if len(names) < 2 and model not in configured:
            continue
        shares = hub.routing.strategy(model).shares(names)
        rows.append(
            {
                "model": model,
                "strategy": hub.strategy(model),
                "providers": names,
                "shares": shares,
            }
        )
    return rows


def _write_routing(out: TextIO, rows: list[dict[str, Any]]) -> None:
    """The models of ``rows`` (:func:`_routing_rows`), one line each."""
    if not rows:
        return
    out.write("\nrouting (strategy: providers, with each one's configured share):\n")
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        shares = row["shares"]
        names = (
            ", ".join(f"{n} {shares[n]:.0%}" for n in row["providers"])
            if shares is not None
            else ", ".join(row["providers"])
        )
        out.write(f"  {row['model'].ljust(width)}  {row['strategy']}: {names}\n")


def _write_available(out: TextIO, hub: Hub) -> None:
    """The providers the plugins offer but have not registered, with what activates each."""
    if not hub.available:
        return
    out.write("\navailable, not active (set one of the variables to activate):\n")
    width = max(len(a.name) for a in hub.available)
    urls = [safe_url(a.url) if a.url else "-" for a in hub.available]
    url_width = max(map(len, urls))
    for a, url in zip(hub.available, urls):
        out.write(f"  {a.name.ljust(width)}  {url.ljust(url_width)}  {' or '.join(a.activate)}\n")
    out.write("\n")


def _write_state(out: TextIO, status: StateStatus) -> None:
    """Where the cooldowns shown come from, by the state's ``status``."""
    if status.backend == "memory":
        out.write(
            "cooldowns: in this process's memory (set PROVIDERHUB_REDIS_URL to see those of "
            "the processes sharing it)\n"
        )
    elif status.shared:
        out.write(f"cooldowns: {status.describe()}\n")
    else:
        out.write(
            f"cooldowns: not known: {status.location} cannot be reached ({status.error}), "
            "so those of other processes are not shown\n"
        )


def _cooldown(hub: Hub, name: str) -> dict[str, Any] | None:
    cooling = hub.health.cooling(name)
    if cooling is None:
        return None
    return {
        "remaining": round(cooling.remaining, 1),
        "failures": cooling.failures,
        "last_error": cooling.last_error,
    }


def _models(args: argparse.Namespace, out: TextIO) -> int:
    if args.refresh:
        return _refresh(args, out)
    if args.provider:
        raise InvalidRequestError("-p/--provider goes with --refresh")
    hub = get_hub()
    models = hub.models()
    origins = {m: _origins(hub, m) for m in models}
    embedding = hub.embedding_models()
    if args.json:
        doc = {
            "models": [
                {"model": m, "providers": ps, "origins": origins[m]} for m, ps in models.items()
            ],
            "embedding_models": [{"model": m, "providers": ps} for m, ps in embedding.items()],
            "aliases": dict(hub.aliases),
            "alias_errors": hub.alias_errors,
            "cache": {
                "path": hub.model_cache.path,
                "fetched_at": hub.model_cache.fetched_at,
                "problem": hub.model_cache.problem,
            },
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0
    width = max((len(m) for m in [*models, *embedding, *hub.aliases]), default=0)
    for m, ps in models.items():
        shown = [p if origins[m][p] == "plugin" else f"{p} ({origins[m][p]})" for p in ps]
        out.write(f"{m.ljust(width)}  {', '.join(shown)}\n")
    if embedding:
        out.write("\nembedding models:\n")
        for m, ps in embedding.items():
            out.write(f"{m.ljust(width)}  {', '.join(ps)}\n")
    found = {origin for by in origins.values() for origin in by.values()}
    if found - {"plugin"}:
        out.write("\n")
        for origin in ("env", "cache"):
            if origin in found:
                out.write(f"({origin}): {_ORIGIN_WORDS[origin]}\n")
        if "cache" in found:
            out.write(f"  ({hub.model_cache.path}, {hub.model_cache.fetched_at})\n")
    if hub.model_cache.problem:
        out.write(f"warning: the models cache {hub.model_cache.problem}\n")
    if hub.aliases:
        out.write("\naliases:\n")
        for alias, target in sorted(hub.aliases.items()):
            out.write(f"{alias.ljust(width)}  -> {target}\n")
    if hub.alias_errors and not hub.aliases:
        out.write("\n")
    for alias_error in hub.alias_errors:
        out.write(f"error: {alias_error}\n")
    return 0


def _refresh(args: argparse.Namespace, out: TextIO) -> int:
    """``models --refresh``: each provider's list, cached; 1 if any failed."""
    from ._discovery import ask, save

    if args.timeout <= 0:
        raise InvalidRequestError("--timeout must be positive")
    hub = get_hub()
    results = ask(hub, providers=args.provider, timeout=args.timeout)
    try:
        path = save(hub, results)
    except OSError as exc:
        problem = (
            f"the models cache cannot be written ({exc.strerror or exc}): set "
            "PROVIDERHUB_CACHE_DIR to a directory you can write"
        )
        path = None
    if args.json:
        doc = {"cache": str(path) if path else None, "providers": [r.as_dict() for r in results]}
        json.dump(doc, out, indent=2)
        out.write("\n")
    else:
        width = max((len(r.provider) for r in results), default=0)
        for r in results:
            out.write(f"{r.provider.ljust(width)}  {r.status.ljust(7)}  {r.reason}\n")
        if path is not None:
            asked = sum(1 for r in results if r.status == "ok")
            out.write(f"\nwrote the models of {asked} providers to {path}\n")
    if path is None:
        out.flush()
        raise ConfigurationError(problem)
    return 1 if any(r.failed for r in results) else 0


_ORIGIN_WORDS = {
    "env": "added by the provider's PROVIDERHUB_<NAME>_MODELS",
    "cache": "listed by the provider when 'providerhub models --refresh' last asked it",
}


def _origins(hub: Hub, model: str) -> dict[str, str]:
    """Where each provider serving ``model`` has it from: ``plugin``, ``env`` or
    ``cache``."""
    return {p.name: p.origin(model) for p in hub.registry.serving(model)}


def _params(args: argparse.Namespace, out: TextIO) -> int:
    hub = get_hub()
    if args.json:
        doc = [
            {
                "provider": p.name,
                "params": p.params,
                "parameters": [param.as_dict() for param in p.params_info],
                "capabilities": p.capabilities,
            }
            for p in hub.providers.values()
        ]
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0
    for p in hub.providers.values():
        out.write(p.params + "\n")
    return 0


def _chat(args: argparse.Namespace, out: TextIO) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    options = dict(_option(text) for text in args.option)
    provider: str | list[str] | None = args.provider
    if provider is not None and len(provider) == 1:
        provider = provider[0]
    hub = get_hub()
    messages = [{"role": "user", "content": prompt}]
    if args.no_stream:
        text = hub.create(
            args.model,
            messages,
            provider=provider,
            timeout=args.timeout,
            retries=args.retries,
            **options,
        )
        out.write(text + "\n")
        return 0
    with hub.create(
        args.model,
        messages,
        stream=True,
        provider=provider,
        timeout=args.timeout,
        retries=args.retries,
        **options,
    ) as pieces:
        for piece in pieces:
            out.write(piece)
            out.flush()
    out.write("\n")
    return 0


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InvalidRequestError(f"-o takes KEY=VALUE, not {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _check(args: argparse.Namespace, out: TextIO) -> int:
    if args.timeout <= 0 or args.workers < 1:
        raise InvalidRequestError("--timeout must be positive and --workers at least 1")
    results = run_checks(
        get_hub(),
        providers=args.provider,
        models=args.model,
        timeout=args.timeout,
        workers=args.workers,
    )
    if args.json:
        json.dump([r.as_dict() for r in results], out, indent=2)
        out.write("\n")
    else:
        header = ("provider", "model", "status", "latency", "reason")
        rows = [
            (
                r.provider,
                r.model,
                r.status,
                "-" if r.latency is None else f"{r.latency * 1000:.0f} ms",
                r.reason if len(r.reason) <= 160 else r.reason[:157] + "...",
            )
            for r in results
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
        for row in [header, *rows]:
            cells = [cell.ljust(width) for cell, width in zip(row, widths)]
            out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
    return 1 if any(r.failed for r in results) else 0


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import OpenAIServer

    with OpenAIServer() as server:
        os.environ["PROVIDERHUB_GRAVITYENGINE_URL"] = server.url
        with Hub() as hub:
            if DEMO_PROVIDER not in hub.providers:
                raise PluginError(
                    "the gravityengine plugin is not installed: "
                    "pip install ./plugins/gravityengine (or providerhub-gravityengine)"
                )
            out.write(
                f"A local stand-in server at {server.url} answers for Gravityengine "
                "(the real service is not reachable from here).\n"
            )
            candidates = hub.route(DEMO_MODEL, stream=True)
            out.write(
                f"Routing {DEMO_MODEL!r} with stream=True: candidates "
                f"{[p.name for p in candidates]}\n\n"
            )
            prompt = "Hi! What are you?"
            out.write(f"> {prompt}\n")
            stream = hub.create(
                DEMO_MODEL, [{"role": "user", "content": prompt}], stream=True, timeout=30
            )
            with stream:
                for piece in stream:
                    out.write(piece)
                    out.flush()
            out.write(f"\n\n(streamed by {stream.provider}, from the local stand-in server)\n")
    return 0


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from .server._serve import serve

    return serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        drain_timeout=args.drain_timeout,
        allow_unauthenticated=args.allow_unauthenticated,
        out=sys.stderr,
    )


COMMANDS = {
    "providers": _providers,
    "models": _models,
    "params": _params,
    "chat": _chat,
    "check": _check,
    "demo": _demo,
    "serve": _serve,
}
