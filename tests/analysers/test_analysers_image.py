from __future__ import annotations

import base64

import pytest

from taintline.model import Severity
from taintline.scan import image
from taintline.scan.interface import AnalysisContext, FileItem
from taintline.testing.image import bmp, c2_trailer, gif, ico, jpeg, png, with_trailing

BUILDERS = {"png": png, "jpeg": jpeg, "gif": gif, "bmp": bmp, "ico": ico}


def _run(data: bytes, path: str = "icon.ico") -> image.AnalysisResult:
    return image.analyse(FileItem(path=path, name=path, data=data, top=path), AnalysisContext())


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_clean_images_are_quiet(fmt: str) -> None:
    data = BUILDERS[fmt]()
    assert image.applies(FileItem("x", "x", data, "x"))
    result = _run(data)
    assert result.facts.format == fmt
    assert result.facts.real_end == len(data)
    assert result.facts.trailing == ()
    assert result.findings == ()


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_trailing_dollar_base64_is_flagged(fmt: str) -> None:
    clean = BUILDERS[fmt]()
    result = _run(with_trailing(clean))
    (finding,) = result.findings
    assert finding.kind == "image.trailing-data"
    assert finding.severity is Severity.HIGH
    ev = finding.evidence
    assert ev["real_end"] == len(clean) and ev["offset"] == len(clean)
    assert f"ends at offset {len(clean)}" in ev["reason"]
    assert ev["size"] == len(c2_trailer())
    assert ev["marker"] == "$"
    assert ev["base64"]["looks_base64"] is True and ev["base64"]["decodes"] is True
    assert 4.0 < ev["entropy"] < 6.5  # base64 text
    assert ev["preview"]["ascii"].startswith("$")
    assert len(ev["preview"]["hex"]) <= 96


def test_random_trailing_without_marker() -> None:
    data = png() + bytes(range(256))
    (finding,) = _run(data, "a.png").findings
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence["marker"] is None
    assert finding.evidence["base64"]["looks_base64"] is False
    assert finding.evidence["entropy"] == 8.0


def test_zero_padding_is_quiet() -> None:
    result = _run(gif() + b"\0" * 64, "a.gif")
    assert result.facts.trailing_size == 64
    assert result.findings == ()


def test_icon_dimensions_and_entries() -> None:
    data = ico([png(16, 16), png(32, 32), bmp(4, 4)[14:]])
    facts = _run(data).facts
    assert [e.format for e in facts.icon_entries] == ["png", "png", "dib"]
    assert facts.width == 16 and facts.real_end == len(data)
    assert (
        facts.icon_entries[1].inner_end == facts.icon_entries[1].offset + facts.icon_entries[1].size
    )


def test_data_hidden_inside_icon_entry_after_png_iend() -> None:
    hidden = b"$" + base64.b64encode(b"hidden c2 list " * 8)
    data = ico([png(16, 16) + hidden])
    (finding,) = _run(data).findings
    assert finding.evidence["where"] == "inside-icon-entry-0"
    assert finding.evidence["size"] == len(hidden)
    assert finding.evidence["marker"] == "$"


def test_jpeg_walk_ignores_eoi_inside_segments() -> None:
    data = jpeg()
    assert data.index(b"\xff\xd9") < len(data) - 2  # a decoy EOI inside APP1
    assert _run(data, "a.jpg").facts.real_end == len(data)


def test_second_jpeg_after_eoi_is_low() -> None:
    (finding,) = _run(jpeg() + jpeg(), "a.jpg").findings
    assert finding.severity is Severity.LOW
    assert finding.evidence["embedded_format"] == "jpeg"


def test_pe_after_png_is_high() -> None:
    (finding,) = _run(png() + b"MZ" + bytes(100), "a.png").findings
    assert finding.severity is Severity.HIGH and finding.evidence["embedded_format"] == "pe"


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_truncated_images_are_malformed(fmt: str) -> None:
    data = BUILDERS[fmt]()
    result = _run(data[: len(data) - 5])
    assert result.facts is not None and result.facts.error
    assert [f.kind for f in result.findings] == ["error.malformed"]


def test_bmp_with_zero_bfsize_uses_dib_size() -> None:
    data = bytearray(bmp())
    data[2:6] = b"\0\0\0\0"
    assert _run(bytes(data) + b"tail-bytes!", "a.bmp").facts.trailing_size == 11


def test_not_an_image() -> None:
    assert not image.applies(FileItem("x", "x", b"hello world", "x"))
    assert _run(b"hello world").facts is None
