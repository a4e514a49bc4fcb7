"""Untrusted strings on a terminal: always shown as text, never as markup or control codes.

File and member names, log fields, rule metadata and SBOM strings are attacker-controlled. On
a terminal they could (1) end a run: rich parses ``[...]`` as markup and raises on
``../a[/]b.dll``; (2) alter what the analyst sees: ``[red]hidden[/red]-evil.dll`` shown as
``hidden-evil.dll``, an ESC sequence that clears the screen or moves the cursor, a
right-to-left override that shows ``exe.txt`` for ``txt.exe``; (3) crash the print itself: a
name that was not UTF-8 (Python keeps its bytes as lone surrogates) cannot be encoded.

So every console taintline makes comes from :func:`make_console` (markup, emoji codes and
highlighting off by default), and every untrusted value goes through :func:`printable` (or
:func:`text`, the same as a rich ``Text``): control, format (bidi, zero-width), surrogate and
unassigned characters become visible escapes (``\\x1b``, ``\\u202e``, ``\\xff`` for an
undecodable byte). Styling the trusted parts is done with ``Text`` styles, never markup.
rich has ``markup.escape`` for the first problem only; this module handles all three.
"""

from __future__ import annotations

import unicodedata
from typing import TextIO

from rich.console import Console
from rich.text import Text

#: Unicode categories shown as escapes: control, format (bidi overrides, zero-width
#: characters), surrogate, private use, unassigned, line and paragraph separators.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as one line of visible text: hidden characters become escapes.

    ``keep_newlines`` keeps ``\\n`` (multi-line messages built by taintline itself)."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, at C speed
        return text
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch.isprintable() or unicodedata.category(ch) not in _HIDDEN:
            out.append(ch)  # e.g. a no-break space: unusual but visible
        else:
            out.append(_escape(ch))
    return "".join(out)


def storable(value: str) -> str:
    """``value`` as valid UTF-8 text: bytes of a name that was not UTF-8 (kept by Python as
    lone surrogates) become ``\\xNN``. For names recorded in the case and in reports (the
    real name stays in use for opening the file); everything else is unchanged."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def text(value: object, style: str = "") -> Text:
    """``value`` as a rich ``Text`` (never parsed as markup), hidden characters escaped."""
    return Text(printable(value), style=style)


def labelled(label: str, style: str, body: object) -> Text:
    """``label body`` with the (trusted) label styled, e.g. ``warning <problem>``."""
    return Text.assemble((label, style), " ", printable(body, keep_newlines=True))


def make_console(
    file: TextIO | None = None, *, stderr: bool = False, width: int | None = None
) -> Console:
    """A console that treats plain strings as text: markup, ``:emoji:`` codes and
    highlighting off. Rich on a terminal, plain text in pipes; ``width`` None lets rich
    decide."""
    return Console(
        file=file,
        stderr=stderr,
        width=width,
        markup=False,
        emoji=False,
        highlight=False,
    )


__all__ = ["labelled", "make_console", "printable", "storable", "text"]
