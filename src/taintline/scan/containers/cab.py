"""Microsoft Cabinet files (``MSCF``), through cabarchive, with a bomb check first."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from taintline.kinds import error_finding
from taintline.model import Finding
from taintline.scan.containers.interface import (
    RATIO_GRACE,
    Budget,
    ContainerKind,
    LimitExceeded,
    Member,
    Produced,
    admit,
    hashed_too_large,
)
from taintline.scan.magic import FileType

NAME = "cab"
OPENS = {FileType.CAB: ContainerKind.CAB}


def cab_declared_uncompressed(data: bytes) -> int:
    """Sum of the CFDATA blocks' uncompressed sizes, walking the headers only.

    cabarchive decompresses everything at once and checks each block against its declared
    size, so this sum bounds what it will produce: checking it first stops a CAB bomb before
    any decompression.
    """
    (sig, _r1, _cb, _r2, _coff_files, _r3, _minor, _major, folders, _files, flags) = (
        struct.unpack_from("<4sIIIIIBBHHH", data, 0)
    )
    if sig != b"MSCF":
        raise ValueError("not a CAB")
    offset = 36
    res_folder = res_data = 0
    if flags & 0x4:
        cb_header, res_folder, res_data = struct.unpack_from("<HBB", data, offset)
        offset += 4 + cb_header
    for bit in (0x1, 0x2):
        if flags & bit:
            for _ in range(2):  # szCabinet, szDisk
                end = data.index(b"\0", offset)
                offset = end + 1
    total = 0
    for index in range(folders):
        start, blocks, _compress = struct.unpack_from(
            "<IHH", data, offset + index * (8 + res_folder)
        )
        pos = start
        for _ in range(blocks):
            _csum, cb_data, cb_uncomp = struct.unpack_from("<IHH", data, pos)
            total += cb_uncomp
            pos += 8 + res_data + cb_data
    return total


def members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    import cabarchive

    declared = cab_declared_uncompressed(data)
    limits = budget.limits
    if declared > RATIO_GRACE and declared / max(len(data), 1) > limits.max_ratio:
        raise LimitExceeded(
            "error.archive-bomb",
            f"compression ratio above {limits.max_ratio:g} (--max-ratio); CAB not expanded",
            ratio=round(declared / max(len(data), 1), 1),
            declared=declared,
        )
    budget.take_bytes(declared)
    try:
        archive = cabarchive.CabArchive(data)
    except cabarchive.NotSupportedError as exc:
        yield error_finding("error.unsupported", subject, f"CAB not expanded: {exc}")
        return
    except cabarchive.CorruptionError as exc:
        yield error_finding("error.truncated-archive", subject, f"corrupt CAB: {exc}")
        return
    for member_name in archive:
        admitted = admit(member_name, subject, budget)
        if isinstance(admitted, Finding):
            yield admitted
            continue
        member, where = admitted
        content = archive[member_name].buf or b""
        if len(content) > limits.max_file_bytes:
            yield hashed_too_large(where, bytes(content), limits.max_file_bytes)
            continue
        yield Member(member, bytes(content))
