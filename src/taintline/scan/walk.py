"""Walking: folders on disk and containers in memory, recursively and nested, within limits.

Two halves:

* :func:`walk_inputs` walks the file system in the parent process and yields one
  :class:`FileTask` per regular file (or an ``error.*`` finding for what cannot be walked).
  Symlinks are never followed: one that points inside the scanned tree is skipped (its target
  is scanned under its own path), one that points outside is reported
  (``error.symlink-outside``), one that loops (``ELOOP``, or a folder link to one of its own
  ancestors) is reported as ``error.symlink-loop``. Special files (FIFOs, sockets, devices) are
  never opened.
* :func:`expand` opens a container that is already in memory (the worker read it once for
  hashing) and yields its members as bytes, or error findings. Nothing is ever written to disk:
  members are decompressed in streaming chunks, counted as they come (declared sizes are never
  trusted) and checked against the per-file size, the compression ratio and the per-input
  budget of extracted bytes and files (:class:`Budget`). Member names that would escape an
  extraction folder (``../``, absolute, drive letters) are reported as
  ``error.path-traversal`` and their content is not read.

Containers: ZIP (also JAR/APK/whl/nupkg/Office, recognised by content), tar (plain, gzip,
bzip2, xz; a compressed file that is not a tar is one member), OLE compound files (MSI: every
stream is a member, CAB streams are recognised by their ``MSCF`` magic and opened in turn),
CAB, and Electron ``app.asar``. macOS ``.app`` bundles are folders.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import pwd
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

import orjson

from taintline.limits import MiB, ScanLimits
from taintline.model import Finding, Severity
from taintline.terminal import storable

#: Member paths inside containers are joined with this separator: ``setup.msi!/disk1.cab!/a.dll``.
SEP = "!/"

#: Reading chunk for members and large files.
CHUNK = 1 * MiB

#: The compression ratio is only judged once a member has produced this much: tiny, very
#: compressible files (a page of zeros) are normal.
RATIO_GRACE = 1 * MiB


class ContainerKind(StrEnum):
    ZIP = "zip"
    TAR = "tar"
    COMPRESSED = "compressed"  # gzip/bzip2/xz: a tar inside, or one compressed file
    OLE = "ole"
    CAB = "cab"
    ASAR = "asar"


# -- errors as findings ---------------------------------------------------------------------

#: Severity of each ``error.*`` kind the walker and engine emit.
ERROR_SEVERITY: dict[str, Severity] = {
    "error.unreadable": Severity.LOW,
    "error.not-regular": Severity.INFO,
    "error.truncated-archive": Severity.LOW,
    "error.malformed": Severity.LOW,
    "error.unsupported": Severity.INFO,
    "error.encrypted": Severity.INFO,
    "error.archive-bomb": Severity.MEDIUM,
    "error.too-deep": Severity.LOW,
    "error.too-large": Severity.LOW,
    "error.too-many-files": Severity.LOW,
    "error.path-traversal": Severity.MEDIUM,
    "error.symlink-loop": Severity.LOW,
    "error.symlink-outside": Severity.INFO,
    "error.analyser": Severity.LOW,
    "error.worker-crash": Severity.LOW,
    "error.yara-timeout": Severity.LOW,
    "error.yara": Severity.LOW,
}


def error_finding(kind: str, subject: str, message: str, **evidence: object) -> Finding:
    return Finding(
        kind=kind,
        severity=ERROR_SEVERITY.get(kind, Severity.LOW),
        subject=subject,
        message=message,
        evidence=evidence,
    )


class LimitExceeded(Exception):
    """Raised while streaming a member when a limit is hit; becomes an ``error.*`` finding."""

    def __init__(
        self, kind: str, message: str, *, member: bool = False, **evidence: object
    ) -> None:
        super().__init__(message)
        #: ``True`` when only the current member is skipped; otherwise the container ends.
        self.member = member
        self.kind = kind
        self.message = message
        self.evidence = evidence


@dataclass(slots=True)
class Budget:
    """What one top-level file (and everything nested in it) may still extract."""

    limits: ScanLimits
    total_bytes: int = 0
    files: int = 0

    def take_bytes(self, n: int) -> None:
        self.total_bytes += n
        if self.total_bytes > self.limits.max_total_bytes:
            raise LimitExceeded(
                "error.archive-bomb",
                f"more than {self.limits.max_total_bytes} bytes extracted from one input"
                " (--max-total-bytes); rest of the container skipped",
                extracted=self.total_bytes,
            )

    def take_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise LimitExceeded(
                "error.too-many-files",
                f"more than {self.limits.max_files} members in one input (--max-files);"
                " rest of the container skipped",
            )


# -- sniffing -------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _is_asar(data: bytes) -> bool:
    # Chromium Pickle: u32 4, u32 header pickle size, u32 payload size, u32 string length, JSON
    return len(data) >= 16 and data[:4] == b"\x04\x00\x00\x00" and data[16:25] == b'{"files":'


def filetype(data: bytes, name: str = "") -> str:
    """A short upper-case type from magic bytes, the value of YARA's ``filetype`` external
    (LOKI/THOR style: ``EXE``, ``ELF``, ``MACHO``, ``ZIP``...); empty when unknown."""
    head = data[:16]
    if head[:2] == b"MZ":
        return "EXE"
    if head[:4] == b"\x7fELF":
        return "ELF"
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xce\xfa\xed\xfe",
        b"\xfe\xed\xfa\xcf",
        b"\xcf\xfa\xed\xfe",
    ):
        return "MACHO"
    if head[:4] == b"\xca\xfe\xba\xbe":
        # fat Mach-O and Java class files share a magic; a fat header has few architectures
        return "MACHO" if int.from_bytes(head[4:8], "big") < 30 else "CLASS"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "ZIP"
    if head[:8] == _OLE_MAGIC:
        return "MSI" if name.lower().endswith((".msi", ".msp", ".msm")) else "OLE"
    if head[:4] == b"MSCF":
        return "CAB"
    if _is_asar(data):
        return "ASAR"
    if head[:2] == b"\x1f\x8b":
        return "GZIP"
    if head[:3] == b"BZh":
        return "BZIP2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "XZ"
    if data[257:262] == b"ustar":
        return "TAR"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"\x00\x00\x01\x00" and name.lower().endswith(".ico"):
        return "ICO"
    if head[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    if head[:5] == b"%PDF-":
        return "PDF"
    return ""


def container_kind(data: bytes) -> ContainerKind | None:
    """Which container ``data`` is, judged by content only (never by name)."""
    head = data[:8]
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ContainerKind.ZIP
    if head == _OLE_MAGIC:
        return ContainerKind.OLE
    if head[:4] == b"MSCF":
        return ContainerKind.CAB
    if _is_asar(data):
        return ContainerKind.ASAR
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return ContainerKind.COMPRESSED
    if data[257:262] == b"ustar":
        return ContainerKind.TAR
    return None


# -- member names ---------------------------------------------------------------------------


def unsafe_member_name(name: str) -> bool:
    """Would extracting ``name`` write outside the extraction folder?"""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        return True
    return any(part == ".." for part in text.split("/"))


def _clean_name(name: str) -> str:
    return name.replace("\\", "/").lstrip("./") or name


# -- members --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One member read from a container: its name inside the container and its bytes."""

    name: str
    data: bytes


