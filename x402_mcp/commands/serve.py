"""`x402-mcp serve <server>` runs a sample server; `x402-mcp page` runs the payment page alone."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .samples import sample_names


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="run a sample paid server (stdio for Claude Desktop, or streamable HTTP)"
    )
    serve.add_argument("server", help=f"a sample ({', '.join(sample_names())}) or a path to a server .py")
    serve.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port on 127.0.0.1 (streamable-http)")
    serve.set_defaults(run=run)

    page = commands.add_parser(
        "page", help="run the payment page alone, sharing the ledger of $X402_LEDGER_URL"
    )
    page.add_argument("--port", type=int, default=8402, help="port on 127.0.0.1")
    page.set_defaults(run=run_page)


def run(args: argparse.Namespace) -> int:
    from ..gate import Payments
    from .samples import load_sample

    # stdout carries MCP messages over stdio: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    server = load_sample(args.server).build(Payments.from_env())
    if args.transport == "stdio":
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    return 0


def run_page(args: argparse.Namespace) -> int:
    import uvicorn

    from ..gate import Payments
    from ..serving import page_app

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    payments = Payments.from_env()
    if payments.public_url is None:
        payments.public_url = f"http://127.0.0.1:{args.port}"
    uvicorn.run(page_app(payments), host="127.0.0.1", port=args.port, log_config=None)
    return 0
