"""Which :class:`~providerhub._state.store.State` a hub keeps: the one it was given, or
the one a ``redis://`` URL or ``PROVIDERHUB_REDIS_URL`` names.

Apart from :mod:`.store` so that the Redis state, which builds on the store, is imported
only when a URL asks for it, and no module of the package imports one that imports it back.
"""

from __future__ import annotations

from .. import _settings as settings
from ..errors import ConfigurationError
from .store import MemoryState, State, StateLike

__all__ = ["resolve"]


def resolve(state: StateLike) -> State:
    """The :class:`State` that ``state`` names (see :data:`StateLike`)."""
    if isinstance(state, State):
        return state
    given: object = state  # from callers without type checks too
    if given is not None and not isinstance(given, str):
        raise ConfigurationError(
            "state must be a providerhub State, a redis:// URL or 'memory', "
            f"not {type(given).__name__}"
        )
    url = settings.redis_url() if state is None else str(state).strip()
    if not url or url == "memory":
        return MemoryState()
    from .redis import RedisState

    return RedisState(url)
