"""The per-host timeline table (``taintline hunt --format table``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.table import Table

from taintline.hunt.model import FileStats, Sighting
from taintline.model import iso
from taintline.terminal import make_console, text


def render_timeline(
    sightings: Sequence[Sighting], files: Sequence[FileStats], out: TextIO, width: int | None = None
) -> None:
    # Hosts, indicators, campaigns and file names come from inputs: text, never markup.
    console = make_console(out, width=width or (None if out.isatty() else 160))
    lines = sum(f.lines for f in files)
    garbage = sum(f.garbage for f in files)
    if not sightings:
        console.print(f"hunt: no indicator seen in {len(files)} file(s), {lines} line(s)")
    else:
        table = Table(title="hosts that contacted indicators (per-host timeline)")
        table.add_column("host", no_wrap=True)
        table.add_column("first contact", no_wrap=True, min_width=20)
        table.add_column("last contact", no_wrap=True, min_width=20)
        table.add_column("count", justify="right")
        table.add_column("indicator", overflow="fold")
        table.add_column("campaign")
        table.add_column("where", overflow="fold")
        previous = None
        for s in sightings:
            where = ", ".join(
                f"{Path(loc.path).name}:{loc.text().rsplit(':', 1)[1]}" for loc in s.locations[:2]
            )
            if len(s.locations) > 2:
                where += f" (+{len(s.locations) - 2} files)"
            table.add_row(
                text(s.host if s.host != previous else ""),
                iso(s.first_seen) or "?",
                iso(s.last_seen) or "?",
                str(s.count),
                text(s.indicator_key),
                text(s.campaign or ""),
                text(where),
            )
            previous = s.host
        console.print(table)
        hosts = len({s.host for s in sightings})
        console.print(
            f"{hosts} host(s), {len(sightings)} sighting(s) in {len(files)} file(s), {lines} line(s)"
        )
    if garbage:
        console.print(f"{garbage} unparsable line(s) skipped (see the per-file problems)")
