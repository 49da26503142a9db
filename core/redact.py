"""Secrets out of every text the agent shows: URLs with credentials, values that are no paths.

A URL keeps what an operator needs to find the target (scheme, host, port,
path); userinfo, every query value and the fragment become `***`, because
monitoring URLs routinely carry `user:password@` and `?apikey=`.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://... up to whitespace or a quote/bracket that ends a URL quoted in a text
# (yarl's repr is URL('...'); aiohttp's errors embed it).
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s'\"<>`]+")
_TRAILING = ".,;:!)]}"
# C0/C1 controls (ESC starts terminal sequences) and bidi overrides that reorder a line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def redact_url(url: object) -> str:
    """`https://***@host:8443/path?apikey=***#***` from any URL (str or yarl.URL)."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return _redact_query(text)
    path_at = _first(rest, "/?#")
    authority = rest[:path_at]
    if "@" in authority:
        rest = MASK + "@" + rest[authority.rfind("@") + 1 :]
    elif "@" in rest and _first(rest, "?#") < rest.find("@"):
        # A password holding '?' or '#' ends the authority early for a parser, not for us.
        rest = MASK + "@" + rest[rest.find("@") + 1 :]
    return f"{scheme}://{_redact_query(rest)}"


def _first(text: str, chars: str) -> int:
    found = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(found, default=len(text))


def _redact_query(text: str) -> str:
    fragment_at = text.find("#")
    fragment = "" if fragment_at < 0 else "#" + MASK
    if fragment_at >= 0:
        text = text[:fragment_at]
    base, sep, query = text.partition("?")
    if not sep:
        return base + fragment
    items = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        items.append(f"{key}={MASK}" if eq else (MASK if item else ""))
    return f"{base}?{'&'.join(items)}{fragment}"


def redact_text(text: str) -> str:
    """Every URL inside a free text (a check message, an exception, a log line) redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_TRAILING)
    return redact_url(stripped) + url[len(stripped) :]


def looks_like_path(value: str) -> bool:
    """A value written where a file belongs: absolute, relative with a directory, or ~."""
    return value.startswith(("/", "./", "../", "~")) or ("/" in value and " " not in value)


def describe_file(value: object) -> str:
    """How a `*_file` value is named in a message: the path, or not at all.

    A password pasted into `password_file` must not be echoed by "not found".
    """
    text = str(value)
    return text if looks_like_path(text) else "(a value that is not a file path)"


def printable(text: str) -> str:
    """Control characters (terminal escapes, newlines) shown as `\\xNN`, harmless in a cell."""
    return _CONTROL.sub(
        lambda m: (
            f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 256 else f"\\u{ord(m.group(0)):04x}"
        ),
        text,
    )
