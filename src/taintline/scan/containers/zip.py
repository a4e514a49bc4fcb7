"""ZIP (also JAR, APK, wheels, NuGet, Office files: recognised by content)."""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator

import deflate

from taintline.kinds import error_finding
from taintline.limits import MiB
from taintline.model import Finding
from taintline.scan.containers.interface import (
    RATIO_GRACE,
    Budget,
    ContainerKind,
    LimitExceeded,
    Member,
    Produced,
    admit,
    limit_finding,
    read_stream,
)
from taintline.scan.magic import FileType

NAME = "zip"
OPENS = {FileType.ZIP: ContainerKind.ZIP}


def members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            admitted = admit(info.filename, subject, budget)
            if isinstance(admitted, Finding):
                yield admitted
                continue
            member, where = admitted
            if info.flag_bits & 0x1:
                yield error_finding("error.encrypted", where, "encrypted member; not read")
                continue
            fast = _zip_member_fast(data, info, budget)
            if fast is not None:
                yield Member(member, fast)
                continue
            # never trust the declared compressed size beyond what the container can hold
            compressed = min(info.compress_size, len(data))
            try:
                with zf.open(info) as fh:
                    content = read_stream(
                        fh.read, subject=where, budget=budget, compressed_size=compressed
                    )
            except LimitExceeded as exc:
                if exc.member:
                    yield limit_finding(exc, where)
                    continue
                raise
            except NotImplementedError as exc:
                yield error_finding("error.unsupported", where, f"cannot decompress: {exc}")
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, lzma.LZMAError) as exc:
                yield error_finding("error.truncated-archive", where, f"corrupt member: {exc}")
                continue
            yield Member(member, content)


#: Members up to this declared size take :func:`_zip_member_fast` (one buffer of that size).
FAST_MEMBER_MAX = 256 * MiB
#: ZIP local file header: signature, general purpose flags, the name and extra field lengths
_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")
#: Flag bits zipfile refuses (compressed patched data, strong encryption) or must decrypt
_ZIP_UNREADABLE_FLAGS = 0x01 | 0x20 | 0x40


def _zip_member_fast(data: bytes, info: zipfile.ZipInfo, budget: Budget) -> bytes | None:
    """A stored or deflated member of a well-formed ZIP in one step, or ``None``.

    zipfile inflates with zlib in 1 MiB reads and checks the CRC with zlib's CRC-32; libdeflate
    (the ``deflate`` package) inflates a whole member about twice as fast and computes CRC-32
    five times as fast, which matters when installers are mostly compressed members. zipfile
    still reads the central directory; this only takes the member's bytes. Anything unusual
    (a local header that disagrees with the directory, a size or CRC-32 that is not what the
    directory says, a ratio or size over the limits, other compression methods) returns
    ``None``, and the member takes zipfile's streaming path, which reports the problem exactly
    as before.
    """
    size, compressed = info.file_size, info.compress_size
    limits = budget.limits
    if (
        info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        or info.flag_bits & _ZIP_UNREADABLE_FLAGS
        or size > min(limits.max_file_bytes, FAST_MEMBER_MAX)
        or budget.total_bytes + size > limits.max_total_bytes
        or (size > RATIO_GRACE and size / max(compressed, 1) > limits.max_ratio)
    ):
        return None
    start = info.header_offset
    if start < 0 or start + _LOCAL_HEADER.size > len(data):
        return None
    signature, local_flags, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, start)
    name_start = start + _LOCAL_HEADER.size
    body = name_start + name_len + extra_len
    if signature != b"PK\x03\x04" or body + compressed > len(data):
        return None
    raw_name = data[name_start : name_start + name_len]
    encoding = "utf-8" if local_flags & 0x800 else "cp437"  # as zipfile: the local header's flag
    try:
        if raw_name.decode(encoding) != info.orig_filename:
            return None
    except UnicodeDecodeError:
        return None
    raw = memoryview(data)[body : body + compressed]
    if info.compress_type == zipfile.ZIP_STORED:
        if compressed != size:
            return None
        content = bytes(raw)
    else:
        try:
            content = bytes(deflate.deflate_decompress(raw, size)) if size else b""
        except deflate.DeflateError:
            return None
        if len(content) != size:
            return None
    if deflate.crc32(content) != info.CRC:
        return None
    budget.take_bytes(size)
    return content
