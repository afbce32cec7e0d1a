"""The pinned npm tools of tools/ (anvil, the TypeScript MCP and x402 clients, the Inspector,
axe-core, vite, mcpb): where the tests find them, and what a test does without them.

A fresh clone has no tools/node_modules until `npm ci` runs in tools/: a test that needs one
of them skips, naming what is missing and how to get it (pytest prints the reason: `-ra`).
CI makes them mandatory: `X402_REQUIRE_ANVIL=1` (anvil, the node clients, mcpb) and
`X402_REQUIRE_BROWSER=1` (axe-core, vite and the MCP Apps bridge) turn each skip into a failure.
`X402_NODE_MODULES` points the tests at another node_modules folder (a missing one shows
what a clone without npm sees).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = Path(os.environ.get("X402_NODE_MODULES") or ROOT / "tools" / "node_modules")
INSTALL_HINT = "run `npm ci` in tools/"


def missing(reason: str, *, required_by: str) -> NoReturn:
    """Skip the test for `reason`, or fail it when the variable `required_by` is 1 (CI)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{required_by}=1 but {reason}")
    pytest.skip(reason)


def npm_path_or_skip(relative: str, *, required_by: str) -> Path:
    """`NODE_MODULES / relative` when it exists; else skip (or fail under `required_by`=1)."""
    path = NODE_MODULES / relative
    if path.exists():
        return path
    missing(f"{relative} is not in {NODE_MODULES}; {INSTALL_HINT}", required_by=required_by)
