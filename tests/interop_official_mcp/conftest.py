"""The official environment, built once per machine; skipped (or failed in CI) when it cannot be."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .official import REQUIRE_VARIABLE, Unavailable, official_python


@pytest.fixture(scope="session")
def official() -> Path:
    try:
        return official_python()
    except Unavailable as exc:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {exc}")
        pytest.skip(str(exc))
