"""The chain and the payments the framework tests install (one chain per module, rewound
after each test; a ledger of the test's own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


@pytest.fixture
def payments(chain: DevChain, tmp_path: Path) -> Iterator[Payments]:
    snapshot = chain.snapshot()
    yield Payments(
        pay_to=PAY_TO,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        page_port=0,
    )
    chain.revert(snapshot)
