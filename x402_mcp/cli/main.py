"""The `x402-mcp` command.

Every subcommand follows one exit-code convention (`EPILOG`), applied here
once for all of them: a `ConfigurationError` that escapes a command is a usage
or configuration error (2), any other `X402MCPError` an operation that failed
(1). argparse's own usage errors exit 2 as well.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from . import COMMANDS

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
exit status:
  0    it worked
  1    the operation failed (a payment refused, a chain or ledger that failed, a tool error)
  2    usage or configuration error (a bad option, a missing file, an unknown sample, a busy port)
  130  interrupted (Ctrl+C)

Run `x402-mcp COMMAND --help` for a command's options and their defaults."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written, and each option's default appended to its help
    unless the help already gives it or there is none to give."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))
        ):
            return action.help
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class _Commands:
    """The subparsers action, giving every command parser a description (its help, unless it
    has its own), the defaults formatter and the exit-code epilog."""

    def __init__(self, action: Any) -> None:
        self._action = action

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser:
        summary = options.get("help")
        if summary and "description" not in options:
            options["description"] = summary[0].upper() + summary[1:] + "."
        options.setdefault("formatter_class", HelpFormatter)
        options.setdefault("epilog", EPILOG.split("\n\nRun")[0])
        parser: argparse.ArgumentParser = self._action.add_parser(name, **options)
        return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mcp-x402")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="x402-mcp",
        description="Charge for MCP tools in USDC over x402: run, bundle and pay paid MCP servers.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".{name}", __package__).register(_Commands(commands))
    return parser


def run(args: argparse.Namespace) -> int:
    """The exit status of the command `args` chose, by the one convention (see `EPILOG`)."""
    from ..errors import ConfigurationError, X402MCPError

    where = f"x402-mcp {args.command}"
    try:
        status: int = args.run(args)
    except ConfigurationError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except X402MCPError as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return status


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
