"""SBOMs in the shapes generators write, for tests: SPDX 2.2 JSON with the common deviations
from the spec, SPDX 2.3 tag-value, SPDX 3.0 JSON-LD, a CycloneDX SaaSBOM, and the same bytes
gzip/bzip2/zstd compressed. Every document describes the same small product: the 3CX desktop
app release containing a trojanised ``ffmpeg.dll`` and depending on Electron."""

from __future__ import annotations

import bz2
import gzip
import hashlib
from typing import Any

import orjson
import zstandard

APP = ("3CXDesktopApp", "18.12.407")
#: The SHA-256 of a made-up file (not of any real ffmpeg.dll).
DLL_SHA256 = hashlib.sha256(b"taintline test: ffmpeg.dll").hexdigest()


def spdx22_with_deviations() -> dict[str, Any]:
    """SPDX 2.2 JSON as common generators write it, each deviation once or twice:
    a ``created`` with fractional seconds, files without checksums, a package without
    ``downloadLocation``, a version given as a number, lower-case relationship types and
    licence fields the reader does not use (one not a valid expression)."""
    return {
        "spdxVersion": "SPDX-2.2",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "3cxdesktopapp-18.12.407",
        "documentNamespace": "https://sbom.example/3cx/18.12.407-1b2c",
        "creationInfo": {
            "created": "2023-03-29T10:15:42.123456Z",
            "creators": ["Tool: example-sbom-generator-1.4.2", "Organization: Example"],
        },
        "documentDescribes": ["SPDXRef-Package-app"],
        "packages": [
            {
                "SPDXID": "SPDXRef-Package-app",
                "name": APP[0],
                "versionInfo": APP[1],
                "licenseConcluded": "Proprietary licence v2",  # not an SPDX expression
                "hasFiles": ["SPDXRef-File-ffmpeg", "SPDXRef-File-readme"],
            },
            {
                "SPDXID": "SPDXRef-Package-electron",
                "name": "electron",
                "versionInfo": 19,
                "downloadLocation": "https://github.com/electron/electron",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": "pkg:npm/electron@19.0.0",
                    }
                ],
            },
        ],
        "files": [
            {
                "SPDXID": "SPDXRef-File-ffmpeg",
                "fileName": "./ffmpeg.dll",
                "checksums": [{"algorithm": "SHA256", "checksumValue": DLL_SHA256.upper()}],
            },
            {"SPDXID": "SPDXRef-File-readme", "fileName": "./README.txt"},
            {"SPDXID": "SPDXRef-File-license", "fileName": "./LICENSE"},
        ],
        "relationships": [
            {
                "spdxElementId": "SPDXRef-Package-app",
                "relatedSpdxElement": "SPDXRef-Package-electron",
                "relationshipType": "depends_on",
            },
            {
                "spdxElementId": "SPDXRef-Package-app",
                "relatedSpdxElement": "SPDXRef-File-license",
                "relationshipType": "contains",
            },
        ],
    }


def spdx23_tagvalue() -> str:
    """SPDX 2.3 tag-value with a fractional-second ``Created``."""
    return (
        "SPDXVersion: SPDX-2.3\n"
        "DataLicense: CC0-1.0\n"
        "SPDXID: SPDXRef-DOCUMENT\n"
        "DocumentName: 3cx\n"
        "DocumentNamespace: https://sbom.example/3cx/tv\n"
        "Creator: Tool: example-1.0\n"
        "Created: 2023-03-29T10:15:42.5Z\n"
        "\n"
        "PackageName: 3CXDesktopApp\n"
        "SPDXID: SPDXRef-Package-app\n"
        "PackageVersion: 18.12.407\n"
        "PackageDownloadLocation: NOASSERTION\n"
        "FilesAnalyzed: false\n"
        "\n"
        "Relationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-app\n"
    )


def spdx3_jsonld() -> dict[str, Any]:
    """SPDX 3.0.1 JSON-LD: a document, an SBOM whose root is the app, two packages, a file
    with a SHA-256, ``dependsOn`` and ``contains`` relationships."""
    ci = "_:creationinfo"
    ns = "https://sbom.example/3cx/spdx3#"
    return {
        "@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld",
        "@graph": [
            {
                "type": "CreationInfo",
                "@id": ci,
                "specVersion": "3.0.1",
                "created": "2023-03-29T10:15:42Z",
                "createdBy": [f"{ns}tool"],
            },
            {"type": "Tool", "spdxId": f"{ns}tool", "name": "example", "creationInfo": ci},
            {
                "type": "SpdxDocument",
                "spdxId": f"{ns}document",
                "creationInfo": ci,
                "rootElement": [f"{ns}sbom"],
                "element": [f"{ns}sbom"],
            },
            {
                "type": "software_Sbom",
                "spdxId": f"{ns}sbom",
                "creationInfo": ci,
                "software_sbomType": ["build"],
                "rootElement": [f"{ns}app"],
            },
            {
                "type": "software_Package",
                "spdxId": f"{ns}app",
                "name": APP[0],
                "software_packageVersion": APP[1],
                "creationInfo": ci,
            },
            {
                "type": "software_Package",
                "spdxId": f"{ns}electron",
                "name": "electron",
                "software_packageVersion": "19.0.0",
                "externalIdentifier": [
                    {
                        "type": "ExternalIdentifier",
                        "externalIdentifierType": "packageUrl",
                        "identifier": "pkg:npm/electron@19.0.0",
                    }
                ],
                "creationInfo": ci,
            },
            {
                "type": "software_File",
                "spdxId": f"{ns}ffmpeg",
                "name": "ffmpeg.dll",
                "verifiedUsing": [{"type": "Hash", "algorithm": "sha256", "hashValue": DLL_SHA256}],
                "creationInfo": ci,
            },
            {
                "type": "Relationship",
                "spdxId": f"{ns}rel-1",
                "from": f"{ns}app",
                "to": [f"{ns}ffmpeg"],
                "relationshipType": "contains",
                "creationInfo": ci,
            },
            {
                "type": "Relationship",
                "spdxId": f"{ns}rel-2",
                "from": f"{ns}app",
                "to": [f"{ns}electron"],
                "relationshipType": "dependsOn",
                "creationInfo": ci,
            },
        ],
    }


def cyclonedx_saasbom() -> dict[str, Any]:
    """A CycloneDX 1.5 SaaSBOM: services, a component, and a dependency on a ref the BOM
    does not define (as SaaSBOMs listing third-party endpoints often have)."""
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2023-03-29T10:15:42.123+00:00",
            "component": {
                "type": "application",
                "name": "provisioning-portal",
                "version": "2.1",
                "bom-ref": "portal",
            },
        },
        "components": [
            {"type": "library", "name": "left-pad", "version": "1.3.0", "bom-ref": "left-pad"}
        ],
        "services": [
            {
                "bom-ref": "svc-update",
                "name": "update-api",
                "version": "3",
                "endpoints": ["https://update.example/api"],
            }
        ],
        "dependencies": [
            {"ref": "portal", "dependsOn": ["left-pad", "svc-update"]},
            {"ref": "svc-update", "dependsOn": ["svc-billing-external"]},
        ],
    }


def compress(data: bytes, kind: str) -> bytes:
    """``data`` gzip, bzip2 or zstd compressed."""
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "bzip2":
        return bz2.compress(data)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(f"unknown compression {kind!r}")


def dumps(doc: object) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
