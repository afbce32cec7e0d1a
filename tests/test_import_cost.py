"""`import x402_mcp` stays cheap: at most 300 modules beyond what `import mcp.server` loads, and
none of the development chain, web3, eth-tester or uvicorn (counts only: times live in
bench/bench_import.py)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("uvicorn", "eth_tester", "web3", "x402_mcp.chains")
MAX_MODULES = 300

PROBE = """
import json, sys
import mcp.server
baseline = set(sys.modules)
import x402_mcp
print(json.dumps(sorted(set(sys.modules) - baseline)))
"""


def test_import_x402_mcp_loads_few_modules_and_none_forbidden() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True, text=True).stdout
    added: list[str] = json.loads(out)
    assert "x402_mcp" in added
    forbidden = [m for m in added if any(m == name or m.startswith(f"{name}.") for name in FORBIDDEN)]
    assert forbidden == [], f"import x402_mcp loads {forbidden}"
    assert len(added) <= MAX_MODULES, f"import x402_mcp loads {len(added)} modules beyond mcp.server"


def test_a_public_name_still_loads_on_first_use() -> None:
    probe = "import x402_mcp, sys; x402_mcp.X402MCPError; print('x402_mcp.errors' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "True"
