"""Deprecated: import from :mod:`providerhub.plugin` instead.

Plugins written before providerhub 0.2 imported ``providerhub.settings``; it still works, and
warns, so that they keep running while they move to the plugin API.
"""

from __future__ import annotations

import warnings

from ._settings import *  # noqa: F403
from ._settings import __all__ as __all__

warnings.warn(
    "providerhub.settings is internal now: import from providerhub.plugin instead",
    DeprecationWarning,
    stacklevel=2,
)