Produced = Member | Finding


def _read_stream(
    read: object,
    *,
    subject: str,
    budget: Budget,
    compressed_size: int | None,
) -> bytes:
    """Read a member from a file-like ``read`` callable in chunks, counting real bytes."""
    assert callable(read)
    limits = budget.limits
    chunks: list[bytes] = []
    produced = 0
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        produced += len(chunk)
        budget.take_bytes(len(chunk))
        if produced > limits.max_file_bytes:
            raise LimitExceeded(
                "error.too-large",
                f"member larger than {limits.max_file_bytes} bytes (--max-file-size); skipped",
                member=True,
                read=produced,
            )
        if compressed_size is not None and produced > RATIO_GRACE:
            ratio = produced / max(compressed_size, 1)
            if ratio > limits.max_ratio:
                raise LimitExceeded(
                    "error.archive-bomb",
                    f"compression ratio above {limits.max_ratio:g} (--max-ratio); member skipped",
                    member=True,
                    ratio=round(ratio, 1),
                    compressed=compressed_size,
                    read=produced,
                )
        chunks.append(chunk)
    return b"".join(chunks)


def _limit_finding(exc: LimitExceeded, subject: str) -> Finding:
    return error_finding(exc.kind, subject, exc.message, **exc.evidence)


def expand(
    data: bytes, kind: ContainerKind, subject: str, name: str, budget: Budget
) -> Iterator[Produced]:
    """Members of the container ``data`` (display path ``subject``), or error findings.

    Never raises for bad input: corrupt and hostile containers end in an ``error.*`` finding
    after the members that could be read.
    """
    readers = {
        ContainerKind.ZIP: _zip_members,
        ContainerKind.TAR: _tar_members,
        ContainerKind.COMPRESSED: _tar_members,
        ContainerKind.OLE: _ole_members,
        ContainerKind.CAB: _cab_members,
        ContainerKind.ASAR: _asar_members,
    }
    try:
        yield from readers[kind](data, subject, name, budget)
    except LimitExceeded as exc:
        yield _limit_finding(exc, subject)
    except (
        EOFError,
        zlib.error,
        lzma.LZMAError,
        OSError,
        tarfile.TarError,
        zipfile.BadZipFile,
    ) as exc:
        yield error_finding(
            "error.truncated-archive",
            subject,
            f"truncated or corrupt {kind}: {exc}",
            container=kind,
        )
    except (
        ValueError,
        KeyError,
        IndexError,
        struct.error,
        RuntimeError,
        OverflowError,  # olefile, for sector numbers past what an index can hold
        MemoryError,  # a parser believing a hostile size field
    ) as exc:
        yield error_finding("error.malformed", subject, f"malformed {kind}: {exc}", container=kind)
    except Exception as exc:  # any other parser failure on hostile input: this container only
        yield error_finding(
            "error.malformed",
            subject,
            f"malformed {kind}: {type(exc).__name__}: {exc}",
            container=kind,
            exception=type(exc).__name__,
        )


