"""A bundle's `manifest.json` (spec: `@anthropic-ai/mcpb`, manifest 0.4), and the settings it asks for.

The manifest asks for the `X402_*` settings in `user_config`, with defaults that
run on the embedded chain with no secret; the node URL and the gas key are marked
`sensitive`, so the host keeps them in the system's secret store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bundle_environment import PYTHON_REQUIREMENT
from .samples import LoadedServer

MANIFEST_VERSION = "0.4"
ENTRY_DIR = "server"
"""The bundle's folder of the server script."""


@dataclass(frozen=True)
class Setting:
    """One `user_config` entry of the manifest, passed to the server as an `X402_*` variable."""

    key: str
    variable: str
    title: str
    description: str
    default: str
    sensitive: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "settlement",
        "X402_SETTLEMENT",
        "Settlement",
        "devchain (default): an embedded test chain inside the server, offline, no secret needed; "
        "its payment page has a demo wallet and no real money moves. local: settle on a real "
        "chain, with the network, payee, node URL and gas key below.",
        "devchain",
    ),
    Setting(
        "network",
        "X402_NETWORK",
        "Network",
        "With local settlement: base, base-sepolia or eip155:<chain id>. Ignored on the devchain.",
        "base-sepolia",
    ),
    Setting(
        "pay_to",
        "X402_PAY_TO",
        "Payee address",
        "The address that receives the payments (0x followed by 40 hex digits). Required with "
        "local settlement; on the devchain a fresh address is used when it is empty.",
        "",
    ),
    Setting(
        "rpc_url",
        "X402_RPC_URL",
        "Node URL (secret)",
        "With local settlement: the http:// or https:// URL of a JSON-RPC node of the network. "
        "Kept as a secret: such URLs often carry an API key.",
        "",
        sensitive=True,
    ),
    Setting(
        "settlement_key",
        "X402_SETTLEMENT_KEY",
        "Gas key (secret)",
        "With local settlement: the private key (0x followed by 64 hex digits) of the account that "
        "pays the gas of each settlement. It needs a little ETH and never holds the payments.",
        "",
        sensitive=True,
    ),
)


def manifest(loaded: LoadedServer, tools: list[dict[str, str]], version: str) -> dict[str, Any]:
    """The bundle's `manifest.json` for the server `loaded` from its script, listing `tools`."""
    script, module = loaded.script, loaded.module
    name = script.stem
    summary = (module.__doc__ or "").strip().splitlines()
    description = summary[0] if summary else f"{name}: an MCP server with tools paid in USDC over x402"
    entry = f"{ENTRY_DIR}/{script.name}"
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": f"x402-mcp-{name}",
        "display_name": f"{name} (paid tools, x402)",
        "version": version,
        "description": description,
        "long_description": _LONG_DESCRIPTION,
        "author": {"name": "x402-mcp"},
        "license": "MIT",
        "keywords": ["x402", "usdc", "payments", name],
        "server": {
            "type": "uv",
            "entry_point": entry,
            # What the host runs: uv makes the environment of the bundle's pyproject.toml
            # (once, in the bundle's folder) and starts the server over stdio in it.
            "mcp_config": {
                "command": "uv",
                "args": ["run", "--directory", "${__dirname}", entry],
                "env": {setting.variable: f"${{user_config.{setting.key}}}" for setting in SETTINGS},
            },
        },
        "tools": tools,
        "compatibility": {
            "platforms": ["darwin", "win32", "linux"],
            "runtimes": {"python": PYTHON_REQUIREMENT},
        },
        "user_config": {
            setting.key: {
                "type": "string",
                "title": setting.title,
                "description": setting.description,
                "required": False,
                # Every setting has a default: the host leaves a `${user_config.…}` of a
                # setting with no value unreplaced, which the server would then refuse.
                "default": setting.default,
                **({"sensitive": True} if setting.sensitive else {}),
            }
            for setting in SETTINGS
        },
    }


_LONG_DESCRIPTION = (
    "Free and paid tools side by side. A paid tool answers an unpaid call with its price and "
    "a link to a payment page on this computer; pay there (on the default embedded test chain "
    "with the page's demo wallet, no real money) and ask Claude to call the tool again: it runs "
    "once for that payment. Agents that sign x402 payments pay without the page."
)
