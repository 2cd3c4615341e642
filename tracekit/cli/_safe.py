"""Text from the logs is untrusted: before it reaches a terminal, a CI log or an XML file,
every control character in it is shown as an escape (``\\x1b``), never sent as such.

One function, :func:`printable`, used by every rendering of log text (table, Markdown,
``trace``, ``watch``, ``check`` lines, JUnit XML, GitHub annotations), and :func:`shell_path`
for a path shown in a command to run. Light: no rich, no polars.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePath

__all__ = ["printable", "shell_path"]

# C0 controls except tab (ESC starts terminal sequences; CR/LF would forge a line of their
# own, e.g. a "PASS"), DEL and C1 (0x9b is a one-byte CSI), the bidirectional overrides and
# isolates (text that reads differently from what it is), the Unicode line and paragraph
# separators, lone surrogates and U+FFFE/U+FFFF (which XML 1.0 forbids, like the C0 controls).
_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``str(value)`` with every control character written as ``\\xNN`` / ``\\uNNNN``: safe
    on a terminal, on one line, and in XML 1.0."""
    text = str(value)
    return _UNSAFE.sub(_escape, text)


def shell_path(path: PurePath) -> str:
    """``path`` as one shell word to copy into a command line: quoted, a relative path that
    starts with ``-`` led by ``./`` (it would read as an option), control characters shown
    as escapes (a path holding one cannot be pasted back anyway; printing it raw could)."""
    text = str(path)
    if text.startswith("-"):
        text = f"./{text}"
    return printable(shlex.quote(text))
