"""`x402-mcp bundle <server>`: a one-click Claude Desktop bundle (`.mcpb`) of a sample server.

An MCPB bundle is a zip with a `manifest.json` (spec: `@anthropic-ai/mcpb`, manifest 0.4).
Ours is a `uv` bundle: the host makes a Python environment from the bundle's
`pyproject.toml` with uv and starts the server script in it, so the person installing
it needs no Python of their own. That environment gets `mcp-x402` from the wheel
shipped inside the bundle (built from this checkout, or given with `--wheel`), or
from the package index when there is none, and its other dependencies at the
versions this project is tested with, when the checkout says which.

The manifest asks for the `X402_*` settings in `user_config`, with defaults that
run on the embedded chain with no secret; the node URL and the gas key are marked
`sensitive`, so the host keeps them in the system's secret store.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .samples import LoadedServer, sample_names, serves_when_run

DISTRIBUTION = "mcp-x402"
MANIFEST_VERSION = "0.4"
ENTRY_DIR = "server"
WHEELS_DIR = "wheels"
PYTHON_REQUIREMENT = ">=3.11"
CHECKOUT = Path(__file__).resolve().parents[2]
"""This project's checkout, when running from one (its pyproject.toml beside x402_mcp/)."""
_WHEEL_NAME = re.compile(r"mcp_x402-(?P<version>[0-9][0-9A-Za-z.+!-]*)-py3-none-any\.whl")
_BUILD_TIMEOUT_SECONDS = 300
# A script's file name goes into the archive, the manifest and the host's command line:
# plain letters, digits, '_' and '-' only, so no platform reads a folder or a drive in it.
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}\.py")
_DRIVE = re.compile(r"[A-Za-z]:")


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
    version = _installed_version()
    with tempfile.TemporaryDirectory(prefix="x402-bundle-") as scratch:
        loaded, tools = _listed(server, Path(scratch))
        if not serves_when_run(script):
            raise ConfigurationError(
                f"{script} serves nothing when run, and the host starts the bundle by running it: add "
                'if __name__ == "__main__": mcp.run()  (with your server\'s name) at its end'
            )
        shipped = None if from_index else _wheel(wheel, Path(scratch), version)
        files: dict[str, bytes] = {
            "manifest.json": json.dumps(manifest(loaded, tools, version), indent=2).encode() + b"\n",
            "pyproject.toml": _pyproject(script.stem, version, shipped, loaded.framework).encode(),
            f"{ENTRY_DIR}/{script.name}": script.read_bytes(),
        }
        if shipped is not None:
            files[f"{WHEELS_DIR}/{shipped.name}"] = shipped.read_bytes()
        _write_zip(target, files)
    return target


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


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from ..errors import ConfigurationError

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        raise ConfigurationError(
            f"{DISTRIBUTION} is not installed (run this from its environment: uv run x402-mcp bundle …)"
        ) from None


def _wheel(given: str | None, scratch: Path, version: str) -> Path | None:
    """The wheel to ship: `given`, else one built from this checkout, else None (no checkout)."""
    from ..errors import ConfigurationError

    if given is not None:
        return _checked_wheel(Path(given), version)
    if not (CHECKOUT / "pyproject.toml").is_file() or not (CHECKOUT / "x402_mcp").is_dir():
        return None  # an installed package: the bundle takes the same version from the index
    uv = shutil.which("uv")
    if uv is None:
        raise ConfigurationError(
            "building the wheel to ship needs uv on PATH; or pass --wheel or --from-index"
        )
    command = [uv, "build", "--wheel", "--quiet", "--out-dir", str(scratch), str(CHECKOUT)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"building the {DISTRIBUTION} wheel failed: {exc}") from None
    built = sorted(scratch.glob("mcp_x402-*.whl"))
    if done.returncode != 0 or len(built) != 1:
        raise ConfigurationError(f"building the {DISTRIBUTION} wheel failed: {done.stderr.strip()[-600:]}")
    return _checked_wheel(built[0], version)


