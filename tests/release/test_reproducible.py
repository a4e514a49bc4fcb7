"""The rebuild normalisation: what two honest builds differ in is blanked, nothing else."""

from __future__ import annotations

import hashlib
import random
import struct
from datetime import UTC, datetime

from tests.builders import elf
from tests.release.conftest import Releases

from taintline.scan.interface import AnalysisContext, FileItem
from taintline.scan.reproducible import ReleaseFacts, analyse, normalise, normalised_sha256
from taintline.testing import macho, pe
from taintline.testing.signing import sign_pe


def _norm(data: bytes) -> bytes:
    return normalise(data)[0]


def test_pe_time_stamp_checksum_and_signature(rel: Releases) -> None:
    one = pe.build_pe(pe.PESpec(dll=True, timestamp=1))
    two = pe.build_pe(pe.PESpec(dll=True, timestamp=2))
    signed = sign_pe(
        two, rel.signers.vendor, timestamp=False, signing_time=datetime(2023, 1, 1, tzinfo=UTC)
    )
    assert one != two
    assert _norm(one) == _norm(two) == _norm(signed)
    _, what = normalise(signed)
    assert {"pe.timestamp", "pe.checksum", "pe.signature"} <= set(what)
    changed = pe.build_pe(pe.PESpec(dll=True, timestamp=1, exports=("x",)))
    assert _norm(changed) != _norm(one)
    # hidden data in the certificate table goes with the table: the signature check (not the
    # normalised hash) is what reports it
    hidden = pe.append_inside_certificate_table(signed, b"\xfe\xed\xfa\xce" * 64)
    assert _norm(hidden) == _norm(one)


def test_elf_build_id() -> None:
    def with_build_id(bid: bytes) -> bytes:
        note = struct.pack("<III", 4, len(bid), 3) + b"GNU\0" + bid
        return elf.elf64(overlay=note)

    a, b = with_build_id(b"\x01" * 20), with_build_id(b"\x02" * 20)
    assert a != b and _norm(a) == _norm(b)
    assert normalise(a)[1] == ["elf.build-id"]


def test_macho_signature_and_uuid() -> None:
    dev = macho.make_developer_id()
    one = macho.thin(signature="developer-id", developer=dev)
    two = macho.thin(signature="developer-id", developer=macho.make_developer_id())
    assert one != two
    assert _norm(one) == _norm(two) == _norm(macho.thin(signature="adhoc"))
    assert _norm(macho.fat([one])) == _norm(macho.fat([two]))


def test_analyser_facts_and_garbage() -> None:
    ctx = AnalysisContext()
    plist = b'<?xml version="1.0"?><plist version="1.0"><dict><key>CFBundleVersion</key><string>1.2</string></dict></plist>'
    res = analyse(FileItem("a/Info.plist", "Info.plist", plist, "a"), ctx)
    assert res.facts == ReleaseFacts(bundle={"CFBundleVersion": "1.2"})
    assert analyse(FileItem("b/Info.plist", "Info.plist", b"\0garbage", "b"), ctx).facts is None
    for junk in (
        b"MZ",
        b"MZ" + b"\xff" * 200,
        b"\x7fELF" + b"GNU\0" * 50,
        b"\xca\xfe\xba\xbe\0\0\0\x05",
    ):
        facts = analyse(FileItem("x", "x", junk, "x"), ctx).facts
        assert facts is not None and facts.normalised_sha256


def _zeroed_in_place(data: bytes) -> tuple[bytes, list[str]]:
    """The build-id blanking as a plain loop over a copy, zeroing as it goes: the reference
    the in-place hash must agree with."""
    buf = bytearray(data)
    done = False
    pos = 0
    for _ in range(16):
        hit = buf.find(b"GNU\0", pos)
        if hit < 0:
            break
        pos = hit + 4
        note = hit - 12
        if note < 0:
            continue
        namesz, size, kind = struct.unpack_from("<III", buf, note)
        if namesz == 4 and kind == 3 and 0 < size <= 64 and hit + 4 + size <= len(buf):
            buf[hit + 4 : hit + 4 + size] = bytes(size)
            done = True
    return bytes(buf), ["elf.build-id"] if done else []


def test_elf_build_ids_are_hashed_in_place_as_if_blanked() -> None:
    rng = random.Random(7)

    def note(bid: bytes, kind: int = 3, namesz: int = 4) -> bytes:
        return struct.pack("<III", namesz, len(bid), kind) + b"GNU\0" + bid

    cases = [
        elf.elf64(overlay=note(b"\x01" * 20)),
        elf.elf64(overlay=note(b"\x01" * 20) + note(b"\x02" * 8)),  # two notes
        elf.elf64(overlay=note(b"\x03" * 20, kind=1)),  # another note type: kept
        elf.elf64(overlay=note(b"x" * 65)),  # too long for a build id: kept
        elf.elf64(overlay=b"GNU\0"),  # a name without a note header before it
        # a descriptor holding what looks like the next note: it is blanked, never read
        elf.elf64(overlay=note(b"\x00" * 4 + note(b"\x09" * 8)[:-8] + b"\x09" * 4)),
        elf.elf64(overlay=note(b"\x05" * 20)[:-4]),  # cut short at the end of the file
    ]
    for _ in range(40):  # notes and "GNU" names at random places in random bytes
        body = bytearray(rng.randbytes(rng.randrange(64, 400)))
        for _ in range(rng.randrange(1, 5)):
            piece = note(rng.randbytes(rng.randrange(1, 70)), kind=rng.choice((3, 3, 1)))
            at = rng.randrange(0, len(body))
            body[at:at] = piece[rng.choice((0, 0, 0, rng.randrange(1, 8))) :]
        cases.append(elf.elf64(overlay=bytes(body)))
    blanked = 0
    for data in cases:
        expected, done = _zeroed_in_place(data)
        assert normalised_sha256(data) == (hashlib.sha256(expected).hexdigest(), done)
        assert normalise(data) == (expected, done)
        blanked += bool(done)
    assert 10 < blanked < len(cases)
