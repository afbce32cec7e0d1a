"""The `x402-mcp` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .commands import COMMANDS


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="x402-mcp", description="Charge for MCP tools in USDC over x402.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(commands)
    args = parser.parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
