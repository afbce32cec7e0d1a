"""`x402-mcp demo`: the whole payment story on the embedded chain."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the whole payment story on an embedded chain and print it")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..chains.demo import run_demo

    return run_demo()
