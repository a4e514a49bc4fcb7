"""The catalogue of finding kinds: one code, its default severity and what it means.

Every kind a stage emits is a member of :class:`Kind`; ``docs/findings.md`` links the per-stage
tables that describe them, and ``tests/test_kinds.py`` checks both directions (every kind the
code emits is here, every kind here is in the docs with the same severity).

Adding a kind is one line here (``NAME = ("family.what", Severity.X, "one-line meaning")``) plus
its row in the stage's table in ``docs/``. The severity is the default: an emitter may choose
another one for a particular finding (``signature.appended-data`` is critical with the FE ED FA
CE marker, ``yara`` takes the rule's), and the docs row says so.
"""

from __future__ import annotations

from enum import StrEnum

from taintline.model import Finding, Severity

_I, _L, _M, _H, _C = Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


class Kind(StrEnum):
    """A stable finding-kind code (the member's value) with its default severity and meaning."""

    severity: Severity
    meaning: str

    def __new__(cls, code: str, severity: Severity, meaning: str) -> Kind:
        member = str.__new__(cls, code)
        member._value_ = code
        member.severity = severity
        member.meaning = meaning
        return member

    # fmt: off
    # -- scan: indicators and rules ---------------------------------------------------------
    IOC_HASH = ("ioc.hash", _C, "a file whose MD5/SHA-1/SHA-256 is a hash indicator")
    YARA = ("yara", _H, "a YARA rule matched (severity from the rule's metadata)")
    COVERAGE_BIG_FILE = ("coverage.big-file", _M, "a file over --max-file-size: what was hashed, YARA-scanned and checked, and what not")
    # -- scan: analysers ----------------------------------------------------------------------
    PE_UNSIGNED = ("pe.unsigned", _I, "a PE without an Authenticode signature")
    PE_OVERLAY_AFTER_SIGNATURE = ("pe.overlay-after-signature", _M, "bytes after the certificate table")
    SIGNATURE_APPENDED_DATA = ("signature.appended-data", _C, "data hidden in the certificate table after the PKCS#7 blob")
    SIGNATURE_INVALID = ("signature.invalid", _H, "a signature that does not parse or verify")
    SIGNATURE_DIGEST_MISMATCH = ("signature.digest-mismatch", _H, "the file changed after it was signed")
    SIGNATURE_UNTRUSTED_CHAIN = ("signature.untrusted-chain", _M, "the signer chain reaches no trust anchor")
    SIGNATURE_EXPIRED_AT_SIGNING = ("signature.expired-at-signing", _M, "the signer certificate was not valid when it signed")
    SIGNATURE_AFTER_END_OF_LIFE = ("signature.after-end-of-life", _H, "signed after the product's end of life")
    SIGNATURE_SIGNER_IOC = ("signature.signer-ioc", _C, "signed by a certificate on the indicator list")
    MACHO_UNSIGNED = ("macho.unsigned", _I, "a Mach-O slice without a code signature")
    MACHO_ADHOC_SIGNATURE = ("macho.adhoc-signature", _L, "a Mach-O code signature without a signing identity")
    MACHO_SIGNATURE_MALFORMED = ("macho.signature-malformed", _M, "a Mach-O code signature that does not decode")
    MACHO_UNEXPECTED_DYLIB = ("macho.unexpected-dylib", _M, "a Mach-O loads a library outside the OS and the bundle")
    ELF_OVERLAY = ("elf.overlay", _M, "bytes after an ELF file's last section and segment")
    IMAGE_TRAILING_DATA = ("image.trailing-data", _H, "bytes after an image's real end")
    ELECTRON_NATIVE_LIBRARIES = ("electron.native-libraries", _I, "inventory of an Electron app's native code")
    ELECTRON_UNSIGNED_NATIVE_LIBRARY = ("electron.unsigned-native-library", _H, "an unsigned native library in a signed app")
    ELECTRON_FOREIGN_SIGNER_NATIVE_LIBRARY = ("electron.foreign-signer-native-library", _M, "a native library signed by another organisation")
    # -- evidence (trust roots, catalogs, Mach-O CMS, asar integrity) ---------------------------
    IOC_FILENAME = ("ioc.filename", _H, "a file whose name is a filename indicator")
    SIGNATURE_REVOKED = ("signature.revoked", _H, "a certificate of the chain is revoked")
    SIGNATURE_EXPIRED = ("signature.expired", _M, "the signer certificate has expired")
    SIGNATURE_DISTRUSTED_ROOT = ("signature.distrusted-root", _M, "the chain ends in a distrusted root")
    SIGNATURE_WRONG_EKU = ("signature.wrong-eku", _M, "the signer certificate is not for code signing")
    SIGNATURE_UNTRUSTED_TIMESTAMP = ("signature.untrusted-timestamp", _L, "the timestamp countersignature is not trusted")
    SIGNATURE_CATALOG_SIGNED = ("signature.catalog-signed", _I, "the file is signed through a security catalog")
    MACHO_SIGNATURE_INVALID = ("macho.signature-invalid", _H, "a Mach-O CMS signature that does not verify")
    MACHO_UNTRUSTED_SIGNATURE = ("macho.untrusted-signature", _M, "a Mach-O signer chain that reaches no trusted root")
    MACHO_CODE_HASH_MISMATCH = ("macho.code-hash-mismatch", _H, "Mach-O code pages do not match the CodeDirectory")
    ELECTRON_ASAR_INTEGRITY_MISMATCH = ("electron.asar-integrity-mismatch", _H, "app.asar does not match its integrity hash")
    ELECTRON_ASAR_HEADER_MISMATCH = ("electron.asar-header-mismatch", _H, "an asar file does not match its header hash")
    ELECTRON_ASAR_INTEGRITY_MISSING = ("electron.asar-integrity-missing", _M, "a signed app without asar integrity")
    ELECTRON_ASAR_LINK_OUTSIDE = ("electron.asar-link-outside", _M, "an asar link that points outside the archive")
    # -- hunt -----------------------------------------------------------------------------------
    NETWORK_IOC = ("network.ioc", _H, "a host was seen with another network indicator")
    NETWORK_IOC_DOMAIN = ("network.ioc.domain", _H, "a host contacted a domain indicator")
    NETWORK_IOC_URL = ("network.ioc.url", _H, "a host requested a URL indicator")
    NETWORK_IOC_IP = ("network.ioc.ip", _H, "a host connected to or from an IP indicator")
    NETWORK_IOC_CIDR = ("network.ioc.cidr", _H, "a host connected to or from a network indicator")
    NETWORK_IOC_FILE_HASH = ("network.ioc.file-hash", _H, "a file with an indicator hash crossed the network")
    # -- graph and cascade ----------------------------------------------------------------------
    CASCADE_COMPROMISED = ("cascade.compromised", _H, "a node a cascade run reached, with its earliest compromise time")
    # -- release verification (taintline verify; release/kinds.py names them) -------------------
    RELEASE_INDICATOR_MATCH = ("release.indicator-match", _C, "a candidate file whose hash is an indicator")
    RELEASE_CHANGED_SAME_VERSION = ("release.changed-same-version", _C, "a native binary changed, its version did not")
    RELEASE_HIDDEN_SIGNATURE_DATA = ("release.hidden-signature-data", _C, "more bytes hidden in the certificate table than before")
    RELEASE_NEW_NATIVE_FOREIGN_SIGNER = ("release.new-native-foreign-signer", _C, "a new native file not signed like the app")
    RELEASE_PROVENANCE_MISMATCH = ("release.provenance-mismatch", _C, "provenance names a shipped file with another digest")
    RELEASE_NEW_NATIVE = ("release.new-native", _H, "a new native library or executable")
    RELEASE_IMPORTS_CHANGED = ("release.imports-changed", _H, "imports or exports of a native binary changed")
    RELEASE_OVERLAY_GROWN = ("release.overlay-grown", _H, "data after the image appeared or grew")
    RELEASE_SIGNER_CHANGED = ("release.signer-changed", _H, "the signer or its chain changed")
    RELEASE_SIGNATURE_BROKEN = ("release.signature-broken", _H, "a signature that verified no longer does")
    RELEASE_PROVENANCE_MISSING = ("release.provenance-missing", _H, "a shipped file no provenance covers")
    RELEASE_PROVENANCE_BUILDER = ("release.provenance-builder", _H, "a shipped file built by an unexpected builder")
    RELEASE_UNRELATED = ("release.unrelated", _H, "the two inputs are different products")
    RELEASE_NATIVE_CHANGED = ("release.native-changed", _M, "a native binary changed, no version to judge by")
    RELEASE_REBUILD_DIFFERS = ("release.rebuild-differs", _M, "a file differs between two builds of one source")
    RELEASE_VERSION_BUMPED = ("release.version-bumped", _L, "a native binary rebuilt with its version bumped")
    RELEASE_CHANGED = ("release.changed", _L, "a non-native file changed")
    RELEASE_REMOVED = ("release.removed", _L, "a file of the baseline is gone")
    RELEASE_ADDED = ("release.added", _I, "a new non-native file")
    RELEASE_MOVED = ("release.moved", _I, "same content at a new path")
    RELEASE_CONTAINER_METADATA = ("release.container-metadata", _I, "a container changed, its members did not")
    # -- end of life (taintline eol) ------------------------------------------------------------
    SOFTWARE_INSTALLED_AFTER_END_OF_LIFE = ("software.installed-after-end-of-life", _H, "software installed after its end of life")
    SOFTWARE_END_OF_LIFE = ("software.end-of-life", _M, "software past its end of life")
    SOFTWARE_END_OF_SUPPORT = ("software.end-of-support", _L, "active support ended, security support has not")
    # -- errors: one item could not be (fully) checked; the run went on ------------------------
    ERROR_UNREADABLE = ("error.unreadable", _L, "a file or folder that cannot be opened, listed or read")
    ERROR_NOT_REGULAR = ("error.not-regular", _I, "a FIFO, socket or device (never opened)")
    ERROR_TRUNCATED_ARCHIVE = ("error.truncated-archive", _L, "a container that ends early or is corrupt")
    ERROR_MALFORMED = ("error.malformed", _L, "a structure that cannot be parsed")
    ERROR_UNSUPPORTED = ("error.unsupported", _I, "a container variant that cannot be opened")
    ERROR_ENCRYPTED = ("error.encrypted", _I, "an encrypted member")
    ERROR_ARCHIVE_BOMB = ("error.archive-bomb", _M, "a decompression past the ratio or byte budget")
    ERROR_TOO_DEEP = ("error.too-deep", _L, "a container nested deeper than --max-depth")
    ERROR_TOO_LARGE = ("error.too-large", _L, "a container member larger than --max-file-size")
    ERROR_HASH_UNCHECKED = ("error.hash-unchecked", _L, "hash indicators of a type --hashes left out were not checked")
    ERROR_TOO_MANY_FILES = ("error.too-many-files", _L, "more than --max-files files or members")
    ERROR_PATH_TRAVERSAL = ("error.path-traversal", _M, "a member name that would escape an extraction folder")
    ERROR_SYMLINK_LOOP = ("error.symlink-loop", _L, "a symbolic link loop (not followed)")
    ERROR_SYMLINK_OUTSIDE = ("error.symlink-outside", _I, "a symbolic link out of the scanned tree (not followed)")
    ERROR_ANALYSER = ("error.analyser", _L, "an analyser raised on this file")
    ERROR_INTERNAL = ("error.internal", _L, "the scan of this file stopped on an unexpected error")
    ERROR_WORKER_CRASH = ("error.worker-crash", _L, "a worker process died on this file")
    ERROR_YARA_TIMEOUT = ("error.yara-timeout", _L, "YARA did not finish in time on this file")
    ERROR_YARA = ("error.yara", _L, "the YARA scanner failed on this file")
    # fmt: on


def severity_of(kind: str) -> Severity:
    """The catalogue's default severity of ``kind`` (a ``Kind`` or its code).

    An unknown code raises ``ValueError``: a kind that is not in the catalogue is a bug, and
    silently giving it some severity is how ``error.internal`` once became "low" by accident.
    """
    return kind_of(kind).severity


def kind_of(code: str) -> Kind:
    """The catalogue member for ``code``; ``ValueError`` names the catalogue when it is missing."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(
            f"finding kind {code!r} is not in the catalogue: add it to Kind in taintline/kinds.py"
        ) from None


_BY_CODE: dict[str, Kind] = {member.value: member for member in Kind}


def error_finding(kind: str, subject: str, message: str, **evidence: object) -> Finding:
    """An ``error.*`` finding (one item could not be fully checked) with the catalogue's severity."""
    return Finding(
        kind=kind,
        severity=severity_of(kind),
        subject=subject,
        message=message,
        evidence=evidence,
    )
