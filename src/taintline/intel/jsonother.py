"""JSON that no JSON reader claimed: refused with a clear message, never read as a list.

Reading such a file as a CSV/text list turned a JSON schema into "filename" indicators; a
JSON document that is neither a STIX 2.1 bundle, a MISP event nor endoflife.date data says
so and adds nothing (the file fails, exit code 2). Text that only *starts* like JSON (a
defanged list beginning with ``[``) but does not parse goes to the CSV/text reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from taintline.intel import csvtext
from taintline.intel.interface import ReadResult
from taintline.limits import IntelLimits

NAME = "json"


def sniff(head: bytes, path: Path) -> bool:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped[:1] in (b"{", b"[")


def _shape(doc: Any) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) or "none"
        return f"an object with keys {keys}"
    if isinstance(doc, list):
        kinds = sorted({type(x).__name__ for x in doc[:100]}) or ["nothing"]
        return f"a list of {len(doc)} item(s) ({', '.join(kinds)})"
    return f"a JSON {type(doc).__name__}"


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    size = path.stat().st_size
    if size > limits.max_json_bytes:
        return ReadResult.failure(
            NAME, item, f"{size} bytes is over the {limits.max_json_bytes}-byte JSON limit"
        )
    data = path.read_bytes()
    try:
        doc = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError:
        return csvtext.read(path, limits)
    return ReadResult.failure(
        NAME,
        item,
        f"JSON, but neither a STIX 2.1 bundle, a MISP event nor endoflife.date data"
        f" ({_shape(doc)}); not imported (use --format to force a reader)",
    )