def _admit(name: str, subject: str, budget: Budget) -> Finding | tuple[str, str]:
    """A member about to be read: its clean name and display path, counted against
    ``--max-files``; or the path-traversal finding when its name escapes the container."""
    if unsafe_member_name(name):
        return error_finding(
            "error.path-traversal",
            f"{subject}{SEP}{name}",
            "member name escapes the extraction folder (path traversal); not extracted",
            member=name,
        )
    member = _clean_name(name)
    budget.take_file()
    return member, f"{subject}{SEP}{member}"


# ZIP ---------------------------------------------------------------------------------------


def _zip_members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            admitted = _admit(info.filename, subject, budget)
            if isinstance(admitted, Finding):
                yield admitted
                continue
            member, where = admitted
            if info.flag_bits & 0x1:
                yield error_finding("error.encrypted", where, "encrypted member; not read")
                continue
            # never trust the declared compressed size beyond what the container can hold
            compressed = min(info.compress_size, len(data))
            fast = _zip_member_fast(data, info, budget)
            if fast is not None:
                yield Member(member, fast)
                continue
            try:
                with zf.open(info) as fh:
                    content = _read_stream(
                        fh.read, subject=where, budget=budget, compressed_size=compressed
                    )
            except LimitExceeded as exc:
                if exc.member:
                    yield _limit_finding(exc, where)
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
    import deflate

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


