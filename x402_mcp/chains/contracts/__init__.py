"""The contracts a development chain carries at their canonical addresses: our batch-settlement
test doubles (`x402BatchSettlement`, `ERC3009DepositCollector`) and a Multicall3 `tryAggregate`.

Sources and artifacts sit side by side here; `tools/compile.mjs` builds the artifacts with the
pinned solc, and nothing compiles at run time. None of these contracts has a constructor or
an immutable, so placing the runtime code (genesis state on py-evm, `anvil_setCode` on anvil)
is the whole deployment: their storage starts empty, as it would after a real deployment.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.resources import files
from typing import Any, Final

from eth_utils.address import to_canonical_address
from web3 import Web3
from web3.types import RPCEndpoint

from ...errors import X402MCPError
from ...schemes.batch.constants import (
    BATCH_SETTLEMENT_ADDRESS,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    MULTICALL3_ADDRESS,
)
from ...settlement.contracts import ContractArtifact, load_artifact

__all__ = [
    "CANONICAL_CONTRACTS",
    "artifact",
    "canonical_genesis_state",
    "missing_canonical_contracts",
    "place_canonical_contracts",
]

CANONICAL_CONTRACTS: Final[Mapping[str, str]] = {
    BATCH_SETTLEMENT_ADDRESS: "x402BatchSettlement",
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS: "ERC3009DepositCollector",
    MULTICALL3_ADDRESS: "Multicall3",
}
"""Canonical address -> the contract of ours placed there."""


@functools.cache
def artifact(name: str) -> ContractArtifact:
    """The compiled contract `name` (one of `CANONICAL_CONTRACTS`' values).

    Raises:
        FileNotFoundError: for a name with no artifact here.
    """
    return load_artifact(files(__package__).joinpath(f"{name}.json"))


def _runtime(name: str) -> bytes:
    return bytes.fromhex(artifact(name).deployed_bytecode.removeprefix("0x"))


def canonical_genesis_state() -> dict[bytes, dict[str, Any]]:
    """py-evm genesis accounts holding each contract's runtime code at its canonical address."""
    return {
        to_canonical_address(address): {"balance": 0, "nonce": 0, "code": _runtime(name), "storage": {}}
        for address, name in CANONICAL_CONTRACTS.items()
    }


def place_canonical_contracts(w3: Web3) -> None:
    """Put each contract's runtime code at its canonical address on an anvil (`anvil_setCode`).

    Raises:
        X402MCPError: if the node refuses (it is no anvil) or the code did not land.
    """
    for address, name in CANONICAL_CONTRACTS.items():
        answer = w3.provider.make_request(
            RPCEndpoint("anvil_setCode"), [address, artifact(name).deployed_bytecode]
        )
        if "error" in answer:
            raise X402MCPError(f"placing {name} at {address} failed: the node answered {answer['error']}")
    missing = missing_canonical_contracts(w3)
    if missing:
        raise X402MCPError(f"after anvil_setCode the node still has no code at {', '.join(missing)}")


def missing_canonical_contracts(w3: Web3) -> list[str]:
    """The canonical addresses where the node's code is not ours (empty when all are in place)."""
    return [
        address
        for address, name in CANONICAL_CONTRACTS.items()
        if bytes(w3.eth.get_code(Web3.to_checksum_address(address))) != _runtime(name)
    ]
