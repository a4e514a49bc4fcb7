"""endoflife.date product Markdown: the files of the project's repository (``products/*.md``).

Each file starts with YAML front matter between two ``---`` lines: ``title``, ``permalink``,
``alternate_urls``, ``identifiers`` (``- purl: pkg:...``, ``- cpe: cpe:...``) and
``releases`` (``releaseCycle``, ``releaseDate``, ``eol``, ``eoas``/``support``, ``lts``,
``latest``, ``latestReleaseDate``); the Markdown text after it is prose and is not read.

The YAML is parsed with PyYAML's safe loader (libyaml when available), with one change: plain
numbers stay text, so an unquoted ``releaseCycle: 3.10`` is the cycle "3.10" and not the
float 3.1. Dates and booleans are resolved as YAML defines them.

A Markdown file is never read as an IOC list: this reader claims every ``.md`` file and every
file that starts with ``---``, and one that is not endoflife.date front matter is a single
clear problem.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from taintline.errors import Problem
from taintline.intel.endoflife import add_cycles, product_record
from taintline.intel.interface import ReadResult
from taintline.limits import IntelLimits

NAME = "endoflife-md"

_SUFFIXES = frozenset({".md", ".markdown"})
_FENCE = re.compile(rb"\A(?:\xef\xbb\xbf)?[ \t]*---[ \t]*\r?\n")
_CLOSE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_CYCLE_LINE = re.compile(r"^[ \t]*-?[ \t]*releaseCycle[ \t]*:", re.MULTILINE)


def sniff(head: bytes, path: Path) -> bool:
    return path.suffix.lower() in _SUFFIXES or _FENCE.match(head) is not None


_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


class _Loader(_BASE_LOADER):  # type: ignore[valid-type,misc]
    """Safe loading, but plain ints and floats stay strings (release cycles are version text)."""

    yaml_implicit_resolvers = {  # noqa: RUF012  (PyYAML's class-level table)
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _NUMBER_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def front_matter(text: str) -> tuple[str, int] | str:
    """(the YAML between the fences, the line the YAML starts on), or why there is none."""
    body = text.removeprefix("\ufeff")
    first, _, rest = body.partition("\n")
    if first.strip() != "---":
        return "no YAML front matter: the first line must be '---'"
    close = _CLOSE.search(rest)
    if close is None:
        return "YAML is not front matter: no closing '---' line after it"
    return rest[: close.start()], 2


def read(path: Path, limits: IntelLimits) -> ReadResult:
    item = str(path)
    size = path.stat().st_size
    if size > limits.max_markdown_bytes:
        return ReadResult.failure(
            NAME, item, f"{size} bytes is over the {limits.max_markdown_bytes}-byte Markdown limit"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return ReadResult.failure(NAME, item, f"not UTF-8 text (byte {exc.start})")
    found = front_matter(text)
    if isinstance(found, str):
        return ReadResult.failure(NAME, item, f"{found}; not an endoflife.date product file")
    yaml_text, first_line = found
    try:
        doc: Any = yaml.load(yaml_text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return ReadResult.failure(NAME, item, f"front matter is not valid YAML: {problem}", line)
    except RecursionError:
        return ReadResult.failure(NAME, item, "front matter nested too deeply")
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else f"a {type(doc).__name__}, not a mapping"
        return ReadResult.failure(NAME, item, f"front matter is {kind}", first_line)
    releases = doc.get("releases")
    if not isinstance(releases, list) or not releases:
        return ReadResult.failure(
            NAME, item, "product file without releases (no 'releases:' list in the front matter)"
        )
    permalink = doc.get("permalink")
    product = (str(permalink).strip("/ ") if isinstance(permalink, str) else "") or path.stem
    product = product.lower()
    source = "endoflife.date"
    # the line each cycle starts on, for problem lines a user can jump to
    lines = [
        first_line + yaml_text[: m.start()].count("\n") for m in _CYCLE_LINE.finditer(yaml_text)
    ]
    result = ReadResult(format=NAME)
    add_cycles(
        result,
        releases,
        product,
        source,
        item,
        line_of=lines if len(lines) == len(releases) else [None] * len(releases),
    )
    result.eol_products.append(product_record(product, source, doc, origin=item))
    if not result.eol:
        result.failed = True
        result.problems.append(Problem(item, "no usable release cycle"))
    return result
