"""Tools for testing providerhub and its plugins without the network.

:class:`OpenAIServer` is a real OpenAI-compatible HTTP server on 127.0.0.1, with scripted
replies and faults; the tests, plugin authors and ``providerhub demo`` use it. It serves
embeddings too, with the deterministic vectors of :func:`vector_for`.
:class:`AnthropicServer` is its twin for Anthropic's Messages API (``POST /v1/messages``,
scripted with :class:`AnthropicReply`), which the ``anthropic`` SDK parses too.
:class:`GeminiServer` is its twin for Google's Gemini API, which the Gemini plugin's tests
drive with Google's own SDK too.

:func:`check_provider` is the conformance check a plugin author runs in one test; it
raises :class:`ProviderCheckError` listing every problem, or returns a
:class:`ProviderCheckReport`. The pytest fixtures ``providerhub_hub``, ``openai_server``
and ``register_provider`` come from :mod:`providerhub.testing.pytest_plugin`, which pytest
loads by itself wherever providerhub is installed.

:class:`FakeClock` is a clock a test moves by hand, so that a hub's cooldowns and rate
limits pass at once: ``Hub(state=MemoryState(clock=clock))``, then ``clock.advance(30)``.
"""

from ._anthropic import AnthropicReply, AnthropicServer
from ._clock import FakeClock
from ._conformance import (
    DEFAULT_PROMPT,
    SERVER_CHUNKS,
    ProviderCheckError,
    ProviderCheckReport,
    check_provider,
)
from ._gemini import GeminiReply, GeminiServer
from ._server import (
    DIALECTS,
    EMBEDDING_DIMENSIONS,
    FAULTS,
    OpenAIServer,
    RecordedRequest,
    Reply,
    vector_for,
)

__all__ = [
    "DEFAULT_PROMPT",
    "DIALECTS",
    "EMBEDDING_DIMENSIONS",
    "FAULTS",
    "SERVER_CHUNKS",
    "AnthropicReply",
    "AnthropicServer",
    "FakeClock",
    "GeminiReply",
    "GeminiServer",
    "OpenAIServer",
    "ProviderCheckError",
    "ProviderCheckReport",
    "RecordedRequest",
    "Reply",
    "check_provider",
    "vector_for",
]
