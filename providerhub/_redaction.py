"""What no message may show: credentials, in a url's user info, a header or a body, cut
out of every text an error, a log line or a ``repr`` carries.

Plain string work, no I/O: the codecs (bodies they quote), the transports (urls and
network errors they name) and the gateway (what its clients see) all use it.
"""

from __future__ import annotations

import functools
import re
from base64 import b64encode
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["EXCERPT_CHARS", "excerpt", "one_line", "redact", "safe_url", "url_secrets"]

EXCERPT_CHARS = 200


@functools.lru_cache(maxsize=256)
def safe_url(url: str) -> str:
    """``url`` without user info and query, fit for an error message. Kept per url: each
    stream's reader takes its url's at the start, and a provider has one url."""
    # Without a scheme, "user:password@host" would be read as scheme "user" and a path.
    schemeless = "://" not in url
    try:
        parts = urlsplit("//" + url if schemeless else url)
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return shown[2:] if schemeless else shown


@functools.lru_cache(maxsize=256)
def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials ``url`` carries as user info (``user:password@host``), in every form
    a message could show them: as written, percent-decoded, and as the ``Authorization:
    Basic`` value ``requests`` makes of them. Works on urls too broken to parse."""
    rest = url.partition("://")[2] or url
    userinfo, at, _ = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")
    if not at:
        return ()
    user, _, password = userinfo.partition(":")
    basic = f"{unquote(user)}:{unquote(password)}".encode("latin-1", "replace")
    found = [userinfo, password, unquote(password), b64encode(basic).decode("ascii")]
    if len(user) >= 4:  # shorter names are common words, and no secret on their own
        found += [user, unquote(user)]
    return tuple(sorted({s for s in found if s}, key=len, reverse=True))


_BEARER = re.compile(r"(?i)(bearer|token|api[_-]?key)([\s:=\"']+)[A-Za-z0-9._~+/=-]{6,}")
_QUERY_VALUE = re.compile(r"(?<=[?&])([A-Za-z0-9_.-]+)=[^\s&)'\"]+")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@'\"]+@")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret, the user info of every url, anything that looks
    like a bearer token or API key, and every query-string value (where keys often travel),
    replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1***@", text)
    text = _QUERY_VALUE.sub(r"\1=***", text)
    return _BEARER.sub(r"\1\2***", text)


_EXCERPT_SCAN = 16 * 1024
_LAST_WORD = re.compile(r"\S*\Z")


def excerpt(body: bytes | str, secrets: Iterable[str | None] = ()) -> str:
    """A short, one-line, redacted excerpt of a response body.

    It is redacted before it is cut: cut first, a credential crossing the cut would no
    longer match, and all of it but its last characters would show."""
    head = body[:_EXCERPT_SCAN]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    cut = len(body) > _EXCERPT_SCAN
    if cut:
        # The word running past the scanned part may be the start of a credential.
        text = _LAST_WORD.sub("", text)
    text = " ".join(redact(text, secrets).split())
    if len(text) > EXCERPT_CHARS:
        return text[:EXCERPT_CHARS] + "..."
    return text + "..." if cut else text


def one_line(exc: BaseException, *, typed: bool = True) -> str:
    """``exc`` on one line: ``Type: message``, or the type alone when the message is empty;
    with ``typed`` false the message alone (the type when it is empty). Not redacted."""
    text = " ".join(str(exc).split())
    if not typed:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
