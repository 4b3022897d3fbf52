"""Tools for testing providerhub and its plugins without the network.

:class:`OpenAIServer` is a real OpenAI-compatible HTTP server on 127.0.0.1, with scripted
replies and faults; the tests, plugin authors and ``providerhub demo`` use it.
"""

from ._server import FAULTS, OpenAIServer, RecordedRequest, Reply

__all__ = ["FAULTS", "OpenAIServer", "RecordedRequest", "Reply"]
