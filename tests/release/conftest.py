from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from taintline.case import Case
from taintline.model import Finding, Severity
from taintline.release.verify import VerifyOptions, VerifyResult, verify
from taintline.testing import releases
from taintline.testing.signing import osslsigncode_path


@dataclass(frozen=True)
class Releases:
    """Generated releases (path -> bytes) of the demo app."""

    signers: releases.Signers
    base: dict[str, bytes]  # 18.12.407
    tampered: dict[str, bytes]  # 18.12.416 with the three 3CX tricks
    bumped: dict[str, bytes]  # 18.12.416, honest
    rebuild: dict[str, bytes]  # 18.12.407 built again: other time stamps and signing time


@pytest.fixture(scope="session")
def rel(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    if osslsigncode_path() is None:
        pytest.skip("osslsigncode is not installed")
    signers = releases.make_signers(tmp_path_factory.mktemp("pki"))
    return Releases(
        signers,
        releases.release_files(signers, version="18.12.407"),
        releases.release_files(signers, version="18.12.416", tamper=True),
        releases.release_files(signers, version="18.12.416"),
        releases.release_files(
            signers, version="18.12.407", build=1, signing_time=datetime(2023, 3, 2, tzinfo=UTC)
        ),
    )


FORMS: dict[str, Callable[[dict[str, bytes], Path], Path]] = {}


def _folder(files: dict[str, bytes], where: Path) -> Path:
    return releases.write_folder(files, where)


def _zip(files: dict[str, bytes], where: Path) -> Path:
    path = where.with_name(where.name + ".zip")
    path.write_bytes(releases.as_zip(files))
    return path


def _msi(files: dict[str, bytes], where: Path) -> Path:
    path = where.with_name(where.name + ".msi")
    path.write_bytes(releases.as_msi(files))
    return path


def _asar(files: dict[str, bytes], where: Path) -> Path:
    path = where.with_name(where.name + ".asar")
    path.write_bytes(releases.as_asar(files))
    return path


FORMS.update(folder=_folder, zip=_zip, msi=_msi, asar=_asar)


def make(form: str, files: dict[str, bytes], tmp: Path, name: str) -> Path:
    return FORMS[form](files, tmp / name)


def run(case: Case, base: Path | str, cand: Path | str, **options: object) -> VerifyResult:
    opts = VerifyOptions(ensure_intel=False, workers=0, **options)  # type: ignore[arg-type]
    return verify(base, cand, case, opts)


def kinds_at_least(findings: list[Finding], severity: Severity) -> list[tuple[str, str]]:
    return [
        (f.kind, str(f.evidence.get("path"))) for f in findings if f.severity.at_least(severity)
    ]
