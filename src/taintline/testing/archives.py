"""Builders for container fixtures: nested ZIP/tar, MSI-like OLE compound files holding CAB
streams, CABs, Electron ``app.asar`` archives, and hostile ones (zip bombs, traversal names,
deep nesting, truncation). Everything is made in memory from harmless bytes.

The OLE writer is hand-written because no maintained Python library writes compound files
(olefile only reads and patches existing streams); it produces version-3 files with 512-byte
sectors, a mini stream for small streams, and MSI-encoded stream names.
"""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import zipfile
from collections.abc import Mapping

import cabarchive
import orjson

# -- ZIP and tar ---------------------------------------------------------------------------


def zip_bytes(members: Mapping[str, bytes], *, compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2023, 3, 1, 0, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return buffer.getvalue()


def tar_bytes(members: Mapping[str, bytes], *, compression: str = "") -> bytes:
    """A tar (``compression``: ``""``, ``"gz"``, ``"bz2"`` or ``"xz"``)."""
    buffer = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1677628800
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cab_bytes(members: Mapping[str, bytes], *, compress: bool = True) -> bytes:
    archive = cabarchive.CabArchive()
    for name, data in members.items():
        archive[name] = cabarchive.CabFile(data)
    return archive.save(compress=compress)


# -- OLE compound files (MSI-like) ---------------------------------------------------------

_MSI_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._"
_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_SECTOR, _MINI, _CUTOFF = 512, 64, 4096


def msi_encode_stream_name(name: str) -> str:
    """Encode a stream name the way MSI does (two charset digits per code point)."""
    out: list[str] = []
    i = 0
    while i < len(name):
        a = _MSI_CHARSET.find(name[i])
        if a < 0:
            out.append(name[i])
            i += 1
            continue
        b = _MSI_CHARSET.find(name[i + 1]) if i + 1 < len(name) else -1
        if b >= 0:
            out.append(chr(0x3800 + a + (b << 6)))
            i += 2
        else:
            out.append(chr(0x4800 + a))
            i += 1
    return "".join(out)


def _chain(fat: list[int], start: int, count: int) -> None:
    for k in range(count):
        fat[start + k] = start + k + 1 if k + 1 < count else _END


def _dir_entry(name: str, kind: int, start: int, size: int, child: int, right: int) -> bytes:
    encoded = name.encode("utf-16-le")[:62]
    raw = encoded.ljust(64, b"\0")
    return (
        raw
        + struct.pack("<HBB", len(encoded) + 2, kind, 1)
        + struct.pack("<III", _NOSTREAM, right, child)
        + b"\0" * 16
        + struct.pack("<I", 0)
        + b"\0" * 16
        + struct.pack("<IQ", start, size)
    )


def ole_bytes(streams: Mapping[str, bytes], *, msi_names: bool = True) -> bytes:
    """A compound file with the given streams at its root (names MSI-encoded by default)."""
    named = [(msi_encode_stream_name(n) if msi_names else n, d) for n, d in streams.items()]
    # siblings form a (degenerate) binary tree in the order readers compare names
    named.sort(key=lambda item: (len(item[0]), item[0].upper()))
    big = [(n, d) for n, d in named if len(d) >= _CUTOFF]
    small = [(n, d) for n, d in named if len(d) < _CUTOFF]

    sectors: list[bytes] = []
    starts: dict[str, int] = {}
    for name, data in big:
        starts[name] = len(sectors)
        for off in range(0, len(data), _SECTOR):
            sectors.append(data[off : off + _SECTOR].ljust(_SECTOR, b"\0"))
    big_runs = [(starts[n], -(-len(d) // _SECTOR)) for n, d in big]

    mini = bytearray()
    mini_fat: list[int] = []
    mini_starts: dict[str, int] = {}
    for name, data in small:
        first = len(mini) // _MINI
        count = max(1, -(-len(data) // _MINI))
        mini_starts[name] = first if data else _END
        if data:
            mini.extend(data.ljust(count * _MINI, b"\0"))
            mini_fat.extend(first + k + 1 if k + 1 < count else _END for k in range(count))
    mini_stream_start = len(sectors) if mini else _END
    mini_stream_sectors = -(-len(mini) // _SECTOR)
    for off in range(0, len(mini), _SECTOR):
        sectors.append(bytes(mini[off : off + _SECTOR]).ljust(_SECTOR, b"\0"))
    mini_fat_start = len(sectors) if mini_fat else _END
    mini_fat_raw = b"".join(struct.pack("<I", v) for v in mini_fat)
    mini_fat_sectors = -(-len(mini_fat_raw) // _SECTOR)
    for off in range(0, len(mini_fat_raw), _SECTOR):
        sectors.append(mini_fat_raw[off : off + _SECTOR].ljust(_SECTOR, b"\xff"))

    entries = [
        _dir_entry(
            "Root Entry", 5, mini_stream_start, len(mini), 1 if named else _NOSTREAM, _NOSTREAM
        )
    ]
    for index, (name, data) in enumerate(named, start=1):
        right = index + 1 if index < len(named) else _NOSTREAM
        start = starts[name] if name in starts else mini_starts[name]
        entries.append(_dir_entry(name, 2, start, len(data), _NOSTREAM, right))
    dir_raw = b"".join(entries)
    dir_raw = dir_raw.ljust(-(-len(dir_raw) // _SECTOR) * _SECTOR, b"\0")
    # unused directory slots must be empty entries with NOSTREAM links
    empty = (
        b"\0" * 64
        + struct.pack("<HBB", 0, 0, 0)
        + struct.pack("<III", _NOSTREAM, _NOSTREAM, _NOSTREAM)
        + b"\0" * 48
    )
    used = len(entries) * 128
    dir_raw = dir_raw[:used] + empty * ((len(dir_raw) - used) // 128)
    dir_start = len(sectors)
    dir_sectors = len(dir_raw) // _SECTOR
    for off in range(0, len(dir_raw), _SECTOR):
        sectors.append(dir_raw[off : off + _SECTOR])

    n_fat = 1
    while (len(sectors) + n_fat) > n_fat * (_SECTOR // 4):
        n_fat += 1
    if n_fat > 109:
        raise ValueError("fixture too large for a header-only DIFAT")
    fat_start = len(sectors)
    fat = [_FREE] * (n_fat * (_SECTOR // 4))
    for start, count in big_runs:
        _chain(fat, start, count)
    if mini:
        _chain(fat, mini_stream_start, mini_stream_sectors)
    if mini_fat:
        _chain(fat, mini_fat_start, mini_fat_sectors)
    _chain(fat, dir_start, dir_sectors)
    for k in range(n_fat):
        fat[fat_start + k] = _FATSECT
    fat_raw = b"".join(struct.pack("<I", v) for v in fat)
    for off in range(0, len(fat_raw), _SECTOR):
        sectors.append(fat_raw[off : off + _SECTOR])

    difat = [fat_start + k for k in range(n_fat)] + [_FREE] * (109 - n_fat)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack(
            "<IIIIIIIII", 0, n_fat, dir_start, 0, _CUTOFF, mini_fat_start, mini_fat_sectors, _END, 0
        )
        + b"".join(struct.pack("<I", v) for v in difat)
    )
    assert len(header) == _SECTOR
    return header + b"".join(sectors)


def msi_like(
    cabs: Mapping[str, Mapping[str, bytes]], extra_streams: Mapping[str, bytes] | None = None
) -> bytes:
    """An MSI-shaped compound file: one CAB stream per entry of ``cabs`` (stream name ->
    members), plus other streams (e.g. ``Binary.CustomAction`` DLLs)."""
    streams: dict[str, bytes] = {name: cab_bytes(members) for name, members in cabs.items()}
    streams.update(extra_streams or {})
    streams.setdefault("Property", b"ProductName\x003CX Desktop App (demo)\x00")
    return ole_bytes(streams)


# -- Electron asar -------------------------------------------------------------------------


ASAR_BLOCK_SIZE = 4 * 1024 * 1024


def asar_integrity(data: bytes, block_size: int = ASAR_BLOCK_SIZE) -> dict[str, object]:
    """The ``integrity`` record @electron/asar writes for a file."""
    blocks = [
        hashlib.sha256(data[i : i + block_size]).hexdigest()
        for i in range(0, max(len(data), 1), block_size)
    ]
    return {
        "algorithm": "SHA256",
        "hash": hashlib.sha256(data).hexdigest(),
        "blockSize": block_size,
        "blocks": blocks,
    }


def asar_header_sha256(asar: bytes) -> str:
    """What ``ElectronAsarIntegrity`` declares for an archive: the SHA-256 of its JSON header."""
    json_len = struct.unpack_from("<I", asar, 12)[0]
    return hashlib.sha256(asar[16 : 16 + json_len]).hexdigest()


def info_plist(asar_hashes: Mapping[str, str], *, binary: bool = False) -> bytes:
    """An Electron app's ``Info.plist`` declaring ``ElectronAsarIntegrity`` for archives
    (``Resources/app.asar`` -> header SHA-256)."""
    import plistlib

    value = {
        "CFBundleIdentifier": "com.example.electron",
        "CFBundleExecutable": "Example",
        "ElectronAsarIntegrity": {
            path: {"algorithm": "SHA256", "hash": digest} for path, digest in asar_hashes.items()
        },
    }
    return plistlib.dumps(value, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML)


def asar_bytes(
    files: Mapping[str, bytes],
    *,
    unpacked: Mapping[str, int] | None = None,
    integrity: bool = False,
    block_size: int = ASAR_BLOCK_SIZE,
    links: Mapping[str, str] | None = None,
) -> bytes:
    """An ``app.asar`` with ``files`` (``dir/sub/name`` -> bytes); ``unpacked`` lists entries
    (path -> size) that live in ``app.asar.unpacked/`` instead; ``integrity`` adds the
    per-file ``integrity`` records of Electron >= 16; ``links`` adds link entries
    (path -> target)."""
    root: dict[str, object] = {"files": {}}
    blobs: list[bytes] = []
    offset = 0

    def node_for(path: str) -> dict[str, object]:
        node = root
        for part in path.split("/")[:-1]:
            files = node["files"]
            assert isinstance(files, dict)
            node = files.setdefault(part, {"files": {}})
        return node

    for path, data in files.items():
        files_of = node_for(path)["files"]
        assert isinstance(files_of, dict)
        entry: dict[str, object] = {"size": len(data), "offset": str(offset)}
        if integrity:
            entry["integrity"] = asar_integrity(data, block_size)
        files_of[path.rsplit("/", 1)[-1]] = entry
        blobs.append(data)
        offset += len(data)
    for path, size in (unpacked or {}).items():
        files_of = node_for(path)["files"]
        assert isinstance(files_of, dict)
        files_of[path.rsplit("/", 1)[-1]] = {"size": size, "unpacked": True}
    for path, target in (links or {}).items():
        files_of = node_for(path)["files"]
        assert isinstance(files_of, dict)
        files_of[path.rsplit("/", 1)[-1]] = {"link": target}
    header = orjson.dumps(root)
    padded = header + b"\0" * (-len(header) % 4)
    pickle = struct.pack("<II", len(padded) + 4, len(header)) + padded
    return struct.pack("<II", 4, len(pickle)) + pickle + b"".join(blobs)


# -- hostile -------------------------------------------------------------------------------


def zip_bomb(uncompressed: int = 32 * 1024 * 1024, name: str = "zeros.bin") -> bytes:
    """A ZIP whose one member inflates ~1000x (zeros)."""
    buffer = io.BytesIO()
    info = zipfile.ZipInfo(name, date_time=(2023, 3, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open(info, "w") as fh,
    ):
        block = b"\0" * (1024 * 1024)
        for _ in range(uncompressed // len(block)):
            fh.write(block)
    return buffer.getvalue()


def traversal_zip(good: Mapping[str, bytes] | None = None) -> bytes:
    """A ZIP whose members include names escaping the extraction folder."""
    members = dict(good or {"ok.txt": b"fine"})
    members.update(
        {
            "../../evil.txt": b"x",
            "/etc/evil.conf": b"x",
            "C:/Windows/evil.dll": b"x",
            "a/../../b": b"x",
        }
    )
    return zip_bytes(members)


def nested_zips(depth: int, inner: bytes = b"innermost", name: str = "inner.txt") -> bytes:
    """``depth`` ZIPs, each holding the next; the innermost holds ``inner``."""
    data, member = inner, name
    for level in range(depth):
        data = zip_bytes({member: data})
        member = f"level{depth - level}.zip"
    return data


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]
