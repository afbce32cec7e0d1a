"""Subcommands of `x402-mcp`, one module each.

Every module listed in `COMMANDS` defines `register(commands)`, which adds its
parser (with `set_defaults(run=...)`); `run(args) -> int` is the exit status:
0 it worked, 1 the operation failed, 2 a usage or configuration error (`cli.EPILOG`).
A `ConfigurationError` a command lets escape exits 2, any other `X402MCPError` 1.
Modules are imported only when the command line is parsed, so a command's
heavy imports never slow down another.
"""

COMMANDS: tuple[str, ...] = (
    "demo",
    "call",
    "spend",
    "facilitator",
    "devnet",
    "serve",
    "claude_config",
    "bundle",
    "ledger",
)
