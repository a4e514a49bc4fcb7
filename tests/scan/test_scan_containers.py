"""Containers: nested paths, asar, MSI stream names, CAB, compressed files."""

from __future__ import annotations

from pathlib import Path

from taintline.case import Case
from taintline.limits import ScanLimits
from taintline.model import Finding
from taintline.scan import store
from taintline.scan.containers import (
    Budget,
    ContainerKind,
    Member,
    container_kind,
    expand,
    unsafe_member_name,
)
from taintline.scan.containers.cab import cab_declared_uncompressed
from taintline.scan.containers.ole import decode_msi_stream_name
from taintline.scan.magic import filetype
from taintline.testing.archives import (
    asar_bytes,
    cab_bytes,
    msi_encode_stream_name,
    msi_like,
    tar_bytes,
    zip_bytes,
)

from .scanhelpers import kinds, run_scan, write_rules


def members(data: bytes, name: str = "x") -> list[Member | Finding]:
    kind = container_kind(data)
    assert kind is not None
    return list(expand(data, kind, name, name, Budget(ScanLimits())))


def test_nested_zip_in_tar_in_cab_in_msi_paths(tmp_path: Path, case: Case) -> None:
    inner_zip = zip_bytes({"docs/payload.txt": b"NESTED_MARKER_42"})
    tar = tar_bytes({"bundle/inner.zip": inner_zip}, compression="gz")
    msi = msi_like({"disk1.cab": {"bundle.tar.gz": tar, "ffmpeg.dll": b"MZ" + b"\0" * 100}})
    (tmp_path / "setup.msi").write_bytes(msi)
    rule = write_rules(
        tmp_path / "r.yar", 'rule nested { strings: $a = "NESTED_MARKER_42" condition: $a }'
    )
    result = run_scan(case, [tmp_path / "setup.msi"], rules=[rule])
    deep = f"{tmp_path}/setup.msi!/disk1.cab!/bundle.tar.gz!/bundle/inner.zip!/docs/payload.txt"
    assert kinds(result.findings)["yara"] == [deep]
    paths = {f.path for f in store.file_facts(case, run_id=result.run_id)}
    assert f"{tmp_path}/setup.msi!/disk1.cab!/ffmpeg.dll" in paths
    assert f"{tmp_path}/setup.msi!/disk1.cab!/bundle.tar.gz!/bundle/inner.zip" in paths
    assert deep in paths
    assert result.members >= 5


def test_asar_nested_dirs_and_unpacked_entries() -> None:
    data = asar_bytes(
        {
            "package.json": b'{"name": "app"}',
            "node_modules/ffi/build/Release/ffi.node": b"\x7fELF" + b"n" * 50,
            "dist/main.js": b"console.log(1)",
        },
        unpacked={"node_modules/keytar/keytar.node": 1234},
    )
    assert filetype(data, "app.asar") == "ASAR"
    got = {m.name: m.data for m in members(data, "app.asar") if isinstance(m, Member)}
    assert got == {
        "package.json": b'{"name": "app"}',
        "node_modules/ffi/build/Release/ffi.node": b"\x7fELF" + b"n" * 50,
        "dist/main.js": b"console.log(1)",
    }


def test_asar_truncated_and_malformed() -> None:
    data = asar_bytes({"a.txt": b"A" * 100, "b.txt": b"B" * 100})
    cut = members(data[:-50], "app.asar")
    assert [m.name for m in cut if isinstance(m, Member)] == ["a.txt"]
    assert [f.kind for f in cut if isinstance(f, Finding)] == ["error.truncated-archive"]
    broken = bytearray(data)
    broken[16:25] = b'{"files":'  # keep the magic, break the JSON after it
    broken[25] = ord("!")
    produced = members(bytes(broken), "app.asar")
    assert [f.kind for f in produced if isinstance(f, Finding)] == ["error.malformed"]


def test_asar_traversal_entry_is_reported() -> None:
    data = asar_bytes({"ok.txt": b"fine"})
    # rename the entry to ".." inside the JSON index (same length keeps offsets valid)
    hostile = data.replace(b'"ok.txt"', b'"../x.t"')
    produced = members(hostile, "app.asar")
    assert any(isinstance(f, Finding) and f.kind == "error.path-traversal" for f in produced)
    assert not any(isinstance(m, Member) for m in produced)


def test_msi_stream_names_decode() -> None:
    for name in ("disk1.cab", "Binary.CustomAction_x64", "a", "Property"):
        assert decode_msi_stream_name(msi_encode_stream_name(name)) == name


def test_msi_members_and_cab() -> None:
    msi = msi_like(
        {"media1.cab": {"app.exe": b"MZ" + b"x" * 5000}},
        {"Binary.CA": b"MZ" + b"y" * 9000},
    )
    produced = members(msi, "setup.msi")
    names = {m.name for m in produced if isinstance(m, Member)}
    assert {"media1.cab", "Binary.CA", "Property"} <= names
    cab = next(m for m in produced if isinstance(m, Member) and m.name == "media1.cab")
    assert container_kind(cab.data) is ContainerKind.CAB
    inner = members(cab.data, "media1.cab")
    assert [(m.name, len(m.data)) for m in inner if isinstance(m, Member)] == [("app.exe", 5002)]


def test_cab_declared_size_is_read_from_headers() -> None:
    cab = cab_bytes({"a.bin": b"a" * 70000, "b.bin": b"b" * 10})
    assert cab_declared_uncompressed(cab) == 70010


def test_compressed_single_file_is_one_member() -> None:
    import gzip

    produced = members(gzip.compress(b"just a log line\n" * 10), "app.log.gz")
    assert [(m.name, m.data[:4]) for m in produced if isinstance(m, Member)] == [
        ("app.log", b"just")
    ]


def test_unsafe_member_names() -> None:
    for bad in ("../a", "a/../../b", "/etc/passwd", "C:\\Windows\\x.dll", "..\\..\\x", "c:x"):
        assert unsafe_member_name(bad), bad
    for good in ("a/b/c.txt", "..a/b", "a..b", "dir/.hidden"):
        assert not unsafe_member_name(good), good


def test_folders_symlinked_files_are_not_scanned_twice(tmp_path: Path, case: Case) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "real.txt").write_text("hello")
    (tree / "link.txt").symlink_to(tree / "real.txt")
    result = run_scan(case, [tree])
    assert result.files == 1
    assert not result.findings
