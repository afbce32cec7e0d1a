"""The committed contract artifacts are built from the current sources by the pinned solc."""

import hashlib
from pathlib import Path

import pytest

from x402_mcp.settlement.contracts import erc6492_simulation_artifact

from .wallets import CONTRACTS, artifact

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("Erc6492Simulation", ROOT / "x402_mcp" / "settlement" / "contracts" / "Erc6492Simulation.sol"),
        ("OwnedWallet", CONTRACTS / "OwnedWallet.sol"),
        ("OwnedWalletFactory", CONTRACTS / "OwnedWallet.sol"),
        ("SelfSigned7702Delegate", CONTRACTS / "Delegate7702.sol"),
        ("Strict7702Delegate", CONTRACTS / "Delegate7702.sol"),
    ],
)
def test_each_artifact_was_compiled_from_its_current_source(name: str, source: Path) -> None:
    compiled = erc6492_simulation_artifact() if name == "Erc6492Simulation" else artifact(name)
    assert compiled.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest(), (
        f"the {name} artifact is stale: run `node compile.mjs` in tools/"
    )
    assert "0.8.37" in compiled.compiler
    assert compiled.evm_version == "cancun"
    assert len(compiled.bytecode) > 100
