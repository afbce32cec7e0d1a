"""`x402-mcp serve <server>` runs a sample server; `x402-mcp page` runs the payment page alone.

`serve <server> --devnet` also starts a local chain (anvil with our USDC and
funded test accounts), settles on it, and prints what an outside wallet or
agent needs to pay: the MCP URL, the chain, the token, the payee and the test
accounts. Stopping the command stops the chain.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

from ._options import address_option
from .devnet import add_chain_options, chain_lines, whole_number
from .samples import sample_names

LOOPBACK = "127.0.0.1"


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="run a sample paid server (stdio for Claude Desktop, or streamable HTTP)"
    )
    serve.add_argument("server", help=f"a sample ({', '.join(sample_names())}) or a path to a server .py")
    serve.add_argument(
        "--transport",
        choices=("stdio", "streamable-http"),
        default=None,
        help="how clients connect (default: stdio, or streamable-http with --devnet)",
    )
    serve.add_argument(
        "--framework",
        default=None,
        help="the framework a sample is built on: mcpserver or sdk1 (the installed MCP SDK line's own), "
        "or fastmcp (default: the MCP SDK's own)",
    )
    serve.add_argument(
        "--port",
        type=whole_number(0, 65535),
        default=8000,
        help="HTTP port on 127.0.0.1 (streamable-http; 0: any free port)",
    )
    devnet = serve.add_argument_group(
        "--devnet", "settle on a fresh local chain that outside wallets and agents can pay"
    )
    devnet.add_argument(
        "--devnet",
        action="store_true",
        help="start anvil with our USDC and funded test accounts, serve over streamable HTTP, settle there",
    )
    add_chain_options(devnet, port_option="--chain-port")
    devnet.add_argument(
        "--pay-to", type=address_option("--pay-to"), help="the payee (default: a fresh address)"
    )
    devnet.add_argument("--ledger", help="ledger URL (default: a temporary SQLite file, gone on exit)")
    devnet.add_argument("--json", action="store_true", help="print one JSON object on stdout once serving")
    serve.set_defaults(run=run)

    page = commands.add_parser(
        "page", help="run the payment page alone, sharing the ledger of $X402_LEDGER_URL"
    )
    page.add_argument("--port", type=whole_number(1, 65535), default=8402, help="port on 127.0.0.1")
    page.add_argument(
        "--server",
        metavar="NAME",
        help="without $X402_LEDGER_URL: use the default ledger of the server called NAME",
    )
    page.set_defaults(run=run_page)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError, X402MCPError

    # stdout carries MCP messages over stdio (and the announcement on a devnet):
    # every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    if not args.devnet and (args.json or args.pay_to or args.ledger):
        # Without a devnet these come from the X402_* variables; ignoring them would mislead.
        print("x402-mcp serve: --json, --pay-to and --ledger go with --devnet", file=sys.stderr)
        return 2
    try:
        if args.devnet:
            return _run_on_devnet(args)
        return _run(args)
    except ConfigurationError as exc:  # exit 2: usage or configuration (see `x402-mcp --help`)
        print(f"x402-mcp serve: {exc}", file=sys.stderr)
        return 2
    except X402MCPError as exc:
        print(f"x402-mcp serve: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ..frameworks.choice import run_stdio
    from .samples import load_server

    server = load_server(args.server, framework=args.framework).server
    if (args.transport or "stdio") == "stdio":
        run_stdio(server)
        return 0
    listener = _listen(args.port)

    def announce(url: str) -> None:
        print(f"{args.server} serving MCP on {url}", file=sys.stderr, flush=True)

    _serve_http(server, listener, announce)
    return 0


def _run_on_devnet(args: argparse.Namespace) -> int:
    from eth_account import Account

    from ..chains.devnet import Devnet
    from ..errors import ConfigurationError
    from .samples import load_server

    if args.transport == "stdio":
        raise ConfigurationError("--devnet serves over streamable HTTP, for clients outside this process")
    # SIGTERM unwinds like Ctrl+C, so that leaving the `with` blocks below stops anvil.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with (
            Devnet(
                port=args.chain_port, chain_id=args.chain_id, accounts=args.accounts, usdc=args.usdc
            ) as net,
            tempfile.TemporaryDirectory(prefix="x402-devnet-ledger-") as scratch,
        ):
            env = {
                **os.environ,
                **net.server_env(),
                # The server's own gas key: it stays in this process and is never printed.
                "X402_SETTLEMENT_KEY": net.gas_account.private_key,
                "X402_PAY_TO": args.pay_to or Account.create().address,
                # A fresh chain gets a fresh ledger: requests of an earlier chain mean nothing here.
                "X402_LEDGER_URL": args.ledger or f"sqlite:///{scratch}/ledger.sqlite",
            }
            loaded = load_server(args.server, env, framework=args.framework)
            server, payments = loaded.server, loaded.payments
            if payments is None:
                raise ConfigurationError(
                    f"{loaded.script}: its server has no Payments installed, so nothing would settle on "
                    "the devnet; install one (payments = Payments.from_env(); payments.install(mcp)) "
                    "or define build(payments)"
                )
            listener = _listen(args.port)

            def announce(url: str) -> None:
                info = {
                    "server": getattr(server, "name", args.server),
                    "mcp_url": url,
                    "pay_to": payments.pay_to,
                    **net.describe(),
                    "gas_account": {"address": net.gas_account.address},
                }
                print(json.dumps(info) if args.json else _human(info), flush=True)

            _serve_http(server, listener, announce)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.json:
        print("stopped the server and the devnet", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _listen(port: int) -> socket.socket:
    from ..errors import ConfigurationError

    # IPPROTO_TCP explicitly: with proto 0 asyncio leaves Nagle on, costing ~40 ms per request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {LOOPBACK}:{port} ({exc.strerror}); pass another --port"
        ) from None
    return sock


def _serve_http(server: Any, listener: socket.socket, announce: Callable[[str], None]) -> None:
    """Serve `server`'s streamable-HTTP app on `listener`; call `announce(mcp_url)` once it accepts.

    SIGINT and SIGTERM end it by returning, so the caller's clean-up (stopping a chain) runs.
    """
    import anyio

    from ..frameworks.choice import streamable_http_app

    url = f"http://{LOOPBACK}:{listener.getsockname()[1]}/mcp"
    web = _server_leaving_signals_to_us(streamable_http_app(server, LOOPBACK))

    def stop(signum: int, frame: FrameType | None) -> None:
        web.should_exit = True

    async def serve() -> None:
        async def announce_when_started() -> None:
            while not web.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
                await anyio.sleep(0.01)
            announce(url)

        async with anyio.create_task_group() as group:
            group.start_soon(announce_when_started)
            await web.serve(sockets=[listener])
            group.cancel_scope.cancel()

    previous = {each: signal.signal(each, stop) for each in (signal.SIGINT, signal.SIGTERM)}
    try:
        anyio.run(serve)
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def _server_leaving_signals_to_us(app: Any) -> Any:
    """A uvicorn server for `app` that leaves SIGINT and SIGTERM alone: its own handling
    re-raises the signal after shutting down, which would kill the process before the
    chain it runs beside is stopped."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server(uvicorn.Config(app, log_config=None, access_log=False))


