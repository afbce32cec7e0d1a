"""The official environment, built once per machine; skipped (or failed in CI) when it cannot be."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from x402_mcp.facilitator import facilitator_app

from ..chains import AnvilChain
from ..facilitator.serving import TOKEN, serving
from .official import REQUIRE_VARIABLE, Unavailable, official_python


@pytest.fixture(scope="session")
def official() -> Path:
    try:
        return official_python()
    except Unavailable as exc:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture
async def our_facilitator(anvil: AnvilChain) -> AsyncIterator[str]:
    """Our facilitator server on loopback, settling on anvil (gas paid by a funded node account),
    behind the bearer token `TOKEN`.

    Both interop directions settle through it: the official server via the official
    `HTTPFacilitatorClient`, ours via `FacilitatorSettlement`.
    """
    async with serving(facilitator_app(anvil.settlement(), token=TOKEN)) as url:
        yield url
