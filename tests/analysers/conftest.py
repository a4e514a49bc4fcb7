from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taintline.scan.interface import AnalysisContext
from taintline.testing.pe import DEFAULT_VERSION_INFO, PESpec, build_pe
from taintline.testing.signing import SigningIdentity, make_identity, osslsigncode_path, sign_pe

SIGNING_TIME = datetime(2022, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    if osslsigncode_path() is None:
        pytest.skip("osslsigncode is not installed")
    return make_identity(
        tmp_path_factory.mktemp("pki"),
        not_before=datetime(2021, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )


@pytest.fixture(scope="session")
def unsigned_dll() -> bytes:
    return build_pe(
        PESpec(
            dll=True, exports=("D3DCompile", "D3DDisassemble"), version_info=DEFAULT_VERSION_INFO
        )
    )


@pytest.fixture(scope="session")
def signed_dll(identity: SigningIdentity, unsigned_dll: bytes) -> bytes:
    return sign_pe(unsigned_dll, identity, signing_time=SIGNING_TIME)


@pytest.fixture
def trusting(identity: SigningIdentity) -> AnalysisContext:
    """A context whose trust store is the throw-away CA."""
    return AnalysisContext(trust_store_pem=identity.ca_pem)
