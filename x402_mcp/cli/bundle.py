"""`x402-mcp bundle <server>`: a one-click Claude Desktop bundle (`.mcpb`) of a sample server.

An MCPB bundle is a zip with a `manifest.json` (spec: `@anthropic-ai/mcpb`, manifest 0.4).
Ours is a `uv` bundle: the host makes a Python environment from the bundle's
`pyproject.toml` with uv and starts the server script in it, so the person installing
it needs no Python of their own. That environment gets `mcp-x402` from the wheel
shipped inside the bundle (built from this checkout, or given with `--wheel`), or
from the package index when there is none, and its other dependencies at the
versions this project is tested with, when the checkout says which.

This module checks the inputs and assembles the bundle; `bundle_manifest` writes the
manifest (and the `X402_*` settings it asks for), `bundle_environment` the environment
(pyproject.toml and the wheel), and `bundle_archive` the zip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

# The manifest, the environment and the archive each have their module; the names this module
# defined before they moved are re-exported (`X as X`), so imports from here keep working.
from .bundle_archive import safe_entry_name as safe_entry_name
from .bundle_archive import write_zip
from .bundle_environment import CHECKOUT as CHECKOUT
from .bundle_environment import DISTRIBUTION, WHEELS_DIR, bundle_pyproject, installed_version, wheel_to_ship
from .bundle_environment import PYTHON_REQUIREMENT as PYTHON_REQUIREMENT
from .bundle_manifest import ENTRY_DIR, manifest
from .bundle_manifest import MANIFEST_VERSION as MANIFEST_VERSION
from .bundle_manifest import SETTINGS as SETTINGS
from .bundle_manifest import Setting as Setting
from .samples import LoadedServer, sample_names, serves_when_run

# A script's file name goes into the archive, the manifest and the host's command line:
# plain letters, digits, '_' and '-' only, so no platform reads a folder or a drive in it.
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\.py")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bundle", help="build a Claude Desktop bundle (.mcpb) of a sample server, installed with one click"
    )
    parser.add_argument("server", help=f"a sample ({', '.join(sample_names())}) or a path to a server .py")
    parser.add_argument(
        "-o",
        "--output",
        help="the .mcpb file to write, or an existing folder to write <server>.mcpb in (default: here)",
    )
    parser.add_argument(
        "--wheel",
        help=f"the {DISTRIBUTION} wheel to ship in the bundle (default: built from this checkout with uv)",
    )
    parser.add_argument(
        "--from-index",
        action="store_true",
        help=f"ship no wheel: the bundle installs {DISTRIBUTION} from the package index",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError

    try:
        if args.wheel and args.from_index:
            raise ConfigurationError("--wheel and --from-index exclude each other")
        path = build_bundle(args.server, output=args.output, wheel=args.wheel, from_index=args.from_index)
    except ConfigurationError as exc:
        print(f"x402-mcp bundle: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def build_bundle(
    server: str, *, output: str | None = None, wheel: str | None = None, from_index: bool = False
) -> Path:
    """Write the `.mcpb` of `server` (a sample's name or a server script) and return its path.

    Raises:
        ConfigurationError: an unknown server, a script with no server (or several, or one of
            an unsupported framework), an output that is not a `.mcpb` file in an existing
            folder, an unusable wheel, or a wheel that cannot be built here; the message says which.
    """
    from ..errors import ConfigurationError
    from .samples import sample_path

    script = sample_path(server)
    if _SCRIPT_NAME.fullmatch(script.name) is None:
        raise ConfigurationError(
            f"the script's file name {script.name!r} cannot go into a bundle: rename it to letters, "
            "digits, '_' and '-' ending in .py (e.g. my_server.py)"
        )
    target = _output_path(output, script.stem)
    version = installed_version()
    with tempfile.TemporaryDirectory(prefix="x402-bundle-") as scratch:
        loaded, tools = _listed(server, Path(scratch))
        if not serves_when_run(script):
            raise ConfigurationError(
                f"{script} serves nothing when run, and the host starts the bundle by running it: add "
                'if __name__ == "__main__": mcp.run()  (with your server\'s name) at its end'
            )
        shipped = None if from_index else wheel_to_ship(wheel, Path(scratch), version)
        files: dict[str, bytes] = {
            "manifest.json": json.dumps(manifest(loaded, tools, version), indent=2).encode() + b"\n",
            "pyproject.toml": bundle_pyproject(script.stem, version, shipped, loaded.framework).encode(),
            f"{ENTRY_DIR}/{script.name}": script.read_bytes(),
        }
        if shipped is not None:
            files[f"{WHEELS_DIR}/{shipped.name}"] = shipped.read_bytes()
        write_zip(target, files)
    return target


def _listed(server: str, scratch: Path) -> tuple[LoadedServer, list[dict[str, str]]]:
    """The server of script `server`, built as the bundle's defaults build it (on an embedded
    chain, with a throwaway ledger), and its tools as `tools/list` shows them (descriptions
    with their prices), on either framework."""
    import anyio
    from mcp import Client

    from ..frameworks.choice import in_memory
    from .samples import load_server

    async def listed(target: Any) -> list[dict[str, str]]:
        async with Client(target) as client:
            tools = (await client.list_tools()).tools
        return [
            {"name": tool.name, "description": tool.description or tool.title or tool.name} for tool in tools
        ]

    # The person's environment, with the bundle's defaults over any X402_* setting of theirs.
    env = {name: value for name, value in os.environ.items() if not name.startswith("X402_")}
    env.update({"X402_SETTLEMENT": "devchain", "X402_LEDGER_URL": f"sqlite:///{scratch}/ledger.sqlite"})
    loaded = load_server(server, env)
    return loaded, anyio.run(listed, in_memory(loaded.server))


def _output_path(output: str | None, name: str) -> Path:
    from ..errors import ConfigurationError

    target = Path(output) if output else Path.cwd()
    if target.is_dir():
        target = target / f"{name}.mcpb"
    if target.suffix != ".mcpb":
        raise ConfigurationError(f"--output {str(target)!r} must be a .mcpb file or an existing folder")
    if not target.parent.is_dir():
        raise ConfigurationError(
            f"--output {str(target)!r}: the folder {str(target.parent)!r} does not exist"
        )
    return target.absolute()