def _human(info: dict[str, Any]) -> str:
    token = info["token"]
    example_key = "<a test key above>"
    lines = [
        f"{info['server']} is serving MCP on {info['mcp_url']} (streamable HTTP),",
        f"settling on a local anvil chain. Payee {info['pay_to']}.",
        f"Its gas account {info['gas_account']['address']} holds its own key, which is never shown.",
        "",
        *chain_lines(info),
        "",
        "Pay as an agent, for example:",
        f"  X402_PAYER_KEY={example_key} x402-mcp call {info['mcp_url']} <tool> --arg key=value "
        f"--asset {token['address']} --max 0.10",
        "",
        "Press Ctrl+C to stop the server and the chain.",
    ]
    return "\n".join(lines)


def run_page(args: argparse.Namespace) -> int:
    import uvicorn

    from ..frameworks.payments import Payments
    from ..page.httpguard import guarded_config
    from ..page.serving import page_app

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    payments = Payments.from_env()
    if not os.environ.get("X402_LEDGER_URL"):
        if not args.server:
            print(
                "x402-mcp page: set X402_LEDGER_URL to the ledger of the server whose page this is,"
                " or pass --server NAME to use that server's default ledger (each server has its own)",
                file=sys.stderr,
            )
            return 2
        payments.use_default_ledger_of(args.server)
    if payments.public_url is None:
        payments.public_url = f"http://127.0.0.1:{args.port}"
    listener = _listen(args.port)  # a taken port is a ConfigurationError that says what to do
    uvicorn.Server(guarded_config(page_app(payments.gate), log_config=None)).run(sockets=[listener])
    return 0
