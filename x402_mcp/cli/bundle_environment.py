"""The Python environment a bundle runs in: its `pyproject.toml`, and the mcp-x402 wheel it ships.

The host makes the environment with uv from the bundle's `pyproject.toml`. It gets `mcp-x402`
from the wheel shipped inside the bundle (built from this checkout, or given with `--wheel`), or
from the package index when there is none, and its other dependencies at the versions this
project is tested with, when the checkout says which. A wheel of another version is refused:
the manifest lists the tools of the version installed here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

DISTRIBUTION = "mcp-x402"
WHEELS_DIR = "wheels"
PYTHON_REQUIREMENT = ">=3.11"
CHECKOUT = Path(__file__).resolve().parents[2]
"""This project's checkout, when running from one (its pyproject.toml beside x402_mcp/)."""
_WHEEL_NAME = re.compile(r"mcp_x402-(?P<version>[0-9][0-9A-Za-z.+!-]*)-py3-none-any\.whl")
_BUILD_TIMEOUT_SECONDS = 300


def installed_version() -> str:
    """The version of mcp-x402 installed here: the bundle ships and pins this one."""
    from importlib.metadata import PackageNotFoundError, version

    from ..errors import ConfigurationError

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        raise ConfigurationError(
            f"{DISTRIBUTION} is not installed (run this from its environment: uv run x402-mcp bundle …)"
        ) from None


def wheel_to_ship(given: str | None, scratch: Path, version: str) -> Path | None:
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


def bundle_pyproject(name: str, version: str, wheel: Path | None, framework: str = "mcpserver") -> str:
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
    """What a server of `framework` needs beyond mcp-x402, as installed here: FastMCP, or the
    MCP SDK 1.x line (mcp-x402 installs next to either SDK line)."""
    from importlib.metadata import version

    if framework == "fastmcp":
        return [f"fastmcp=={version('fastmcp')}"]
    if framework == "sdk1":
        return [f"mcp=={version('mcp')}"]
    return []


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
