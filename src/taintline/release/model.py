"""The records the release stage speaks in: one file of a release (:class:`Entry`), what it is
as a native binary (:class:`Binary`), and a whole release (:class:`Release`). No I/O here.

An entry's ``path`` is relative to its release: ``app/ffmpeg.dll`` in a folder,
``disk1.cab!/ffmpeg.dll`` inside an installer, ``resources/app.asar!/main.js`` inside a
container in a folder (``!/`` separates container levels, as in the scan's display paths).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEP = "!/"
NATIVE_TYPES = frozenset({"EXE", "ELF", "MACHO"})
#: File types the scan opens as containers (see ``scan.walk.container_kind``).
CONTAINER_TYPES = frozenset({"ZIP", "MSI", "OLE", "CAB", "ASAR", "GZIP", "BZIP2", "XZ", "TAR"})
#: Version resource keys that identify a build (compared for "changed under the same version").
VERSION_KEYS = ("CompanyName", "ProductName", "ProductVersion", "FileVersion", "OriginalFilename")


@dataclass(frozen=True, slots=True)
class Signature:
    """A binary's signature as the scan judged it.

    ``status``: ``unsigned``, ``verifies`` (signature and digest check), ``invalid`` (present
    but does not verify), ``malformed``; ``hidden_bytes``: data inside the PE certificate table
    after the PKCS#7 signature (CVE-2013-3900 layout).
    """

    status: str
    signer: str | None = None
    issuer: str | None = None
    chain: tuple[str, ...] = ()
    team_id: str | None = None
    hidden_bytes: int = 0

    @property
    def signed(self) -> bool:
        return self.status != "unsigned"


@dataclass(frozen=True, slots=True)
class Binary:
    """The parts of a native binary's scan facts that a release comparison looks at."""

    format: str  # pe, macho, elf
    role: str  # executable, library, other
    version: Mapping[str, str] = field(default_factory=dict)
    signature: Signature = field(default_factory=lambda: Signature("unsigned"))
    imports: tuple[str, ...] = ()  # libraries (PE DLLs, Mach-O dylibs, ELF needed)
    import_count: int = 0  # imported functions (PE), else libraries
    exports: tuple[str, ...] = ()  # a sample (the first names)
    export_count: int = 0
    sections: tuple[tuple[str, str], ...] = ()  # (name, sha256)
    overlay_size: int = 0
    timestamp: str | None = None
    normalised_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One file (or container member) of a release."""

    path: str
    size: int | None = None
    sha256: str | None = None
    sha1: str | None = None
    md5: str | None = None
    filetype: str = ""
    binary: Binary | None = None
    #: Info.plist keys (CFBundleShortVersionString...) when this entry is one.
    bundle: Mapping[str, str] | None = None
    #: Whether the scan's analysers ran on it (``False``: hashes only, e.g. from an SBOM).
    analysed: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit(SEP, 1)[-1].rsplit("/", 1)[-1]

    @property
    def native(self) -> bool:
        return self.filetype in NATIVE_TYPES or self.binary is not None

    @property
    def container(self) -> bool:
        return self.filetype in CONTAINER_TYPES

    @property
    def depth(self) -> int:
        return self.path.count(SEP)


@dataclass(frozen=True, slots=True)
class Product:
    name: str | None = None
    version: str | None = None


_PRODUCT = re.compile(r"^(?P<name>.*?)[-_ ]v?(?P<version>\d+(?:\.\d+)+)(?:[-_.].*)?$")
_SUFFIXES = (".msi", ".zip", ".tar", ".tgz", ".tar.gz", ".exe", ".dmg", ".asar", ".app", ".pkg")


def product_from_label(label: str) -> Product:
    """``3CXDesktopApp-18.12.416.msi`` -> name ``3CXDesktopApp``, version ``18.12.416``."""
    text = label.rstrip("/").rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
            break
    match = _PRODUCT.match(text)
    if not match:
        return Product(text or None, None)
    return Product(match.group("name") or None, match.group("version"))


@dataclass(slots=True)
class Release:
    """One side of a comparison: its files by path, and where they came from.

    ``source`` is ``files``, ``manifest``, ``sbom`` or ``case``; ``label`` the base name of the
    input (subjects of findings are ``label/path``); ``origin`` maps a path to the file on
    disk for a folder read lazily (its binaries are analysed only when a comparison needs it).
    """

    label: str
    source: str
    product: Product
    entries: dict[str, Entry]
    #: sha256 of the input itself when it is one file (an installer, an archive)
    input_sha256: str | None = None
    archive: bool = False
    problems: list[Any] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)

    def subject(self, path: str) -> str:
        return f"{self.label}{SEP if self.archive else '/'}{path}"
