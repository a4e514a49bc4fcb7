"""Walk a big JSON document one array element at a time, with bounded memory.

A STIX bundle with a million indicators is ~350 MB of JSON; loading it whole (orjson or
``json``) builds ~2 GB of Python objects. orjson has no incremental API and no streaming JSON
library is a dependency here, so this module walks only the *top level* by hand (``{``, keys,
``:``, ``,``, ``[``) and lets the standard library's C decoder (``JSONDecoder.raw_decode``)
parse each value, reading the file in chunks. Only one top-level array element is in memory
at a time (plus one chunk of text).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class JsonStreamError(ValueError):
    """Malformed or truncated JSON; the message says where."""


class _NeedMore(Exception):
    pass


class _Buffer:
    def __init__(self, handle: IO[bytes], chunk: int, max_value: int) -> None:
        self.handle = handle
        self.chunk = chunk
        self.max_value = max_value
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.buf = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of ``buf``
        self.eof = False

    @property
    def offset(self) -> int:
        return self.consumed + self.pos

    def fill(self) -> None:
        data = self.handle.read(self.chunk)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise JsonStreamError(f"not UTF-8 near character {self.offset}: {exc.reason}") from None
        if not data:
            self.eof = True
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + text
        self.pos = 0

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            match = _WS.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self.fill()

    def expect(self, chars: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            found = repr(char) if char else "end of file (truncated?)"
            raise JsonStreamError(
                f"expected {' or '.join(chars)} at character {self.offset}, found {found}"
            )
        self.pos += 1
        return char

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise JsonStreamError(
                        f"invalid JSON at character {self.consumed + exc.pos}: {exc.msg}"
                        + (" (truncated?)" if exc.pos >= len(self.buf) else "")
                    ) from None
                if len(self.buf) - self.pos > self.max_value:
                    raise JsonStreamError(
                        f"invalid JSON at character {self.consumed + exc.pos}: {exc.msg}"
                        f" (or a single value over {self.max_value} characters)"
                    ) from None
                self.fill()
                continue
            if end == len(self.buf) and not self.eof:
                # A number or literal may continue in the next chunk: read on and parse again.
                self.fill()
                continue
            self.pos = end
            return obj


def iter_top_level(
    handle: IO[bytes],
    array_key: str,
    *,
    chunk: int = 8 * 1024 * 1024,
    max_value: int = 64 * 1024 * 1024,
) -> Iterator[tuple[str, Any]]:
    """Yield ``("item", element)`` for each element of the top-level array, or of the array
    under ``array_key`` of the top-level object, and ``("field", (name, value))`` for the
    object's other fields. Raises :class:`JsonStreamError` on malformed input (after yielding
    what came before it)."""
    buf = _Buffer(handle, chunk, max_value)
    first = buf.expect("{[")
    if first == "[":
        yield from _array_items(buf)
    elif buf.peek() == "}":
        buf.pos += 1
    else:
        while True:
            name = buf.value()
            if not isinstance(name, str):
                raise JsonStreamError(f"expected a key at character {buf.offset}")
            buf.expect(":")
            if name == array_key and buf.peek() == "[":
                buf.pos += 1
                yield from _array_items(buf)
            else:
                yield "field", (name, buf.value())
            if buf.expect(",}") == "}":
                break
    if buf.peek():
        raise JsonStreamError(f"unexpected data after the JSON document at character {buf.offset}")


_AFTER_ITEM = re.compile(r"[ \t\n\r]*([,\]])")
#: Keep at least this much text ahead of the parse position (a whole typical object).
_AHEAD = 1024 * 1024


def _array_items(buf: _Buffer) -> Iterator[tuple[str, Any]]:
    # The hot loop of a million-object bundle: one C-level decode and one regex per element.
    if buf.peek() == "]":
        buf.pos += 1
        return
    decode = _DECODER.raw_decode
    after = _AFTER_ITEM.match
    while True:
        if not buf.eof and len(buf.buf) - buf.pos < _AHEAD:
            buf.fill()
        try:
            obj, end = decode(buf.buf, buf.pos)
            if end == len(buf.buf) and not buf.eof:
                raise _NeedMore  # a number could go on in the next chunk
        except (json.JSONDecodeError, _NeedMore):
            obj = buf.value()  # the careful path: refills, or raises a located error
            end = buf.pos
        match = after(buf.buf, end)
        if match is None:
            buf.pos = end
            closing = buf.expect(",]")
        else:
            buf.pos = match.end()
            closing = match.group(1)
        yield "item", obj
        if closing == "]":
            return
        buf.peek()
