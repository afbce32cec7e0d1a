"""The committed contract artifacts are what the pinned solc makes of the current sources."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from x402_mcp.chains.contracts import CANONICAL_CONTRACTS, artifact

from ..npm import INSTALL_HINT, NODE_MODULES, missing

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "x402_mcp" / "chains" / "contracts"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("x402BatchSettlement", "BatchSettlement.sol"),
        ("ERC3009DepositCollector", "BatchSettlement.sol"),
        ("Multicall3", "Multicall3.sol"),
    ],
)
def test_each_canonical_artifact_names_its_current_source(name: str, source: str) -> None:
    compiled = artifact(name)
    assert compiled.source_sha256 == hashlib.sha256((SOURCES / source).read_bytes()).hexdigest(), (
        f"the {name} artifact is stale: run `node compile.mjs` in tools/"
    )
    assert "0.8.37" in compiled.compiler
    assert compiled.evm_version == "cancun"
    assert name in CANONICAL_CONTRACTS.values()


def test_a_fresh_compile_reproduces_every_committed_artifact() -> None:
    """Byte for byte, for every contract `tools/compile.mjs` builds (USDC's included)."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "solc").is_dir():
        reason = f"node or solc in {NODE_MODULES} is missing; {INSTALL_HINT}"
        missing(reason, required_by="X402_REQUIRE_ANVIL")
    checked = subprocess.run(
        [node, "compile.mjs", "--check"], cwd=ROOT / "tools", capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fresh = [line.split()[1] for line in checked.stdout.splitlines() if line.startswith("fresh ")]
    assert str(ROOT / "x402_mcp" / "chains" / "contracts" / "x402BatchSettlement.json") in fresh
    assert str(ROOT / "x402_mcp" / "settlement" / "contracts" / "USDC.json") in fresh
    assert str(ROOT / "tests" / "contracts" / "HostileCollector.json") in fresh
