"""``python -m providerhub``: the command line."""

from .cli import main

raise SystemExit(main())
