"""The release stage's finding kinds (catalogued in ``docs/verify.md`` and ``docs/findings.md``).

Kinds are stable codes; the severity a kind gets is fixed here except where noted (hidden data
in a signature that no longer verifies is high, not critical).
"""

from __future__ import annotations

from enum import StrEnum

from taintline.model import Severity


class ReleaseKind(StrEnum):
    INDICATOR_MATCH = "release.indicator-match"
    CHANGED_SAME_VERSION = "release.changed-same-version"
    HIDDEN_SIGNATURE_DATA = "release.hidden-signature-data"
    NEW_NATIVE_FOREIGN = "release.new-native-foreign-signer"
    PROVENANCE_MISMATCH = "release.provenance-mismatch"
    NEW_NATIVE = "release.new-native"
    IMPORTS_CHANGED = "release.imports-changed"
    OVERLAY_GROWN = "release.overlay-grown"
    SIGNER_CHANGED = "release.signer-changed"
    SIGNATURE_BROKEN = "release.signature-broken"
    PROVENANCE_MISSING = "release.provenance-missing"
    PROVENANCE_BUILDER = "release.provenance-builder"
    UNRELATED = "release.unrelated"
    NATIVE_CHANGED = "release.native-changed"
    REBUILD_DIFFERS = "release.rebuild-differs"
    VERSION_BUMPED = "release.version-bumped"
    CHANGED = "release.changed"
    REMOVED = "release.removed"
    ADDED = "release.added"
    MOVED = "release.moved"
    CONTAINER_METADATA = "release.container-metadata"


SEVERITY: dict[ReleaseKind, Severity] = {
    ReleaseKind.INDICATOR_MATCH: Severity.CRITICAL,
    ReleaseKind.CHANGED_SAME_VERSION: Severity.CRITICAL,
    ReleaseKind.HIDDEN_SIGNATURE_DATA: Severity.CRITICAL,  # high when it no longer verifies
    ReleaseKind.NEW_NATIVE_FOREIGN: Severity.CRITICAL,
    ReleaseKind.PROVENANCE_MISMATCH: Severity.CRITICAL,
    ReleaseKind.NEW_NATIVE: Severity.HIGH,
    ReleaseKind.IMPORTS_CHANGED: Severity.HIGH,
    ReleaseKind.OVERLAY_GROWN: Severity.HIGH,
    ReleaseKind.SIGNER_CHANGED: Severity.HIGH,
    ReleaseKind.SIGNATURE_BROKEN: Severity.HIGH,
    ReleaseKind.PROVENANCE_MISSING: Severity.HIGH,
    ReleaseKind.PROVENANCE_BUILDER: Severity.HIGH,
    ReleaseKind.UNRELATED: Severity.HIGH,
    ReleaseKind.NATIVE_CHANGED: Severity.MEDIUM,
    ReleaseKind.REBUILD_DIFFERS: Severity.MEDIUM,
    ReleaseKind.VERSION_BUMPED: Severity.LOW,
    ReleaseKind.CHANGED: Severity.LOW,
    ReleaseKind.REMOVED: Severity.LOW,
    ReleaseKind.ADDED: Severity.INFO,
    ReleaseKind.MOVED: Severity.INFO,
    ReleaseKind.CONTAINER_METADATA: Severity.INFO,
}

#: Kinds an ``--expect`` rule can never turn into expected churn.
NOT_EXPECTABLE = frozenset({ReleaseKind.INDICATOR_MATCH, ReleaseKind.PROVENANCE_MISMATCH})
