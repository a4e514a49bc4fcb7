"""Typed limits with documented defaults. Hostile input is normal input: every reader is bounded."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class IntelLimits:
    """Bounds for intel ingestion."""

    #: A JSON intel document (STIX bundle, MISP event, endoflife.date) larger than this is refused
    #: with a clear error instead of being loaded into memory.
    max_json_bytes: int = 512 * MiB
    #: Line-oriented files (CSV, text) are streamed; a single line longer than this is skipped.
    max_line_bytes: int = 64 * KiB
    #: A YARA source file larger than this is refused.
    max_yara_bytes: int = 16 * MiB
    #: An endoflife.date product Markdown file (YAML front matter) larger than this is refused
    #: (the largest published ones are under 100 KiB).
    max_markdown_bytes: int = 8 * MiB
    #: Any intel file larger than this is refused before it is opened (checked on its size);
    #: a compressed one (gzip, bzip2, zstd) is also refused when it expands past this.
    max_file_bytes: int = 1 * GiB
    #: A compressed intel file that expands more than this many times its size (past its
    #: first 64 MiB) is refused as a compression bomb (real lists stay far below 100:1).
    max_expansion_ratio: float = 1000.0
    #: A CSV/text IOC list larger than this is refused (it is read whole for the Arrow path).
    max_text_bytes: int = 1 * GiB


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds for ``taintline scan`` (archive bombs, deep nesting, huge files)."""

    #: How deep containers may nest (a ZIP in an MSI in a ZIP is depth 3).
    max_depth: int = 8
    #: Total bytes extracted from containers per top-level input.
    max_total_bytes: int = 8 * GiB
    #: Largest single file or member read whole (bigger files: hashed, YARA on head and tail
    #: windows, see scan/bigfile.py; bigger members: hashed when streamed, not scanned).
    max_file_bytes: int = 2 * GiB
    #: Largest uncompressed/compressed ratio of a container member (zip bombs).
    max_ratio: float = 200.0
    #: Most files/members per top-level input.
    max_files: int = 200_000
    #: Per-file YARA timeout in seconds.
    yara_timeout_s: int = 10


@dataclass(frozen=True, slots=True)
class HuntLimits:
    """Bounds for ``taintline hunt``."""

    #: DuckDB memory limit (e.g. "2GB").
    memory_limit: str = "2GB"
    #: Log lines longer than this are counted as garbage.
    max_line_bytes: int = 1 * MiB