def _checked_wheel(path: Path, version: str) -> Path:
    from ..errors import ConfigurationError

    if not path.is_file():
        raise ConfigurationError(f"--wheel {str(path)!r} is not a file; give the path of a built wheel")
    match = _WHEEL_NAME.fullmatch(path.name)
    if match is None:
        raise ConfigurationError(
            f"--wheel {str(path)!r} is not a {DISTRIBUTION} wheel (mcp_x402-<version>-py3-none-any.whl)"
        )
    if match["version"] != version:
        raise ConfigurationError(
            f"--wheel {path.name} is version {match['version']}, but this is {DISTRIBUTION} {version}; "
            "the manifest would describe tools of another version"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            holds_package = "x402_mcp/__init__.py" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        raise ConfigurationError(f"--wheel {str(path)!r} cannot be read as a zip archive") from None
    if not holds_package:
        raise ConfigurationError(f"--wheel {str(path)!r} does not contain the x402_mcp package")
    return path


def _pyproject(name: str, version: str, wheel: Path | None, framework: str = "mcpserver") -> str:
    """The bundle's own project: no code of its own, only the environment the server runs in
    (with FastMCP, at the version installed here, for a FastMCP server)."""
    requirements = [f"{DISTRIBUTION}=={version}", *_framework_requirements(framework)]
    lines = [
        '# The environment Claude Desktop makes with uv for this bundle (server type "uv").',
        "[project]",
        f"name = {json.dumps(f'x402-mcp-bundle-{name}')}",
        f"version = {json.dumps(version)}",
        f"requires-python = {json.dumps(PYTHON_REQUIREMENT)}",
        f"dependencies = [{', '.join(json.dumps(each) for each in requirements)}]",
    ]
    if wheel is not None:
        lines += [
            "",
            "[tool.uv.sources]",
            f"{DISTRIBUTION} = {{ path = {json.dumps(f'{WHEELS_DIR}/{wheel.name}')} }}",
        ]
    pins = _tested_pins()
    if pins:
        lines += [
            "",
            "[tool.uv]",
            "# The versions this release was tested with.",
            "constraint-dependencies = [",
        ]
        lines += [f"    {json.dumps(pin)}," for pin in pins]
        lines.append("]")
    return "\n".join(lines) + "\n"


def _framework_requirements(framework: str) -> list[str]:
    """What a server of `framework` needs beyond mcp-x402 (FastMCP, as installed here)."""
    if framework != "fastmcp":
        return []
    from importlib.metadata import version

    return [f"fastmcp=={version('fastmcp')}"]


def _tested_pins() -> list[str]:
    """The exact versions the checkout pins in `[tool.uv] constraint-dependencies`, if any."""
    import tomllib

    path = CHECKOUT / "pyproject.toml"
    if not path.is_file():
        return []
    with path.open("rb") as file:
        project = tomllib.load(file)
    if project.get("project", {}).get("name") != DISTRIBUTION:
        return []
    pins = project.get("tool", {}).get("uv", {}).get("constraint-dependencies", [])
    return [pin for pin in pins if isinstance(pin, str)]


def safe_entry_name(name: str) -> str:
    """`name` when it is a relative archive path that every extractor keeps inside the bundle.

    Checked as Windows and POSIX both read it, whatever this OS is: no backslash (a folder
    separator on Windows), no absolute path, no drive ("C:"), no ':' at all, no empty, `.` or
    `..` part, no control character.

    Raises:
        ConfigurationError: naming the entry and what is wrong with it.
    """
    from ..errors import ConfigurationError

    parts = name.split("/")
    problem = (
        "contains a backslash"
        if "\\" in name
        else "is absolute"
        if name.startswith("/")
        else "names a drive"
        if _DRIVE.match(name) or ":" in name
        else "has an empty, '.' or '..' part"
        if any(part in ("", ".", "..") for part in parts)
        else "contains a control character"
        if any(ord(char) < 32 or ord(char) == 127 for char in name)
        else None
    )
    if problem is not None:
        raise ConfigurationError(
            f"the bundle entry {name!r} {problem}; it would be written outside the bundle"
        )
    return name


def _write_zip(target: Path, files: dict[str, bytes]) -> None:
    """Write the archive beside `target` and move it into place: never a half-written bundle.

    The partial file has a fresh random name in the target's folder and is created
    exclusively without following a symlink (O_EXCL | O_NOFOLLOW): nothing planted there
    beforehand is written through. The rename replaces `target` itself, never a file it
    links to, and a `target` that is a symlink is refused.
    """
    from ..errors import ConfigurationError

    entries = {safe_entry_name(name): data for name, data in files.items()}
    if target.is_symlink():
        raise ConfigurationError(
            f"--output {str(target)!r} is a symbolic link; remove it or choose another file"
        )
    partial = target.with_name(f".{target.name}.{secrets.token_hex(8)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    created = False
    try:
        descriptor = os.open(partial, flags, 0o644)
        created = True
        with (
            os.fdopen(descriptor, "wb") as file,
            zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        ):
            for name, data in entries.items():
                archive.writestr(name, data)
        os.replace(partial, target)
        created = False
    except OSError as exc:
        raise ConfigurationError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if created:
            partial.unlink(missing_ok=True)