# tar and compressed files ----------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts decompressed bytes as tarfile pulls them (headers and skipped members too), so a
    gzip bomb is stopped while decompressing rather than after."""

    def __init__(self, inner: io.BufferedIOBase, compressed_size: int, budget: Budget) -> None:
        self._inner = inner
        self._compressed = compressed_size
        self._budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > RATIO_GRACE:
            ratio = self.count / max(self._compressed, 1)
            if ratio > self._budget.limits.max_ratio:
                raise LimitExceeded(
                    "error.archive-bomb",
                    f"compression ratio above {self._budget.limits.max_ratio:g} (--max-ratio);"
                    " rest of the container skipped",
                    ratio=round(ratio, 1),
                    compressed=self._compressed,
                    read=self.count,
                )
        if self.count > self._budget.limits.max_total_bytes:
            raise LimitExceeded(
                "error.archive-bomb",
                f"more than {self._budget.limits.max_total_bytes} bytes decompressed"
                " (--max-total-bytes); rest of the container skipped",
                read=self.count,
            )
        return n


def _decompressor(data: bytes) -> io.BufferedIOBase | None:
    raw = io.BytesIO(data)
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)
    if data[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return None


def _strip_compression_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz"):
        if lower.endswith(suffix):
            base = name[: -len(suffix)]
            return base + ".tar" if suffix.startswith(".t") else base
    return name + ".out"


def _tar_members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    inner = _decompressor(data)
    stream: io.RawIOBase | io.BufferedIOBase
    if inner is not None:
        counting = _CountingReader(inner, len(data), budget)
        stream = io.BufferedReader(counting, buffer_size=CHUNK)
        # is there a tar inside? peek at the first header block
        head = stream.peek(512)[:512]  # type: ignore[attr-defined]
        if not _looks_like_tar(head):
            single = _strip_compression_suffix(PurePosixPath(name).name)
            budget.take_file()
            content = _read_stream(
                stream.read, subject=subject, budget=budget, compressed_size=None
            )
            yield Member(single, content)
            return
    else:
        stream = io.BytesIO(data)
    with tarfile.open(fileobj=stream, mode="r|") as tf:
        for info in tf:
            if not info.isreg():
                continue
            admitted = _admit(info.name, subject, budget)
            if isinstance(admitted, Finding):
                yield admitted
                continue
            member, where = admitted
            fh = tf.extractfile(info)
            if fh is None:
                continue
            try:
                # the outer counting reader judges the ratio of the whole stream
                content = _read_stream(fh.read, subject=where, budget=budget, compressed_size=None)
            except LimitExceeded as exc:
                if exc.member and exc.kind == "error.too-large":
                    yield _limit_finding(exc, where)
                    continue
                raise
            yield Member(member, content)


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    # v7 tar: the header checksum must match
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed


# OLE compound files (MSI) --------------------------------------------------------------

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


def _ole_members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
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


# CAB -------------------------------------------------------------------------------------


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


def _cab_members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
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
        admitted = _admit(member_name, subject, budget)
        if isinstance(admitted, Finding):
            yield admitted
            continue
        member, where = admitted
        content = archive[member_name].buf or b""
        if len(content) > limits.max_file_bytes:
            yield error_finding(
                "error.too-large",
                where,
                "member larger than --max-file-size; skipped",
            )
            continue
        yield Member(member, bytes(content))


# Electron asar ---------------------------------------------------------------------------

# No maintained Python reader for asar exists (the format lives in @electron/asar, JavaScript),
# so it is parsed here: a Chromium Pickle holding a JSON index, then the files' bytes.
_ASAR_MAX_HEADER = 64 * MiB


def asar_index(data: bytes) -> tuple[dict[str, object], int]:
    """The JSON index of an asar archive and where the files' data starts."""
    if len(data) < 16:
        raise EOFError("asar header truncated")
    pickle_size, header_size, _payload, json_len = struct.unpack_from("<IIII", data, 0)
    if pickle_size != 4 or json_len > header_size or json_len > _ASAR_MAX_HEADER:
        raise ValueError("bad asar header")
    if 16 + json_len > len(data):
        raise EOFError("asar index truncated")
    index = orjson.loads(data[16 : 16 + json_len])
    if not isinstance(index, dict) or not isinstance(index.get("files"), dict):
        raise ValueError("asar index has no files")
    return index, 8 + header_size


