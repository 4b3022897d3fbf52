"""The tests' one door to providerhub's private modules.

Tests reach internals only through this module, so that moving a private module changes
this file and not the tests. Prefer the public API (``providerhub``, ``providerhub.plugin``,
``providerhub.testing``) in new tests.
"""

from providerhub import _cli as cli
from providerhub import _hub as hub_module
from providerhub import _settings as settings
from providerhub import _speedups
from providerhub._check import MAX_TOKENS, run_checks
from providerhub._cli import build_parser, help_texts
from providerhub._codecs.base import Call, Request
from providerhub._codecs.completions import Assembler, Chunker, completion_id
from providerhub._codecs.openai_chat import CODEC, _json_loads
from providerhub._codecs.sse import Event, EventTooLargeError, SSEParser
from providerhub._codecs.toolcalls import ToolCallStream, tool_calls_of
from providerhub._http import chat as _openai_compat
from providerhub._http.achat import achat_completion
from providerhub._http.chat import chat_completion
from providerhub._options import ROUTER_ARGUMENTS, provider_options
from providerhub._params import NO_DEFAULT, describe, render
from providerhub._redaction import redact
from providerhub._routing import arouter, router
from providerhub._routing import threaded as aio
from providerhub._routing.arouter import NativeStream
from providerhub._routing.pump import Workers
from providerhub._routing.threaded import WORKERS
from providerhub._speedups import environment_reader
from providerhub._speedups import scan_json as _scan
from providerhub._state import limits as _limits
from providerhub._state.health import Claim, Health
from providerhub._state.limits import Limits, MemoryLimiter
from providerhub._state.redis import RedisState
from providerhub._transports import aio as transports_aio
from providerhub._transports import lean
from providerhub._transports import session as _session
from providerhub._transports import sync as transport
from providerhub._transports.session import ENVIRONMENT
from providerhub._validation import MAX_DEPTH, ROLES, validate_messages
from providerhub.server import _config, _errors
from providerhub.server._app import DISCONNECT_EXTENSION
from providerhub.server._errors import failure_for
from providerhub.server._keys import Keys
from providerhub.server._protocol import GatewayProtocol
from providerhub.server._serve import is_loopback

__all__ = [
    "CODEC",
    "DISCONNECT_EXTENSION",
    "ENVIRONMENT",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "NO_DEFAULT",
    "ROLES",
    "ROUTER_ARGUMENTS",
    "WORKERS",
    "Assembler",
    "Call",
    "Chunker",
    "Claim",
    "Event",
    "EventTooLargeError",
    "GatewayProtocol",
    "Health",
    "Keys",
    "Limits",
    "MemoryLimiter",
    "NativeStream",
    "RedisState",
    "Request",
    "SSEParser",
    "ToolCallStream",
    "Workers",
    "_config",
    "_errors",
    "_json_loads",
    "_limits",
    "_openai_compat",
    "_scan",
    "_session",
    "_speedups",
    "achat_completion",
    "aio",
    "arouter",
    "build_parser",
    "chat_completion",
    "cli",
    "completion_id",
    "describe",
    "environment_reader",
    "failure_for",
    "help_texts",
    "hub_module",
    "is_loopback",
    "lean",
    "provider_options",
    "redact",
    "render",
    "router",
    "run_checks",
    "settings",
    "tool_calls_of",
    "transport",
    "transports_aio",
    "validate_messages",
]
