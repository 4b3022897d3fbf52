"""MkDocs hook: fill the CLI reference page from the command's own parser, so the page
and ``providerhub ... --help`` cannot disagree (tests/test_docs.py checks they do not)."""

from __future__ import annotations

import os
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = "100"  # argparse wraps help to the terminal; a fixed width keeps the page stable


def reference() -> str:
    """The reference, in Markdown: each command line and its ``--help``."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        from providerhub._cli import help_texts

        texts = help_texts()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    parts = []
    for command, text in texts.items():
        parts.append(f"## `{command}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, reference())
    return markdown
