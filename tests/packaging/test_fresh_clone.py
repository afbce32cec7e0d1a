"""A fresh clone without npm (no tools/node_modules): the tests that need the npm tools skip,
each with its reason printed, and nothing fails; CI's X402_REQUIRE_* variables turn the same
skips into failures. Run as a person runs it: pytest in a subprocess, node_modules pointed at
an empty folder (`X402_NODE_MODULES`, see tests/npm.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.page.test_browser import CHROMIUM

from .wheel import ROOT

# One file per kind of npm tool: axe-core (browser), the TypeScript SDK and anvil (node
# clients), @x402/fetch, mcpb.
NEEDS_NPM = [
    "tests/page/test_states.py",
    "tests/clients/test_ts_sdk.py",
    "tests/page/test_x402_http.py::test_official_x402_fetch_pays_the_hosted_url",
    "tests/commands/test_bundle.py::test_each_sample_bundles_into_an_mcpb_that_mcpb_validate_accepts",
]


def pytest_without_npm(tmp_path: Path, *tests: str, **variables: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "node_modules"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("X402_REQUIRE_")}
    env |= {"X402_NODE_MODULES": str(empty), **variables}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


def test_without_npm_every_npm_test_skips_with_its_reason(tmp_path: Path) -> None:
    done = pytest_without_npm(tmp_path, *NEEDS_NPM)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.splitlines()[-1]
    assert "skipped" in summary and "failed" not in summary and "error" not in summary, summary
    # `-ra` (pyproject) prints each reason, naming what is missing and how to get it.
    reasons = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reasons and all("run `npm ci` in tools/" in line for line in reasons), reasons
    if CHROMIUM.is_file():
        assert any("axe-core/axe.min.js is not in" in line for line in reasons), reasons
    assert any("anvil is not installed" in line or "TypeScript MCP SDK" in line for line in reasons)


def test_ci_makes_the_npm_tools_mandatory(tmp_path: Path) -> None:
    browser = pytest_without_npm(tmp_path, NEEDS_NPM[0], X402_REQUIRE_BROWSER="1")
    assert browser.returncode == 1, browser.stdout[-3000:]
    expected = "X402_REQUIRE_BROWSER=1 but "
    expected += "axe-core/axe.min.js is not in" if CHROMIUM.is_file() else "Chromium is not installed"
    assert expected in browser.stdout
    node = pytest_without_npm(tmp_path, NEEDS_NPM[1], X402_REQUIRE_ANVIL="1")
    assert node.returncode == 1 and "X402_REQUIRE_ANVIL=1 but" in node.stdout, node.stdout[-3000:]
