from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from taintline.case import Case


@pytest.fixture
def case(tmp_path: Path) -> Iterator[Case]:
    with Case(tmp_path / "case.duckdb") as c:
        yield c
