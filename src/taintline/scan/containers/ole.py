"""OLE compound files (MSI, MSP, MSM): every stream is a member; a CAB stream (``MSCF``)
is named ``.cab`` so that it is opened in turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from taintline.kinds import error_finding
from taintline.model import Finding
from taintline.scan.containers.interface import (
    SEP,
    Budget,
    ContainerKind,
    Member,
    Produced,
    Ranges,
)
from taintline.scan.magic import FileType

NAME = "ole"
OPENS = {FileType.OLE: ContainerKind.OLE, FileType.MSI: ContainerKind.OLE}

# MSI packs stream names into CJK code points (two base-64 digits per character). Decoding is
# ten lines; no maintained Python library exposes it (msitools is C), so it is written here.
_MSI_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"


def decode_msi_stream_name(name: str) -> str:
    out: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0x3800 <= code < 0x4800:
            code -= 0x3800
            out.append(_MSI_CHARSET[code & 0x3F])
            out.append(_MSI_CHARSET[(code >> 6) & 0x3F])
        elif 0x4800 <= code < 0x4840:
            out.append(_MSI_CHARSET[code - 0x4800])
        elif code == 0x4840:
            out.append("!")  # table streams start with this marker
        elif code < 0x20:
            out.append(f"\\x{code:02x}")  # e.g. \x05SummaryInformation
        else:
            out.append(ch)
    return "".join(out)


def members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    import olefile

    try:
        ole = olefile.OleFileIO(data)
    except OSError as exc:
        raise ValueError(f"cannot parse OLE compound file: {exc}") from exc
    with ole:
        for parts in ole.listdir(streams=True, storages=False):
            decoded = "/".join(decode_msi_stream_name(p) for p in parts)
            where = f"{subject}{SEP}{decoded}"
            budget.take_file()
            size = ole.get_size(parts)
            if size > budget.limits.max_file_bytes:
                yield error_finding(
                    "error.too-large",
                    where,
                    "stream larger than --max-file-size; skipped",
                    declared=size,
                )
                continue
            if size > len(data):
                yield error_finding(
                    "error.malformed",
                    where,
                    "stream declared larger than its file; skipped",
                    declared=size,
                )
                continue
            budget.take_bytes(size)
            try:
                content = ole.openstream(parts).read()
            except OSError as exc:
                yield error_finding("error.truncated-archive", where, f"unreadable stream: {exc}")
                continue
            # a CAB stream is named e.g. "disk1.cab" in MSI; give it a .cab name when not
            if content[:4] == b"MSCF" and not decoded.lower().endswith(".cab"):
                decoded += ".cab"
            yield Member(decoded, content)


def file_members(fh: BinaryIO, subject: str) -> Iterator[Finding | tuple[str, Ranges | bytes]]:
    """The streams of a compound file too big to read whole (``fh``): each stream's name and
    where its sectors lie in the file (a stream under the mini-stream cutoff, 4 KiB, is read),
    to be hashed by streaming. olefile parses the FAT and directory; its ``openstream`` would
    read a stream whole, so the sector chain is followed here."""
    import olefile

    try:
        ole = olefile.OleFileIO(fh)
    except OSError as exc:
        raise ValueError(f"cannot parse OLE compound file: {exc}") from exc
    with ole:
        fat, sector = ole.fat, ole.sectorsize
        for parts in ole.listdir(streams=True, storages=False):
            decoded = "/".join(decode_msi_stream_name(p) for p in parts)
            entry = ole.direntries[ole._find(parts)]  # the entry openstream would use
            if entry.size < ole.minisectorcutoff:
                yield decoded, ole.openstream(parts).read()
                continue
            ranges: Ranges = []
            sect, left = entry.isectStart, entry.size
            for _ in range(len(fat)):  # a chain never visits more sectors than the FAT has
                if left <= 0 or not 0 <= sect < min(len(fat), olefile.MAXREGSECT + 1):
                    break
                start, n = (sect + 1) * sector, min(sector, left)
                if ranges and ranges[-1][0] + ranges[-1][1] == start:
                    ranges[-1] = (ranges[-1][0], ranges[-1][1] + n)
                else:
                    ranges.append((start, n))
                left -= n
                sect = fat[sect]
            if left > 0:
                yield error_finding(
                    "error.truncated-archive",
                    f"{subject}{SEP}{decoded}",
                    "stream's sector chain ends before its declared size; not hashed",
                    declared=entry.size,
                )
                continue
            yield decoded, ranges
