"""Our contracts: the EIP-3009 USDC and the ERC-6492 payment simulation, sources and artifacts.

The artifacts (`USDC.json`, `Erc6492Simulation.json`) are produced by
`tools/compile.mjs` with a pinned solc; nothing compiles at run time or test time.
`sourceSha256` in an artifact records which source it was built from, so a stale
artifact can be detected.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

__all__ = [
    "ContractArtifact",
    "erc6492_simulation_artifact",
    "load_artifact",
    "usdc_artifact",
    "usdc_source",
    "usdc_source_sha256",
]


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """A compiled contract: what web3 needs to deploy and call it, and how it was built."""

    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: str
    evm_version: str
    source_sha256: str


def usdc_source() -> bytes:
    """The exact bytes of `USDC.sol` as shipped in the package."""
    return files(__package__).joinpath("USDC.sol").read_bytes()


def usdc_source_sha256() -> str:
    """Hex SHA-256 of `USDC.sol`; equals `usdc_artifact().source_sha256` when the artifact is fresh."""
    return hashlib.sha256(usdc_source()).hexdigest()


def load_artifact(path: Traversable) -> ContractArtifact:
    """A `tools/compile.mjs` artifact read from `path`."""
    data = json.loads(path.read_text("utf-8"))
    return ContractArtifact(
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler=data["compiler"],
        evm_version=data["evmVersion"],
        source_sha256=data["sourceSha256"],
    )


@functools.cache
def usdc_artifact() -> ContractArtifact:
    """The compiled USDC contract, read once from the package.

    Raises:
        FileNotFoundError: if the artifact was never generated (run `node tools/compile.mjs`).
    """
    return load_artifact(files(__package__).joinpath("USDC.json"))


@functools.cache
def erc6492_simulation_artifact() -> ContractArtifact:
    """The compiled `Erc6492Simulation` (sent as initcode in an `eth_call`, never deployed)."""
    return load_artifact(files(__package__).joinpath("Erc6492Simulation.json"))
