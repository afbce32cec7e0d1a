"""Replica fixtures: paid server processes on one PostgreSQL ledger and one anvil chain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from x402_mcp.ledger import PostgresLedger

from ..chains import AnvilChain
from .cluster import Cluster, cluster


@pytest.fixture
def replicas(anvil: AnvilChain, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(anvil, tmp_path) as running:
        yield running


@pytest.fixture
async def ledger(replicas: Cluster) -> AsyncIterator[PostgresLedger]:
    """The replicas' ledger, read from the test as an operator would."""
    opened = PostgresLedger(replicas.ledger_url, schema=replicas.schema)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def payer(anvil: AnvilChain) -> LocalAccount:
    return anvil.new_account(usdc="10")