def _asar_members(data: bytes, subject: str, name: str, budget: Budget) -> Iterator[Produced]:
    index, base = asar_index(data)
    limits = budget.limits
    # iterative walk; nesting in the index is bounded by the index size we accepted
    stack: list[tuple[str, dict[str, object]]] = [("", index)]
    seen_nodes = 0
    while stack:
        prefix, node = stack.pop()
        files = node.get("files")
        if not isinstance(files, dict):
            continue
        for entry_name in sorted(files, reverse=True):
            entry = files[entry_name]
            seen_nodes += 1
            if not isinstance(entry, dict) or not isinstance(entry_name, str):
                continue
            path = f"{prefix}{entry_name}"
            if "/" in entry_name or unsafe_member_name(path) or entry_name in ("", ".", ".."):
                yield error_finding(
                    "error.path-traversal",
                    f"{subject}{SEP}{path}",
                    "asar entry name escapes the archive (path traversal); not extracted",
                    member=path,
                )
                continue
            if "files" in entry:
                stack.append((path + "/", entry))
                continue
            if "link" in entry or entry.get("unpacked"):
                # unpacked files live in app.asar.unpacked/ beside the archive (scanned as
                # files on disk); links are not followed
                continue
            budget.take_file()
            where = f"{subject}{SEP}{path}"
            try:
                size = int(entry.get("size", 0))  # type: ignore[call-overload]
                offset = int(entry.get("offset", 0))  # type: ignore[call-overload]
            except (TypeError, ValueError):
                yield error_finding("error.malformed", where, "asar entry with bad size/offset")
                continue
            if size < 0 or offset < 0 or base + offset + size > len(data):
                yield error_finding(
                    "error.truncated-archive",
                    where,
                    "asar entry points past the end of the archive",
                )
                continue
            if size > limits.max_file_bytes:
                yield error_finding(
                    "error.too-large", where, "member larger than --max-file-size; skipped"
                )
                continue
            budget.take_bytes(size)
            yield Member(path, data[base + offset : base + offset + size])


# -- the file system ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileTask:
    """A regular file to scan: ``path`` to open (real), ``display`` to report."""

    path: str
    display: str
    top: str
    size: int
    owner: str
    #: Bundle roots (display paths of folders) this file belongs to.
    bundles: tuple[str, ...] = ()
    sparse: bool = False


