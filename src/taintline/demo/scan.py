"""Demo stage: scan a tiny, fake "3CX Desktop App" release folder.

Everything is generated here from harmless bytes: an MSI-shaped installer holding a CAB with a
stand-in ``ffmpeg.dll`` (whose hash becomes a demo indicator, as the real trojanized
ffmpeg.dll's hash was published), an icon with ``$`` + base64 after the PNG's end (the trick
the real downloader used to hide C2 addresses), and, when the PE builder and osslsigncode are
available, a signed DLL with data appended inside its certificate table (CVE-2013-3900, like
the real d3dcompiler_47.dll).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

from taintline.demo.context import DemoContext, StageResult
from taintline.model import Indicator, IndicatorType, Severity
from taintline.scan.cache import RACY_NS
from taintline.scan.engine import ScanOptions, scan_paths
from taintline.testing.archives import msi_like

RELEASE = "3CXDesktopApp-18.12.416"
FAKE_FFMPEG = b"MZ" + b"\0" * 62 + b"harmless stand-in for a trojanized ffmpeg.dll (taintline demo)"


def _icon() -> bytes | None:
    try:
        from taintline.testing import image
    except ImportError:
        return None
    return image.with_trailing(image.ico())


def _tampered_dll(workdir: Path) -> tuple[bytes | None, str]:
    """A signed PE with random bytes appended inside its certificate table, or why not."""
    try:
        from taintline.testing import pe, signing
    except ImportError:
        return None, "PE builder not available"
    if signing.osslsigncode_path() is None:
        return None, "osslsigncode not installed: no signed PE in the demo"
    try:
        identity = signing.make_identity(workdir / "pki", subject_cn="Demo Graphics Ltd")
        signed = signing.sign_pe(pe.build_pe(pe.PESpec(dll=True)), identity, timestamp=False)
        hidden = hashlib.sha256(b"demo").digest() * 64  # 2 KiB that look random
        return pe.append_inside_certificate_table(signed, hidden), ""
    except (RuntimeError, ValueError, OSError) as exc:
        return None, f"signed PE not built: {exc}"


def stage(ctx: DemoContext) -> StageResult:
    release = ctx.workdir / "scan" / RELEASE
    release.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    msi = msi_like({"disk1.cab": {"ffmpeg.dll": FAKE_FFMPEG, "3CXDesktopApp.exe": b"MZ app"}})
    (release / f"{RELEASE}.msi").write_bytes(msi)
    icon = _icon()
    if icon is not None:
        (release / "icon3.ico").write_bytes(icon)
    dll, why_not = _tampered_dll(ctx.workdir / "scan")
    if dll is not None:
        (release / "d3dcompiler_47.dll").write_bytes(dll)
    elif why_not:
        lines.append(f"(note: {why_not})")

    ffmpeg_sha = hashlib.sha256(FAKE_FFMPEG).hexdigest()
    ctx.case.add_indicators(
        [
            Indicator(
                IndicatorType.SHA256,
                ffmpeg_sha,
                source="demo",
                campaign="3cx-demo",
                description="demo stand-in for the trojanized ffmpeg.dll",
            )
        ]
    )
    lines.append(f"release folder: {release}")
    lines.append(f"demo indicator: sha256 of the stand-in ffmpeg.dll ({ffmpeg_sha[:16]}...)")

    # files written this instant are never trusted by identity (scan/cache.py): let them settle
    time.sleep(RACY_NS / 1e9)
    result = scan_paths([release], ctx.case, ScanOptions(workers=0, host="build-server-01"))
    ctx.shared["scan"] = {
        "release": str(release),
        "run_id": result.run_id,
        "ffmpeg_sha256": ffmpeg_sha,
        "findings": len(result.findings),
    }
    lines.append(
        f"scanned {result.files} files and {result.members} container members"
        f" ({result.bytes_read} bytes, {result.rules} YARA rules) in {result.seconds:.1f}s"
    )
    counts = Counter(f.kind for f in result.findings)
    lines.append(
        "findings: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")
    )
    for f in sorted(result.findings, key=lambda f: (-f.severity.rank, f.kind, f.subject)):
        if f.severity.at_least(Severity.MEDIUM):
            shown = f.subject.replace(str(release) + "/", "")
            lines.append(f"  {str(f.severity).upper()} {f.kind}: {shown}: {f.message}")
    # the next day's scan of the same release: nothing changed, nothing is read again
    again = scan_paths([release], ctx.case, ScanOptions(workers=0, host="build-server-01"))
    same = sorted(f.fingerprint for f in again.findings) == sorted(
        f.fingerprint for f in result.findings
    )
    lines.append(
        f"re-scan: {again.reuse_summary()}, {again.seconds:.1f}s;"
        f" {'same' if same else 'DIFFERENT'} findings"
    )
    return StageResult(
        title="scan: a fake 3CX release", lines=tuple(lines), findings=len(result.findings)
    )
