"""Shared fixtures: the anyio backend, and the chains under test (DevChain and anvil).

Chains are session-scoped (starting one costs tens of milliseconds, deploying the
token included); each test runs inside a snapshot that is reverted afterwards, so
tests never see each other's transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from x402_mcp.chains.devchain import DevChain, TokenChain

from .chains import AnvilChain, anvil_or_skip, running_anvil


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def devchain_session() -> DevChain:
    return DevChain()


@pytest.fixture(scope="session")
def anvil_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilChain]:
    binary = anvil_or_skip()
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with running_anvil(binary, log_path) as chain:
        yield chain


ChainT = TypeVar("ChainT", bound=TokenChain)


def _isolated(chain: ChainT) -> Iterator[ChainT]:
    snapshot = chain.snapshot()
    try:
        yield chain
    finally:
        chain.revert(snapshot)


@pytest.fixture
def devchain(devchain_session: DevChain) -> Iterator[DevChain]:
    """The embedded chain, rewound after the test."""
    yield from _isolated(devchain_session)


@pytest.fixture(params=["devchain", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[TokenChain]:
    """Each chain under test in turn (DevChain, then anvil), rewound after the test."""
    session: TokenChain = request.getfixturevalue(f"{request.param}_session")
    yield from _isolated(session)


@pytest.fixture
def anvil(anvil_session: AnvilChain) -> Iterator[AnvilChain]:
    """anvil alone (for what only a JSON-RPC node offers), rewound after the test."""
    yield from _isolated(anvil_session)