@dataclass(slots=True)
class _Owners:
    cache: dict[int, str] = field(default_factory=dict)

    def name(self, uid: int) -> str:
        if uid not in self.cache:
            try:
                self.cache[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self.cache[uid] = str(uid)
        return self.cache[uid]


def is_bundle_root(path: str, name: str) -> bool:
    """Folders judged as a whole by the bundle analysers: macOS ``.app`` bundles and Electron
    app folders (those holding ``resources/app.asar``)."""
    if name.lower().endswith(".app"):
        return True
    return Path(path, "resources", "app.asar").is_file()


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _is_sparse(st: os.stat_result) -> bool:
    blocks = getattr(st, "st_blocks", None)
    return blocks is not None and st.st_size > 16 * MiB and blocks * 512 < st.st_size // 8


def walk_inputs(paths: Sequence[str], limits: ScanLimits) -> Iterator[FileTask | Finding]:
    """Regular files under ``paths`` (files or folders), in a stable order, or error findings."""
    owners = _Owners()
    for top in paths:
        yield from _walk_one(top, limits, owners)


def _walk_one(top: str, limits: ScanLimits, owners: _Owners) -> Iterator[FileTask | Finding]:
    # Names are shown and recorded as valid UTF-8 (a name that is not UTF-8 as \xNN); the
    # real path (bytes kept by Python) is what is opened.
    real_top, top = top, storable(top)
    try:
        root = os.path.realpath(real_top, strict=True)
        st = Path(root).stat()
    except OSError as exc:
        kind = "error.symlink-loop" if exc.errno == errno.ELOOP else "error.unreadable"
        yield error_finding(kind, top, f"cannot open: {exc.strerror or exc}")
        return
    if stat.S_ISREG(st.st_mode):
        yield FileTask(root, top, top, st.st_size, owners.name(st.st_uid), (), _is_sparse(st))
        return
    if not stat.S_ISDIR(st.st_mode):
        yield error_finding("error.not-regular", top, "not a regular file or folder; not opened")
        return
    count = 0
    # the top folder is always a bundle (the user pointed at it: often an app folder)
    top_bundles: tuple[str, ...] = (top,)
    # (real dir, display dir, bundles, ancestors as (dev, ino))
    stack: list[tuple[str, str, tuple[str, ...], frozenset[tuple[int, int]]]] = [
        (root, top, top_bundles, frozenset({(st.st_dev, st.st_ino)}))
    ]
    while stack:
        real_dir, shown_dir, bundles, ancestors = stack.pop()
        try:
            with os.scandir(real_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield error_finding(
                "error.unreadable", shown_dir, f"cannot list folder: {exc.strerror}"
            )
            continue
        subdirs: list[tuple[str, str, tuple[str, ...], frozenset[tuple[int, int]]]] = []
        for entry in entries:
            shown = f"{shown_dir.rstrip('/')}/{storable(entry.name)}"
            try:
                if entry.is_symlink():
                    finding = _judge_symlink(entry.path, shown, root, ancestors)
                    if finding is not None:
                        yield finding
                    continue
                est = entry.stat(follow_symlinks=False)
            except OSError as exc:
                yield error_finding("error.unreadable", shown, f"cannot stat: {exc.strerror}")
                continue
            if stat.S_ISDIR(est.st_mode):
                key = (est.st_dev, est.st_ino)
                child_bundles = bundles
                if is_bundle_root(entry.path, entry.name):
                    child_bundles = (*bundles, shown)
                subdirs.append((entry.path, shown, child_bundles, ancestors | {key}))
            elif stat.S_ISREG(est.st_mode):
                count += 1
                if count > limits.max_files:
                    yield error_finding(
                        "error.too-many-files",
                        top,
                        f"more than {limits.max_files} files (--max-files); rest not scanned",
                    )
                    return
                yield FileTask(
                    entry.path,
                    shown,
                    top,
                    est.st_size,
                    owners.name(est.st_uid),
                    bundles,
                    _is_sparse(est),
                )
            else:
                yield error_finding(
                    "error.not-regular",
                    shown,
                    "not a regular file (FIFO, socket or device); not opened",
                    mode=stat.filemode(est.st_mode),
                )
        stack.extend(reversed(subdirs))


def _judge_symlink(
    link: str, shown: str, root: str, ancestors: frozenset[tuple[int, int]]
) -> Finding | None:
    """Symlinks are not followed. Report loops and links out of the tree; links to inside the
    tree need nothing (their target is scanned under its own name)."""
    try:
        target_st = Path(link).stat()  # follows
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return error_finding(
                "error.symlink-loop",
                shown,
                "symbolic link loop; not followed",
                target=str(Path(link).readlink()),
            )
        return error_finding(
            "error.unreadable",
            shown,
            f"broken symbolic link: {exc.strerror}",
            target=str(Path(link).readlink()),
        )
    target = os.path.realpath(link)
    if not _inside(target, root):
        return error_finding(
            "error.symlink-outside",
            shown,
            "symbolic link points outside the scanned tree; not followed",
            target=str(Path(link).readlink()),
        )
    if stat.S_ISDIR(target_st.st_mode) and (target_st.st_dev, target_st.st_ino) in ancestors:
        return error_finding(
            "error.symlink-loop",
            shown,
            "symbolic link to one of its own parent folders; not followed",
            target=str(Path(link).readlink()),
        )
    return None
