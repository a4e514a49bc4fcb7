"""Files over ``--max-file-size``: no blind spot for a payload padded past the limit.

Such a file is never read whole. The worker (:meth:`taintline.scan.worker.Worker.big_file`):

* hashes all of it by streaming (MD5, SHA-1, SHA-256; sparse files too), so a hash indicator
  of the padded file matches;
* runs YARA on a **head** and a **tail** window of ``--max-file-size / 2`` bytes each (what a
  file at the limit would cost). yara-x takes ``filesize`` from the buffer it scans and its
  Python API has no way to declare another size, so in each window scan ``filesize`` is the
  window's length, not the file's; offsets in tail findings are moved to file offsets;
* checks the headers (:func:`header_facts`, this module, pure Python on the head window):
  where a PE, ELF, Mach-O or image says its content ends, and how many bytes follow that end.
  The full format analysers are not run on a window: their end-of-file checks (Authenticode
  digest, overlay, trailing data) would judge the truncated window, not the file, and report
  a tampered file that is not;
* says exactly what was and was not covered in one ``coverage.big-file`` finding (medium; high
  when more than :data:`PADDING_HIGH` bytes follow the format's declared end).

Hand-written header parsing (a few fixed-offset fields of each format) because the parsers
the analysers use (LIEF) need the whole file. Imported by the workers: no DuckDB, no pyarrow.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from taintline.kinds import error_finding
from taintline.limits import MiB, ScanLimits
from taintline.model import Finding, Severity
from taintline.scan import image, magic
from taintline.scan.containers.interface import SEP
from taintline.scan.hashes import HashType, hash_stream
from taintline.scan.interface import FileRecord, TaskResult, display_name
from taintline.scan.magic import filetype
from taintline.scan.walk import FileTask

if TYPE_CHECKING:
    from taintline.scan.rules import RuleScanner

KIND = "coverage.big-file"

_LABELS = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}

#: More bytes than this after a format's declared end makes the finding high.
PADDING_HIGH = 1 * MiB


def window_size(max_file_bytes: int) -> int:
    """Bytes of each of the head and tail windows."""
    return max(0, max_file_bytes // 2)


# -- headers ---------------------------------------------------------------------------------


def _pe_end(head: bytes) -> int | None:
    if len(head) < 0x40:
        return None
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if head[lfanew : lfanew + 4] != b"PE\0\0" or lfanew + 24 > len(head):
        return None
    (nsections,) = struct.unpack_from("<H", head, lfanew + 6)
    (opt_size,) = struct.unpack_from("<H", head, lfanew + 20)
    opt = lfanew + 24
    end = opt + opt_size + 40 * nsections
    if opt + 2 <= len(head):
        (opt_magic,) = struct.unpack_from("<H", head, opt)
        dirs = opt + (96 if opt_magic == 0x10B else 112)
        security = dirs + 8 * 4  # data directory 4: the certificate table (a file offset)
        if security + 8 <= min(len(head), opt + opt_size):
            offset, size = struct.unpack_from("<II", head, security)
            if offset and size:
                end = max(end, offset + size)
    table = opt + opt_size
    for i in range(nsections):
        entry = table + 40 * i
        if entry + 40 > len(head):
            return None  # the section table runs past the head window
        raw_size, raw_ptr = struct.unpack_from("<II", head, entry + 16)
        if raw_size:
            end = max(end, raw_ptr + raw_size)
    return int(end)


def _elf_end(head: bytes) -> int | None:
    if len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    is64 = head[4] == 2
    order = "<" if head[5] == 1 else ">"
    if is64:
        if len(head) < 64:
            return None
        phoff, shoff = struct.unpack_from(order + "QQ", head, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", head, 54)
    else:
        phoff, shoff = struct.unpack_from(order + "II", head, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", head, 42)
    end = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
    for i in range(phnum):
        entry = phoff + phentsize * i
        if entry + phentsize > len(head):
            break
        if is64:
            (offset,) = struct.unpack_from(order + "Q", head, entry + 8)
            (filesz,) = struct.unpack_from(order + "Q", head, entry + 32)
        else:
            (offset,) = struct.unpack_from(order + "I", head, entry + 4)
            (filesz,) = struct.unpack_from(order + "I", head, entry + 16)
        end = max(end, offset + filesz)
    for i in range(shnum):
        entry = shoff + shentsize * i
        if entry + shentsize > len(head):
            break
        (sh_type,) = struct.unpack_from(order + "I", head, entry + 4)
        if sh_type == 8:  # SHT_NOBITS: no bytes in the file
            continue
        if is64:
            offset, size = struct.unpack_from(order + "QQ", head, entry + 24)
        else:
            offset, size = struct.unpack_from(order + "II", head, entry + 16)
        end = max(end, offset + size)
    return int(end)


_MACHO = {
    b"\xce\xfa\xed\xfe": ("<", False),
    b"\xcf\xfa\xed\xfe": ("<", True),
    b"\xfe\xed\xfa\xce": (">", False),
    b"\xfe\xed\xfa\xcf": (">", True),
}


def _macho_end(head: bytes) -> int | None:
    kind = _MACHO.get(head[:4])
    if kind is None or len(head) < 32:
        return None
    order, is64 = kind
    ncmds, sizeofcmds = struct.unpack_from(order + "II", head, 16)
    pos = 32 if is64 else 28
    end = pos + sizeofcmds
    for _ in range(ncmds):
        if pos + 8 > len(head):
            return None
        cmd, cmdsize = struct.unpack_from(order + "II", head, pos)
        if cmd == 0x19 and pos + 56 <= len(head):  # LC_SEGMENT_64
            fileoff, filesize = struct.unpack_from(order + "QQ", head, pos + 40)
            end = max(end, fileoff + filesize)
        elif cmd == 0x1 and pos + 44 <= len(head):  # LC_SEGMENT
            fileoff, filesize = struct.unpack_from(order + "II", head, pos + 32)
            end = max(end, fileoff + filesize)
        elif cmd == 0x1D and pos + 16 <= len(head):  # LC_CODE_SIGNATURE
            dataoff, datasize = struct.unpack_from(order + "II", head, pos + 8)
            end = max(end, dataoff + datasize)
        if cmdsize < 8:
            return None
        pos += cmdsize
    return int(end)


def header_facts(head: bytes, size: int, name: str) -> dict[str, Any]:
    """What the head window's headers say: the format and where its content ends (``None``
    when the format has no end of its own or the headers run past the window)."""
    found = magic.sniff(head, name)
    fmt = "" if found is None else str(found)
    end: int | None = None
    try:
        if found is magic.FileType.EXE:
            end = _pe_end(head)
        elif found is magic.FileType.ELF:
            end = _elf_end(head)
        elif found is magic.FileType.MACHO:
            end = _macho_end(head)
        elif found in image.FORMATS:
            facts = image.facts_of(head)
            end = facts.real_end if facts is not None and facts.error is None else None
    except (struct.error, ValueError, IndexError):
        end = None
    beyond = size - end if end is not None and end <= size else None
    return {"format": fmt, "declared_end": end, "beyond_end": beyond}


# -- the finding -----------------------------------------------------------------------------


def coverage_finding(
    subject: str,
    *,
    size: int,
    max_file_bytes: int,
    hashed: int,
    hashes: dict[str, str],
    windows: list[tuple[str, int, int]],
    yara_ran: bool,
    header: dict[str, Any],
    sparse: bool,
    members: int = 0,
) -> Finding:
    """One finding saying what of a big file was and was not covered."""
    parts = [
        f"file of {size:,} bytes is larger than --max-file-size ({max_file_bytes:,})",
        f"{hashed:,} bytes hashed ("
        + ", ".join(label for key, label in _LABELS.items() if hashes.get(key))
        + ")",
    ]
    scanned = sorted(windows, key=lambda w: w[1])
    gaps: list[tuple[int, int]] = []
    pos = 0
    for _, offset, length in scanned:
        if offset > pos:
            gaps.append((pos, offset))
        pos = max(pos, offset + length)
    if pos < size:
        gaps.append((pos, size))
    if yara_ran and windows:
        shown = " and ".join(f"{n} bytes {o:,}-{o + length:,}" for n, o, length in windows)
        parts.append(f"YARA ran on the {shown} (filesize seen by the rules: the window's length)")
        if gaps:
            parts.append("not scanned by YARA: " + ", ".join(f"bytes {a:,}-{b:,}" for a, b in gaps))
    else:
        parts.append("no YARA rules ran")
    fmt, end, beyond = header["format"], header["declared_end"], header["beyond_end"]
    if fmt and end is not None:
        parts.append(
            f"{fmt} headers: content ends at {end:,}, {beyond:,} bytes after it"
            if beyond is not None
            else f"{fmt} headers: declared end {end:,} is past the file's end"
        )
    elif fmt:
        parts.append(f"{fmt} headers: end not found in the head window")
    parts.append("format analysers not run (they need the whole file)")
    if members:
        parts.append(f"{members:,} members hashed by streaming (not scanned)")
    severity = Severity.HIGH if beyond is not None and beyond > PADDING_HIGH else Severity.MEDIUM
    return Finding(
        kind=KIND,
        severity=severity,
        subject=subject,
        message="; ".join(parts),
        evidence={
            "size": size,
            "max_file_size": max_file_bytes,
            "hashed_bytes": hashed,
            **hashes,
            "yara_windows": [
                {"window": n, "offset": o, "length": length} for n, o, length in windows
            ]
            if yara_ran
            else [],
            "not_scanned_by_yara": [{"offset": a, "length": b - a} for a, b in gaps],
            "yara_filesize": "window length" if yara_ran else None,
            "header": header,
            "analysers_run": ["headers"],
            "analysers_not_run": "pe, macho, elf, image, reproducible, asar, plist, signed",
            "sparse": sparse,
        },
    )


def merge_window_findings(
    head: list[Finding], tail: list[Finding], tail_offset: int
) -> list[Finding]:
    """YARA findings of the two windows, one per rule; tail offsets as file offsets."""
    out: dict[tuple[str, tuple[str, ...]], Finding] = {}
    for window, found, shift in (("head", head, 0), ("tail", tail, tail_offset)):
        for f in found:
            strings = [
                {**s, "offsets": [o + shift for o in s.get("offsets", [])]}
                for s in f.evidence.get("strings", [])
            ]
            key = (f.kind, f.indicators)
            if key in out:
                prev = out[key]
                out[key] = dataclasses.replace(
                    prev,
                    evidence={
                        **prev.evidence,
                        "strings": [*prev.evidence.get("strings", []), *strings],
                        "windows": [*prev.evidence.get("windows", []), window],
                    },
                )
            else:
                evidence = {**f.evidence, "windows": [window]}
                if "strings" in f.evidence:
                    evidence["strings"] = strings
                out[key] = dataclasses.replace(f, evidence=evidence)
    return list(out.values())


def scan_big_file(
    task: FileTask,
    size: int,
    fh: Any,
    out: TaskResult,
    rules: RuleScanner | None,
    max_bytes: int,
    which: frozenset[HashType],
) -> None:
    """A file bigger than ``--max-file-size`` (never read whole): hashed by streaming, YARA
    on the head and tail windows, headers checked, and one finding saying what was covered;
    its record and findings go to ``out``."""
    window = min(window_size(max_bytes), size // 2)
    fd = fh.fileno()
    head = os.pread(fd, window, 0) if window else b""
    tail_offset = size - window
    tail = os.pread(fd, window, tail_offset) if window else b""
    fh.seek(0)
    hashes = hash_stream(fh, which=which)
    out.bytes_read += hashes.size
    name = display_name(task.display)
    ftype = filetype(head, name)
    members = _member_records(task, fh, size, ftype, which, out)
    windows = [("head", 0, len(head)), ("tail", tail_offset, len(tail))] if window else []
    if rules is not None and window:
        scan = rules.scan
        args = {"subject": task.display, "name": name, "filetype": ftype, "owner": task.owner}
        out.findings.extend(
            merge_window_findings(scan(head, **args), scan(tail, **args), tail_offset)
        )
    out.findings.append(
        coverage_finding(
            task.display,
            size=hashes.size,
            max_file_bytes=max_bytes,
            hashed=hashes.size,
            hashes={"md5": hashes.md5, "sha1": hashes.sha1, "sha256": hashes.sha256},
            windows=windows,
            yara_ran=rules is not None,
            header=header_facts(head, hashes.size, name),
            sparse=task.sparse,
            members=members,
        )
    )
    out.records.append(
        FileRecord(
            task.top,
            task.display,
            name,
            hashes.size,
            hashes.md5,
            hashes.sha1,
            hashes.sha256,
            ftype,
            0,
        )
    )


def streamed_member(finding: Finding, top: str, depth: int) -> list[FileRecord]:
    """The record of a member too large to scan whose container streamed it through the
    hashes (``read_stream``): hash indicators still match it."""
    ev = finding.evidence
    if not ev.get("sha256"):
        return []
    name = PurePosixPath(finding.subject.rsplit(SEP, 1)[-1]).name
    size = int(ev.get("size") or 0)
    return [
        FileRecord(top, finding.subject, name, size, ev["md5"], ev["sha1"], ev["sha256"], "", depth)
    ]


class _Ranges(io.RawIOBase):
    """The byte ranges ``(offset, length)`` of a file descriptor, in order, as one stream."""

    def __init__(self, fd: int, ranges: list[tuple[int, int]]) -> None:
        super().__init__()
        self.fd = fd
        self.ranges = list(reversed(ranges))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self.ranges:
            offset, length = self.ranges[-1]
            if length <= 0:
                self.ranges.pop()
                continue
            data = os.pread(self.fd, min(len(buffer), length, 4 * MiB), offset)
            if not data:
                raise EOFError("container member past the end of the file")
            buffer[: len(data)] = data
            self.ranges[-1] = (offset + len(data), length - len(data))
            return len(data)
        return 0


def _member_records(
    task: FileTask, fh: Any, size: int, ftype: str, which: frozenset[HashType], out: TaskResult
) -> int:
    """The members of a big asar archive or compound file (MSI), each hashed by streaming from
    where it lies in the file and recorded (so hash indicators match them; they are not
    scanned); returns how many. Other containers are not opened here (ZIP and tar members
    are streamed when their container fits in memory)."""
    from taintline.scan.containers import asar as asar_reader
    from taintline.scan.containers import ole as ole_reader
    from taintline.scan.containers.interface import Budget, LimitExceeded, limit_finding

    if ftype == magic.FileType.ASAR:
        found: Iterator[Any] = asar_reader.file_members(fh.fileno(), size, task.display)
    elif ftype in (magic.FileType.OLE, magic.FileType.MSI):
        fh.seek(0)
        found = ole_reader.file_members(fh, task.display)
    else:
        return 0
    budget = Budget(ScanLimits())  # the default --max-files bounds what is listed
    count = 0
    try:
        for item in found:
            if isinstance(item, Finding):
                out.findings.append(item)
                continue
            member, where = item
            budget.take_file()
            stream = io.BytesIO(where) if isinstance(where, bytes) else _Ranges(fh.fileno(), where)
            hashes = hash_stream(stream, which=which)  # type: ignore[arg-type]
            out.bytes_read += hashes.size
            path = f"{task.display}{SEP}{member}"
            out.records.append(
                FileRecord(
                    task.top,
                    path,
                    PurePosixPath(member).name or member,
                    hashes.size,
                    hashes.md5,
                    hashes.sha1,
                    hashes.sha256,
                    "",
                    1,
                )
            )
            count += 1
    except LimitExceeded as exc:
        out.findings.append(limit_finding(exc, task.display))
    except (ValueError, EOFError, OSError, struct.error, KeyError) as exc:
        out.findings.append(
            error_finding(
                "error.malformed",
                task.display,
                f"members not all hashed: {type(exc).__name__}: {exc}",
            )
        )
    return count
