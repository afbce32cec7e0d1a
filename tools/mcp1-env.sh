#!/usr/bin/env bash
# Build .venv-mcp1/: this package next to the older MCP line, MCP SDK 1.x and FastMCP 3, with what
# the tests that run there need (.ci/run runs them beside the main suite). Exact versions come
# from tools/mcp1-constraints.txt; pyproject's [tool.uv] pins (the 2.x line) are left out by
# --no-config. Regenerate the pins: uv pip freeze --python .venv-mcp1 | grep -v '^-e'.
set -euo pipefail
cd "$(dirname "$0")/.."
uv venv --quiet --allow-existing --python 3.11 .venv-mcp1
uv pip install --quiet --no-config --python .venv-mcp1 -c tools/mcp1-constraints.txt \
  -e . "mcp>=1.30,<2" "fastmcp>=3.4,<4" pytest mypy "x402[evm,httpx,svm]" \
  "psycopg[binary]>=3.2,<4" "psycopg-pool>=3.2,<4"
